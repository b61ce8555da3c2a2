"""The import graph of crosslist (layers/shared/crosslist) has no cycle at all (make lint runs this beside
lint-imports, whose layer contracts are in pyproject.toml): each module's imports, those made for type checking
and inside functions included, lead back to it by no path."""

from __future__ import annotations

import grimp


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The graph's strongly connected components of more than one module (Tarjan's, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = []
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work.append((root, sorted(graph.find_modules_directly_imported_by(root))))
        while work:
            module, pending = work[-1]
            if pending:
                imported = pending.pop()
                if imported not in index:
                    index[imported] = low[imported] = counter
                    counter += 1
                    stack.append(imported)
                    on_stack.add(imported)
                    work.append((imported, sorted(graph.find_modules_directly_imported_by(imported))))
                elif imported in on_stack:
                    low[module] = min(low[module], index[imported])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _edges(graph: grimp.ImportGraph, component: list[str]) -> list[str]:
    members = set(component)
    return [
        f"{importer} -> {imported}"
        for importer in component
        for imported in sorted(graph.find_modules_directly_imported_by(importer))
        if imported in members
    ]


def test_crosslist_has_no_import_cycle() -> None:
    graph = grimp.build_graph("crosslist")
    cycles = _cycles(graph)
    assert cycles == [], "\n\n".join("\n".join(_edges(graph, component)) for component in cycles)


def test_the_check_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "a.one", "a.two", "a.three", "a.four"):
        graph.add_module(module)
    graph.add_import(importer="a.one", imported="a.two")
    graph.add_import(importer="a.two", imported="a.three")
    graph.add_import(importer="a.three", imported="a.one")
    graph.add_import(importer="a.four", imported="a.one")
    assert _cycles(graph) == [["a.one", "a.three", "a.two"]]
