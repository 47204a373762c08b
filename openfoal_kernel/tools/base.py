"""The tool interface: validated arguments in, a bounded :class:`ToolResult` out."""

from __future__ import annotations

import copy
import functools
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from ..executors.base import Executor
from ..protocol.types import Policy, ToolStatus

ArgsT = TypeVar("ArgsT", bound=BaseModel)


@dataclass(kw_only=True)
class ToolContext:
    """What a tool may use for one call."""

    session_id: str
    run_id: str
    trace_id: str
    workspace: Path
    executor: Executor
    policy: Policy = field(default_factory=Policy)
    runtime_mode: str = "local"
    #: Where the memory tools read and write (the session owner's); None: the workspace.
    memory_root: Path | None = None


@dataclass(kw_only=True)
class ToolResult:
    """A tool's outcome: ``output`` is the bounded text the model and clients see."""

    status: ToolStatus
    output: str = ""
    error: dict[str, Any] | None = None  # {code, message} with a protocol error code
    displays: list[dict[str, Any]] = field(default_factory=list)  # rich mime bundles
    duration_ms: float = 0.0

    @classmethod
    def failed(cls, code: str, message: str, **kw: Any) -> ToolResult:
        """A failed result carrying a protocol error code."""
        return cls(status="failed", output=message, error={"code": code, "message": message}, **kw)


@functools.cache
def _json_schema(args: type[BaseModel]) -> dict[str, Any]:
    """An argument model's JSON Schema, generated once per process (it costs milliseconds)."""
    return args.model_json_schema()


class Tool(ABC, Generic[ArgsT]):
    """A tool the model can call. Subclasses set the class attributes and ``run``."""

    name: ClassVar[str]
    description: ClassVar[str]
    Args: type[ArgsT]

    def parameters(self) -> dict[str, Any]:
        """JSON Schema of the arguments, as offered to the model."""
        return copy.deepcopy(_json_schema(self.Args))

    def risk(self, args: ArgsT, ctx: ToolContext) -> str | None:
        """Why this call is high risk, or ``None`` when it is not."""
        return None

    @abstractmethod
    async def run(self, args: ArgsT, ctx: ToolContext) -> ToolResult:
        """Execute the call."""

    async def invoke(self, raw_args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        """Validate ``raw_args`` then run; bad arguments become a structured failure."""
        started = time.perf_counter()
        try:
            args = self.Args.model_validate(raw_args)
        except ValidationError as exc:
            msg = f"invalid arguments for {self.name}: {exc.errors(include_url=False)}"
            result = ToolResult.failed("INVALID_REQUEST", msg)
        else:
            result = await self.run(args, ctx)
        if not result.duration_ms:
            result.duration_ms = (time.perf_counter() - started) * 1000
        return result
