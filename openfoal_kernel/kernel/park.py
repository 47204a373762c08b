"""Parking: a gated call of a notebook cell that no one can answer inline.

When a cell runs unattended (nbclient, papermill, a scheduler: the execute request does not
allow stdin), a gated call cannot be approved in the cell. Instead of holding the cell until
the gate expires, the kernel *parks* it: the gate stays pending in the gateway's Approvals
queue, the cell says so (gate id and a link) and ends with a ``GATE_PARKED`` error, so the
runner's exit status shows that something waits. Approving the gate later continues the run
on the gateway from the stored transcript.

``OPENFOAL_PARK_AFTER_S`` (or the kernel trait ``park_after_s``) sets how long an unattended
gate waits for a decision from elsewhere before it parks: ``0`` (the default) parks at once,
``N`` waits up to N seconds, a negative value never parks (the gate waits its full timeout).
"""

from __future__ import annotations

import math
import os
from typing import Any

from ..protocol.kernel_wire import ParkedResult

PARK_ENV = "OPENFOAL_PARK_AFTER_S"
LAB_URL_ENV = "OPENFOAL_LAB_URL"
#: The execute_reply ``ename`` of a cell whose turn parked.
PARKED_ENAME = "GATE_PARKED"


class GateParked(Exception):
    """Raised out of the loop when a gated call parks; carries the pending gate."""

    def __init__(self, gate: dict[str, Any]) -> None:
        super().__init__(f"gate {gate.get('gateId')} parked")
        self.gate = gate


def park_after_from_env(default: float = 0.0) -> float:
    """The parking delay set in the environment (``default`` when unset).

    Raises ``ValueError`` naming the variable for a value that is not a finite number."""
    raw = os.environ.get(PARK_ENV, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"{PARK_ENV}={raw!r} is not a number of seconds")
    return value


def gate_link(gate_id: str) -> str:
    """Where a person approves the gate: the lab with ``?openfoal-gate=<id>``."""
    base = os.environ.get(LAB_URL_ENV, "").strip()
    if not base:
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/").rstrip("/")
        base = f"{prefix}/lab"
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}openfoal-gate={gate_id}"


def parked_text(gate: dict[str, Any]) -> str:
    """What the cell says when its turn parked."""
    gate_id = str(gate.get("gateId", ""))
    return (
        f"Waiting for approval: {gate.get('toolName')} ({gate.get('risk')}) is parked as gate "
        f"{gate_id}. Approve or reject it in the OpenFoal Approvals panel "
        f"({gate_link(gate_id)}); an approval continues the run in its session "
        f"{gate.get('sessionId')}."
    )


def parked_result_text(result: ParkedResult) -> str:
    """What the parked cell says once the run that continued after the decision has ended."""
    head = {
        "completed": "the run continued and completed",
        "failed": "the run continued and failed",
    }.get(result.status, f"the run continued and ended ({result.status})")
    lines = [
        f"Gate {result.gateId} was {result.decision}; {head} "
        f"(run {result.runId}, session {result.sessionId})."
    ]
    if result.toolOutput:
        lines += ["", "Tool output:", result.toolOutput]
    if result.text:
        lines += ["", result.text]
    return "\n".join(lines)
