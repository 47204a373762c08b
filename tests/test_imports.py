"""The import graph of both packages: no cycles, and the kernel never imports the server."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("openfoal_kernel", "openfoal_server_ext")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "labextension" in path.relative_to(ROOT).parts:
                continue
            found[_module_name(path)] = path
    return found


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ``from ... import`` names (relative levels resolved)."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(name: str, known: dict[str, Path]) -> str | None:
    """The project module an imported name lives in (itself, or the nearest package)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


Graph = dict[str, set[str]]


def import_graph() -> Graph:
    """Every import between project modules, including those inside functions."""
    known = _modules()
    graph: Graph = {m: set() for m in known}
    for module, path in known.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, path, node)
                names = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for name in names:
                target = _targets(name, known)
                if target is not None and target != module and not _is_parent(target, module):
                    graph[module].add(target)
    return graph


def _is_parent(target: str, module: str) -> bool:
    """A module always runs its packages' ``__init__``: that edge is no import of choice."""
    return module.startswith(target + ".")


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_cycle_finder_reports_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_imports_inside_functions_and_relative_imports() -> None:
    graph = import_graph()
    assert "openfoal_server_ext.services.registry" in graph["openfoal_server_ext.services.gates"]
    assert "openfoal_server_ext.services.assembly" in graph["openfoal_server_ext.app"]
    assert sum(len(targets) for targets in graph.values()) > 100


def test_no_import_cycles_among_project_modules() -> None:
    found = cycles(import_graph())
    assert found == [], f"import cycles: {found}"


def test_the_kernel_package_never_imports_the_server_extension() -> None:
    graph = import_graph()
    crossing = sorted(
        (a, b)
        for a, targets in graph.items()
        for b in targets
        if a.startswith("openfoal_kernel") and b.startswith("openfoal_server_ext")
    )
    assert crossing == []


def test_both_packages_are_marked_typed() -> None:
    for package in PACKAGES:
        assert (ROOT / package / "py.typed").is_file()


def test_sandbox_code_of_one_process_never_imports_another_process_code() -> None:
    sandbox = "openfoal_kernel.sandbox"
    sides = {f"{sandbox}.{side}" for side in ("host", "client", "inside")}

    def side_of(module: str) -> str | None:
        return next((s for s in sides if module == s or module.startswith(s + ".")), None)

    graph = import_graph()
    crossing = sorted(
        (a, b)
        for a, targets in graph.items()
        for b in targets
        if side_of(a) and side_of(b) and side_of(a) != side_of(b) and b != f"{sandbox}.inside"
    )
    assert crossing == []
    inside = [m for m in graph if side_of(m) == f"{sandbox}.inside"]
    assert sorted(inside) == [f"{sandbox}.inside{s}" for s in ("", ".relay", ".repl_server")]
    # What runs in a container imports no project module (it has only the stdlib).
    assert {m: graph[m] for m in inside} == {m: set() for m in inside}


def _imported_top_names(path: Path) -> set[str]:
    tops: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            tops.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.split(".")[0])
    return tops


def test_shipped_code_never_imports_test_tools() -> None:
    """The wheel's packages import neither pytest nor the unshipped test support package."""
    offenders = {
        module: sorted(_imported_top_names(path) & {"pytest", "openfoal_testing", "tests"})
        for module, path in _modules().items()
    }
    assert {m: names for m, names in offenders.items() if names} == {}


def test_test_modules_have_unique_names() -> None:
    """pytest imports test files by basename (no packages under tests/): two files of one
    name stop the whole collection."""
    names = [p.name for p in sorted((ROOT / "tests").rglob("test_*.py"))]
    assert sorted({n for n in names if names.count(n) > 1}) == []
