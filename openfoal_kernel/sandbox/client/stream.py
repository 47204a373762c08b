"""Attached exec streams, read with asyncio: start an exec and demultiplex its output.

The SDK's attached socket is blocking and may already have buffered the first bytes of the
stream while it read the HTTP headers; here the upgrade request is sent on an asyncio
connection of our own, so no byte is lost, reads never block the event loop, and a
cancelled read costs nothing. Frames are Docker's: an 8-byte header (stream, 0, 0, 0,
big-endian length) before each chunk, because the exec has no TTY.
"""

from __future__ import annotations

import asyncio
import json
import struct
from contextlib import suppress

from ..docker_api import Endpoint, unavailable

__all__ = ["STDERR", "STDOUT", "ExecStream", "open_exec"]

STDOUT = 1
STDERR = 2
_HEADER = struct.Struct(">BxxxL")
#: The engine's answer to the upgrade request is small; anything bigger is not Docker.
_MAX_HEAD = 64 * 1024
#: One frame never carries more than this (Docker sends 32 KiB chunks).
_MAX_FRAME = 4 * 1024 * 1024
_CONNECT_TIMEOUT_S = 5.0


class ExecStream:
    """The attached stdin/stdout/stderr of one running exec."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read_frame(self) -> tuple[int, bytes] | None:
        """The next ``(stream, data)`` chunk, or ``None`` at the end of the stream."""
        try:
            header = await self.reader.readexactly(_HEADER.size)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        stream, size = _HEADER.unpack(header)
        if size > _MAX_FRAME:
            raise unavailable(f"malformed exec stream (a {size}-byte frame)")
        try:
            data = await self.reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        return stream, data

    async def write(self, data: bytes) -> None:
        """Send ``data`` to the process's stdin."""
        self.writer.write(data)
        await self.writer.drain()

    def close_stdin(self) -> None:
        """Half-close: the process reads end-of-file; its output keeps coming."""
        with suppress(OSError, RuntimeError):
            if self.writer.can_write_eof():
                self.writer.write_eof()

    def close(self) -> None:
        """Drop the connection (the process itself keeps running)."""
        with suppress(OSError, RuntimeError):
            self.writer.close()


async def open_exec(endpoint: Endpoint, exec_id: str) -> ExecStream:
    """Start the created exec ``exec_id`` attached; return its stream."""
    try:
        if endpoint.unix_path is not None:
            conn = asyncio.open_unix_connection(endpoint.unix_path, limit=_MAX_FRAME * 2)
        elif endpoint.tcp_address is not None:
            host, port = endpoint.tcp_address
            conn = asyncio.open_connection(host, port, limit=_MAX_FRAME * 2)
        else:
            raise unavailable(
                f"attached exec streams need a unix or tcp Docker endpoint, "
                f"not {endpoint.docker_host}"
            )
        reader, writer = await asyncio.wait_for(conn, _CONNECT_TIMEOUT_S)
    except (OSError, asyncio.TimeoutError) as exc:
        raise unavailable(f"Docker is unavailable at {endpoint.docker_host}: {exc}") from exc
    body = b'{"Detach":false,"Tty":false}'
    request = (
        f"POST /v{endpoint.api_version}/exec/{exec_id}/start HTTP/1.1\r\n"
        "Host: docker\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    ).encode("ascii")
    try:
        writer.write(request + body)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _CONNECT_TIMEOUT_S)
    except (
        OSError,
        asyncio.TimeoutError,
        asyncio.IncompleteReadError,
        asyncio.LimitOverrunError,
    ) as exc:
        writer.close()
        raise unavailable(f"Docker did not start the exec: {exc!r}") from exc
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    if status in (101, 200):
        return ExecStream(reader, writer)
    detail = await _error_body(reader, head)
    writer.close()
    raise unavailable(f"Docker refused to start the exec ({status}): {detail}")


async def _error_body(reader: asyncio.StreamReader, head: bytes) -> str:
    """The ``message`` of an error response (best effort, bounded)."""
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            length = min(int(value.strip()), _MAX_HEAD)
    raw = b""
    with suppress(Exception):
        raw = await asyncio.wait_for(reader.readexactly(length), 2.0) if length else b""
    try:
        return str(json.loads(raw).get("message", raw.decode("utf-8", "replace")))
    except (ValueError, AttributeError):
        return raw.decode("utf-8", "replace")[:500]
