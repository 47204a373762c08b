"""Executors: where tool effects happen (the host, or the session's Docker sandbox).

Tools decide *what* to do and validate arguments; an executor decides *where* it runs. The
local executor and the Docker sandbox executor implement this one interface, so every tool
works in both runtime modes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True)
class CommandResult:
    """Outcome of a shell command; output is already capped."""

    exit_code: int
    stdout: str
    stderr: str
    truncated: bool = False
    timed_out: bool = False
    duration_ms: float = 0.0


@dataclass(frozen=True, kw_only=True)
class FileEntry:
    """One entry of a directory listing (path relative to the workspace)."""

    path: str
    kind: str  # "file" | "dir" | "symlink" | "other"
    size: int


@dataclass(frozen=True, kw_only=True)
class CodeResult:
    """Outcome of running Python in a code kernel."""

    status: str  # "ok" | "error" | "timeout"
    text: str  # text rendering for the model (stdout, results, tracebacks), capped
    displays: list[dict[str, Any]] = field(default_factory=list)  # mime bundles for clients
    error_name: str | None = None
    error_value: str | None = None


class Executor(ABC):
    """Runs tool effects for one session. Paths are relative to the workspace root."""

    mode: str  # "local" | "cloud"

    @abstractmethod
    async def run_command(
        self, command: str, *, timeout_s: float, max_output_bytes: int, cwd: str = "."
    ) -> CommandResult:
        """Run a shell command; abort (task cancellation) kills its whole process group."""

    @abstractmethod
    async def read_file(self, path: str, *, max_bytes: int) -> bytes:
        """Read a file inside the workspace (traversal refused)."""

    @abstractmethod
    async def write_file(self, path: str, data: bytes, *, append: bool = False) -> int:
        """Write a file inside the workspace; returns bytes written."""

    @abstractmethod
    async def list_dir(self, path: str, *, max_entries: int) -> list[FileEntry]:
        """List a directory inside the workspace."""

    @abstractmethod
    async def run_python(self, code: str, *, timeout_s: float, max_output_bytes: int) -> CodeResult:
        """Run Python in the session's code kernel (state persists across calls)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release processes and connections."""
