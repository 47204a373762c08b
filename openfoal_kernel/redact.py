"""Secret redaction for the audit trail and events: keys, tokens, passwords in URLs."""

from __future__ import annotations

import re
from typing import Any

MASK = "[REDACTED]"

_SECRET_KEY = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|api[-_]?key|apikey|authorization|auth|cookie|"
    r"private[-_]?key|access[-_]?key|client[-_]?secret|credential|session[-_]?id|signature)",
    re.IGNORECASE,
)
_NOT_SECRET_KEY = re.compile(r"^(max_?tokens|input_?tokens|output_?tokens|tokens?_?count|"
                             r"token_?budget|inputTokens|outputTokens)$", re.IGNORECASE)

_TEXT_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # userinfo passwords in URLs: scheme://user:pass@host
    (re.compile(r"(?P<pre>\b[a-z][a-z0-9+.\-]*://[^\s/:@]+:)[^\s/@]+(?=@)", re.IGNORECASE), r"\g<pre>" + MASK),
    # Authorization headers and bearer tokens
    (re.compile(r"(?P<pre>\b(?:bearer|token|basic)\s+)[A-Za-z0-9._~+/=\-]{8,}", re.IGNORECASE), r"\g<pre>" + MASK),
    # key=value / key: value pairs with secret-looking keys
    (re.compile(r"(?P<pre>\b(?:password|passwd|secret|api[-_]?key|access[-_]?key|token|client[-_]?secret)"
                r"['\"]?\s*[=:]\s*)(?P<q>['\"]?)[^\s'\"&,;]{4,}", re.IGNORECASE), r"\g<pre>\g<q>" + MASK),
    # well-known key formats
    (re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}"), MASK),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), MASK),
    (re.compile(r"\bxox[bpars]-[A-Za-z0-9\-]{10,}"), MASK),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"), MASK),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"), MASK),
)


def redact_text(text: str) -> str:
    """Mask secrets found in free text."""
    for pattern, repl in _TEXT_PATTERNS:
        text = pattern.sub(repl, text)
    return text


def _secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key)) and not _NOT_SECRET_KEY.match(key)


def redact(value: Any) -> Any:
    """Return a copy of ``value`` with secrets masked (dict keys, URLs, tokens in text)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            if isinstance(k, str) and _secret_key(k) and isinstance(v, (str, int, float, bytes)) and v != "":
                out[k] = MASK
            else:
                out[k] = redact(v)
        return out
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value
