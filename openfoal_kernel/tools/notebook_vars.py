"""``notebook.variables``: what the bound notebook kernel holds, summarised, never copied.

Offered only when the chat is bound to a notebook kernel. It runs a read-only probe
(:mod:`.nbvars_probe`) there and turns its JSON into text for the model: name, type, shape
and dtypes, length, a bounded repr with secrets redacted, a few preview rows of frames.
A variable whose name looks like a secret is listed with its type only.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..protocol.errors import ErrorCode
from ..redact import _SECRET_NAMES, _SECRET_SUFFIXES, is_secret_key, redact_text
from ._common import MAX_OUTPUT_BYTES, cap_text, from_error, truncation_marker
from .base import Tool, ToolContext, ToolResult
from .nbvars_probe import MARKER, probe_code

#: Defaults of the bounds (also the arguments' defaults).
PREVIEW_ROWS = 5
REPR_CHARS = 200
REPR_TIMEOUT_S = 2.0
MAX_VARS = 500
MAX_COLUMNS = 50
#: A Python identifier after ``@`` (an e-mail address's ``@`` has a word before it).
_MENTION = re.compile(r"(?<![\w.])@([A-Za-z_][A-Za-z0-9_]*)")


class NotebookVariablesArgs(BaseModel):
    """Arguments of notebook.variables."""

    model_config = ConfigDict(extra="forbid")

    names: list[str] | None = Field(
        default=None,
        max_length=100,
        description="Only these variables (default: all user variables).",
    )
    preview_rows: int = Field(
        default=PREVIEW_ROWS, ge=0, le=50, description="Rows of each DataFrame to preview."
    )
    repr_chars: int = Field(
        default=REPR_CHARS, ge=20, le=2000, description="Longest repr shown per variable."
    )


def mentions(text: str) -> list[str]:
    """The distinct ``@name`` mentions of ``text``, in order."""
    return list(dict.fromkeys(_MENTION.findall(text)))


async def list_variables(
    executor: Any,
    *,
    names: list[str] | None = None,
    preview_rows: int = PREVIEW_ROWS,
    repr_chars: int = REPR_CHARS,
    timeout_s: float = 30.0,
) -> dict[str, Any]:
    """The probe's result: ``{variables, total, missing}``; raises on a failed execution."""
    code = probe_code(
        names=names,
        preview_rows=preview_rows,
        repr_chars=repr_chars,
        repr_timeout_s=REPR_TIMEOUT_S,
        max_vars=MAX_VARS,
        max_columns=MAX_COLUMNS,
        secret_names=_SECRET_NAMES,
        secret_suffixes=_SECRET_SUFFIXES,
    )
    cap = 4 * MAX_OUTPUT_BYTES
    res = await executor.run_python(code, timeout_s=timeout_s, max_output_bytes=cap)
    if res.status != "ok":
        detail = f"{res.error_name}: {res.error_value}" if res.status == "error" else res.status
        raise _ProbeFailed(f"listing the notebook's variables failed ({detail})")
    for line in reversed(res.text.splitlines()):
        if line.startswith(MARKER):
            data: dict[str, Any] = json.loads(line[len(MARKER) :])
            return data
    raise _ProbeFailed("the notebook kernel gave no variable listing")


class _ProbeFailed(Exception):
    """The probe ran but gave no listing."""


def describe(item: dict[str, Any]) -> str:
    """One variable as text lines (secret names: type only; reprs redacted)."""
    name, kind = item["name"], item["type"]
    if item.get("secret") or is_secret_key(name):
        return f"- {name}: {kind} (secret-like name: value not shown)"
    parts = [f"- {name}: {kind}"]
    if "shape" in item:
        parts.append("shape " + " x ".join(str(n) for n in item["shape"]))
    if "dtype" in item:
        parts.append(f"dtype {item['dtype']}")
    if "length" in item:
        parts.append(f"length {item['length']}")
    lines = [", ".join(parts)]
    if "dtypes" in item:
        cols = ", ".join(f"{c}: {t}" for c, t in item["dtypes"].items())
        more = item.get("columns", 0) - len(item["dtypes"])
        lines.append(f"  dtypes: {cols}" + (f" (+{more} more columns)" if more > 0 else ""))
    if "repr" in item:
        lines.append(f"  repr: {redact_text(item['repr'])}")
    if "preview" in item:
        lines.append(f"  first {item.get('previewRows', 0)} rows:")
        lines += ["    " + row for row in redact_text(item["preview"]).splitlines()]
    if "note" in item:
        lines.append(f"  note: {item['note']}")
    return "\n".join(lines)


def render(data: dict[str, Any]) -> str:
    """The listing as text for the model."""
    items = data.get("variables", [])
    lines = [describe(i) for i in items]
    if not items:
        lines.append("(no user variables)")
    if data.get("total", 0) > len(items):
        lines.append(f"... {data['total'] - len(items)} more variables not listed")
    if data.get("missing"):
        lines.append("not defined in the notebook: " + ", ".join(data["missing"]))
    return "\n".join(lines)


async def mention_context(executor: Any, text: str, *, allowed: bool = True) -> str | None:
    """The context note for the ``@name`` mentions of ``text`` (None: no mentions, unbound).

    ``allowed``: whether the policy allows ``notebook.variables`` outright (a mention cannot
    ask for a gate, so a gated or denied tool leaves the mentions unexpanded, with a note)."""
    names = mentions(text)
    if not names or not getattr(executor, "notebook_bound", False):
        return None
    if not allowed:
        why = "the policy does not allow notebook.variables: mentions not expanded"
        return f"<notebook-variables>\n({why})\n</notebook-variables>"
    try:
        data = await list_variables(executor, names=names)
    except Exception as exc:  # the turn goes on without the summaries
        reason = f"{type(exc).__name__}: {exc}"
        return (
            f"<notebook-variables>\n(could not read the notebook: {reason})\n</notebook-variables>"
        )
    return mention_note(data)


def mention_note(data: dict[str, Any]) -> str:
    """The delimited context note @mentions add to the prompt."""
    return (
        "<notebook-variables>\n"
        "Summaries (not data) of notebook variables the user mentioned:\n"
        f"{render(data)}\n"
        "</notebook-variables>"
    )


class NotebookVariablesTool(Tool[NotebookVariablesArgs]):
    """Lists the bound notebook kernel's variables (read-only, low risk)."""

    name = "notebook.variables"
    description = (
        "List the variables of the notebook this chat is bound to: name, type, shape and "
        "dtypes of DataFrames/arrays, lengths, a short repr and a few preview rows. "
        "Never returns whole values; secret-like names show their type only."
    )
    Args = NotebookVariablesArgs

    async def run(self, args: NotebookVariablesArgs, ctx: ToolContext) -> ToolResult:
        """Run the probe in the bound kernel and render its listing."""
        if not getattr(ctx.executor, "notebook_bound", False):
            msg = "notebook.variables needs a chat bound to a notebook kernel"
            return ToolResult.failed(ErrorCode.INVALID_REQUEST.value, msg)
        try:
            data = await list_variables(
                ctx.executor,
                names=args.names,
                preview_rows=args.preview_rows,
                repr_chars=args.repr_chars,
            )
        except _ProbeFailed as exc:
            return ToolResult.failed(ErrorCode.TOOL_EXEC_FAILED.value, str(exc))
        except Exception as exc:
            return from_error(exc)
        text, cut = cap_text(render(data))
        return ToolResult(
            status="success", output=text + (truncation_marker(MAX_OUTPUT_BYTES) if cut else "")
        )
