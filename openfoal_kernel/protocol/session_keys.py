"""Canonical session keys (PROTOCOL.md): parse, normalise, build.

``workspace:<w>/agent:<a>/main``, ``.../dm:<channel>:<peer>``, ``.../group:<channel>:<id>``,
each optionally followed by ``:thread:<threadId>``. Identifiers are lower-cased, trimmed,
inner whitespace becomes ``-`` and reserved characters (``/``, ``:``, ``%`` and anything
outside ``[a-z0-9._@+-]``) are percent-encoded, so one conversation has exactly one key.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

_SAFE = "._@+-"
_WS = re.compile(r"\s+")


class SessionKeyError(ValueError):
    """The text is not a session key in any accepted spelling."""


def normalize_ident(value: str) -> str:
    """Normalise one identifier segment."""
    text = _WS.sub("-", unquote(value).strip().lower())
    if not text:
        raise SessionKeyError("empty identifier in session key")
    return quote(text, safe=_SAFE)  # after unquote: canonicalising twice changes nothing


def _split_prefixed(part: str, prefix: str) -> str:
    head, sep, rest = part.partition(":")
    if not sep or head.strip().lower() != prefix:
        raise SessionKeyError(f"expected '{prefix}:<id>', got {part.strip()!r}")
    return normalize_ident(rest)


def canonical_session_key(raw: str) -> str:
    """Return the canonical form of ``raw`` or raise :class:`SessionKeyError`."""
    if not isinstance(raw, str) or not raw.strip():
        raise SessionKeyError("session key is empty")
    parts = raw.strip().split("/", 2)
    if len(parts) != 3:
        raise SessionKeyError(
            "session key must look like workspace:<w>/agent:<a>/main (or dm:/group:)"
        )
    workspace = _split_prefixed(parts[0], "workspace")
    agent = _split_prefixed(parts[1], "agent")
    tail = parts[2].strip()
    thread = None
    low = tail.lower()
    idx = low.find(":thread:")
    if idx >= 0:
        thread = normalize_ident(tail[idx + len(":thread:") :])
        tail = tail[:idx]
    kind, _, rest = tail.partition(":")
    kind = kind.strip().lower()
    if kind == "main" and not rest.strip():
        body = "main"
    elif kind in ("dm", "group"):
        channel, sep, peer = rest.partition(":")
        if not sep:
            raise SessionKeyError(f"'{kind}' needs '<channel>:<id>'")
        body = f"{kind}:{normalize_ident(channel)}:{normalize_ident(peer)}"
    else:
        raise SessionKeyError(f"unknown session kind {kind!r}: use main, dm or group")
    key = f"workspace:{workspace}/agent:{agent}/{body}"
    return f"{key}:thread:{thread}" if thread else key


def build_session_key(workspace: str, agent: str, kind: str, *parts: str) -> str:
    """Build a canonical key from its parts (``kind`` is main, dm or group)."""
    tail = ":".join([kind, *parts]) if parts else kind
    return canonical_session_key(f"workspace:{workspace}/agent:{agent}/{tail}")
