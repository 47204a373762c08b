"""Tornado handlers: thin. They authenticate, authorise, and pass to the gateway logic."""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from openfoal_kernel.protocol import ErrorCode, OpenFoalError

from ..services.container import Services
from ..services.context import RequestContext
from .connection import GatewayConnection
from .identity import principal
from .methods import Gateway
from .openapi import openapi_document
from .tracing import trace_id_from
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


class GatewayAPIHandler(_OpenFoalMixin, APIHandler):
    """``POST {base_url}openfoal/api/<method>``: the same operations, request/response."""

    @web.authenticated
    @authorized
    async def post(self, method: str) -> None:
        """Run one method with the JSON body as params."""
        trace_id = trace_id_from(self.request.headers.get("traceparent"))
        self.set_header("X-OpenFoal-Trace-Id", trace_id)
        try:
            body = self.request.body.decode() or "{}"
            try:
                params = json.loads(body)
            except json.JSONDecodeError as exc:
                raise OpenFoalError(ErrorCode.INVALID_REQUEST, f"body is not JSON: {exc}") from exc
            if isinstance(params, dict) and "idempotencyKey" not in params:
                key = self.request.headers.get("Idempotency-Key")
                if key:
                    params["idempotencyKey"] = key
            ctx = RequestContext(
                user=self.principal(),
                trace_id=trace_id,
                workspace_id=self.services.config.workspace_id,
            )
            payload = await self.gateway.call(ctx, method, params)
        except OpenFoalError as exc:
            self.set_status(HTTP_STATUS.get(exc.code, 500))
            self.finish({"ok": False, "error": exc.to_body(trace_id)})
            return
        self.finish({"ok": True, "payload": payload.wire()})


class OpenAPIHandler(_OpenFoalMixin, APIHandler):
    """``GET {base_url}openfoal/api/openapi.json``."""

    @web.authenticated
    @authorized
    def get(self) -> None:
        """Serve the OpenAPI document of the REST surface."""
        self.finish(openapi_document(self.base_url, cloud=self.services.config.role == "cloud"))


async def _maybe_await(value: Any) -> Any:
    if hasattr(value, "__await__"):
        return await value
    return value
