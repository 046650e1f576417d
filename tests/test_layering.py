"""The import graph keeps the architecture's shape: no cycles, the core never imports a surface.

Every module under ``agent_tools/`` and ``bots/`` is read with ``ast`` (nothing is imported, so no
side effects), every import in it is resolved to the project module it names — including imports
inside functions, which are still dependencies — and the graph is checked against the rooms:

    cli                 the `videogen` command (and `python -m agent_tools`); may start any surface,
                        and nothing imports it
    mcp_server, web,    surfaces; may import the core, never the CLI or another surface
    bots
    chat                the chat agent loop, a layer shared by surfaces (``videogen chat``, the bot):
                        it imports only the core, and surfaces may import it
    everything else     the core; imports no surface

A failure names the file, the line and the import that breaks the rule.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agent_tools", "bots")
SURFACES = ("agent_tools.cli", "agent_tools.mcp_server", "agent_tools.web", "agent_tools.chat", "bots")
SHARED = ("agent_tools.chat",)
"""Rooms above the core that other surfaces may import; they themselves import only the core."""


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    where: str  # "path:line"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is a project module (``a.b.C`` → ``a.b``)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[Edge]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    edges = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from pkg import sub` imports the sub-module pkg.sub when there is one
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        targets = {target for name in names if (target := resolve(name, modules)) is not None}
        # `from pkg import sub` resolves both to pkg.sub and pkg; keep the most specific
        for target in targets:
            if target != module and not any(other.startswith(target + ".") for other in targets):
                edges.append(Edge(module, target, where))
    return edges


def import_graph() -> list[Edge]:
    modules = project_modules()
    return [edge for module, path in modules.items() for edge in imports_of(module, path, modules)]


def room(module: str) -> str:
    if module == "agent_tools.__main__":  # `python -m agent_tools` is the CLI by another name
        return "agent_tools.cli"
    for surface in SURFACES:
        if module == surface or module.startswith(surface + "."):
            return surface
    return "core"


def is_package_init(module: str) -> bool:
    return (ROOT / Path(*module.split(".")) / "__init__.py").is_file()


def test_the_graph_is_read():
    """Guards the guard: the parser sees the imports it must judge."""
    edges = import_graph()
    pairs = {(e.source, e.target) for e in edges}
    assert ("agent_tools.toolkit", "agent_tools.ledger") in pairs
    assert ("agent_tools.mcp_server.server", "agent_tools.mcp_server.render") in pairs  # from . import render
    assert ("agent_tools.cli.mcp", "agent_tools.mcp_server.server") in pairs  # inside a function
    assert ("bots.discord.app", "agent_tools.toolkit") in pairs
    assert ("agent_tools.cli.chat", "agent_tools.chat.agent") in pairs
    assert len(project_modules()) > 60


def test_no_core_module_imports_a_surface():
    offending = [f"{e.where}: {e.source} (core) imports {e.target} ({room(e.target)})"
                 for e in import_graph() if room(e.source) == "core" and room(e.target) != "core"]
    assert not offending, "the core must not import a surface:\n" + "\n".join(offending)


def test_surfaces_import_no_other_surface_and_nothing_imports_the_cli():
    offending = []
    for e in import_graph():
        source, target = room(e.source), room(e.target)
        if target == "agent_tools.cli" and source != "agent_tools.cli":
            offending.append(f"{e.where}: {e.source} imports the CLI ({e.target})")
        elif source not in ("core", "agent_tools.cli", target) and target != "core" \
                and not (target in SHARED and source not in SHARED):
            offending.append(f"{e.where}: surface {e.source} imports another surface's {e.target}")
    assert not offending, "\n".join(offending)


def test_no_import_cycles():
    """Between modules; a package's ``__init__`` re-exporting its own sub-modules is not a cycle."""
    graph: dict[str, list[Edge]] = {}
    for e in import_graph():
        if is_package_init(e.source) and e.target.startswith(e.source + "."):
            continue
        graph.setdefault(e.source, []).append(e)
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n\n".join(
        "\n".join(f"  {e.where}: {e.source} → {e.target}" for e in cycle) for cycle in cycles)


def find_cycles(graph: dict[str, list[Edge]]) -> list[list[Edge]]:
    """One cycle per strongly connected component that has one (iterative DFS, no recursion limit)."""
    cycles, state, stack = [], {}, []
    for start in sorted(graph):
        if state.get(start):
            continue
        work = [(start, iter(graph.get(start, ())))]
        state[start] = "open"
        while work:
            node, edges = work[-1]
            edge = next(edges, None)
            if edge is None:
                state[node] = "done"
                work.pop()
                if stack:
                    stack.pop()
                continue
            if state.get(edge.target) == "open":
                at = next(i for i, e in enumerate(stack) if e.source == edge.target) if any(
                    e.source == edge.target for e in stack) else len(stack)
                cycles.append([*stack[at:], edge])
            elif not state.get(edge.target):
                state[edge.target] = "open"
                stack.append(edge)
                work.append((edge.target, iter(graph.get(edge.target, ()))))
    return cycles


def test_a_shared_layer_imports_only_the_core():
    offending = [f"{e.where}: {e.source} imports {e.target} ({room(e.target)})" for e in import_graph()
                 if room(e.source) in SHARED and room(e.target) not in ("core", room(e.source))]
    assert not offending, "\n".join(offending)


@pytest.mark.parametrize("package", ["agent_tools", "agent_tools.cli", "agent_tools.mcp_server", "agent_tools.web",
                                     "agent_tools.agent", "agent_tools.chat",
                                     "agent_tools.catalog", "agent_tools.providers", "agent_tools.simulator",
                                     "bots", "bots.discord"])
def test_every_package_says_what_it_is_for(package):
    path = ROOT / Path(*package.split(".")) / "__init__.py"
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert docstring and len(docstring) > 40, f"{path.relative_to(ROOT)} needs a docstring"


def test_find_cycles_reports_a_cycle_and_only_a_cycle():
    """The cycle finder itself, on a graph with a known cycle and a diamond that is not one."""
    edge = lambda a, b: Edge(a, b, f"{a}.py:1")  # noqa: E731
    graph = {"a": [edge("a", "b"), edge("a", "c")], "b": [edge("b", "d")], "c": [edge("c", "d")],
             "d": [edge("d", "e")], "e": [edge("e", "b")]}
    cycles = find_cycles(graph)
    assert [[(e.source, e.target) for e in cycle] for cycle in cycles] == [[("b", "d"), ("d", "e"), ("e", "b")]]
    assert find_cycles({"a": [edge("a", "b")], "b": [], "c": [edge("c", "b")]}) == []
