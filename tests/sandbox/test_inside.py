"""The scripts that run inside the containers import the stdlib only, and ship as source."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from openfoal_kernel.sandbox import inside

INSIDE = Path(inside.__file__).parent
SCRIPTS = sorted(p.stem for p in INSIDE.glob("*.py") if p.name != "__init__.py")


def _imported(script: str) -> list[tuple[int, str]]:
    """Every module a script imports: (relative level, top-level name)."""
    tree = ast.parse(inside.source(script), f"{script}.py")
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(0, alias.name.partition(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, (node.module or "").partition(".")[0]))
    return found


def test_the_folder_holds_the_repl_server_and_the_relay() -> None:
    assert SCRIPTS == ["relay", "repl_server"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_container_script_imports_only_the_stdlib(script: str) -> None:
    imported = _imported(script)
    assert imported, f"{script} imports nothing: the parse found no imports"
    outside = [
        name
        for level, name in imported
        if level or (name != "__future__" and name not in sys.stdlib_module_names)
    ]
    assert outside == [], f"{script} imports {outside}, which the container does not have"


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_container_script_runs_as_its_own_main(script: str) -> None:
    source = inside.source(script)
    assert source == (INSIDE / f"{script}.py").read_text("utf-8")
    assert 'if __name__ == "__main__":' in source
