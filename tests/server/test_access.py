"""Who may read and change which policy scope."""

from __future__ import annotations

import pytest

from openfoal_kernel.protocol import ErrorCode, OpenFoalError
from openfoal_server_ext.services.access import Access
from openfoal_server_ext.store.base import EVERYONE

SESSIONS = {"ses_a": "alice", "ses_b": "bob"}


def owner_of(session_id: str) -> str | None:
    return SESSIONS.get(session_id)


@pytest.fixture
def access() -> Access:
    return Access("carol", ["dave"])


def test_admins_write_everything(access: Access) -> None:
    assert access.policy_write("carol", "default", owner_of) == EVERYONE
    assert access.policy_write("dave", "user:alice", owner_of) == "alice"
    assert access.policy_write("carol", "session:ses_b", owner_of) == "bob"
    assert access.policy_write("dave", "team-x", owner_of) == "dave"


@pytest.mark.parametrize(
    "scope", ["default", "user:bob", "session:ses_b", "session:ses_none", "team-x", "user:"]
)
def test_a_user_writes_only_their_own_scopes(access: Access, scope: str) -> None:
    with pytest.raises(OpenFoalError) as err:
        access.policy_write("alice", scope, owner_of)
    assert err.value.code is ErrorCode.FORBIDDEN


def test_own_scopes_are_writable_and_audited_to_their_owner(access: Access) -> None:
    assert access.policy_write("alice", "user:alice", owner_of) == "alice"
    assert access.policy_write("alice", "session:ses_a", owner_of) == "alice"


def test_reads(access: Access) -> None:
    access.policy_read("alice", "default", owner_of)
    access.policy_read("alice", "user:alice", owner_of)
    access.policy_read("carol", "user:alice", owner_of)
    for scope in ("user:bob", "session:ses_b"):
        with pytest.raises(OpenFoalError):
            access.policy_read("alice", scope, owner_of)
