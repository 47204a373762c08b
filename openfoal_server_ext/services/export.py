"""``sessions.export``: a session as a runnable Jupyter notebook (nbformat 4), with provenance.

The conversation becomes markdown cells, ``python.exec`` calls code cells with their recorded
output, ``bash.exec`` calls ``%%bash`` cells and ``file.write`` calls ``%%writefile`` cells;
gate decisions are noted in a markdown cell before the call they decided. Every text is
redacted again on the way out. See docs/notebooks.md.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from openfoal_kernel.protocol import AuditEntry, ChatMessage, GateItem
from openfoal_kernel.protocol.results import SessionsExportResult
from openfoal_kernel.redact import redact, redact_text

from ..store import StoreWorker
from .sessions import SessionService

#: The most audit entries one export reads (a session past it is refused, never cut short).
AUDIT_LIMIT = 1_000_000

_KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def audit_hash(entries: list[AuditEntry]) -> str:
    """``sha256:`` of the session's audit entries, oldest first, one compact sorted-key JSON
    line each (the wire form ``audit.query`` returns); a reviewer recomputes it from there."""
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(json.dumps(entry.wire(), sort_keys=True, separators=(",", ":")).encode())
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()


def _markdown(text: str, meta: dict[str, Any]) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {"openfoal": meta}, "source": text}


def _code(source: str, output: str, status: str, meta: dict[str, Any]) -> dict[str, Any]:
    outputs: list[dict[str, Any]] = []
    if output:
        name = "stdout" if status == "success" else "stderr"
        outputs.append({"output_type": "stream", "name": name, "text": output})
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"openfoal": meta},
        "outputs": outputs,
        "source": source,
    }


def _tool_source(name: str, args: dict[str, Any]) -> str | None:
    """The cell source that re-runs a call in a plain Python kernel (``None``: not runnable)."""
    if name == "python.exec":
        return str(args.get("code", ""))
    if name == "bash.exec":
        cwd = args.get("cwd")
        prefix = f"cd {json.dumps(str(cwd))}\n" if cwd and cwd != "." else ""
        return "%%bash\n" + prefix + str(args.get("command", ""))
    if name == "file.write":
        flag = "-a " if args.get("append") else ""
        content = str(args.get("content", ""))
        return f"%%writefile {flag}{args.get('path', '')}\n" + content
    return None


class SessionExporter:
    """Builds the notebook of one owned session from the store."""

    def __init__(self, worker: StoreWorker, sessions: SessionService) -> None:
        self.worker = worker
        self.sessions = sessions

    async def export(self, owner: str, session_id: str) -> SessionsExportResult:
        """``sessions.export``: NOT_FOUND / FORBIDDEN as ``sessions.get`` answers them."""
        session = self.sessions.get_owned(owner, session_id)
        await self.worker.commit()
        store = self.worker.store
        rows = await self.worker.call(store.get_messages, session.id)
        entries = await self.worker.call(
            store.query_audit, owner=owner, session_id=session.id, limit=AUDIT_LIMIT
        )
        entries.reverse()  # oldest first
        gates = await self.worker.call(
            store.list_gates, owner=owner, session_id=session.id, limit=AUDIT_LIMIT
        )
        notebook = build_notebook(
            session_id=session.id,
            session_key=session.sessionKey,
            title=session.title,
            messages=[(row.run_id, row.message) for row in rows],
            entries=entries,
            gates=gates,
        )
        return SessionsExportResult(
            sessionId=session.id,
            filename=f"{session.id}.ipynb",
            auditHash=notebook["metadata"]["openfoal"]["auditHash"],
            notebook=notebook,
        )


def build_notebook(
    *,
    session_id: str,
    session_key: str,
    title: str,
    messages: list[tuple[str | None, ChatMessage]],
    entries: list[AuditEntry],
    gates: list[GateItem],
) -> dict[str, Any]:
    """The nbformat-4 notebook of a transcript (``entries`` oldest first)."""
    runs: dict[str, dict[str, Any]] = {}
    results: dict[tuple[str, str], AuditEntry] = {}
    for e in entries:
        if e.action == "run.start" and e.runId:
            runs[e.runId] = {
                "traceId": e.traceId,
                "model": e.detail.get("model"),
                "policyVersion": e.detail.get("policyVersion"),
            }
        elif e.action == "tool.result" and e.runId:
            results[(e.runId, str(e.detail.get("toolCallId")))] = e
    by_call = {(g.runId, g.toolCallId): g for g in gates}
    outputs = {m.tool_call_id: m.content for _, m in messages if m.role == "tool"}
    cells: list[dict[str, Any]] = []
    models: list[str] = []
    for run_id, msg in messages:
        run = runs.get(run_id or "", {})
        base = {
            "runId": run_id,
            "traceId": run.get("traceId"),
            "policyVersion": run.get("policyVersion"),
        }
        model = run.get("model")
        if model and model not in models:
            models.append(str(model))
        if msg.role == "user":
            cells.append(_markdown("**User:** " + redact_text(msg.content), base))
        elif msg.role == "system" and msg.kind == "compaction":
            cells.append(_markdown("*Summary of earlier turns:* " + redact_text(msg.content), base))
        elif msg.role == "assistant":
            if msg.content.strip():
                cells.append(_markdown("**Assistant:** " + redact_text(msg.content), base))
            for call in msg.tool_calls:
                cells.extend(
                    _tool_cells(
                        call.id,
                        call.name,
                        call.arguments,
                        base,
                        results,
                        by_call,
                        outputs.get(call.id, ""),
                    )
                )
    meta = {
        "sessionId": session_id,
        "sessionKey": session_key,
        "title": title,
        "model": models[-1] if models else None,
        "models": models,
        "auditHash": audit_hash(entries),
        "auditEntries": len(entries),
    }
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": _KERNELSPEC,
            "language_info": {"name": "python"},
            "openfoal": meta,
        },
        "cells": [{**c, "id": f"c{n:05d}"} for n, c in enumerate(cells)],
    }


def _tool_cells(
    call_id: str,
    name: str,
    arguments: dict[str, Any],
    base: dict[str, Any],
    results: dict[tuple[str, str], AuditEntry],
    by_call: dict[tuple[str, str], GateItem],
    output: str,
) -> list[dict[str, Any]]:
    run_id = str(base.get("runId") or "")
    entry = results.get((run_id, call_id))
    status = str(entry.detail.get("status")) if entry is not None else "unknown"
    meta = {
        **base,
        "toolCallId": call_id,
        "toolName": name,
        "status": status,
        "auditEntryId": entry.id if entry is not None else None,
    }
    cells: list[dict[str, Any]] = []
    gate = by_call.get((run_id, call_id))
    if gate is not None:
        who = f" by {gate.resolvedBy}" if gate.resolvedBy else ""
        why = f": {redact_text(gate.reason)}" if gate.reason else ""
        note = f"> **Gate {gate.gateId}** on `{name}` ({gate.risk}): {gate.status}{who}{why}"
        cells.append(_markdown(note, {**meta, "gateId": gate.gateId, "gateStatus": gate.status}))
    args = redact(arguments)
    source = _tool_source(name, args)
    text = redact_text(output)
    if source is not None and status in ("success", "failed", "timeout", "unknown"):
        cells.append(_code(source, text, status, meta))
    else:
        shown = json.dumps(args, ensure_ascii=False)
        body = f"*Tool `{name}` ({status}):* `{shown}`"
        if text:
            body += "\n\n```\n" + text.rstrip("\n") + "\n```"
        cells.append(_markdown(body, meta))
    return cells
