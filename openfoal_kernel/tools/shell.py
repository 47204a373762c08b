"""``bash.exec``: run a shell command in the workspace through the session's executor."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..protocol.errors import ErrorCode
from ._common import decode, from_error
from .base import Tool, ToolContext, ToolResult

#: Bound on each of stdout and stderr (so the output is at most twice this, plus markers).
MAX_STREAM_BYTES = 32 * 1024


class BashArgs(BaseModel):
    """Arguments of bash.exec."""

    model_config = ConfigDict(extra="forbid")

    command: str = Field(
        min_length=1,
        max_length=100_000,
        description="Shell command line, run with bash -c (pipes, redirections, && work).",
    )
    cwd: str = Field(
        default=".",
        description="Working directory, relative to the workspace root (default: the root).",
    )
    timeout_s: float = Field(
        default=60.0,
        gt=0,
        le=600,
        description="Seconds before the command and everything it started are killed.",
    )


class BashExecTool(Tool[BashArgs]):
    """Runs a shell command; non-zero exit is a failure that keeps the output."""

    name = "bash.exec"
    description = (
        "Run a shell command (bash) in the workspace and return its stdout and stderr. "
        "Non-interactive: stdin is empty. Output beyond 32 KiB per stream is cut."
    )
    Args = BashArgs

    def risk(self, args: BashArgs, ctx: ToolContext) -> str | None:
        """A shell on the host is high risk; one inside the session's sandbox is not."""
        if ctx.executor.mode != "local":
            return None
        if ctx.policy.bashMode == "host":
            return "runs a shell command on the host (policy bashMode is 'host')"
        return "runs a shell command on the host (this session's executor is local)"

    async def run(self, args: BashArgs, ctx: ToolContext) -> ToolResult:
        """Run the command through ``ctx.executor``."""
        try:
            res = await ctx.executor.run_command(
                args.command,
                timeout_s=args.timeout_s,
                max_output_bytes=MAX_STREAM_BYTES,
                cwd=args.cwd,
            )
        except Exception as exc:
            return from_error(exc)
        output = _render(res.stdout, res.stderr, res.truncated)
        if res.timed_out:
            msg = f"command timed out after {args.timeout_s:g} s and was killed"
            return ToolResult(
                status="timeout",
                output=f"{output}\n[{msg}]".lstrip("\n"),
                error={"code": ErrorCode.TOOL_TIMEOUT.value, "message": msg},
            )
        if res.exit_code != 0:
            msg = f"command exited with code {res.exit_code}"
            return ToolResult(
                status="failed",
                output=f"{output}\n[{msg}]".lstrip("\n"),
                error={"code": ErrorCode.TOOL_EXEC_FAILED.value, "message": msg},
            )
        return ToolResult(status="success", output=output)


def _render(stdout: str | bytes, stderr: str | bytes, truncated: bool) -> str:
    """stdout, then stderr under a marker line, then a truncation note."""
    out = decode(stdout) if isinstance(stdout, bytes) else stdout
    err = decode(stderr) if isinstance(stderr, bytes) else stderr
    text = out
    if err:
        text += ("" if not text or text.endswith("\n") else "\n") + "[stderr]\n" + err
    if truncated:
        text += f"\n[output truncated: each stream is capped at {MAX_STREAM_BYTES} bytes]"
    return text
