"""A scripted model server speaking the real OpenAI and Anthropic streaming HTTP protocols.

Used by the tests, the benchmarks and the demo model (``OPENFOAL_MODEL=demo``).
"""

from __future__ import annotations

from .demo import DEMO_BASH_COMMAND, DEMO_LABEL, demo_responder, make_demo_responder
from .script import (
    BurstStep,
    DelayStep,
    DisconnectStep,
    ErrorStep,
    HangStep,
    MalformedStep,
    Reply,
    ScriptedRequest,
    ScriptUsage,
    Step,
    TextStep,
    ToolCallStep,
    api_tool_name,
)
from .server import ScriptedModelServer
from .state import Responder, echo_responder

__all__ = [
    "DEMO_BASH_COMMAND",
    "DEMO_LABEL",
    "BurstStep",
    "DelayStep",
    "DisconnectStep",
    "ErrorStep",
    "HangStep",
    "MalformedStep",
    "Reply",
    "Responder",
    "ScriptUsage",
    "ScriptedModelServer",
    "ScriptedRequest",
    "Step",
    "TextStep",
    "ToolCallStep",
    "api_tool_name",
    "demo_responder",
    "echo_responder",
    "make_demo_responder",
]
