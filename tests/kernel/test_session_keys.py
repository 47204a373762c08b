"""Session keys are normalised to one canonical form before routing."""

from __future__ import annotations

import pytest

from openfoal_kernel.protocol.session_keys import SessionKeyError, canonical_session_key


@pytest.mark.parametrize(
    "raw,canonical",
    [
        ("workspace:w/agent:a/main", "workspace:w/agent:a/main"),
        (" Workspace:W /Agent: A/MAIN ", "workspace:w/agent:a/main"),
        ("workspace:Team A/agent:main/dm:Slack:U42", "workspace:team-a/agent:main/dm:slack:u42"),
        (
            "workspace:w/agent:a/group:teams:G 1:thread:T1",
            "workspace:w/agent:a/group:teams:g-1:thread:t1",
        ),
        ("workspace:w/agent:a/main:thread:x/y", "workspace:w/agent:a/main:thread:x%2Fy"),
        (
            "workspace:w/agent:a/dm:mail:bob@example.com",
            "workspace:w/agent:a/dm:mail:bob@example.com",
        ),
        ("workspace:w/agent:a/dm:c:a%b", "workspace:w/agent:a/dm:c:a%25b"),
    ],
)
def test_canonical(raw: str, canonical: str) -> None:
    assert canonical_session_key(raw) == canonical
    assert canonical_session_key(canonical) == canonical  # idempotent


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "main",
        "workspace:w/agent:a",
        "workspace:w/agent:a/chat:x",
        "workspace:/agent:a/main",
        "agent:a/workspace:w/main",
        "workspace:w/agent:a/dm:onlychannel",
        "workspace:w/agent:a/main:extra",
    ],
)
def test_refused(raw: str) -> None:
    with pytest.raises(SessionKeyError):
        canonical_session_key(raw)
