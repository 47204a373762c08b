"""The egress relay; this file runs *inside* the relay container, with only the stdlib.

The relay container shares the sandbox's network namespace (which has nothing but
loopback) and sees one host folder: the one holding the session's egress proxy socket.
It listens on 127.0.0.1:PORT there, where the sandbox's HTTP_PROXY points, and copies each
connection to the proxy's unix socket, byte for byte. Every decision is the proxy's: the
relay has no address to reach but that socket, so it cannot open anything by itself.
Usage: ``python3 -c <this source> SOCKET PORT``.
"""

from __future__ import annotations

import asyncio
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, RuntimeError):
        writer.close()


async def _serve(path: str, port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(path)
        except OSError:
            writer.close()
            return
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print("relay ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], int(sys.argv[2])))
