"""The small POSIX shell programs the executor runs inside the sandbox, and path rules.

They need only ``/bin/sh`` and the usual utilities (busybox is enough), so any image works.
Each one reports its own failures with a reserved exit code that :mod:`.executor` turns into
a protocol error; the user's command never runs in the same shell, so it cannot fake them.
"""

from __future__ import annotations

import re

from ...executors.base import FileEntry
from ...executors.confine import split_under
from ..handle import WORKDIR

__all__ = [
    "EXIT_CWD_MISSING",
    "EXIT_SYMLINK",
    "KILL",
    "LIST",
    "READ",
    "RUN",
    "TOKEN_VAR",
    "WRITE",
    "container_path",
    "parse_listing",
]

#: Environment variable that tags every process of one call, so a kill finds them all.
TOKEN_VAR = "OPENFOAL_RUN"
EXIT_CWD_MISSING = 97
EXIT_NOT_FOUND = 44
EXIT_IS_DIR = 45
EXIT_NOT_REGULAR = 46
EXIT_NO_PARENT = 47
EXIT_WRITE_FAILED = 48
EXIT_NOT_DIR = 49
EXIT_SYMLINK = 50
#: Printed by RUN before EXIT_CWD_MISSING, so a user command exiting 97 is not mistaken.
CWD_MARKER = "\x1b[openfoal] no such directory: "

#: ``sh -c RUN openfoal COMMAND CWD``: run COMMAND with bash (sh when the image has none) in
#: CWD, in a process group of its own (setsid), and kill what is left of that group when it
#: exits, so background jobs cannot hold the output open past the call.
RUN = r"""
if ! cd -- "$2" 2>/dev/null; then
  printf '%s[openfoal] no such directory: %s\n' "$(printf '\033')" "$2" >&2; exit 97
fi
if [ -x /bin/bash ]; then sh=/bin/bash; else sh=/bin/sh; fi
if command -v setsid >/dev/null 2>&1; then
  setsid "$sh" -c "$1" & pid=$!
  wait "$pid"; rc=$?
  kill -9 "-$pid" 2>/dev/null
  exit "$rc"
fi
exec "$sh" -c "$1"
"""

#: ``sh -c KILL openfoal TOKEN``: SIGKILL every process whose environment carries the call's
#: token (children that started sessions of their own included), until none is left.
KILL = r"""
t="OPENFOAL_RUN=$1"; i=0
while [ "$i" -lt 20 ]; do
  found=
  for f in $(grep -l -a -F -- "$t" /proc/[0-9]*/environ 2>/dev/null); do
    p=${f#/proc/}; p=${p%/environ}
    [ "$p" = "$$" ] && continue
    kill -9 "$p" 2>/dev/null && found=1
  done
  [ -z "$found" ] && exit 0
  i=$((i + 1))
done
exit 1
"""

_NOLINK = r"""
# Refuse a path with a symbolic link in any component below the workspace (symlinks are
# never followed, so a tool cannot be pointed at the container's own files). Globbing is
# off: a component such as "[a]" must be checked as itself, not as the names it matches.
set -f
_nolink() {
  q=/workspace; rest=${1#/workspace}; old=$IFS; IFS=/
  for c in $rest; do [ -z "$c" ] && continue; q="$q/$c"; [ -L "$q" ] && exit 50; done
  IFS=$old
}
"""

#: ``sh -c READ openfoal PATH MAX_BYTES``: the first MAX_BYTES bytes of a regular file.
READ = (
    _NOLINK
    + r"""
p=$1
_nolink "$p"
[ -d "$p" ] && exit 45
if [ ! -e "$p" ]; then [ -L "$p" ] && exit 46; exit 44; fi
[ -f "$p" ] || exit 46
exec head -c "$2" -- "$p"
"""
)

#: ``sh -c WRITE openfoal PATH MODE`` with the data on stdin: MODE ``w`` replaces the file
#: (a temporary file renamed over it), ``a`` appends; missing parent folders are created.
WRITE = (
    _NOLINK
    + r"""
p=$1; d=${p%/*}; b=${p##*/}
_nolink "$p"
[ -d "$d" ] || mkdir -p -- "$d" || exit 47
[ -d "$p" ] && exit 45
if [ -e "$p" ] && [ ! -f "$p" ]; then exit 46; fi
if [ "$2" = a ]; then cat >> "$p" || exit 48; exit 0; fi
t="$d/.$b.$$.tmp"
if cat > "$t" && mv -f -- "$t" "$p"; then exit 0; fi
rm -f -- "$t"; exit 48
"""
)

#: ``sh -c LIST openfoal DIR``: one ``KIND/SIZE/./NAME`` line per entry (no symlink followed).
LIST = (
    _NOLINK
    + r"""
_nolink "$1"
[ -e "$1" ] || exit 44
[ -d "$1" ] || exit 49
cd -- "$1" || exit 46
exec find . -mindepth 1 -maxdepth 1 -exec stat -c '%F/%s/%n' -- {} +
"""
)

_KINDS = {
    "regular file": "file",
    "regular empty file": "file",
    "directory": "dir",
    "symbolic link": "symlink",
}
_LINE = re.compile(
    r"^(regular file|regular empty file|directory|symbolic link|fifo|socket|"
    r"character special file|block special file|weird file|unknown)/(\d+)/\./(.*)$",
    re.DOTALL,
)


def container_path(path: str, *, host_workspace: str | None = None) -> tuple[str, str]:
    """Map a tool path to ``(path inside the container, path as shown)``; refuse escapes.

    Relative paths are relative to the workspace; absolute ones must lie inside it, either
    as the container sees it (``/workspace/...``) or as the host does (``host_workspace``).
    """
    roots = [WORKDIR] + ([host_workspace] if host_workspace else [])
    _, parts = split_under(path, roots, relative_to=WORKDIR)
    shown = "/".join(parts) or "."
    return "/".join([WORKDIR, *parts]), shown


def parse_listing(text: str, shown_dir: str, max_entries: int) -> list[FileEntry]:
    """Turn LIST's output into sorted entries (names with newlines are joined back)."""
    records: list[list[str]] = []  # [kind, size, name]
    if text.endswith("\n"):
        text = text[:-1]
    for line in text.split("\n") if text else []:
        m = _LINE.match(line)
        if m:
            records.append([m.group(1), m.group(2), m.group(3)])
        elif records:
            records[-1][2] += "\n" + line  # a name that contains a newline
    records.sort(key=lambda r: r[2])
    prefix = "" if shown_dir == "." else shown_dir.rstrip("/") + "/"
    return [
        FileEntry(path=prefix + name, kind=_KINDS.get(kind, "other"), size=int(size))
        for kind, size, name in records[:max_entries]
    ]
