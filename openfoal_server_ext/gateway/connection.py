"""One client connection's protocol logic, independent of tornado (tested without sockets).

Frame rules of PROTOCOL.md: the first frame must be ``connect`` (anything else: an error,
then close); frames before it are capped at 64 KiB, later ones at the configured maximum;
every request gets exactly one ``res``; outgoing frames go through a bounded queue and a
consumer that falls too far behind is disconnected rather than buffered without limit.

Ordering: the ``res`` of ``agent.run`` precedes every event of its run. A run starts
streaming while its request is still finishing (the idempotency record, the commit of
``agent.accepted``), so while an ``agent.run`` is in flight the events of the session it
subscribed to are held on this connection and released right after its ``res``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from openfoal_kernel.protocol import ErrorCode, OpenFoalError, res_error, res_ok
from openfoal_kernel.protocol.frames import ReqFrame
from openfoal_kernel.protocol.methods import ConnectParams
from openfoal_kernel.protocol.versions import PROTOCOL_VERSION, negotiate

from ..services import otel
from ..services.container import Services
from ..services.context import RequestContext
from ..services.roles import NO_TEAM_ROLES
from .methods import Gateway, parse_params
from .tracing import check_traceparent, trace_id_from

log = logging.getLogger(__name__)

SendFn = Callable[[str], Awaitable[None] | None]
SendManyFn = Callable[[list[str]], Awaitable[None] | None]
CloseFn = Callable[[int, str], None]

#: WebSocket close codes used by the gateway.
CLOSE_POLICY = 1008  # protocol violation (no connect first)
CLOSE_TOO_BIG = 1009
CLOSE_SLOW = 1013  # try again later: the client did not keep up

#: Deepest nesting of ``params`` a request may have (deeper: INVALID_REQUEST, socket kept).
MAX_PARAMS_DEPTH = 64
_ID_RE = re.compile(r'"id"\s*:\s*"([^"\\]{1,256})"')

_CLOSE = "\x00close"  # queue sentinel: close once everything before it is sent
#: Most frames handed to the socket in one write when a backlog is flushed.
SEND_BATCH = 1024
#: One encoder for every frame (``json.dumps`` with options builds a new one per call).
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


class GatewayConnection:
    """Protocol state of one client (one WebSocket)."""

    def __init__(
        self,
        *,
        services: Services,
        gateway: Gateway,
        user: str,
        send: SendFn,
        roles: frozenset[str] = NO_TEAM_ROLES,
        close: CloseFn,
        send_many: SendManyFn | None = None,
    ) -> None:
        self.s = services
        self.gateway = gateway
        self.user = user
        self.roles = roles
        self._send = send
        self._send_many = send_many
        self._close = close
        self.connected = False
        self.closed = False
        self.workspace_id = services.config.workspace_id
        #: The protocol version negotiated in ``connect``.
        self.protocol_version = PROTOCOL_VERSION
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=services.config.send_queue_frames)
        self._closing: tuple[int, str] | None = None
        #: Bytes queued, held or handed to the socket and not yet flushed (bounded).
        self._buffered = 0
        self._sender = asyncio.ensure_future(self._send_loop())
        self._tasks: set[asyncio.Task[None]] = set()
        self._sessions: set[str] = set()
        # session id -> agent.run requests in flight for it; their events wait in _held
        self._holds: dict[str, int] = {}
        self._held: dict[str, list[str]] = {}

    # -- outgoing -------------------------------------------------------------------------

    def push(self, frame: dict[str, Any]) -> None:
        """Queue a frame; a full buffer means a slow consumer, who is disconnected."""
        if self.closed or self._closing is not None:
            return
        if self._holds and frame.get("type") == "event":
            held = self._held.get(frame["payload"].get("sessionId", ""))
            if held is not None:
                text = _ENCODER.encode(frame)
                if len(held) + self._queue.qsize() >= self.s.config.send_queue_frames:
                    self._too_slow("held events")
                elif self._account(len(text)):
                    held.append(text)
                return
        self._enqueue(_ENCODER.encode(frame))

    def _account(self, size: int) -> bool:
        """Count ``size`` bytes into the send buffer; past its bound, close the connection.

        A frame is always let into an empty buffer (a reply larger than the bound still goes
        out to a client that keeps up). Frames are ASCII (``ensure_ascii``): characters are bytes.
        """
        if self._buffered and self._buffered + size > self.s.config.send_buffer_bytes:
            self._too_slow(f"send buffer over {self.s.config.send_buffer_bytes} bytes")
            return False
        self._buffered += size
        return True

    def _too_slow(self, why: str) -> None:
        log.warning("closing slow OpenFoal client of %s: %s", self.user, why)
        self.close(CLOSE_SLOW, "send buffer full: client too slow", drain=False)

    def _enqueue(self, text: str, *, counted: bool = False) -> None:
        if not counted and not self._account(len(text)):
            return
        try:
            self._queue.put_nowait(text)
        except asyncio.QueueFull:
            self._too_slow("send queue full")

    async def _send_loop(self) -> None:
        while True:
            texts = [await self._queue.get()]
            try:
                result = None
                written = 0  # bytes handed to the socket and not known to be flushed
                # write the backlog in batches without waiting, then wait for the flush
                while True:
                    while (
                        texts[-1] is not _CLOSE
                        and len(texts) < SEND_BATCH
                        and not self._queue.empty()
                    ):
                        texts.append(self._queue.get_nowait())
                    closing = texts[-1] is _CLOSE
                    if closing:
                        texts.pop()
                    if texts:
                        result = self._write(texts)
                        written += sum(map(len, texts))
                    if closing:
                        if result is not None:
                            await result
                        self._do_close()
                        return
                    if self._queue.empty():
                        break
                    texts = [self._queue.get_nowait()]
                if result is not None:
                    await result
                self._buffered -= written
            except asyncio.CancelledError:
                raise
            except Exception:
                self._closing = (1011, "send failed")
                self._do_close()
                return

    def _write(self, texts: list[str]) -> Awaitable[None] | None:
        """Hand frames to the socket: all at once when it can, else one by one."""
        if self._send_many is not None:
            return self._send_many(texts)
        result = None
        for text in texts:
            result = self._send(text)
        return result

    def close(self, code: int, reason: str, *, drain: bool = True) -> None:
        """Close the connection; by default after the frames already queued are sent."""
        if self.closed or self._closing is not None:
            return
        self._closing = (code, reason)
        if drain:
            self._queue._queue.append(_CLOSE)  # type: ignore[attr-defined] # past the size bound
            self._queue._wakeup_next(self._queue._getters)  # type: ignore[attr-defined]
        else:
            self._do_close()

    def _do_close(self) -> None:
        if self.closed:
            return
        code, reason = self._closing or (1000, "")
        with contextlib.suppress(Exception):
            self._close(code, reason)
        self.on_closed()

    def on_closed(self) -> None:
        """Release subscriptions and tasks when the socket is gone."""
        self.closed = True
        self.s.hub.unsubscribe(self.push)
        if self._sender is not asyncio.current_task():
            self._sender.cancel()
        for task in list(self._tasks):
            task.cancel()

    # -- incoming -------------------------------------------------------------------------

    def on_message(self, text: str | bytes) -> None:
        """Handle one incoming frame (requests run concurrently)."""
        limit = (
            self.s.config.max_frame_bytes if self.connected else self.s.config.pre_connect_max_bytes
        )
        if _byte_size(text, limit) > limit:
            self.push(
                res_error(
                    "", self._err(ErrorCode.INVALID_REQUEST, f"frame larger than {limit} bytes")
                )
            )
            self.close(CLOSE_TOO_BIG, "frame too large")
            return
        try:
            raw = json.loads(text)
            frame = ReqFrame.model_validate(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            self._reject(None, "frame is not valid JSON")
            return
        except RecursionError:
            self._reject(_sniff_id(text), "frame nested deeper than the parser allows")
            return
        except ValidationError as exc:
            req_id = (
                raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
            )
            where = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3]
            )
            self._reject(req_id, f"not a request frame ({where})")
            return
        if _too_deep(frame.params, MAX_PARAMS_DEPTH):
            self._reject(frame.id, f"params nested deeper than {MAX_PARAMS_DEPTH} levels")
            return
        if not self.connected:
            self._connect(frame, raw)
            return
        task = asyncio.ensure_future(self._handle(frame, raw))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _err(self, code: ErrorCode, message: str, trace_id: str = "") -> dict[str, Any]:
        return OpenFoalError(code, message).to_body(trace_id or trace_id_from(None))

    def _reject(self, req_id: str | None, message: str) -> None:
        self.push(res_error(req_id or "", self._err(ErrorCode.INVALID_REQUEST, message)))
        if not self.connected:
            self.close(CLOSE_POLICY, "the first frame must be connect")

    def _connect(self, frame: ReqFrame, raw: dict[str, Any]) -> None:
        trace_id = trace_id_from(raw.get("traceparent"))
        if frame.method != "connect":
            self.push(
                res_error(
                    frame.id,
                    self._err(
                        ErrorCode.INVALID_REQUEST, "the first frame must be connect", trace_id
                    ),
                )
            )
            self.close(CLOSE_POLICY, "the first frame must be connect")
            return
        try:
            params = parse_params("connect", frame.params)
            assert isinstance(params, ConnectParams)
            version = _check_protocol(params)
        except OpenFoalError as exc:
            self.push(res_error(frame.id, exc.to_body(trace_id)))
            self.close(CLOSE_POLICY, "connect refused")
            return
        self.connected = True
        self.workspace_id = params.workspaceId or self.workspace_id
        self.s.hub.subscribe_owner(self.user, self.push)
        self.protocol_version = version
        hello = self.gateway.connect_payload(self.user, self.workspace_id, version)
        self.push(res_ok(frame.id, hello.wire()))

    def subscribe(self, session_id: str) -> None:
        """Deliver this session's events to the client."""
        if session_id not in self._sessions:
            self._sessions.add(session_id)
            self.s.hub.subscribe_session(session_id, self.push)

    def _hold(self, session_id: str, held_here: set[str]) -> None:
        """Subscribe, and hold the session's events until the running request answers."""
        self.subscribe(session_id)
        if session_id not in held_here:
            held_here.add(session_id)
            self._holds[session_id] = self._holds.get(session_id, 0) + 1
            self._held.setdefault(session_id, [])

    def _release(self, held_here: set[str]) -> None:
        """Send what was held for these sessions, unless another request still holds them."""
        for session_id in held_here:
            left = self._holds[session_id] - 1
            if left:
                self._holds[session_id] = left
                continue
            del self._holds[session_id]
            for text in self._held.pop(session_id, []):
                if self.closed or self._closing is not None:
                    return
                self._enqueue(text, counted=True)

    async def _handle(self, frame: ReqFrame, raw: dict[str, Any]) -> None:
        trace_id = trace_id_from(raw.get("traceparent") or frame.params.get("traceparent"))
        try:
            check_traceparent(raw.get("traceparent"))
            check_traceparent(frame.params.get("traceparent"))
        except OpenFoalError as exc:
            self.push(res_error(frame.id, exc.to_body(trace_id)))
            return
        held_here: set[str] = set()
        on_subscribe = self.subscribe
        if frame.method == "agent.run":
            on_subscribe = functools.partial(self._hold, held_here=held_here)
        ctx = RequestContext(
            user=self.user,
            trace_id=trace_id,
            workspace_id=self.workspace_id,
            on_subscribe=on_subscribe,
            roles=self.roles,
            team=self.s.config.team.enabled,
        )
        try:
            with otel.request_span(
                frame.method,
                user=self.user,
                request_id=frame.id,
                trace_id=trace_id,
                traceparent=raw.get("traceparent") or frame.params.get("traceparent"),
            ):
                await self._answer(frame, ctx, trace_id)
        finally:
            self._release(held_here)

    async def _answer(self, frame: ReqFrame, ctx: RequestContext, trace_id: str) -> None:
        """Run the request and queue its ``res``."""
        try:
            payload = await self.gateway.call(ctx, frame.method, frame.params)
        except OpenFoalError as exc:
            otel.request_failed(exc.code.value)
            self.push(res_error(frame.id, exc.to_body(trace_id)))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("OpenFoal method %s failed", frame.method)
            otel.request_failed(ErrorCode.INTERNAL_ERROR.value)
            self.push(
                res_error(
                    frame.id,
                    self._err(
                        ErrorCode.INTERNAL_ERROR, "internal error; see the server log", trace_id
                    ),
                )
            )
        else:
            self.push(res_ok(frame.id, payload.wire()))


def _byte_size(text: str | bytes, limit: int) -> int:
    """The UTF-8 size of a frame (a string of at most limit/4 characters is under it)."""
    if isinstance(text, bytes) or len(text) * 4 <= limit:
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def _sniff_id(text: str | bytes) -> str | None:
    """The request id of a frame that does not parse, when one can be seen."""
    head = text[:4096] if isinstance(text, str) else text[:4096].decode("utf-8", "replace")
    found = _ID_RE.search(head)
    return found.group(1) if found else None


def _too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests containers more than ``limit`` levels (iterative)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, dict | list))
    return False


def _check_protocol(params: ConnectParams) -> str:
    """The protocol version this connection speaks (see :mod:`...protocol.versions`)."""
    if params.protocol is None:
        return PROTOCOL_VERSION
    return negotiate(params.protocol.min, params.protocol.max)
