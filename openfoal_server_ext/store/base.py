"""The store interface: what the control plane persists, independent of the database.

DuckDB (``duckdb_store.py``) is the local default; a cloud instance plugs Postgres in behind
the same interface. Methods are synchronous and called from one writer thread
(:class:`~openfoal_server_ext.store.worker.StoreWorker`), so implementations need no locking.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from openfoal_kernel.protocol import AuditEntry, ChatMessage, GateItem, Policy, Session

#: The audit owner of entries in every trail (changes to the policy that governs everyone).
EVERYONE = "*"


@dataclass(kw_only=True)
class EventRow:
    """A numbered session event as stored."""

    session_id: str
    seq: int
    event: str
    payload: dict[str, Any]
    state_version: int
    at: datetime
    run_id: str | None = None
    trace_id: str | None = None


@dataclass(kw_only=True)
class MessageRow:
    """A transcript entry as stored (``idx`` orders a session's messages)."""

    session_id: str
    idx: int
    message: ChatMessage
    at: datetime
    run_id: str | None = None


@dataclass(kw_only=True)
class RunRow:
    """One run (turn) of a session."""

    id: str
    session_id: str
    owner: str
    trace_id: str
    status: str  # accepted | running | completed | failed | aborted | interrupted
    created_at: datetime
    input: str = ""
    model: str | None = None
    runtime_mode: str = "local"
    ended_at: datetime | None = None
    error: dict[str, Any] | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    policy_version: int | None = None
    #: Created by this process under a fresh id: its first write is a plain INSERT (half the
    #: cost of INSERT OR REPLACE, on the path of ``agent.accepted``). Never stored.
    new: bool = field(default=False, compare=False, repr=False)


@dataclass(kw_only=True)
class ToolRunRow:
    """One tool call and its result (``args``/``output`` already redacted by the caller)."""

    id: str  # the toolCallId (unique within a run, not across runs)
    session_id: str
    run_id: str
    trace_id: str
    tool_name: str
    args: dict[str, Any]
    status: str  # success | failed | denied | rejected | timeout
    duration_ms: float
    runtime_mode: str
    started_at: datetime
    ended_at: datetime
    output: str = ""  # bounded: the store keeps the first 16,384 characters
    error: dict[str, Any] | None = None


@dataclass(kw_only=True)
class AuditRow:
    """An audit entry and the owner whose trail it belongs to: the one user who may read it
    back (the session's owner for an entry about a session or run, else the actor)."""

    entry: AuditEntry
    owner: str


@dataclass(kw_only=True)
class IdempotencyRow:
    """The remembered answer of a side-effect request."""

    method: str
    key: str
    actor: str
    session_id: str
    params_hash: str
    response: dict[str, Any]
    created_at: datetime
    expires_at: datetime


@dataclass(kw_only=True)
class WriteBatch:
    """Rows written together in one transaction (the unit of durability)."""

    sessions: dict[str, Session] = field(default_factory=dict)  # last version per id wins
    runs: dict[str, RunRow] = field(default_factory=dict)
    events: list[EventRow] = field(default_factory=list)
    messages: list[MessageRow] = field(default_factory=list)
    audit: list[AuditRow] = field(default_factory=list)
    policies: list[Policy] = field(default_factory=list)
    #: gateId -> (latest state of the gate, its owner: the user whose session raised it)
    gates: dict[str, tuple[GateItem, str]] = field(default_factory=dict)
    tool_runs: list[ToolRunRow] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.sessions
            or self.runs
            or self.events
            or self.messages
            or self.audit
            or self.policies
            or self.gates
            or self.tool_runs
        )


class Store(ABC):
    """Persistence of sessions, runs, events, transcript, idempotency records and audit."""

    @abstractmethod
    def close(self) -> None:
        """Flush and close."""

    @abstractmethod
    def write_batch(self, batch: WriteBatch) -> None:
        """Write everything in ``batch`` in one transaction."""

    # sessions
    @abstractmethod
    def upsert_session(self, session: Session) -> None:
        """Insert or replace a session."""

    @abstractmethod
    def get_session(self, session_id: str) -> Session | None:
        """Return a session by id."""

    @abstractmethod
    def get_session_by_key(self, owner: str, session_key: str) -> Session | None:
        """Return the owner's session with this canonical key."""

    @abstractmethod
    def list_sessions(
        self, *, owner: str, limit: int, before: tuple[datetime, str] | None, query: str | None
    ) -> list[Session]:
        """Return the owner's sessions, newest update first, after the cursor position."""

    @abstractmethod
    def all_sessions(self) -> list[Session]:
        """Return every session (start-up bookkeeping)."""

    # runs
    @abstractmethod
    def upsert_run(self, run: RunRow) -> None:
        """Insert or replace a run."""

    @abstractmethod
    def get_run(self, run_id: str) -> RunRow | None:
        """Return a run by id."""

    @abstractmethod
    def unfinished_runs(self) -> list[RunRow]:
        """Runs that were accepted or running (used at start-up after a crash)."""

    # events
    @abstractmethod
    def append_events(self, rows: Sequence[EventRow]) -> None:
        """Append events in one batch (one transaction)."""

    @abstractmethod
    def get_events(self, session_id: str, *, after_seq: int, limit: int) -> list[EventRow]:
        """Return a session's events with ``seq > after_seq`` in order."""

    @abstractmethod
    def run_events(self, run_id: str) -> list[EventRow]:
        """Return every event of one run in order."""

    @abstractmethod
    def last_seqs(self) -> dict[str, int]:
        """Return the highest stored ``seq`` of each session."""

    @abstractmethod
    def max_state_version(self) -> int:
        """Return the highest stored ``stateVersion``."""

    # transcript
    @abstractmethod
    def append_messages(self, rows: Sequence[MessageRow]) -> None:
        """Append transcript entries in one batch."""

    @abstractmethod
    def get_messages(self, session_id: str) -> list[MessageRow]:
        """Return a session's transcript in order."""

    @abstractmethod
    def delete_session(self, session_id: str) -> None:
        """Delete a session, its events and its transcript (runs, tool runs and audit stay)."""

    # idempotency
    @abstractmethod
    def get_idempotency(
        self, method: str, key: str, actor: str, session_id: str
    ) -> IdempotencyRow | None:
        """Return an unexpired idempotency record."""

    @abstractmethod
    def put_idempotency(self, row: IdempotencyRow) -> None:
        """Store an idempotency record."""

    @abstractmethod
    def purge_idempotency(self, now: datetime) -> int:
        """Delete expired records; return how many."""

    # audit
    @abstractmethod
    def append_audit(self, rows: Sequence[AuditRow | AuditEntry]) -> None:
        """Append audit entries in one batch (a bare ``AuditEntry`` belongs to its actor)."""

    @abstractmethod
    def query_audit(
        self,
        *,
        owner: str | None,
        from_: datetime | None = None,
        to: datetime | None = None,
        actor: str | None = None,
        action: str | None = None,
        session_id: str | None = None,
        run_id: str | None = None,
        trace_id: str | None = None,
        limit: int = 100,
        before: tuple[datetime, str] | None = None,
    ) -> list[AuditEntry]:
        """The owner's entries matching every given filter, newest first (``ts``, then ``id``),
        strictly after the keyset cursor ``before = (ts, id)``; ``from_`` inclusive, ``to`` not."""

    @abstractmethod
    def audit_for_run(self, run_id: str) -> list[AuditEntry]:
        """Every audit entry of one run, oldest first."""

    # policies
    @abstractmethod
    def append_policies(self, policies: Sequence[Policy]) -> None:
        """Store policy versions (every version of every scope is kept)."""

    @abstractmethod
    def latest_policies(self) -> dict[str, Policy]:
        """The newest version of each policy scope."""

    @abstractmethod
    def policy_versions(self, scope_key: str) -> list[Policy]:
        """Every stored version of a scope, oldest first."""

    # gates
    @abstractmethod
    def upsert_gates(self, gates: Sequence[tuple[GateItem, str]]) -> None:
        """Insert or replace gates by ``gateId``, each with its owner."""

    @abstractmethod
    def pending_gates(self) -> list[tuple[GateItem, str]]:
        """Gates still pending, oldest first, with their owners."""

    @abstractmethod
    def get_gate(self, gate_id: str) -> tuple[GateItem, str] | None:
        """A gate and its owner."""

    @abstractmethod
    def list_gates(
        self,
        *,
        owner: str | None,
        status: str | None = None,
        session_id: str | None = None,
        limit: int = 100,
        tool_name: str | None = None,
        gate_id: str | None = None,
    ) -> list[GateItem]:
        """Gates newest first, of one owner (``None``: everyone's), optionally of one tool or
        the one gate ``gate_id``."""

    # tool runs and metrics
    @abstractmethod
    def append_tool_runs(self, rows: Sequence[ToolRunRow]) -> None:
        """Append finished tool calls in one batch."""

    @abstractmethod
    def tool_runs_of(self, run_id: str) -> list[ToolRunRow]:
        """The tool runs of one run, in the order they started."""

    @abstractmethod
    def metrics(
        self, from_: datetime | None, to: datetime | None, owner: str | None = None
    ) -> dict[str, Any]:
        """Run, tool and gate figures for ``metrics.summary`` over ``[from_, to)``, of the
        runs of ``owner`` (every owner's with ``None``)."""

    @abstractmethod
    def metrics_series(
        self, from_: datetime, to: datetime, bucket_s: int, owner: str | None = None
    ) -> dict[str, Any]:
        """Per-bucket figures and tool calls by tool over ``[from_, to)`` (``rows.series_*``),
        of ``owner``'s runs (every owner's with ``None``)."""
