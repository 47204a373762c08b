"""Policy: versioned per scope, changed by merge patch against an expected version, audited.

Every version of every scope is kept in the store. A change is validated as a whole (the
merged policy must be valid), written as version + 1, audited with its diff, committed, and
only then announced to every connected client (``policy.updated``). Runs take a snapshot of
the policy in force when they start (``RunRow.policy_version``).
"""

from __future__ import annotations

import asyncio
import functools
import re
import uuid
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator

from openfoal_kernel.policy.published import publish_policy
from openfoal_kernel.protocol import ErrorCode, OpenFoalError, Policy, utcnow
from openfoal_kernel.protocol.events import POLICY_UPDATED
from openfoal_kernel.protocol.types import Rule

from ..store import StoreWorker
from ..store.base import EVERYONE
from .audit import AuditService
from .hub import EventHub
from .team_policy import tighten

DEFAULT_SCOPE = "default"
#: Fields a patch may change; the others (scopeKey, version, updatedAt, updatedBy) are the server's.
PATCHABLE: tuple[str, ...] = (
    "toolDefault",
    "highRisk",
    "bashMode",
    "tools",
    "network",
    "gateTimeoutSec",
    "sandboxDegrade",
)
SERVER_FIELDS: tuple[str, ...] = ("scopeKey", "version", "updatedAt", "updatedBy")
#: The longest a gate may wait for a decision (7 days).
MAX_GATE_TIMEOUT_SEC = 7 * 24 * 3600
_SCOPE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:/._@\-]{0,199}$")
_PORT_SUFFIX = re.compile(r"^(\[[^\]]+\]|[^:]+):(\d+)$")


@functools.cache
def known_tools() -> frozenset[str]:
    """The wire names of the agent's tools (``bash.exec`` ...), as a policy may name them."""
    from openfoal_kernel.tools.registry import default_tools

    return frozenset(default_tools())


def _tool_name(name: str) -> str:
    # the model-facing alias (``bash_exec``) names the same tool
    aliases = {n.replace(".", "_"): n for n in known_tools()}
    return aliases.get(name, name)


def host_pattern(raw: str) -> str:
    """A ``network.allow`` entry, checked and lower-cased: ``host``, ``*.domain``, ``host:port``."""
    from openfoal_kernel.tools.netguard import canonical_host

    text = raw.strip().lower()
    host = text
    match = _PORT_SUFFIX.match(text)
    if match:
        host, port = match.group(1), int(match.group(2))
        if not 1 <= port <= 65535:
            raise ValueError(f"{raw!r}: port {port} is out of range")
    if host.startswith("*."):
        host = host[2:]
    try:
        canonical_host(host)
    except OpenFoalError:
        raise ValueError(f"{raw!r} is not a host pattern (host, *.domain or host:port)") from None
    return text


class _NetworkRules(BaseModel):
    """``network`` as a patch may set it (no other keys)."""

    model_config = ConfigDict(extra="forbid")

    allow: list[str] = Field(default_factory=list, max_length=1000)

    @field_validator("allow")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(host_pattern(p) for p in value))


class _Rules(BaseModel):
    """The patchable part of a policy, validated strictly (unknown keys refused)."""

    model_config = ConfigDict(extra="forbid")

    toolDefault: Rule
    highRisk: Rule
    bashMode: Literal["sandbox", "host"]
    tools: dict[str, Rule]
    network: _NetworkRules
    gateTimeoutSec: StrictInt = Field(ge=1, le=MAX_GATE_TIMEOUT_SEC)
    sandboxDegrade: Literal["local", "read-only", "fail"] | None = None

    @field_validator("tools")
    @classmethod
    def _known(cls, value: dict[str, Rule]) -> dict[str, Rule]:
        unknown = sorted(set(value) - known_tools())
        if unknown:
            raise ValueError(
                f"unknown tool {', '.join(map(repr, unknown))}; "
                f"known tools: {', '.join(sorted(known_tools()))}"
            )
        return dict(sorted(value.items()))


def _invalid(field: str, message: str) -> OpenFoalError:
    return OpenFoalError(
        ErrorCode.INVALID_REQUEST, f"patch.{field}: {message}", details={"field": field}
    )


def merge_patch(current: Policy, patch: dict[str, Any]) -> dict[str, Any]:
    """Apply a patch to the patchable fields of ``current`` and validate the result.

    Each field named replaces the old value as a whole (``tools`` and ``network`` included:
    send the full map or list); ``null`` resets a field to its default. Raises
    INVALID_REQUEST naming the first offending field.
    """
    if not patch:
        raise OpenFoalError(ErrorCode.INVALID_REQUEST, "patch is empty")
    for key in patch:
        if key in SERVER_FIELDS:
            raise _invalid(key, "is set by the server and cannot be patched")
        if key not in PATCHABLE:
            raise _invalid(key, f"unknown field; patchable fields: {', '.join(PATCHABLE)}")
    defaults = Policy().model_dump(mode="json")
    merged = {k: v for k, v in current.model_dump(mode="json").items() if k in PATCHABLE}
    for key, value in patch.items():
        if value is None:
            merged[key] = defaults.get(key)  # a field whose default is unset is left out
        elif key == "tools" and isinstance(value, dict):
            merged[key] = {_tool_name(str(name)): rule for name, rule in value.items()}
        else:
            merged[key] = value
    try:
        rules = _Rules.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise _invalid(where, first["msg"]) from exc
    return rules.model_dump(mode="json")


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The changed patchable fields, ``{field: {"from": old, "to": new}}``."""
    return {
        k: {"from": old.get(k), "to": new.get(k)} for k in PATCHABLE if old.get(k) != new.get(k)
    }


class PolicyService:
    """The policy in force for each scope, its history, and changes to it."""

    def __init__(
        self,
        worker: StoreWorker,
        hub: EventHub,
        audit: AuditService,
        *,
        publish_to: Path | None = None,
    ) -> None:
        self.worker = worker
        self.hub = hub
        self.audit = audit
        #: where the default policy is published for notebook turns (see policy.published)
        self.publish_to = publish_to
        self._current: dict[str, Policy] = {}
        self._lock = asyncio.Lock()
        #: the team's policy pulled from the cloud instance (see team_policy.py), if any
        self._team: Policy | None = None

    async def start(self) -> None:
        """Load the newest version of each scope; a new store gets the default policy (v1)."""
        self._current = await self.worker.call(self.worker.store.latest_policies)
        if DEFAULT_SCOPE not in self._current:
            policy = Policy(
                scopeKey=DEFAULT_SCOPE, version=1, updatedAt=utcnow(), updatedBy="system"
            )
            self._current[DEFAULT_SCOPE] = policy
            self.worker.stage_policy(policy)
            await self.audit.record_now(
                actor="system",
                owner="system",
                action="policy.create",
                resource=f"policy:{DEFAULT_SCOPE}",
                trace_id=uuid.uuid4().hex,
                detail={"scopeKey": DEFAULT_SCOPE, "version": 1, "policy": policy.wire()},
            )
        await self._publish()

    async def _publish(self) -> None:
        if self.publish_to is not None:
            await asyncio.to_thread(publish_policy, self.publish_to, self.current(DEFAULT_SCOPE))

    def current(self, scope_key: str = DEFAULT_SCOPE) -> Policy:
        """The policy in force for a scope (a scope never written falls back to ``default``)."""
        policy = self._current.get(scope_key) or self._current.get(DEFAULT_SCOPE)
        if policy is None:
            raise RuntimeError("PolicyService.start() has not run")
        if self._team is not None:
            return tighten(self._team, policy)  # the team's policy is never loosened here
        return policy

    async def apply_team(self, team: Policy) -> None:
        """Put a new version of the team's policy in force and announce it."""
        self._team = team
        await self._publish()
        self.hub.broadcast(
            POLICY_UPDATED,
            {
                "policy": self.current(DEFAULT_SCOPE).wire(),
                "team": {"version": team.version, "updatedBy": team.updatedBy},
            },
        )

    async def update(
        self,
        *,
        actor: str,
        trace_id: str,
        scope_key: str,
        patch: dict[str, Any],
        expected_version: int | None,
        governs: str | None = None,
    ) -> Policy:
        """Apply ``patch`` as the scope's next version; audited and committed before it is
        announced. VERSION_CONFLICT when ``expected_version`` is not the current version (0
        for a scope never written); INVALID_REQUEST for a bad patch.

        ``governs`` is whom the scope governs (an owner, or EVERYONE for ``default``): the
        change goes into their audit trail (and the actor's), and only their clients hear of
        it, unless it is EVERYONE or ``None`` (everyone hears)."""
        if not _SCOPE_KEY.match(scope_key):
            raise OpenFoalError(
                ErrorCode.INVALID_REQUEST,
                "scopeKey: 1-200 characters of letters, digits and : / . _ @ -",
            )
        async with self._lock:  # versions are numbered one change at a time
            stored = self._current.get(scope_key)
            version = stored.version if stored is not None else 0
            if expected_version is not None and expected_version != version:
                raise OpenFoalError(
                    ErrorCode.VERSION_CONFLICT,
                    f"policy {scope_key!r} is at version {version}, not {expected_version}",
                    details={"scopeKey": scope_key, "currentVersion": version},
                )
            base = stored if stored is not None else self.current(DEFAULT_SCOPE)
            rules = merge_patch(base, patch)
            policy = Policy.model_validate(
                {
                    **rules,
                    "scopeKey": scope_key,
                    "version": version + 1,
                    "updatedAt": utcnow(),
                    "updatedBy": actor,
                }
            )
            changes = diff(base.model_dump(mode="json"), policy.model_dump(mode="json"))
            # in force from here on: what is staged is what the store will hold
            self._current[scope_key] = policy
            self.worker.stage_policy(policy)
            trails = [governs or actor]
            if trails[0] not in (actor, EVERYONE):
                trails.append(actor)
            for owner in trails:
                self.audit.record(
                    actor=actor,
                    owner=owner,
                    action="policy.update",
                    resource=f"policy:{scope_key}",
                    trace_id=trace_id,
                    detail={
                        "scopeKey": scope_key,
                        "version": policy.version,
                        "previousVersion": version,
                        "patch": patch,
                        "diff": changes,
                    },
                )
            await self.worker.commit()
        if scope_key == DEFAULT_SCOPE:
            await self._publish()  # before the answer: the next notebook cell sees it
        owners: set[str] | None = None
        if governs is not None and governs != EVERYONE:
            owners = {governs, actor}  # one user's policy: only their clients hear of it
        self.hub.broadcast(POLICY_UPDATED, {"policy": policy.wire()}, owners=owners)
        return policy

    async def history(self, scope_key: str = DEFAULT_SCOPE) -> list[Policy]:
        """Every version of the scope ``current(scope_key)`` answers with, oldest first."""
        scope = self.current(scope_key).scopeKey
        await self.worker.commit()  # staged versions are part of the history
        return await self.worker.call(self.worker.store.policy_versions, scope)

    async def diff_versions(
        self, scope_key: str, from_version: int, to_version: int
    ) -> dict[str, Any]:
        """The patchable fields that differ between two stored versions of a scope,
        ``{"from", "to", "changes": {field: {"from", "to"}}}``; NOT_FOUND for a version
        the scope does not have."""
        versions = {p.version: p for p in await self.history(scope_key)}
        scope = self.current(scope_key).scopeKey
        for number in (from_version, to_version):
            if number not in versions:
                raise OpenFoalError(
                    ErrorCode.NOT_FOUND,
                    f"policy {scope!r} has no version {number} (it has 1 to {max(versions)})",
                    details={"scopeKey": scope, "version": number, "latest": max(versions)},
                )
        return {
            "from": from_version,
            "to": to_version,
            "changes": diff(
                versions[from_version].model_dump(mode="json"),
                versions[to_version].model_dump(mode="json"),
            ),
        }
