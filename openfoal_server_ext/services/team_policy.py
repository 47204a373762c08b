"""The team's policy on a user's server: pulled from the cloud instance, and never loosened.

A server with ``c.OpenFoalApp.team_policy_url`` polls the cloud instance's ``policy.get``
every few seconds. The policy in force is then the stricter of the team's and the server's
own for every field (:func:`tighten`): a member may tighten the team policy for their own
sessions, never loosen it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import httpx

from openfoal_kernel.protocol.types import NetworkPolicy, Policy

log = logging.getLogger(__name__)

_RANK = {"allow": 0, "gate": 1, "deny": 2}


def _stricter(a: str, b: str) -> str:
    return a if _RANK[a] >= _RANK[b] else b


def tighten(team: Policy, own: Policy) -> Policy:
    """The stricter of two policies, field by field (the own policy's scope and version).

    - ``toolDefault``, ``highRisk`` and each tool rule: the stricter of allow < gate < deny;
      an own tool rule the team does not name is kept unless it is ``allow`` (an allow could
      lift the team's ``highRisk`` or ``toolDefault``);
    - ``bashMode``: ``sandbox`` when either says so;
    - ``network.allow``: the own hosts that the team allows too (the team's list while the
      own one is empty);
    - ``gateTimeoutSec``: the shorter.
    """
    tools = {name: rule for name, rule in own.tools.items() if rule != "allow"}
    for name, rule in team.tools.items():
        mine = own.tools.get(name)
        tools[name] = _stricter(rule, mine) if mine is not None else rule  # type: ignore[assignment]
    hosts = (
        [h for h in own.network.allow if h in set(team.network.allow)]
        if own.network.allow
        else list(team.network.allow)
    )
    newer = team if team.updatedAt > own.updatedAt else own
    return own.model_copy(
        update={
            "toolDefault": _stricter(team.toolDefault, own.toolDefault),
            "highRisk": _stricter(team.highRisk, own.highRisk),
            "bashMode": "sandbox" if "sandbox" in (team.bashMode, own.bashMode) else "host",
            "tools": tools,
            "network": NetworkPolicy(allow=hosts),
            "gateTimeoutSec": min(team.gateTimeoutSec, own.gateTimeoutSec),
            "updatedBy": newer.updatedBy,
            "updatedAt": newer.updatedAt,
        }
    )


class TeamPolicyPoller:
    """Pulls the team policy from the cloud instance and hands each new version on."""

    def __init__(
        self,
        *,
        url: str,
        token: str,
        interval_s: float,
        on_policy: Callable[[Policy], Awaitable[None]],
    ) -> None:
        self.endpoint = url.rstrip("/") + "/openfoal/api/policy.get"
        self.token = token
        self.interval_s = interval_s
        self.on_policy = on_policy
        self.version: int | None = None
        self._task: asyncio.Task[None] | None = None

    async def poll_once(self, client: httpx.AsyncClient) -> bool:
        """Fetch the team policy; hand it on when its version is new. True when it was."""
        r = await client.post(
            self.endpoint, json={}, headers={"Authorization": f"token {self.token}"}
        )
        body = r.json()
        if not body.get("ok"):
            raise RuntimeError(f"the cloud instance refused policy.get: {body.get('error')}")
        policy = Policy.model_validate(body["payload"]["policy"])
        if policy.version == self.version:
            return False
        self.version = policy.version
        await self.on_policy(policy)
        return True

    async def _loop(self) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            while True:
                try:
                    await self.poll_once(client)
                except Exception as exc:  # the cloud being away never stops local work
                    log.warning("OpenFoal: team policy not pulled from %s: %s", self.endpoint, exc)
                await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        """Start polling in the background."""
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
