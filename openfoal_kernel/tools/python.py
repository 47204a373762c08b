"""``python.exec``: run Python in the session's code kernel (a plain ipykernel, never here)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..protocol.errors import ErrorCode
from ._common import MAX_OUTPUT_BYTES, from_error
from .base import Tool, ToolContext, ToolResult


class PythonArgs(BaseModel):
    """Arguments of python.exec."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(
        min_length=1,
        max_length=200_000,
        description="Python code, run like a notebook cell: variables persist between calls "
        "and the value of the last expression is shown.",
    )
    timeout_s: float = Field(
        default=120.0, gt=0, le=600, description="Seconds before the execution is interrupted."
    )


class PythonExecTool(Tool[PythonArgs]):
    """Runs code in the code kernel; rich outputs go to ``displays``, text to the model."""

    name = "python.exec"
    description = (
        "Run Python code in a persistent IPython kernel (like a notebook cell). Returns printed "
        "output, the last expression's value and tracebacks; plots and HTML tables are shown to "
        "the user. Output beyond 64 KiB is cut."
    )
    Args = PythonArgs

    def risk(self, args: PythonArgs, ctx: ToolContext) -> str | None:
        """Code on the host is high risk: in the user's notebook kernel it sees and can change
        their data, and in the session's code kernel it can do what the user can. In the
        sandbox (cloud mode) it is contained."""
        if getattr(ctx.executor, "notebook_bound", False):
            return "runs code in the user's notebook kernel"
        if getattr(ctx.executor, "mode", "local") == "local":
            return "runs Python on the host"
        return None

    async def run(self, args: PythonArgs, ctx: ToolContext) -> ToolResult:
        """Execute through ``ctx.executor.run_python``."""
        try:
            res = await ctx.executor.run_python(
                args.code, timeout_s=args.timeout_s, max_output_bytes=MAX_OUTPUT_BYTES
            )
        except Exception as exc:
            return from_error(exc)
        if res.status == "timeout":
            msg = f"execution timed out after {args.timeout_s:g} s; the kernel was interrupted"
            err = {"code": ErrorCode.TOOL_TIMEOUT.value, "message": msg}
            return ToolResult(status="timeout", output=res.text, error=err, displays=res.displays)
        if res.status == "error":
            msg = f"{res.error_name}: {res.error_value}"
            err = {"code": ErrorCode.TOOL_EXEC_FAILED.value, "message": msg}
            return ToolResult(status="failed", output=res.text, error=err, displays=res.displays)
        return ToolResult(status="success", output=res.text, displays=res.displays)
