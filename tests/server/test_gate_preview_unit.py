"""The preview of a gated file.write: a unified diff against the workspace file as it is."""

from __future__ import annotations

import os
from pathlib import Path

from openfoal_server_ext.services.gate_preview import MAX_DIFF_CHARS, file_write_preview


def test_replacing_a_file_shows_removed_and_added_lines(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("one\ntwo\nthree\n")
    got = file_write_preview(tmp_path, {"path": "notes.txt", "content": "one\n2\nthree\n"})
    assert got is not None and got.exists and got.note is None
    assert got.diff.splitlines()[:2] == ["--- a/notes.txt", "+++ b/notes.txt"]
    assert "-two\n+2\n" in got.diff and (got.added, got.removed) == (1, 1)
    assert (tmp_path / "notes.txt").read_text() == "one\ntwo\nthree\n"  # nothing written


def test_a_new_file_and_an_append(tmp_path: Path) -> None:
    new = file_write_preview(tmp_path, {"path": "sub/new.md", "content": "# hi\n"})
    assert new is not None and not new.exists and new.diff.startswith("--- /dev/null\n")
    assert new.added == 1 and new.removed == 0
    (tmp_path / "log.txt").write_text("a\n")
    more = file_write_preview(tmp_path, {"path": "log.txt", "content": "b\n", "append": True})
    assert more is not None and more.diff.endswith("+b\n") and more.removed == 0
    same = file_write_preview(tmp_path, {"path": "log.txt", "content": "a\n"})
    assert same is not None and same.diff == "" and same.added == same.removed == 0


def test_no_diff_where_the_file_cannot_be_read(tmp_path: Path) -> None:
    outside = file_write_preview(tmp_path, {"path": "../escape.txt", "content": "x"})
    assert outside is not None and outside.note and "refused" in outside.note
    (tmp_path / "blob.bin").write_bytes(b"\xff\xfe\x00")
    binary = file_write_preview(tmp_path, {"path": "blob.bin", "content": "x"})
    assert binary is not None and binary.note == "the current file is not UTF-8 text"
    os.symlink("/etc/passwd", tmp_path / "link")
    link = file_write_preview(tmp_path, {"path": "link", "content": "x"})
    assert link is not None and link.note and link.diff == ""
    assert file_write_preview(tmp_path, {"path": 3, "content": "x"}) is None


def test_a_long_diff_is_cut_and_secrets_are_masked(tmp_path: Path) -> None:
    big = "".join(f"line {n}\n" for n in range(60_000))
    got = file_write_preview(tmp_path, {"path": "big.txt", "content": big})
    assert got is not None and got.truncated and len(got.diff) <= MAX_DIFF_CHARS
    assert got.added == 60_000
    key = "sk-" + "a1B2c3D4e5" * 4
    secret = file_write_preview(tmp_path, {"path": "env", "content": f"OPENAI_API_KEY={key}\n"})
    assert secret is not None and key not in secret.diff
