"""The egress proxy: the sandbox's only way out, open to the policy's allowlist and nothing else.

A sandbox has no network but loopback. When its session's policy opens hosts, a relay
(:mod:`..inside.relay`) in the sandbox's network namespace hands each connection to this
proxy, which runs in the server process and listens on one unix socket per sandbox. It speaks
HTTP proxy: ``CONNECT host:port`` (HTTPS and any TLS) and absolute-form ``GET http://...``
requests.

A request is allowed only when
1. its host matches ``policy.network.allow`` (same patterns as ``http.request``); a name that
   does not match is refused *before* any DNS lookup, so names cannot leak data out;
2. the proxy resolves the name itself, and every address it resolves to is public: private,
   loopback, link-local, carrier-grade NAT, unique-local, multicast and reserved addresses
   are refused (so an allowlisted name cannot be pointed at the inside), and the proxy then
   connects to the address it checked (no second lookup to rebind);
3. cloud metadata names and addresses are refused even when allowlisted.

An allowlisted IP literal (``10.0.0.5:8080``, ``127.0.0.1:9000``) is the one way to open a
private address: the operator named that address, and no lookup is involved.

Every attempt, allowed or refused, is reported to ``on_egress`` (the gateway's audit trail).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ...protocol.errors import OpenFoalError
from ...tools.netguard import (
    METADATA_HOSTS,
    IPAddress,
    Resolver,
    blocked_reason,
    canonical_host,
    host_allowed,
    system_resolver,
)

__all__ = ["Decision", "EgressCallback", "EgressProxy"]

log = logging.getLogger(__name__)

#: ``on_egress(record)``: sync or async; its failures are logged, never raised into a request.
EgressCallback = Callable[[dict[str, Any]], Awaitable[None] | None]

_MAX_HEAD = 64 * 1024
_HOP_HEADERS = {b"proxy-connection", b"proxy-authorization", b"connection", b"keep-alive"}


@dataclass(frozen=True)
class Decision:
    """The proxy's verdict on one destination."""

    allowed: bool
    host: str
    port: int
    reason: str | None = None
    address: IPAddress | None = None


@dataclass
class _Listener:
    server: asyncio.AbstractServer
    path: Path
    allow: list[str]
    session_id: str
    owner: str
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class EgressProxy:
    """One HTTP(S) proxy serving every sandbox of the server, one unix socket each."""

    def __init__(
        self,
        *,
        on_egress: EgressCallback | None = None,
        resolver: Resolver = system_resolver,
        connect_timeout_s: float = 10.0,
        header_timeout_s: float = 15.0,
    ) -> None:
        self.on_egress = on_egress
        self.resolver = resolver
        self.connect_timeout_s = connect_timeout_s
        self.header_timeout_s = header_timeout_s
        self._listeners: dict[str, _Listener] = {}

    # -- listeners -------------------------------------------------------------------------

    async def open(
        self, key: str, path: Path, *, allow: list[str], session_id: str, owner: str
    ) -> None:
        """Listen on the unix socket ``path`` for the sandbox ``key`` (idempotent)."""
        if key in self._listeners:
            self.set_allow(key, allow)
            return
        await asyncio.to_thread(_prepare_socket_dir, path)
        listener: _Listener | None = None

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            assert listener is not None
            task = asyncio.current_task()
            assert task is not None
            listener.tasks.add(task)
            try:
                await self._handle(listener, reader, writer)
            except Exception as exc:  # one bad connection never takes the proxy down
                log.debug("egress connection failed: %r", exc)
            finally:
                listener.tasks.discard(task)
                writer.close()

        server = await asyncio.start_unix_server(handle, path=str(path))
        os.chmod(path, 0o666)
        listener = _Listener(server, path, list(allow), session_id, owner)
        self._listeners[key] = listener

    def set_allow(self, key: str, allow: list[str]) -> None:
        """Replace the allowlist of the sandbox ``key`` (new connections see it)."""
        if key in self._listeners:
            self._listeners[key].allow = list(allow)

    def is_open(self, key: str) -> bool:
        """Whether the sandbox ``key`` has a listener."""
        return key in self._listeners

    async def close(self, key: str) -> None:
        """Stop listening for ``key`` and cut its open connections."""
        listener = self._listeners.pop(key, None)
        if listener is None:
            return
        listener.server.close()
        for task in list(listener.tasks):
            task.cancel()
        with suppress(Exception):
            await asyncio.wait_for(listener.server.wait_closed(), 2.0)
        listener.path.unlink(missing_ok=True)

    async def aclose(self) -> None:
        """Close every listener."""
        for key in list(self._listeners):
            await self.close(key)

    # -- decisions -------------------------------------------------------------------------

    async def decide(self, raw_host: str, port: int, allow: list[str]) -> Decision:
        """Whether ``raw_host:port`` may be reached under ``allow``, and at which address."""
        try:
            host = canonical_host(raw_host)
        except OpenFoalError:
            return Decision(False, raw_host[:255], port, "invalid host name")
        if not 0 < port < 65536:
            return Decision(False, host, port, "invalid port")
        if host in METADATA_HOSTS or host.endswith(".metadata.google.internal"):
            return Decision(False, host, port, "cloud metadata host")
        if not host_allowed(host, port, allow):
            return Decision(False, host, port, "not on the policy's network allowlist")
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            reason = blocked_reason(literal)
            if reason is not None and reason.startswith("cloud metadata"):
                return Decision(False, host, port, reason, literal)
            return Decision(True, host, port, None, literal)
        try:
            addresses = await asyncio.wait_for(self.resolver(host, port), self.connect_timeout_s)
        except (OpenFoalError, OSError, asyncio.TimeoutError) as exc:
            return Decision(False, host, port, f"cannot resolve: {exc}")
        if not addresses:
            return Decision(False, host, port, "resolves to no address")
        for address in addresses:
            reason = blocked_reason(address)
            if reason is not None:
                return Decision(False, host, port, f"resolves to {address}, {reason}", address)
        return Decision(True, host, port, None, addresses[0])

    async def _report(self, listener: _Listener, method: str, decision: Decision) -> None:
        record = {
            "event": "sandbox.egress",
            "sessionId": listener.session_id,
            "owner": listener.owner,
            "method": method,
            "host": decision.host,
            "port": decision.port,
            "allowed": decision.allowed,
            "reason": decision.reason,
            "address": str(decision.address) if decision.address is not None else None,
            "at": time.time(),
        }
        if decision.allowed:
            log.info("egress allowed: %s %s:%s", method, decision.host, decision.port)
        else:
            log.info(
                "egress refused: %s %s:%s (%s)",
                method,
                decision.host,
                decision.port,
                decision.reason,
            )
        if self.on_egress is None:
            return
        try:
            result = self.on_egress(record)
            if asyncio.iscoroutine(result):
                await result
        except Exception:
            log.exception("the on_egress callback failed")

    # -- one connection --------------------------------------------------------------------

    async def _handle(
        self, listener: _Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.header_timeout_s)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError):
            return
        if len(head) > _MAX_HEAD:
            await _answer(writer, 431, "request head too large")
            return
        lines = head.split(b"\r\n")
        parts = lines[0].decode("latin-1").split(" ")
        if len(parts) != 3:
            await _answer(writer, 400, "malformed request line")
            return
        method, target, version = parts
        if method.upper() == "CONNECT":
            host, port = _split_authority(target, 443)
            decision = await self.decide(host, port, listener.allow)
            await self._report(listener, "CONNECT", decision)
            if not decision.allowed:
                await _answer(writer, 403, f"egress to {target} refused: {decision.reason}")
                return
            upstream = await self._connect(decision, writer)
            if upstream is None:
                return
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            await writer.drain()
            await _splice(reader, writer, *upstream)
            return
        url = urlsplit(target)
        if url.scheme != "http" or not url.hostname:
            await _answer(writer, 400, "use an absolute http:// URL, or CONNECT for https")
            return
        try:
            port = url.port or 80
        except ValueError:
            await _answer(writer, 400, "invalid port")
            return
        decision = await self.decide(url.hostname, port, listener.allow)
        await self._report(listener, method.upper(), decision)
        if not decision.allowed:
            where = f"{url.hostname}:{port}"
            await _answer(writer, 403, f"egress to {where} refused: {decision.reason}")
            return
        upstream = await self._connect(decision, writer)
        if upstream is None:
            return
        path = url.path or "/"
        if url.query:
            path += "?" + url.query
        out = [f"{method} {path} {version}".encode("latin-1")]
        has_host = False
        for line in lines[1:]:
            if not line:
                continue
            name = line.split(b":", 1)[0].strip().lower()
            if name in _HOP_HEADERS:
                continue
            has_host = has_host or name == b"host"
            out.append(line)
        if not has_host:
            out.append(b"Host: " + (url.netloc.encode("idna")))
        out.append(b"Connection: close")  # one request per connection: each one is checked
        upstream[1].write(b"\r\n".join(out) + b"\r\n\r\n")
        await _splice(reader, writer, *upstream)

    async def _connect(
        self, decision: Decision, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        assert decision.address is not None
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(str(decision.address), decision.port),
                self.connect_timeout_s,
            )
        except (OSError, asyncio.TimeoutError) as exc:
            await _answer(writer, 502, f"cannot connect to {decision.host}:{decision.port}: {exc}")
            return None


def _prepare_socket_dir(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o755)  # the relay runs as an unprivileged uid
    path.unlink(missing_ok=True)


def _split_authority(target: str, default_port: int) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``) into its parts; a bad port becomes 0 (refused)."""
    host, port = target, default_port
    if target.startswith("["):
        end = target.find("]")
        host = target[1:end] if end > 0 else target
        rest = target[end + 1 :] if end > 0 else ""
        if rest.startswith(":"):
            port = int(rest[1:]) if rest[1:].isdigit() else 0
    elif ":" in target:
        host, _, p = target.rpartition(":")
        port = int(p) if p.isdigit() else 0
    return host, port


async def _answer(writer: asyncio.StreamWriter, status: int, message: str) -> None:
    reasons = {
        400: "Bad Request",
        403: "Forbidden",
        431: "Request Header Fields Too Large",
        502: "Bad Gateway",
    }
    body = (message + "\n").encode("utf-8", "replace")
    head = (
        f"HTTP/1.1 {status} {reasons.get(status, 'Error')}\r\nContent-Type: text/plain\r\n"
        f"X-OpenFoal-Egress: refused\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + body)
    with suppress(OSError):
        await writer.drain()


async def _splice(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    """Copy both ways until both sides are done."""

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
            if dst.can_write_eof():
                dst.write_eof()
        except (OSError, RuntimeError):
            dst.close()

    try:
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
    finally:
        up_writer.close()
