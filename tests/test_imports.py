"""The house has no import circle: low modules never import high ones.

Reads every module's imports under bench/ with ``ast`` (imports inside functions
count: a late import still ties two modules; imports under ``if TYPE_CHECKING:``
do not, they never run) and fails on any cycle, naming it.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_imports(path: Path, package: str, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``path`` imports when it runs."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node)
               for child in node.body for n in ast.walk(child)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]  # `from bench import store`
        else:
            continue
        for name in names:
            while name and name not in known:  # `import bench.augment.core` ties to the nearest module
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted((ROOT / "bench").rglob("*.py"))
    known = {module_name(p) for p in paths}
    graph = {}
    for path in paths:
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = runtime_imports(path, package, known) - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_sees_a_circle_and_a_late_import(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("import os\nfrom bench import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from bench.a import g\n")
    (tmp_path / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bench.a import x\n")
    known = {"bench.a", "bench.b", "bench.c"}
    graph = {f"bench.{n}": runtime_imports(tmp_path / f"{n}.py", "bench", known) for n in "abc"}
    assert graph == {"bench.a": {"bench.b"}, "bench.b": {"bench.a"}, "bench.c": set()}
    assert find_cycle(graph) == ["bench.a", "bench.b", "bench.a"]
    assert find_cycle({"bench.a": {"bench.b"}, "bench.b": set()}) is None


def test_bench_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "bench.runner" in graph and "bench.config" in graph["bench.runner"]  # the graph was read
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_config_is_the_bottom_of_the_house() -> None:
    # The run id (config) and resource checks are what everything else reads; they import no other bench module.
    graph = import_graph()
    assert graph["bench.config"] == set()
    assert graph["bench.resources"] <= {"bench.errors"}
