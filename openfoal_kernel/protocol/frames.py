"""Frames of the gateway protocol: ``req``, ``res`` and ``event``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    """The error object of a failed ``res`` or an ``agent.failed`` event."""

    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    retryable: bool = False
    traceId: str = ""


class ReqFrame(BaseModel):
    """A client request."""

    model_config = ConfigDict(extra="allow")

    type: Literal["req"]
    id: str = Field(min_length=1, max_length=256)
    method: str = Field(min_length=1, max_length=128)
    params: dict[str, Any] = Field(default_factory=dict)


class ResFrame(BaseModel):
    """The server's answer to one ``req``."""

    type: Literal["res"] = "res"
    id: str
    ok: bool
    payload: dict[str, Any] | None = None
    error: ErrorBody | None = None


class EventFrame(BaseModel):
    """A server-pushed event; ``seq`` numbers the events of one session."""

    type: Literal["event"] = "event"
    event: str
    payload: dict[str, Any]
    seq: int | None = None
    stateVersion: int | None = None


def res_ok(req_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Build a successful ``res`` frame as a plain dict."""
    return {"type": "res", "id": req_id, "ok": True, "payload": payload}


def res_error(req_id: str, error: dict[str, Any]) -> dict[str, Any]:
    """Build a failed ``res`` frame as a plain dict."""
    return {"type": "res", "id": req_id, "ok": False, "error": error}
