"""Reading, appending and archiving the memory files, confined to the workspace.

Layout: ``MEMORY.md`` holds long-term facts, ``memory/YYYY-MM-DD.md`` the notes of one day and
``memory/archive/YYYY-MM-DD.md`` archived days. Appends and archiving hold an exclusive lock on
``memory/.lock`` (so the agent and the gateway never interleave), appends are fsynced, and the
archive is rewritten atomically (temp file, fsync, rename). Archiving merges the day's note into
its archive file without repeating what is already there, so it is lossless and idempotent.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

from ..executors.confine import Confined, Roots, lstat_at, write_atomic
from ..protocol.errors import ErrorCode, OpenFoalError

LONG_TERM = "MEMORY.md"
DAILY_DIR = "memory"
ARCHIVE_DIR = "memory/archive"
#: Bound on what one read returns (a longer file comes back cut, with a marker line).
MAX_READ_BYTES = 1024 * 1024
#: Bound on the text of one append.
MAX_APPEND_BYTES = 64 * 1024
#: Bound on each file's share of the prompt context, in characters.
PROMPT_SECTION_CHARS = 16_000

_DAILY = re.compile(r"^memory/(\d{4}-\d{2}-\d{2})\.md$")
_LOCK = "memory/.lock"


def _confined(workspace: Path) -> Confined:
    return Confined(Roots(Path(workspace)))


def parse_day(value: date | str | None, *, default: date | None = None) -> date:
    """A date from a ``date``, an ISO ``YYYY-MM-DD`` string, or ``default`` (today)."""
    if value is None:
        return default or date.today()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass  # e.g. 2024-02-30
    raise OpenFoalError(ErrorCode.INVALID_REQUEST, f"invalid date {value!r}: use YYYY-MM-DD")


def daily_path(day: date) -> str:
    """Workspace-relative path of the daily note of ``day``."""
    return f"{DAILY_DIR}/{day.isoformat()}.md"


def archive_path(day: date) -> str:
    """Workspace-relative path of the archived note of ``day``."""
    return f"{ARCHIVE_DIR}/{day.isoformat()}.md"


def check_memory_path(path: str) -> str:
    """Accept only ``MEMORY.md`` or ``memory/YYYY-MM-DD.md`` (a real date); else raise."""
    norm = path.strip().removeprefix("./") if isinstance(path, str) else ""
    if norm == LONG_TERM:
        return norm
    m = _DAILY.match(norm)
    if m:
        try:
            parse_day(m.group(1))
            return norm
        except OpenFoalError:
            pass  # not a real date: refused below like any other path
    raise OpenFoalError(
        ErrorCode.INVALID_REQUEST,
        f"memory path {path!r} refused: only {LONG_TERM} or {DAILY_DIR}/YYYY-MM-DD.md",
    )


def _read(confined: Confined, path: str, max_bytes: int = MAX_READ_BYTES) -> str:
    """The text of a confined file ('' when missing), cut at ``max_bytes`` with a marker."""
    try:
        fd, _ = confined.open_file(path, os.O_RDONLY)
    except OpenFoalError as exc:
        if exc.code == ErrorCode.NOT_FOUND:
            return ""
        raise
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(max_bytes + 1)
    text = data[:max_bytes].decode("utf-8", "replace")
    if len(data) > max_bytes:
        text += f"\n[memory file truncated at {max_bytes} bytes]\n"
    return text


def read_memory(workspace: Path, path: str) -> str:
    """Return a memory file's content ('' when it does not exist yet)."""
    return _read(_confined(workspace), check_memory_path(path))


@contextmanager
def _locked(confined: Confined) -> Iterator[None]:
    """Hold the exclusive memory lock (an flock on ``memory/.lock``)."""
    fd, _ = confined.open_file(_LOCK, os.O_RDWR | os.O_CREAT, mode=0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _append(confined: Confined, path: str, block: bytes, header: bytes) -> int:
    """Append ``block`` (``header`` first when the file is new or empty), fsynced."""
    fd, _ = confined.open_file(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with os.fdopen(fd, "ab") as fh:
        data = (header + block) if os.fstat(fh.fileno()).st_size == 0 else block
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return len(data)


def append_daily(
    workspace: Path, text: str, *, also_long_term: bool = False, today: date | None = None
) -> tuple[str, int]:
    """Append ``text`` to today's note (and ``MEMORY.md``); return (path, bytes appended)."""
    body = text.strip("\n")
    if not body.strip():
        raise OpenFoalError(ErrorCode.INVALID_REQUEST, "memory text is empty")
    block = (body + "\n\n").encode("utf-8")
    if len(block) > MAX_APPEND_BYTES:
        msg = f"memory text is {len(block)} bytes; the limit is {MAX_APPEND_BYTES}"
        raise OpenFoalError(ErrorCode.INVALID_REQUEST, msg)
    day = today or date.today()
    path = daily_path(day)
    confined = _confined(workspace)
    with _locked(confined):
        written = _append(confined, path, block, f"# {day.isoformat()}\n\n".encode())
        if also_long_term:
            _append(confined, LONG_TERM, block, b"# Long-term memory\n\n")
    return path, written


def archive(
    workspace: Path, *, date: date | str | None = None, clear_daily: bool = False
) -> tuple[bool, str]:
    """Merge a day's note into ``memory/archive/``; return (archived, archive path).

    ``archived`` is False when that day has no note. The archive keeps everything ever archived
    for the day: the note is added after the longest tail of the archive it starts with, so
    archiving twice adds nothing. With ``clear_daily`` the daily note is removed afterwards.
    """
    day = parse_day(date)
    src, dst = daily_path(day), archive_path(day)
    confined = _confined(workspace)
    with _locked(confined):
        note = _read(confined, src, MAX_READ_BYTES * 4)
        if not note:
            return False, dst
        old = _read(confined, dst, MAX_READ_BYTES * 8)
        merged = old + note[_overlap(old, note) :]
        if merged != old:
            write_atomic(confined, dst, merged.encode("utf-8"))
        if clear_daily:
            with confined.open_parent(src) as (parent, name, _):
                if lstat_at(parent, name) is not None:
                    os.unlink(name, dir_fd=parent)
    return True, dst


def _overlap(old: str, new: str) -> int:
    """Length of the longest suffix of ``old`` that is a prefix of ``new`` (KMP)."""
    if not old or not new:
        return 0
    s = new + "\x00" + old[-len(new) :]
    pi = [0] * len(s)
    for i in range(1, len(s)):
        k = pi[i - 1]
        while k and s[i] != s[k]:
            k = pi[k - 1]
        if s[i] == s[k]:
            k += 1
        pi[i] = k
    return pi[-1]


def prompt_context(workspace: Path, *, today: date | None = None) -> str:
    """``MEMORY.md`` and the daily notes of today and yesterday, for the main session's prompt."""
    day = today or date.today()
    confined = _confined(workspace)
    sections: list[str] = []
    long_term = _read_for_prompt(confined, LONG_TERM)
    if long_term:
        if len(long_term) > PROMPT_SECTION_CHARS:  # the head of MEMORY.md matters most
            long_term = long_term[:PROMPT_SECTION_CHARS] + "\n[...]"
        sections.append(f"## {LONG_TERM}\n\n{long_term}")
    for d in (day - timedelta(days=1), day):
        note = _read_for_prompt(confined, daily_path(d))
        if note:
            if len(note) > PROMPT_SECTION_CHARS:  # the latest notes matter most
                note = "[...]\n" + note[-PROMPT_SECTION_CHARS:]
            sections.append(f"## {daily_path(d)}\n\n{note}")
    return "\n\n".join(sections)


def _read_for_prompt(confined: Confined, path: str) -> str:
    """A memory file for the prompt; an unreadable one becomes a note, never a failed run."""
    try:
        return _read(confined, path).strip()
    except OpenFoalError as exc:
        return f"[{path} could not be read: {exc.message}]"
