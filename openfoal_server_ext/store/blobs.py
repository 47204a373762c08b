"""Large blobs (tool outputs over a size threshold, attachments, session exports) in an
S3-compatible object store, addressed as ``s3://bucket/prefix``.

The endpoint and keys come from the usual ``AWS_*`` variables (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``).
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError


class BlobStoreError(RuntimeError):
    """The object store refused or failed a request (the message says which and why)."""


def parse_object_store_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix without slashes at the ends)."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"object store URL must look like s3://bucket/prefix, not {url!r}")
    return parsed.netloc, parsed.path.strip("/")


class BlobStore:
    """Content-addressed blobs under one bucket and prefix."""

    def __init__(self, url: str, *, endpoint_url: str | None = None) -> None:
        self.url = url
        self.bucket, self.prefix = parse_object_store_url(url)
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            config=Config(
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=10,
                read_timeout=60,
                s3={"addressing_style": "path"},
            ),
        )

    def _key(self, kind: str, digest: str) -> str:
        return "/".join(p for p in (self.prefix, kind, digest) if p)

    def put(self, kind: str, data: bytes) -> str:
        """Store ``data`` under its SHA-256; return its reference (``s3://bucket/key``)."""
        key = self._key(kind, hashlib.sha256(data).hexdigest())
        ref = f"s3://{self.bucket}/{key}"
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        except (ClientError, BotoCoreError) as exc:
            raise BlobStoreError(f"object store refused to store {ref}: {exc}") from exc
        return ref

    def get(self, ref: str) -> bytes:
        """The bytes behind a reference returned by :meth:`put`."""
        bucket, key = parse_object_store_url(ref)
        try:
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
            return bytes(body.read())
        except (ClientError, BotoCoreError) as exc:
            raise BlobStoreError(f"object store could not read {ref}: {exc}") from exc

    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist yet."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            try:
                self.client.create_bucket(Bucket=self.bucket)
            except (ClientError, BotoCoreError) as exc:
                raise BlobStoreError(f"cannot create bucket {self.bucket}: {exc}") from exc
        except BotoCoreError as exc:
            raise BlobStoreError(f"object store unreachable: {exc}") from exc
