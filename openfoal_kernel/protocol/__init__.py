"""The OpenFoal wire contract as pydantic models, shared by the kernel and the gateway."""

from __future__ import annotations

from .errors import ErrorCode, OpenFoalError
from .frames import ErrorBody, EventFrame, ReqFrame, ResFrame, res_error, res_ok
from .kernel_wire import KernelEvent, ModelSettings, RunSpec
from .methods import METHOD_PARAMS, is_side_effect
from .transcript import ChatMessage, ToolCall
from .types import AuditEntry, GateItem, Policy, Session, utcnow
from .versions import PROTOCOL_VERSION, SUPPORTED_VERSIONS

__all__ = [
    "METHOD_PARAMS",
    "PROTOCOL_VERSION",
    "SUPPORTED_VERSIONS",
    "AuditEntry",
    "ChatMessage",
    "ErrorBody",
    "ErrorCode",
    "EventFrame",
    "GateItem",
    "KernelEvent",
    "ModelSettings",
    "OpenFoalError",
    "Policy",
    "ReqFrame",
    "ResFrame",
    "RunSpec",
    "Session",
    "ToolCall",
    "is_side_effect",
    "res_error",
    "res_ok",
    "utcnow",
]
