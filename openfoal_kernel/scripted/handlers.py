"""Tornado handlers of the scripted model server: the two model endpoints and the control API."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from pydantic import TypeAdapter, ValidationError
from tornado.iostream import StreamClosedError
from tornado.web import Application, RequestHandler

from . import anthropic_wire, openai_wire
from .anthropic_wire import AnthropicEncoder
from .openai_wire import OpenAIEncoder
from .player import ReplyPlayer
from .script import Api, Reply, ScriptedRequest
from .state import ServerState
from .validate import check_anthropic, check_openai
from .wire import WireEncoder, dumps, estimate_tokens, input_chars, random_id

_REPLIES = TypeAdapter(list[Reply])


class _JsonHandler(RequestHandler):
    """Base: JSON errors in the OpenAI shape for anything the routes do not handle."""

    def initialize(self, state: ServerState) -> None:
        """Keep the server's shared state."""
        self.state = state

    def write_json(self, status: int, body: dict[str, Any] | str) -> None:
        """Finish with a JSON body (a string is sent as it is)."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(body if isinstance(body, str) else dumps(body))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors tornado raises itself (404, 405) in the chat-completions error shape."""
        message = f"Invalid URL ({self.request.method} {self.request.path})"
        if status_code != 404:
            message = self._reason
        error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
        self.set_header("Content-Type", "application/json")
        self.finish(dumps({"error": error}))

    def authorized(self) -> bool:
        """Whether the request carries the server's key (always true without one)."""
        key = self.state.api_key
        if key is None:
            return True
        headers = self.request.headers
        return headers.get("Authorization") == f"Bearer {key}" or headers.get("x-api-key") == key


class NotFoundHandler(_JsonHandler):
    """Every unknown path: the API's 404 body."""

    def prepare(self) -> None:
        """Answer 404 whatever the method."""
        self.send_error(404)


class ModelHandler(_JsonHandler):
    """``POST /v1/chat/completions`` or ``POST /v1/messages``: plays the next reply."""

    def initialize(self, state: ServerState, api: Api) -> None:  # type: ignore[override]
        """Keep the state and which API this endpoint speaks."""
        super().initialize(state)
        self.api = api
        self._started = False
        self._closed = asyncio.Event()

    # -- Sink -------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """Whether the event stream has begun."""
        return self._started

    async def send(self, data: str) -> None:
        """Write frames and flush; the first call commits the 200 event-stream headers."""
        if not self._started:
            self._started = True
            self.set_status(200)
            self.set_header("Content-Type", "text/event-stream; charset=utf-8")
            self.set_header("Cache-Control", "no-cache")
        self.write(data)
        await self.flush()

    def respond(self, status: int, body: dict[str, Any] | str, headers: dict[str, str]) -> None:
        """A whole JSON response."""
        for name, value in headers.items():
            self.set_header(name, value)
        self.write_json(status, body)

    def abort(self) -> None:
        """Close the socket under the response; nothing more is written."""
        assert self.request.connection is not None
        self.request.connection.close()  # type: ignore[attr-defined]

    async def wait_closed(self, timeout: float | None) -> bool:
        """Wait for the client to leave, or ``timeout``."""
        try:
            await asyncio.wait_for(self._closed.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def on_connection_close(self) -> None:
        """The client went away: wake a hanging reply."""
        self._closed.set()

    # -- the endpoint -----------------------------------------------------------------------

    def _error(self, status: int, message: str | None) -> None:
        wire = openai_wire if self.api == "openai" else anthropic_wire
        self.write_json(status, wire.error_body(status, message))

    def _encoder(self, reply: Reply, body: dict[str, Any]) -> WireEncoder:
        model = reply.model or str(body.get("model"))
        tokens = reply.usage.input_tokens if reply.usage else estimate_tokens(input_chars(body))
        if self.api == "openai":
            options = body.get("stream_options") or {}
            include = bool(isinstance(options, dict) and options.get("include_usage"))
            return OpenAIEncoder(model=model, input_tokens=tokens, include_usage=include)
        return AnthropicEncoder(model=model, input_tokens=tokens, include_usage=True)

    async def post(self) -> None:
        """Record the request, check it as the real API would, then play the reply."""
        request_id = random_id("req_")
        self.set_header("x-request-id" if self.api == "openai" else "request-id", request_id)
        headers = {name.lower(): value for name, value in self.request.headers.get_all()}
        try:
            body = json.loads(self.request.body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        request = ScriptedRequest(
            api=self.api,
            path=self.request.path,
            headers=headers,
            body=body if isinstance(body, dict) else {},
        )
        self.state.record(request)
        if not self.authorized():
            self._error(401, None)
            return
        if not isinstance(body, dict):
            self._error(400, "We could not parse the JSON body of your request.")
            return
        problem = check_openai(body) if self.api == "openai" else check_anthropic(body, headers)
        if problem:
            self._error(400, problem)
            return
        try:
            reply = self.state.next_reply(request)
        except Exception as exc:  # a broken responder must show up in the test that uses it
            self._error(500, f"scripted responder failed: {exc!r}")
            return
        player = ReplyPlayer(
            reply, self._encoder(reply, body), self, stream=body.get("stream") is True
        )
        with contextlib.suppress(StreamClosedError):
            await player.play()


class EnqueueHandler(_JsonHandler):
    """``POST /_scripted/enqueue`` ``{"replies": [...]}``."""

    def post(self) -> None:
        """Validate and queue the replies."""
        if not self.authorized():
            self.write_json(401, openai_wire.error_body(401, None))
            return
        try:
            payload = json.loads(self.request.body or b"null")
            raw = payload["replies"] if isinstance(payload, dict) else None
            replies = _REPLIES.validate_python(raw)
        except (json.JSONDecodeError, KeyError, ValidationError) as exc:
            details = exc.errors(include_url=False) if isinstance(exc, ValidationError) else []
            message = 'body must be {"replies": [Reply, ...]}: ' + str(exc).splitlines()[0]
            body = openai_wire.error_body(400, message)
            body["error"]["details"] = json.loads(json.dumps(details, default=str))
            self.write_json(400, body)
            return
        pending = self.state.enqueue(replies)
        self.write_json(200, {"queued": len(replies), "pending": pending})


class RequestsHandler(_JsonHandler):
    """``GET /_scripted/requests``: every request received so far."""

    def get(self) -> None:
        """List the recorded requests."""
        if not self.authorized():
            self.write_json(401, openai_wire.error_body(401, None))
            return
        requests = [r.model_dump(mode="json") for r in self.state.requests()]
        self.write_json(200, {"requests": requests})


class ResetHandler(_JsonHandler):
    """``POST /_scripted/reset``: forget queued replies and recorded requests."""

    def post(self) -> None:
        """Clear the state."""
        if not self.authorized():
            self.write_json(401, openai_wire.error_body(401, None))
            return
        self.state.reset()
        self.write_json(200, {"reset": True})


def make_app(state: ServerState) -> Application:
    """The tornado application of one server."""
    return Application(
        [
            (r"/v1/chat/completions", ModelHandler, {"state": state, "api": "openai"}),
            (r"/v1/messages", ModelHandler, {"state": state, "api": "anthropic"}),
            (r"/_scripted/enqueue", EnqueueHandler, {"state": state}),
            (r"/_scripted/requests", RequestsHandler, {"state": state}),
            (r"/_scripted/reset", ResetHandler, {"state": state}),
        ],
        default_handler_class=NotFoundHandler,
        default_handler_args={"state": state},
        log_function=lambda handler: None,  # the access log would cost more than a burst reply
    )
