"""Error codes of the gateway protocol and the exception that carries them."""

from __future__ import annotations

from enum import Enum
from typing import Any


class ErrorCode(str, Enum):
    """The fixed error codes of PROTOCOL.md."""

    UNAUTHORIZED = "UNAUTHORIZED"
    FORBIDDEN = "FORBIDDEN"
    INVALID_REQUEST = "INVALID_REQUEST"
    METHOD_NOT_FOUND = "METHOD_NOT_FOUND"
    NOT_FOUND = "NOT_FOUND"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    SESSION_BUSY = "SESSION_BUSY"
    VERSION_CONFLICT = "VERSION_CONFLICT"
    RATE_LIMITED = "RATE_LIMITED"
    POLICY_DENIED = "POLICY_DENIED"
    GATE_REJECTED = "GATE_REJECTED"
    GATE_EXPIRED = "GATE_EXPIRED"
    MODEL_UNAVAILABLE = "MODEL_UNAVAILABLE"
    BUDGET_EXCEEDED = "BUDGET_EXCEEDED"
    TOOL_EXEC_FAILED = "TOOL_EXEC_FAILED"
    TOOL_TIMEOUT = "TOOL_TIMEOUT"
    SANDBOX_UNAVAILABLE = "SANDBOX_UNAVAILABLE"
    RUNTIME_LOST = "RUNTIME_LOST"
    SYNC_CONFLICT = "SYNC_CONFLICT"
    INTERNAL_ERROR = "INTERNAL_ERROR"


#: Codes a client may retry as they are (the same request can succeed later).
RETRYABLE: frozenset[ErrorCode] = frozenset(
    {
        ErrorCode.SESSION_BUSY,
        ErrorCode.RATE_LIMITED,
        ErrorCode.MODEL_UNAVAILABLE,
        ErrorCode.SANDBOX_UNAVAILABLE,
        ErrorCode.RUNTIME_LOST,
        ErrorCode.INTERNAL_ERROR,
    }
)


class OpenFoalError(Exception):
    """An error with a protocol code; raised anywhere, turned into an error frame at the edge."""

    def __init__(
        self,
        code: ErrorCode | str,
        message: str,
        *,
        retryable: bool | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.retryable = self.code in RETRYABLE if retryable is None else retryable
        self.details = details or {}

    def to_body(self, trace_id: str) -> dict[str, Any]:
        """Return the wire form: ``{code, message, retryable, traceId}`` (+ ``details``)."""
        body: dict[str, Any] = {
            "code": self.code.value,
            "message": self.message,
            "retryable": self.retryable,
            "traceId": trace_id,
        }
        if self.details:
            body["details"] = self.details
        return body

    def __repr__(self) -> str:
        return f"OpenFoalError({self.code.value}, {self.message!r})"
