"""``http.request``: an HTTP call behind the address guard, pinned to the checked address.

Each hop is checked by :mod:`.netguard` and then sent to the address that was checked (the URL's
host is replaced by it; the ``Host`` header and TLS SNI keep the name, and the certificate is
verified against the name), so a second DNS answer can never redirect the connection. Redirects
are followed here, at most five, each hop checked again. Connections are not kept alive, so two
names that share an address never share a connection. The request runs in the agent kernel's
process for every executor: the guard is enforced by the process that enforces the policy.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from dataclasses import dataclass
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from ..protocol.errors import ErrorCode, OpenFoalError
from ._common import cap_text, from_error, looks_binary
from .base import Tool, ToolContext, ToolResult
from .netguard import Resolver, Target, check_url, host_allowed, parse_url, system_resolver

MAX_REDIRECTS = 5
MAX_RESPONSE_BYTES = 256 * 1024
DEFAULT_RESPONSE_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
_HEADERS_CAP = 4096
_REDIRECTS = {301, 302, 303, 307, 308}
#: Headers the caller may not set: we set them (Host pins the name) or httpx computes them.
_RESERVED = {"host", "content-length", "transfer-encoding", "connection", "accept-encoding"}
_CREDENTIALS = {"authorization", "cookie", "proxy-authorization"}

_ssl_context: ssl.SSLContext | None = None


def _ssl() -> ssl.SSLContext:
    """One verifying TLS context for the process (building one costs milliseconds)."""
    global _ssl_context
    if _ssl_context is None:
        _ssl_context = httpx.create_ssl_context()
    return _ssl_context


class HttpArgs(BaseModel):
    """Arguments of http.request."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=8192, description="http:// or https:// URL.")
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = Field(
        default="GET", description="HTTP method."
    )
    headers: dict[str, str] = Field(
        default_factory=dict, max_length=64, description="Request headers (name: value)."
    )
    body: str | None = Field(
        default=None, max_length=MAX_BODY_BYTES, description="Request body (UTF-8 text)."
    )
    timeout_s: float = Field(default=30.0, gt=0, le=300, description="Whole-call time limit.")
    max_bytes: int = Field(
        default=DEFAULT_RESPONSE_BYTES,
        ge=1,
        le=MAX_RESPONSE_BYTES,
        description="Read at most this many bytes of the response body.",
    )
    follow_redirects: bool = Field(default=True, description="Follow up to 5 redirects.")


class HttpRequestTool(Tool[HttpArgs]):
    """Calls an HTTP API; private, loopback and metadata addresses are refused."""

    name = "http.request"
    description = (
        "Make an HTTP(S) request and return the status, headers and body (cut at max_bytes). "
        "Private, loopback, link-local and cloud metadata addresses are refused unless the "
        "host is on the network allowlist."
    )
    Args = HttpArgs

    def __init__(
        self, *, resolver: Resolver = system_resolver, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.resolver = resolver
        self.ssl_context = ssl_context  # None: the system's trusted CAs

    def risk(self, args: HttpArgs, ctx: ToolContext) -> str | None:
        """A body (data leaving) or a host off the allowlist makes the call high risk."""
        if args.body:
            return "sends a request body"
        try:
            _, host, port = parse_url(args.url)
        except OpenFoalError as exc:
            return f"URL cannot be checked: {exc.message}"
        if not host_allowed(host, port, ctx.policy.network.allow):
            return f"host {host}:{port} is not on the network allowlist"
        return None

    async def run(self, args: HttpArgs, ctx: ToolContext) -> ToolResult:
        """Send the request (and its redirects) within ``timeout_s``."""
        try:
            return await asyncio.wait_for(self._call(args, ctx), args.timeout_s)
        except (asyncio.TimeoutError, httpx.TimeoutException):
            msg = f"request timed out after {args.timeout_s:g} s"
            return ToolResult(
                status="timeout",
                output=msg,
                error={"code": ErrorCode.TOOL_TIMEOUT.value, "message": msg},
            )
        except httpx.HTTPError as exc:
            msg = f"request failed: {type(exc).__name__}: {exc}"
            return ToolResult.failed(ErrorCode.TOOL_EXEC_FAILED.value, msg)
        except Exception as exc:
            return from_error(exc)

    async def _call(self, args: HttpArgs, ctx: ToolContext) -> ToolResult:
        allow = ctx.policy.network.allow
        method = args.method
        body = args.body.encode("utf-8") if args.body is not None else None
        headers = {k: v for k, v in args.headers.items() if k.lower() not in _RESERVED}
        url: str | httpx.URL = args.url
        hops: list[str] = []
        first: Target | None = None
        async with httpx.AsyncClient(
            verify=self.ssl_context or _ssl(),
            trust_env=False,  # no proxy from the environment: we connect to what we checked
            follow_redirects=False,
            timeout=httpx.Timeout(args.timeout_s),
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as client:
            while True:
                target = await check_url(url, allow, resolver=self.resolver)
                if first is None:
                    first = target
                elif first.allowlisted and not target.allowlisted:
                    # A call judged low risk because of the allowlist may not leave it.
                    msg = f"redirect to {target.host}:{target.port} refused: not on the allowlist"
                    raise OpenFoalError(ErrorCode.POLICY_DENIED, msg)
                hops.append(str(target.url))
                resp = await client.send(
                    _request(client, method, target, headers, body), stream=True
                )
                try:
                    location = resp.headers.get("location")
                    if args.follow_redirects and resp.status_code in _REDIRECTS and location:
                        if len(hops) > MAX_REDIRECTS:
                            msg = f"more than {MAX_REDIRECTS} redirects: {' -> '.join(hops)}"
                            return ToolResult.failed(ErrorCode.TOOL_EXEC_FAILED.value, msg)
                        nxt = target.url.join(location)
                        if resp.status_code == 303 or (
                            resp.status_code in (301, 302) and method == "POST"
                        ):
                            method = "GET" if method != "HEAD" else "HEAD"
                            body = None
                            headers = {
                                k: v for k, v in headers.items() if k.lower() != "content-type"
                            }
                        if (nxt.scheme, nxt.host, nxt.port) != (
                            target.url.scheme,
                            target.url.host,
                            target.url.port,
                        ):
                            headers = {
                                k: v for k, v in headers.items() if k.lower() not in _CREDENTIALS
                            }
                        url = nxt
                        continue
                    raw = await _read_capped(resp, args.max_bytes)
                finally:
                    await resp.aclose()
                return ToolResult(status="success", output=_render(resp, raw, args.max_bytes, hops))


def _request(
    client: httpx.AsyncClient,
    method: str,
    target: Target,
    headers: dict[str, str],
    body: bytes | None,
) -> httpx.Request:
    """A request to the checked address that still names the host (Host header, SNI)."""
    hdrs = {**headers, "Host": target.host_header(), "Accept-Encoding": "gzip, deflate, identity"}
    ext = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
    return client.build_request(
        method, target.connect_url(), headers=hdrs, content=body, extensions=ext
    )


@dataclass(frozen=True)
class _Body:
    """What was read of a response body."""

    data: bytes
    more: bool  # the body went on past the cap
    note: str = ""  # set when the body could not be shown


async def _read_capped(resp: httpx.Response, cap: int) -> _Body:
    """Up to ``cap`` decoded body bytes; a compressed body is never inflated past the cap."""
    encoding = resp.headers.get("content-encoding", "identity").lower().strip()
    inflate = zlib.decompressobj(wbits=47) if encoding in ("gzip", "deflate", "x-gzip") else None
    out = bytearray()
    async for chunk in resp.aiter_raw():
        if inflate is not None:
            try:
                chunk = inflate.decompress(chunk, cap + 1 - len(out))
            except zlib.error:
                return _Body(b"", False, f"[{encoding} body could not be decompressed]")
        out += chunk
        if len(out) > cap or (inflate is not None and inflate.unconsumed_tail):
            return _Body(bytes(out[:cap]), True)
    return _Body(bytes(out), False)


def _render(resp: httpx.Response, body: _Body, cap: int, hops: list[str]) -> str:
    """Status line, headers (capped), blank line, body (text, or a note for binary)."""
    data, more = body.data, body.more
    lines = [f"HTTP {resp.status_code} {resp.reason_phrase}"]
    if len(hops) > 1:
        lines.append("[redirected: " + " -> ".join(hops) + "]")
    head, _ = cap_text("\n".join(f"{k}: {v}" for k, v in resp.headers.items()), _HEADERS_CAP)
    lines.append(head)
    text = "\n".join(lines) + "\n\n"
    if body.note:
        return text + body.note
    if looks_binary(data):
        return text + f"[binary body: {len(data)}{'+' if more else ''} bytes, not shown]"
    charset = resp.charset_encoding or "utf-8"
    try:
        text += data.decode(charset, "replace")
    except LookupError:  # an unknown charset name
        text += data.decode("utf-8", "replace")
    if more:
        text += f"\n[body truncated at {cap} bytes]"
    return text
