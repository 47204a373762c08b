"""Secrets are masked in what the audit trail and events keep."""

from __future__ import annotations

import pytest

from openfoal_kernel.redact import MASK, redact

CASES = [
    ({"api_key": "abc123456"}, {"api_key": MASK}),
    ({"headers": {"Authorization": "Bearer abcdefghijkl"}}, {"headers": {"Authorization": MASK}}),
    ({"Cookie": "session=xyz"}, {"Cookie": MASK}),
    ({"password": "hunter22"}, {"password": MASK}),
    ({"nested": [{"client_secret": "s3cr3t-value"}]}, {"nested": [{"client_secret": MASK}]}),
    ({"OPENAI_API_KEY": "sk-whatever-long-value"}, {"OPENAI_API_KEY": MASK}),
    ("https://alice:pa55word@db.example.com/x", f"https://alice:{MASK}@db.example.com/x"),
    ("postgres://u:p%40ss@h:5432/db", f"postgres://u:{MASK}@h:5432/db"),
    (
        "curl -H 'Authorization: Bearer abcdefghijklmnop' x",
        f"curl -H 'Authorization: Bearer {MASK}' x",
    ),
    ("token ghp_abcdefghijklmnopqrstuvwxyz0123", f"token {MASK}"),
    ("key sk-proj-abcdefghijklmnopqrstuv", f"key {MASK}"),
    ("anthropic sk-ant-api03-abcdefghijklmnopqrst", f"anthropic {MASK}"),
    ("slack xoxb-1234567890-abcdef", f"slack {MASK}"),
    ("aws AKIAABCDEFGHIJKLMNOP here", f"aws {MASK} here"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijkl", f"jwt {MASK}"),
    ("export PASSWORD=supersecret", f"export PASSWORD={MASK}"),
    ('{"api_key": "zzzzzzzzzz"}', f'{{"api_key": "{MASK}"}}'),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----", MASK),
    # ordinary text and data stay as they are
    (
        "the token count was 42 and the password policy is strict",
        "the token count was 42 and the password policy is strict",
    ),
    ({"max_tokens": 100, "inputTokens": 5}, {"max_tokens": 100, "inputTokens": 5}),
    ("https://example.com/path?q=1", "https://example.com/path?q=1"),
    ({"command": "ls -la /data"}, {"command": "ls -la /data"}),
    ("sk-short", "sk-short"),
]


@pytest.mark.parametrize("value,expected", CASES)
def test_redact(value, expected) -> None:
    assert redact(value) == expected


def test_input_is_not_modified() -> None:
    original = {"password": "x1234", "list": ["a"]}
    redact(original)
    assert original == {"password": "x1234", "list": ["a"]}
