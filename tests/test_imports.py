"""The import graph of the product packages: no cycles, and the layers point one way.

Every import counts, wherever it is written: at the top, inside a function, or under
`if TYPE_CHECKING:` (a cycle a type checker needs is still two modules that cannot be
understood, or moved, one without the other). Read with `ast`, nothing is imported.
"""

from __future__ import annotations

import ast
import collections
import functools
import itertools
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    "agi",
    "ari_app",
    "db",
    "dialplan",
    "edge",
    "pbx",
    "queues",
    "siaga",
    "stack",
    "supervisor",
    "testbed",
)
# siaga (configuration) is the leaf; it may reuse the ACD's own vocabulary (queues.config).
SIAGA_MAY_IMPORT = {"siaga", "queues"}
# Test tooling (SIPp, sandboxes, PostgreSQL clusters) is for the command line only.
TESTBED_IMPORTERS = {"stack", "testbed"}

Graph = Mapping[str, frozenset[str]]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def product_files() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def statements(node: ast.AST) -> Iterable[ast.stmt]:
    """Every statement, however deeply nested (functions, classes, if, try...); imports are
    statements, so expressions need not be walked (twice as fast as ast.walk)."""
    for _, value in ast.iter_fields(node):
        if isinstance(value, list):
            for item in value:
                if isinstance(item, ast.stmt):
                    yield item
                    yield from statements(item)
                elif isinstance(item, ast.excepthandler | ast.match_case):
                    yield from statements(item)


def imported_names(module: str, is_package: bool, tree: ast.AST) -> Iterable[str]:
    """Every dotted name the module imports, relative imports resolved: `import a.b` gives a.b,
    `from a import b` gives a.b (the module a.b, or the name b of module a: see `resolve`)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in statements(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                source = f"{base}.{source}" if source else base
            yield from (f"{source}.{alias.name}" for alias in node.names)


def resolve(name: str, modules: Collection[str]) -> str | None:
    """The project module a dotted name lives in (its longest prefix that is one), if any."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


@functools.cache
def module_graph() -> Graph:
    files = product_files()
    graph: dict[str, frozenset[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        names = imported_names(module, path.name == "__init__.py", tree)
        targets = {resolve(name, files.keys()) for name in names}
        graph[module] = frozenset(t for t in targets if t is not None and t != module)
    return graph


def package_graph(graph: Graph) -> Graph:
    packages: dict[str, set[str]] = collections.defaultdict(set)
    for module, targets in graph.items():
        top = module.split(".")[0]
        packages[top] |= {t.split(".")[0] for t in targets} - {top}
    return {package: frozenset(targets) for package, targets in packages.items()}


def cycles(graph: Graph) -> list[list[str]]:
    """One shortest cycle through each edge that closes one, without repeats: a -> b -> a."""
    found: dict[frozenset[tuple[str, str]], list[str]] = {}
    for start, targets in sorted(graph.items()):
        for first in sorted(targets):
            path = _shortest_path(graph, first, start)
            if path is None:
                continue
            cycle = [start, *path]
            edges = frozenset(itertools.pairwise(cycle))
            found.setdefault(edges, cycle)
    return sorted(found.values())


def _shortest_path(graph: Graph, source: str, target: str) -> list[str] | None:
    previous: dict[str, str | None] = {source: None}
    queue = collections.deque([source])
    while queue:
        node = queue.popleft()
        if node == target:
            path = [node]
            while (step := previous[path[-1]]) is not None:
                path.append(step)
            return path[::-1]
        for following in sorted(graph.get(node, ())):
            if following not in previous:
                previous[following] = node
                queue.append(following)
    return None


def shown(found: list[list[str]]) -> str:
    return "\n".join(" -> ".join(cycle) for cycle in found)


# -- the graph reader itself -----------------------------------------------------------------


def test_every_kind_of_import_is_seen() -> None:
    source = """
import a.top
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from b import only_for_types
def later():
    from c.d import inside_a_function
try:
    import e
except ImportError:
    import f
"""
    names = set(imported_names("p.m", False, ast.parse(source)))

    assert {"a.top", "b.only_for_types", "c.d.inside_a_function", "e", "f"} <= names


def test_the_graph_covers_every_product_package() -> None:
    graph = module_graph()

    assert {module.split(".")[0] for module in graph} == set(PACKAGES)
    assert "db.events" in graph["db.writer"]  # `from db.events import ...`: the module
    assert "stack.run" in graph["stack.cli"]  # imported inside a function


def test_a_name_resolves_to_the_module_that_defines_it() -> None:
    modules = {"p", "p.q", "p.q.r"}

    assert resolve("p.q.r", modules) == "p.q.r"  # from p.q import r (a module)
    assert resolve("p.q.SomeClass", modules) == "p.q"  # from p.q import SomeClass
    assert resolve("p.q.r.f", modules) == "p.q.r"
    assert resolve("typing.TYPE_CHECKING", modules) is None


def test_cycles_are_found_and_named() -> None:
    graph = {"a": frozenset({"b"}), "b": frozenset({"c", "a"}), "c": frozenset({"a"})}

    assert cycles(graph) == [["a", "b", "a"], ["b", "c", "a", "b"]]
    assert cycles({"a": frozenset({"b"}), "b": frozenset()}) == []


def test_relative_imports_and_submodules_resolve() -> None:
    tree = ast.parse("from . import b\nfrom .c import d\nfrom .. import e\nimport x.y")

    names = set(imported_names("p.q.m", False, tree))

    assert {"p.q.b", "p.q.c.d", "p.e", "x.y"} <= names


# -- the rules ---------------------------------------------------------------------------------


def test_no_module_imports_itself_through_others() -> None:
    found = cycles(module_graph())
    assert not found, f"import cycles between modules:\n{shown(found)}"


def test_no_package_imports_itself_through_others() -> None:
    found = cycles(package_graph(module_graph()))
    assert not found, f"import cycles between packages:\n{shown(found)}"


def test_configuration_is_a_leaf() -> None:
    uses = package_graph(module_graph())["siaga"]
    assert uses <= SIAGA_MAY_IMPORT, f"siaga imports {sorted(uses - SIAGA_MAY_IMPORT)}"


def test_only_the_command_line_uses_the_testbed() -> None:
    importers = {
        module
        for module, targets in module_graph().items()
        if any(t.split(".")[0] == "testbed" for t in targets)
    }
    wrong = sorted(m for m in importers if m.split(".")[0] not in TESTBED_IMPORTERS)
    assert not wrong, f"testbed imported by {wrong}"
