"""Read a chat request of either API back into provider-neutral messages, for responders."""

from __future__ import annotations

import json
from typing import Any

from ..protocol.transcript import ChatMessage, ToolCall


def _text_of(content: Any) -> str:
    """Plain text of a message content: a string, or a list of text blocks/parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def offered_tools(api: str, body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Tools offered by the request: API name -> JSON Schema of the parameters."""
    tools: dict[str, dict[str, Any]] = {}
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        if api == "openai":
            function = tool.get("function") or {}
            name, schema = function.get("name"), function.get("parameters")
        else:
            name, schema = tool.get("name"), tool.get("input_schema")
        if isinstance(name, str):
            tools[name] = schema if isinstance(schema, dict) else {}
    return tools


def _openai_arguments(raw: Any) -> dict[str, Any]:
    """Arguments of an OpenAI tool call, sent as a JSON string."""
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _openai_transcript(body: dict[str, Any]) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    for msg in body.get("messages") or []:
        role = msg.get("role")
        if role in ("system", "developer"):
            out.append(ChatMessage(role="system", content=_text_of(msg.get("content"))))
        elif role == "user":
            out.append(ChatMessage(role="user", content=_text_of(msg.get("content"))))
        elif role == "assistant":
            calls = [
                ToolCall(
                    id=str(call.get("id", "")),
                    name=str((call.get("function") or {}).get("name", "")),
                    arguments=_openai_arguments((call.get("function") or {}).get("arguments")),
                )
                for call in msg.get("tool_calls") or []
            ]
            content = _text_of(msg.get("content"))
            out.append(ChatMessage(role="assistant", content=content, tool_calls=calls))
        elif role == "tool":
            out.append(
                ChatMessage(
                    role="tool",
                    content=_text_of(msg.get("content")),
                    tool_call_id=msg.get("tool_call_id"),
                )
            )
    return out


def _anthropic_transcript(body: dict[str, Any]) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    system = _text_of(body.get("system"))
    if system:
        out.append(ChatMessage(role="system", content=system))
    for msg in body.get("messages") or []:
        content = msg.get("content")
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
        if msg.get("role") == "assistant":
            calls = [
                ToolCall(id=str(b.get("id", "")), name=str(b.get("name", "")), arguments=b["input"])
                if isinstance(b.get("input"), dict)
                else ToolCall(id=str(b.get("id", "")), name=str(b.get("name", "")))
                for b in blocks
                if isinstance(b, dict) and b.get("type") == "tool_use"
            ]
            out.append(ChatMessage(role="assistant", content=_text_of(blocks), tool_calls=calls))
            continue
        # A user turn: each tool_result becomes a tool message, any text a user message after.
        for block in blocks:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                out.append(
                    ChatMessage(
                        role="tool",
                        content=_text_of(block.get("content")),
                        tool_call_id=block.get("tool_use_id"),
                    )
                )
        text = _text_of(blocks)
        if text or not any(isinstance(b, dict) and b.get("type") == "tool_result" for b in blocks):
            out.append(ChatMessage(role="user", content=text))
    return out


def transcript(api: str, body: dict[str, Any]) -> list[ChatMessage]:
    """The request's conversation as :class:`ChatMessage` list (tool names as the API has them)."""
    if api == "openai":
        return _openai_transcript(body)
    return _anthropic_transcript(body)
