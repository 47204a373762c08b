"""A conflict the other side resolved: does this server's copy now agree with the cloud?

Two servers of one user hold a session in conflict; one of them resolves it. The other still
marks the session ``conflict``. It asks the cloud, with its conflicts poll, for the digest of
the cloud's copy of each session it holds in conflict (``SyncConflictsRequest.digests``).
When the cloud no longer lists the conflict and the digests agree (equal events and an equal
transcript: the other side's ``keep_cloud`` or ``fork`` kept this side's history), the
conflict ends here too. A copy that differs (the other side's ``keep_local``) keeps it, for a
resolution here. Both sides compute the digest with :func:`history_digest`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

import psycopg

from openfoal_kernel.protocol import ChatMessage

from ..store import Store

#: Sessions whose digest one poll asks for.
PER_POLL = 20
#: Seconds before a session whose copy differed is asked about again.
RECHECK_S = 60.0


def history_digest(
    events: Iterable[tuple[int, str, Any]], messages: Iterable[tuple[int, ChatMessage]]
) -> str:
    """A digest of a history: each event's (seq, event, payload), each entry's (idx, message),
    in order, as canonical JSON (the same on DuckDB and Postgres)."""
    h = hashlib.sha256()
    for seq, event, payload in events:
        h.update(json.dumps(["e", seq, event, payload], sort_keys=True).encode())
    for idx, message in messages:
        body = message.model_dump(mode="json", exclude_none=True)
        h.update(json.dumps(["m", idx, body], sort_keys=True).encode())
    return h.hexdigest()


def local_digest(store: Store, session_id: str) -> str:
    """The digest of this store's copy of a session (store thread)."""
    events = store.get_events(session_id, after_seq=0, limit=10_000_000)
    messages = store.get_messages(session_id)
    return history_digest(
        ((e.seq, e.event, e.payload) for e in events), ((m.idx, m.message) for m in messages)
    )


def cloud_digests(con: psycopg.Connection, owner: str, session_ids: list[str]) -> dict[str, str]:
    """Digests of the cloud's copies of ``owner``'s sessions among ``session_ids``."""
    owned = [
        r[0]
        for r in con.execute(
            "SELECT id FROM sessions WHERE id = ANY(%s) AND owner = %s", [session_ids, owner]
        ).fetchall()
    ]
    digests: dict[str, str] = {}
    for sid in owned:
        events = con.execute(
            "SELECT seq, event, payload::text FROM events WHERE session_id = %s ORDER BY seq",
            [sid],
        ).fetchall()
        messages = con.execute(
            "SELECT idx, data::text FROM messages WHERE session_id = %s ORDER BY idx", [sid]
        ).fetchall()
        digests[sid] = history_digest(
            ((int(seq), event, json.loads(payload)) for seq, event, payload in events),
            ((int(idx), ChatMessage.model_validate_json(data)) for idx, data in messages),
        )
    return digests
