"""The request checks each real API makes, so a provider that builds a bad request fails here too.

Each check returns the API's 400 message, or ``None`` when the request is acceptable.
"""

from __future__ import annotations

import re
from typing import Any

_OPENAI_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_PATTERN = "^[a-zA-Z0-9_-]{1,64}$"
_ANTHROPIC_NAME = re.compile(_PATTERN)
_OPENAI_ROLES = {"system", "developer", "user", "assistant", "tool"}


def _openai_tools(body: dict[str, Any]) -> str | None:
    tools = body.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list):
        return "Invalid type for 'tools': expected an array."
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            return f"Missing required parameter: 'tools[{i}].function.name'."
        if not _OPENAI_NAME.match(function["name"]):
            return (
                f"Invalid 'tools[{i}].function.name': string does not match pattern. "
                "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."
            )
    return None


def check_openai(body: dict[str, Any]) -> str | None:
    """Check a chat-completions request body."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "Missing required parameter: 'messages'."
    problem = _openai_tools(body)
    if problem:
        return problem
    pending: set[str] = set()  # tool_call ids still waiting for their tool message
    answerable: set[str] = set()
    for i, msg in enumerate(messages):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role not in _OPENAI_ROLES:
            return f"Invalid value: '{role}'. Supported values are: {sorted(_OPENAI_ROLES)}."
        if role == "tool":
            call_id = msg.get("tool_call_id")
            if call_id not in answerable:
                return (
                    f"Invalid parameter: messages with role 'tool' must be a response to a "
                    f"preceeding message with 'tool_calls'. (messages[{i}])"
                )
            pending.discard(call_id)
            continue
        if pending:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(sorted(pending))}"
            )
        answerable = set()
        for call in (msg.get("tool_calls") or []) if role == "assistant" else []:
            name = (call.get("function") or {}).get("name", "")
            if not _OPENAI_NAME.match(str(name)):
                return f"Invalid 'messages[{i}].tool_calls.function.name': {name!r}."
            answerable.add(call.get("id"))
        pending = set(answerable)
    if pending:
        return (
            "An assistant message with 'tool_calls' must be followed by tool messages responding "
            f"to each 'tool_call_id'. The following tool_call_ids did not have response "
            f"messages: {', '.join(sorted(pending))}"
        )
    return None


def _anthropic_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _anthropic_tools(body: dict[str, Any]) -> str | None:
    for i, tool in enumerate(body.get("tools") or []):
        name = tool.get("name") if isinstance(tool, dict) else None
        if not isinstance(name, str) or not _ANTHROPIC_NAME.match(name):
            return f"tools.{i}.name: String should match pattern '{_PATTERN}'"
        if not isinstance(tool.get("input_schema"), dict):
            return f"tools.{i}.input_schema: Field required"
    return None


def _anthropic_message(i: int, msg: Any, previous_uses: set[str]) -> str | None:
    """Check one message; ``previous_uses`` are the tool_use ids of the message before it."""
    role = msg.get("role") if isinstance(msg, dict) else None
    if role not in ("user", "assistant"):
        return (
            f'messages.{i}: Unexpected role "{role}". The Messages API accepts a top-level '
            '`system` parameter, not "system" as an input message role.'
        )
    blocks = _anthropic_blocks(msg.get("content"))
    if not blocks:
        return f"messages.{i}: content must be a non-empty string or list of blocks"
    for j, block in enumerate(blocks):
        if block.get("type") == "text" and not block.get("text"):
            return f"messages.{i}.content.{j}: text content blocks must be non-empty"
        if block.get("type") == "tool_use" and not _ANTHROPIC_NAME.match(str(block.get("name"))):
            return f"messages.{i}.content.{j}.name: String should match pattern '{_PATTERN}'"
    results = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
    if role == "assistant" and results:
        return f"messages.{i}: `tool_result` blocks can only be in `user` messages"
    unexpected = results - previous_uses
    if unexpected:
        return (
            f"messages.{i}: unexpected `tool_use_id` found in `tool_result` blocks: "
            f"{', '.join(sorted(map(str, unexpected)))}. Each `tool_result` block must have a "
            "corresponding `tool_use` block in the previous message."
        )
    missing = previous_uses - results
    if missing:
        return (
            f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks immediately "
            f"after: {', '.join(sorted(missing))}. Each `tool_use` block must have a "
            "corresponding `tool_result` block in the next message."
        )
    return None


def check_anthropic(body: dict[str, Any], headers: dict[str, str]) -> str | None:
    """Check a messages request body (and the version header the API requires)."""
    if not headers.get("anthropic-version"):
        return "anthropic-version: header is required"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return "max_tokens: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: Field required"
    problem = _anthropic_tools(body)
    if problem:
        return problem
    previous_role = None
    previous_uses: set[str] = set()
    for i, msg in enumerate(messages):
        problem = _anthropic_message(i, msg, previous_uses)
        if problem:
            return problem
        role = msg["role"]
        if i == 0 and role != "user":
            return 'messages: first message must use the "user" role'
        if role == previous_role:
            return (
                'messages: roles must alternate between "user" and "assistant", but found '
                f'multiple "{role}" roles in a row'
            )
        previous_role = role
        previous_uses = {
            str(b.get("id"))
            for b in _anthropic_blocks(msg.get("content"))
            if b.get("type") == "tool_use"
        }
    return None
