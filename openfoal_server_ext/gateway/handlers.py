"""Tornado handlers: thin. They authenticate, authorise, and pass to the gateway logic."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import httputil, web
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from openfoal_kernel.protocol import ErrorCode, OpenFoalError

from ..services import otel
from ..services.container import Services
from ..services.context import RequestContext
from .connection import GatewayConnection
from .identity import hub_groups, principal
from .methods import Gateway
from .openapi import openapi_document
from .tracing import check_traceparent, trace_id_from
from .wsframes import text_frames

AUTH_RESOURCE = "openfoal"

HTTP_STATUS = {
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.METHOD_NOT_FOUND: 404,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.IDEMPOTENCY_CONFLICT: 409,
    ErrorCode.SESSION_BUSY: 409,
    ErrorCode.VERSION_CONFLICT: 409,
    ErrorCode.SYNC_CONFLICT: 409,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.MODEL_UNAVAILABLE: 503,
    ErrorCode.SANDBOX_UNAVAILABLE: 503,
}


#: The error code of an HTTP status tornado or Jupyter raise before a handler runs.
STATUS_CODES = {
    400: ErrorCode.INVALID_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_FOUND,
    413: ErrorCode.INVALID_REQUEST,
    429: ErrorCode.RATE_LIMITED,
}

_H = TypeVar("_H", bound=Callable[..., Awaitable[None] | None])


def authenticated_401(method: _H) -> _H:
    """Like ``web.authenticated``, but a missing login is a structured, audited 401."""

    @functools.wraps(method)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        if not self.current_user:
            self.refuse_unauthenticated()
            return
        result = method(self, *args, **kwargs)
        if result is not None:
            await result

    return wrapper  # type: ignore[return-value]


class _OpenFoalMixin:
    """Access to the services and the caller's principal."""

    auth_resource = AUTH_RESOURCE

    @property
    def services(self) -> Services:
        return self.settings["openfoal_services"]  # type: ignore[attr-defined,no-any-return]

    @property
    def gateway(self) -> Gateway:
        return self.settings["openfoal_gateway"]  # type: ignore[attr-defined,no-any-return]

    def principal(self) -> str:
        return principal(
            self.current_user,  # type: ignore[attr-defined]
            self.identity_provider,  # type: ignore[attr-defined]
            self.services.config.server_owner,
        )

    def roles(self) -> frozenset[str]:
        """The caller's team roles, from their Hub groups."""
        return self.services.config.team.roles_of(hub_groups(self.current_user))  # type: ignore[attr-defined]


class _RestMixin(_OpenFoalMixin):
    """REST routes: errors raised before a handler runs are structured too."""

    #: The HTTP methods a route answers (the ``Allow`` header of its 405).
    allowed_methods = "POST"

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Every HTTP error is a structured protocol error (405s name what is allowed)."""
        handler: Any = self
        if status_code in (401, 403) and not getattr(handler, "_jupyter_current_user", None):
            self.refuse_unauthenticated()  # no login (Jupyter's XSRF check says 403 for it)
            return
        code = STATUS_CODES.get(status_code, ErrorCode.INTERNAL_ERROR)
        if status_code == 405:
            handler.set_header("Allow", self.allowed_methods)
        message = f"{status_code} {httputil.responses.get(status_code, '')}".strip()
        exc = kwargs.get("exc_info", (None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message and status_code < 500:
            message += f": {exc.log_message % exc.args if exc.args else exc.log_message}"
        if code is ErrorCode.INTERNAL_ERROR:
            message = "internal error; see the server log"
        trace_id = trace_id_from(handler.request.headers.get("traceparent"))
        handler.set_header("Content-Type", "application/json")
        handler.finish({"ok": False, "error": OpenFoalError(code, message).to_body(trace_id)})

    def refuse_unauthenticated(self) -> None:
        """Answer 401 ``UNAUTHORIZED`` with ``WWW-Authenticate``, and audit the attempt."""
        handler: Any = self
        trace_id = trace_id_from(handler.request.headers.get("traceparent"))
        ip = handler.request.remote_ip
        try:  # a flood of refused requests is answered, but audited at the read rate only
            self.services.rate_limiter.check(f"anonymous@{ip}", "auth")
        except OpenFoalError:
            pass
        else:
            self.services.audit.record(
                actor="anonymous",
                action="access.unauthenticated",
                resource=f"rest:{handler.request.path}",
                trace_id=trace_id,
                owner=self.services.config.server_owner,
                detail={"method": handler.request.method, "remoteIp": ip},
            )
        handler.clear()
        handler.set_status(401)
        handler.set_header("WWW-Authenticate", 'token realm="openfoal"')
        handler.set_header("Content-Type", "application/json")
        err = OpenFoalError(
            ErrorCode.UNAUTHORIZED,
            "not authenticated: the token or session is missing, invalid or expired; send "
            "'Authorization: token <token>' or log in again (on JupyterHub: through the Hub)",
        )
        handler.finish({"ok": False, "error": err.to_body(trace_id)})


class GatewayWebSocketHandler(_OpenFoalMixin, WebSocketMixin, WebSocketHandler, JupyterHandler):
    """``{base_url}openfoal/ws``: the streaming protocol."""

    connection: GatewayConnection | None = None

    def set_default_headers(self) -> None:
        """WebSockets take no default headers."""

    @property
    def max_message_size(self) -> int:  # type: ignore[override]
        return self.services.config.max_frame_bytes + 1024

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        """Authenticate and authorise the upgrade, then accept it."""
        user = self.current_user
        if not await _maybe_await(
            self.authorizer.is_authorized(self, user, "execute", AUTH_RESOURCE)
        ):
            raise web.HTTPError(403)
        await super().get(*args, **kwargs)

    def open(self, *args: Any, **kwargs: Any) -> None:
        """Start the connection's protocol state."""
        super().open(*args, **kwargs)
        # events are small frames that must leave at once: without this, tornado keeps
        # Nagle's algorithm on and a delta waits for the client's delayed ACK (tens of ms)
        self.set_nodelay(True)
        self.connection = GatewayConnection(
            services=self.services,
            gateway=self.gateway,
            user=self.principal(),
            roles=self.roles(),
            send=self._write,
            close=lambda code, reason: self.close(code, reason),
            send_many=self._write_many,
        )

    def _write(self, text: str) -> Any:
        try:
            return self.write_message(text)
        except WebSocketClosedError:
            return None

    def _write_many(self, texts: list[str]) -> Any:
        """Write a backlog of text frames with one stream write (see wsframes)."""
        conn = self.ws_connection
        if conn is None or conn.is_closing() or conn.stream is None:
            return None
        if self.get_compression_options() is not None:  # deflated frames: tornado's own path
            result = None
            for text in texts:
                result = self._write(text)
            return result
        try:
            return conn.stream.write(text_frames(texts))
        except StreamClosedError:
            return None

    def on_message(self, message: str | bytes) -> None:
        """Pass a frame to the connection."""
        if self.connection is not None:
            self.connection.on_message(message)

    def on_close(self) -> None:
        """Release the connection."""
        if self.connection is not None:
            self.connection.on_closed()


class GatewayAPIHandler(_RestMixin, APIHandler):
    """``POST {base_url}openfoal/api/<method>``: the same operations, request/response."""

    @authenticated_401
    @authorized
    async def post(self, method: str) -> None:
        """Run one method with the JSON body as params."""
        trace_id = trace_id_from(self.request.headers.get("traceparent"))
        self.set_header("X-OpenFoal-Trace-Id", trace_id)
        try:
            try:
                body = self.request.body.decode() or "{}"
            except UnicodeDecodeError as exc:
                raise OpenFoalError(
                    ErrorCode.INVALID_REQUEST,
                    f"body is not UTF-8 (byte {exc.start}): send JSON in UTF-8",
                ) from exc
            try:
                params = json.loads(body)
            except json.JSONDecodeError as exc:
                raise OpenFoalError(ErrorCode.INVALID_REQUEST, f"body is not JSON: {exc}") from exc
            except RecursionError as exc:
                raise OpenFoalError(
                    ErrorCode.INVALID_REQUEST, "body nested deeper than the parser allows"
                ) from exc
            check_traceparent(params.get("traceparent") if isinstance(params, dict) else None)
            if isinstance(params, dict) and "idempotencyKey" not in params:
                key = self.request.headers.get("Idempotency-Key")
                if key:
                    params["idempotencyKey"] = key
            ctx = RequestContext(
                user=self.principal(),
                trace_id=trace_id,
                workspace_id=self.services.config.workspace_id,
                roles=self.roles(),
                team=self.services.config.team.enabled,
            )
            with otel.request_span(
                method,
                user=ctx.user,
                request_id=self.request.headers.get("Idempotency-Key") or "",
                trace_id=trace_id,
                traceparent=self.request.headers.get("traceparent"),
            ):
                try:
                    payload = await self.gateway.call(ctx, method, params)
                except OpenFoalError as exc:
                    otel.request_failed(exc.code.value)
                    raise
        except OpenFoalError as exc:
            self.set_status(HTTP_STATUS.get(exc.code, 500))
            retry_ms = exc.details.get("retryAfterMs")
            if exc.code is ErrorCode.RATE_LIMITED and isinstance(retry_ms, int):
                self.set_header("Retry-After", str(max(1, math.ceil(retry_ms / 1000))))
            self.finish({"ok": False, "error": exc.to_body(trace_id)})
            return
        self.finish({"ok": True, "payload": payload.wire()})


class OpenAPIHandler(_RestMixin, APIHandler):
    """``GET {base_url}openfoal/api/openapi.json``."""

    allowed_methods = "GET"

    @authenticated_401
    @authorized
    def get(self) -> None:
        """Serve the OpenAPI document of the REST surface."""
        self.finish(
            openapi_document(
                self.base_url,
                frozenset(self.gateway.handlers),
                cloud=self.services.config.role == "cloud",
            )
        )


async def _maybe_await(value: Any) -> Any:
    if hasattr(value, "__await__"):
        return await value
    return value
