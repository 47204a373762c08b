"""Secret redaction for what the audit trail and events keep: keys, tokens, URL passwords.

``redact(value)`` returns a copy of a JSON-like value (dicts, lists, strings, scalars) with
secrets replaced by ``[REDACTED]``:

- the value of a key that names a secret (``password``, ``api_key``, ``Authorization``,
  ``X-Api-Key``, ``Cookie``, ``AWS_SECRET_ACCESS_KEY``, ``refresh_token`` ...), at any depth,
  including header lists such as ``[["Authorization", "Bearer ..."]]``;
- in text: the password of ``scheme://user:password@host``, the credential after
  ``Authorization:`` / ``Bearer`` / ``token``, ``KEY=value`` pairs whose key names a secret,
  cookies in header lines, and well-known key formats (``sk-...``, ``sk-ant-...``, ``ghp_...``,
  ``github_pat_...``, ``xoxb-...``, ``AKIA...``, ``AIza...``, JWTs, PEM private keys).

It errs on the side of masking a credential-looking string, and never masks ordinary words:
``token`` followed by a plain word, ``max_tokens``, ``password policy`` stay as they are.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MASK", "is_secret_key", "redact", "redact_text"]

MASK = "[REDACTED]"

# Key names are compared after lower-casing and dropping everything but letters and digits,
# so ``API-Key``, ``api_key`` and ``apiKey`` are the same name.
_SECRET_NAMES = frozenset(
    {
        "auth",
        "authorization",
        "proxyauthorization",
        "cookie",
        "setcookie",
        "credential",
        "credentials",
        "signature",
        "sig",
        "dsn",
        "connectionstring",
    }
)
_SECRET_SUFFIXES = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "secretkey",
    "signingkey",
    "encryptionkey",
    "authkey",
    "credentials",
)
_NORMALISE = re.compile(r"[^a-z0-9]")


def is_secret_key(key: str) -> bool:
    """Whether a mapping key (or header name) names a secret."""
    name = _NORMALISE.sub("", key.lower())
    return name in _SECRET_NAMES or name.endswith(_SECRET_SUFFIXES)


# A credential: no spaces or quotes; to tell it from a word, it must contain a digit or one of
# the characters tokens are made of, or be long (a plain word of 32+ letters is no word).
_CRED = r"[A-Za-z0-9._~+/=\-:]{6,}"


def _looks_like_credential(text: str) -> bool:
    return len(text) >= 32 or bool(re.search(r"[0-9_\-+/=.~]", text))


_KEY_WORDS = (
    r"password|passwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key|"
    r"private[_-]?key|secret[_-]?key|client[_-]?secret|credentials?"
)

_URL_PASSWORD = re.compile(
    r"(?P<pre>\b[a-z][a-z0-9+.\-]*://[^\s/:@'\"]*:)(?P<secret>[^\s/'\"]+)(?=@)", re.IGNORECASE
)
_AUTH_HEADER = re.compile(
    r"(?P<pre>\b(?:proxy-)?authorization['\"]?\s*[:=]\s*['\"]?"
    r"(?:(?:bearer|basic|token|digest|apikey|bot)\s+)?)(?P<secret>[^\s'\",;]+)",
    re.IGNORECASE,
)
_COOKIE_HEADER = re.compile(
    r"(?P<pre>\b(?:set-)?cookie['\"]?\s*:\s*['\"]?)(?P<secret>[^\r\n'\"]+)", re.IGNORECASE
)
_SCHEME_TOKEN = re.compile(
    r"(?P<pre>\b(?:bearer|token)\s+)(?P<secret>" + _CRED + ")", re.IGNORECASE
)
# ``api_key=...``, ``"password": "..."``, ``GITHUB_TOKEN=...``, ``--password=...``.
_KEY_VALUE = re.compile(
    r"(?P<pre>(?<![A-Za-z0-9])[A-Za-z0-9_\-]*?(?:" + _KEY_WORDS + r")['\"]?\s*[:=]\s*"
    r"(?P<q>['\"]?))(?P<secret>[^\s'\"&,;}]+)",
    re.IGNORECASE,
)
_KNOWN_FORMATS: tuple[re.Pattern[str], ...] = (
    # OpenAI / Anthropic: a named prefix, or a long run that has digits (not "sk-learn-...")
    re.compile(
        r"\bsk-(?:(?:ant|proj|svcacct|admin)-[A-Za-z0-9_\-]{16,}"
        r"|(?=[A-Za-z0-9_\-]*[0-9])[A-Za-z0-9_\-]{20,})"
    ),
    re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"),
    re.compile(r"\bhf_[A-Za-z0-9]{30,}"),
    re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----"),
)


def _mask_group(match: re.Match[str]) -> str:
    return match.group("pre") + MASK


def _mask_credential(match: re.Match[str]) -> str:
    if not _looks_like_credential(match.group("secret")):
        return match.group(0)
    return match.group("pre") + MASK


def _mask_key_value(match: re.Match[str]) -> str:
    if match.group("secret") == MASK:
        return match.group(0)
    return match.group("pre") + MASK


def redact_text(text: str) -> str:
    """Mask secrets found in free text."""
    if len(text) < 6:
        return text
    for pattern in _KNOWN_FORMATS:
        text = pattern.sub(MASK, text)
    text = _URL_PASSWORD.sub(_mask_group, text)
    text = _AUTH_HEADER.sub(_mask_key_value, text)
    text = _COOKIE_HEADER.sub(_mask_key_value, text)
    text = _SCHEME_TOKEN.sub(_mask_credential, text)
    return _KEY_VALUE.sub(_mask_key_value, text)


def _masked(value: Any) -> Any:
    # None and booleans carry no secret (``"token": null``); anything else is masked whole.
    if value is None or isinstance(value, bool) or value == "":
        return value
    return MASK


def redact(value: Any) -> Any:
    """Return a copy of ``value`` with secrets masked (never modifies ``value``)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            k: _masked(v) if isinstance(k, str) and is_secret_key(k) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        # a header list: [["Authorization", "Bearer ..."], ...]
        if len(value) == 2 and isinstance(value[0], str) and is_secret_key(value[0]):
            return [value[0], _masked(value[1])]
        return [redact(v) for v in value]
    return value
