"""The programs uploaded to servers (roles/phoenix_tools.py) are exactly what they import, and only need
the standard library: a module missing from the list would fail on the server, not here."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from roles import phoenix_tools

REPOSITORY = Path(__file__).resolve().parents[2]


def module_file(module: str) -> Path | None:
    """Given a dotted module name, returns its file in the repository (None when it is not ours)."""
    base = REPOSITORY.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Given a Python file, returns every module it imports, at any depth of the file
    (`from phoenix.remote import restore` counts as phoenix.remote.restore)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            found.add(node.module)
            found |= {
                f"{node.module}.{alias.name}" for alias in node.names if module_file(f"{node.module}.{alias.name}")
            }
    return found


def import_graph(entries: list[str]) -> tuple[dict[str, set[str]], set[str]]:
    """Given entry modules, returns (ours: module -> our modules it imports, the foreign modules imported)."""
    graph, foreign, pending = {}, set(), list(entries)
    while pending:
        module = pending.pop()
        if module in graph:
            continue
        graph[module] = set()
        parts = module.split(".")
        parents = {".".join(parts[:depth]) for depth in range(1, len(parts))}  # their __init__.py runs first
        for imported in imported_modules(module_file(module)) | parents:
            if module_file(imported):
                graph[module].add(imported)
                pending.append(imported)
            else:
                foreign.add(imported)
    return graph, foreign


def cycle_in(graph: dict[str, set[str]]) -> list[str]:
    """Returns one import cycle of the graph as a path of modules, or [] when there is none."""
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> list[str]:
        state[module] = "open"
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                return path + [module, imported]
            if imported not in state and (found := visit(imported, path + [module])):
                return found
        state[module] = "done"
        return []

    for module in sorted(graph):
        if module not in state and (found := visit(module, [])):
            return found
    return []


def relative_file(module: str) -> str:
    return str(module_file(module).relative_to(REPOSITORY))


def test_the_uploaded_modules_are_exactly_the_import_closure_of_the_server_programs():
    graph, _ = import_graph(list(phoenix_tools.PROGRAMS.values()))
    assert sorted(relative_file(module) for module in graph) == sorted(phoenix_tools.MODULES)


def test_the_server_programs_import_only_the_standard_library_and_each_other():
    _, foreign = import_graph(list(phoenix_tools.PROGRAMS.values()))
    assert sorted(name for name in foreign if name.split(".")[0] not in sys.stdlib_module_names) == []


def test_the_server_programs_have_no_import_cycle():
    graph, _ = import_graph(list(phoenix_tools.PROGRAMS.values()))
    assert cycle_in(graph) == []


def test_a_cycle_is_found_when_there_is_one():
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": set()}) == []
