"""Helpers the tools share: output caps and turning exceptions into tool results."""

from __future__ import annotations

from ..protocol.errors import ErrorCode, OpenFoalError
from .base import ToolResult

#: Bound on the text one tool call hands to the model (markers aside).
MAX_OUTPUT_BYTES = 64 * 1024


def cap_text(text: str, max_bytes: int = MAX_OUTPUT_BYTES) -> tuple[str, bool]:
    """Cut ``text`` to at most ``max_bytes`` UTF-8 bytes; return it and whether it was cut."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return text, False
    return data[:max_bytes].decode("utf-8", "ignore"), True


def truncation_marker(limit: int, what: str = "output") -> str:
    """The line appended where output was cut."""
    return f"\n[{what} truncated at {limit} bytes]"


def decode(data: bytes) -> str:
    """Decode tool output as UTF-8, replacing what is not."""
    return data.decode("utf-8", "replace")


def looks_binary(data: bytes) -> bool:
    """A NUL byte in the first 8 KiB marks binary content."""
    return b"\x00" in data[:8192]


def from_error(exc: BaseException) -> ToolResult:
    """A failed (or denied) tool result for an exception raised while running a tool."""
    if isinstance(exc, OpenFoalError):
        denied = exc.code == ErrorCode.POLICY_DENIED
        return ToolResult(
            status="denied" if denied else "failed",
            output=f"{exc.code.value}: {exc.message}",
            error={"code": exc.code.value, "message": exc.message},
        )
    if isinstance(exc, OSError):
        msg = f"{type(exc).__name__}: {exc.strerror or exc}"
        return ToolResult.failed(ErrorCode.TOOL_EXEC_FAILED.value, msg)
    return ToolResult.failed(ErrorCode.TOOL_EXEC_FAILED.value, f"{type(exc).__name__}: {exc}")
