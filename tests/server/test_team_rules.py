"""Team rules without a Hub: roles from groups, and the team policy never loosened."""

from __future__ import annotations

from datetime import timedelta

from openfoal_kernel.protocol.types import NetworkPolicy, Policy, utcnow
from openfoal_server_ext.services.roles import ADMIN, APPROVER, MEMBER, NO_TEAM_ROLES, TeamRoles
from openfoal_server_ext.services.team_policy import tighten

TEAM = TeamRoles(
    member_groups=("members",), approver_groups=("approvers",), admin_groups=("admins",)
)


def test_roles_come_from_groups() -> None:
    assert TEAM.roles_of(["members"]) == {MEMBER}
    assert TEAM.roles_of(["approvers"]) == {MEMBER, APPROVER}
    assert TEAM.roles_of(["admins", "other"]) == {MEMBER, APPROVER, ADMIN}
    assert TEAM.roles_of(["other"]) == frozenset()  # outside every group: refused
    assert TEAM.roles_of(None) == frozenset()


def test_without_member_groups_every_hub_user_is_a_member() -> None:
    roles = TeamRoles(approver_groups=("approvers",))
    assert roles.roles_of([]) == {MEMBER} and roles.roles_of(["approvers"]) == {MEMBER, APPROVER}


def test_no_team_means_no_cross_user_role() -> None:
    assert not TeamRoles().enabled
    assert TeamRoles().roles_of(["anything"]) == NO_TEAM_ROLES
    assert APPROVER not in NO_TEAM_ROLES


def test_tighten_takes_the_stricter_of_each_field() -> None:
    now = utcnow()
    team = Policy(
        toolDefault="gate",
        highRisk="deny",
        bashMode="sandbox",
        tools={"file.read": "deny", "http.request": "gate"},
        network=NetworkPolicy(allow=["api.example.com", "*.corp.example"]),
        gateTimeoutSec=300,
        updatedBy="alice",
        updatedAt=now,
    )
    own = Policy(
        version=7,
        toolDefault="allow",
        highRisk="gate",
        tools={
            "file.read": "allow",
            "http.request": "deny",
            "bash.exec": "allow",
            "python.exec": "gate",
        },
        network=NetworkPolicy(allow=["api.example.com", "evil.example"]),
        gateTimeoutSec=900,
        updatedBy="bob",
        updatedAt=now - timedelta(minutes=1),
    )
    got = tighten(team, own)
    assert (got.toolDefault, got.highRisk, got.bashMode) == ("gate", "deny", "sandbox")
    # own allows never lift the team's rules; own gates and denies stay
    assert got.tools == {"file.read": "deny", "http.request": "deny", "python.exec": "gate"}
    assert got.network.allow == ["api.example.com"]
    assert got.gateTimeoutSec == 300
    assert (got.version, got.updatedBy) == (7, "alice")


def test_tighten_with_an_empty_own_allowlist_takes_the_teams() -> None:
    team = Policy(network=NetworkPolicy(allow=["api.example.com"]))
    assert tighten(team, Policy()).network.allow == ["api.example.com"]
    assert tighten(Policy(), Policy(network=NetworkPolicy(allow=["x.example"]))).network.allow == []
