"""PolicyService: versions, expected-version checks, validation, audit with diff, broadcast."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from openfoal_kernel.protocol import ErrorCode, OpenFoalError
from openfoal_server_ext.services.audit import AuditService
from openfoal_server_ext.services.hub import EventHub
from openfoal_server_ext.services.policy import PolicyService
from openfoal_server_ext.store import DuckDBStore, StoreWorker

pytestmark = pytest.mark.asyncio


async def _update(
    policies: PolicyService,
    patch: dict[str, Any],
    expected: int | None = None,
    scope: str = "default",
    actor: str = "alice",
):
    return await policies.update(
        actor=actor, trace_id="t" * 32, scope_key=scope, patch=patch, expected_version=expected
    )


async def test_first_start_stores_and_audits_the_default(
    policies: PolicyService, worker: StoreWorker
) -> None:
    policy = policies.current()
    assert (policy.version, policy.scopeKey, policy.updatedBy) == (1, "default", "system")
    assert policy.toolDefault == "allow" and policy.highRisk == "gate"
    assert [p.version for p in worker.store.policy_versions("default")] == [1]
    entries = worker.store.query_audit(owner="system", action="policy.create")
    assert len(entries) == 1 and entries[0].detail["policy"]["version"] == 1


async def test_restart_loads_the_newest_version_without_a_new_default(tmp_path: Path) -> None:
    path = tmp_path / "restart.duckdb"
    worker = StoreWorker(DuckDBStore(path))
    hub = EventHub(worker)
    await hub.start()
    audit = AuditService(worker)
    first = PolicyService(worker, hub, audit)
    await first.start()
    await _update(first, {"toolDefault": "gate"}, expected=1)
    worker.close()

    worker = StoreWorker(DuckDBStore(path))
    second = PolicyService(worker, EventHub(worker), AuditService(worker))
    await second.start()
    assert second.current().version == 2 and second.current().toolDefault == "gate"
    assert len(worker.store.query_audit(owner="system", action="policy.create")) == 1
    worker.close()


async def test_update_writes_the_next_version_and_keeps_every_version(
    policies: PolicyService, worker: StoreWorker
) -> None:
    v2 = await _update(policies, {"tools": {"bash.exec": "deny"}, "gateTimeoutSec": 60}, 1)
    assert (v2.version, v2.updatedBy, v2.tools, v2.gateTimeoutSec) == (
        2,
        "alice",
        {"bash.exec": "deny"},
        60,
    )
    assert v2.updatedAt > policies.current().updatedAt.replace(year=2000)
    v3 = await _update(
        policies, {"network": {"allow": ["API.example.com ", "*.example.org", "h:8080"]}}, 2
    )
    assert v3.version == 3 and v3.network.allow == ["api.example.com", "*.example.org", "h:8080"]
    assert v3.tools == {"bash.exec": "deny"}  # untouched fields carry over
    assert policies.current() == v3
    stored = worker.store.policy_versions("default")
    assert [p.version for p in stored] == [1, 2, 3]
    assert stored[1] == v2 and stored[2] == v3
    assert worker.store.latest_policies()["default"] == v3


async def test_update_is_audited_with_the_diff(
    policies: PolicyService, worker: StoreWorker
) -> None:
    await _update(
        policies, {"highRisk": "deny", "bashMode": "host", "tools": {"file.write": "gate"}}, 1
    )
    [entry] = worker.store.query_audit(owner="alice", action="policy.update")
    assert (
        entry.actor == "alice" and entry.resource == "policy:default" and entry.traceId == "t" * 32
    )
    assert entry.detail["version"] == 2 and entry.detail["previousVersion"] == 1
    # bashMode did not change, so it is not in the diff
    assert entry.detail["diff"] == {
        "highRisk": {"from": "gate", "to": "deny"},
        "tools": {"from": {}, "to": {"file.write": "gate"}},
    }


async def test_stale_expected_version_is_a_version_conflict(policies: PolicyService) -> None:
    await _update(policies, {"toolDefault": "gate"}, 1)
    with pytest.raises(OpenFoalError) as err:
        await _update(policies, {"toolDefault": "deny"}, 1)
    assert err.value.code is ErrorCode.VERSION_CONFLICT
    assert err.value.details == {"scopeKey": "default", "currentVersion": 2}
    assert policies.current().toolDefault == "gate" and policies.current().version == 2


async def test_concurrent_updates_with_one_expected_version_apply_once(
    policies: PolicyService,
) -> None:
    results = await asyncio.gather(
        _update(policies, {"toolDefault": "gate"}, 1, actor="alice"),
        _update(policies, {"toolDefault": "deny"}, 1, actor="bob"),
        return_exceptions=True,
    )
    conflicts = [r for r in results if isinstance(r, OpenFoalError)]
    assert len(conflicts) == 1 and conflicts[0].code is ErrorCode.VERSION_CONFLICT
    assert policies.current().version == 2


BAD_PATCHES = [
    ({}, None, "patch is empty"),
    ({"version": 9}, "version", "set by the server"),
    ({"updatedBy": "mallory"}, "updatedBy", "set by the server"),
    ({"updatedAt": "2020-01-01T00:00:00Z"}, "updatedAt", "set by the server"),
    ({"scopeKey": "other"}, "scopeKey", "set by the server"),
    ({"colour": "red"}, "colour", "unknown field"),
    ({"highRisk": "sometimes"}, "highRisk", "'allow', 'deny' or 'gate'"),
    ({"bashMode": "chroot"}, "bashMode", "'sandbox' or 'host'"),
    ({"tools": {"bash.exec": "maybe"}}, "tools.bash.exec", "'allow', 'deny' or 'gate'"),
    ({"tools": {"rm.rf": "deny"}}, "tools", "unknown tool 'rm.rf'"),
    ({"tools": ["bash.exec"]}, "tools", "valid dictionary"),
    ({"network": {"allow": ["not a host"]}}, "network.allow", "not a host pattern"),
    ({"network": {"allow": ["*"]}}, "network.allow", "not a host pattern"),
    ({"network": {"allow": ["h:70000"]}}, "network.allow", "out of range"),
    ({"network": {"allow": ["ok.example"], "deny": ["x"]}}, "network.deny", "Extra inputs"),
    ({"network": "everything"}, "network", "valid dictionary"),
    ({"gateTimeoutSec": 0}, "gateTimeoutSec", "greater than or equal to 1"),
    ({"gateTimeoutSec": "900"}, "gateTimeoutSec", "valid integer"),
    ({"gateTimeoutSec": 10**9}, "gateTimeoutSec", "less than or equal to 604800"),
]


@pytest.mark.parametrize(("patch", "field", "words"), BAD_PATCHES)
async def test_bad_patch_is_invalid_request_naming_the_field(
    policies: PolicyService,
    worker: StoreWorker,
    patch: dict[str, Any],
    field: str | None,
    words: str,
) -> None:
    with pytest.raises(OpenFoalError) as err:
        await _update(policies, patch, 1)
    assert err.value.code is ErrorCode.INVALID_REQUEST
    assert words in err.value.message
    if field is not None:
        assert err.value.message.startswith(f"patch.{field}:")
        assert err.value.details == {"field": field}
    # nothing changed, nothing written
    assert policies.current().version == 1
    assert [p.version for p in worker.store.policy_versions("default")] == [1]


async def test_null_resets_a_field_and_aliases_name_tools(policies: PolicyService) -> None:
    changed = await _update(policies, {"gateTimeoutSec": 30, "tools": {"bash_exec": "deny"}}, 1)
    assert changed.tools == {"bash.exec": "deny"}  # the model-facing alias names the same tool
    reset = await _update(policies, {"gateTimeoutSec": None, "tools": None}, 2)
    assert reset.gateTimeoutSec == 900 and reset.tools == {}


async def test_a_new_scope_starts_at_version_1_from_the_default_rules(
    policies: PolicyService,
) -> None:
    await _update(policies, {"highRisk": "deny"}, 1)
    assert policies.current("workspace:lab").scopeKey == "default"  # falls back until written
    with pytest.raises(OpenFoalError) as err:
        await _update(policies, {"toolDefault": "gate"}, 3, scope="workspace:lab")
    assert err.value.details["currentVersion"] == 0
    lab = await _update(policies, {"toolDefault": "gate"}, 0, scope="workspace:lab")
    assert (lab.scopeKey, lab.version, lab.highRisk, lab.toolDefault) == (
        "workspace:lab",
        1,
        "deny",
        "gate",
    )
    assert policies.current("workspace:lab") == lab
    assert policies.current().version == 2  # the default scope is untouched
    with pytest.raises(OpenFoalError) as bad:
        await _update(policies, {"toolDefault": "gate"}, None, scope="bad scope!")
    assert bad.value.code is ErrorCode.INVALID_REQUEST


async def test_update_is_broadcast_to_every_connection_after_commit(
    policies: PolicyService, hub: EventHub, worker: StoreWorker
) -> None:
    seen: dict[str, list[dict[str, Any]]] = {"alice": [], "bob": []}

    def subscriber(name: str):
        def push(frame: dict[str, Any]) -> None:
            # the change is durable before anyone hears of it
            version = frame["payload"]["policy"]["version"]
            stored = [p.version for p in worker.store.policy_versions("default")]
            seen[name].append({**frame, "stored": version in stored})

        return push

    hub.subscribe_owner("alice", subscriber("alice"))
    hub.subscribe_owner("bob", subscriber("bob"))
    before = hub.state_version
    policy = await _update(policies, {"toolDefault": "gate"}, 1)
    for frames in seen.values():
        [frame] = frames
        assert frame["event"] == "policy.updated" and "seq" not in frame
        assert frame["payload"] == {"policy": policy.wire()}
        assert frame["stateVersion"] == before + 1
        assert frame["stored"]
    assert hub.state_version == before + 1
