"""The package's import graph is a tree: no module imports, directly or through others, a module that
imports it back, and no core module imports the command line (``jaxstyle.cli``) or the web page
(``jaxstyle.serve``).

Every module is imported (so a module that cannot be imported fails here), then its source is parsed
with ``ast``: imports at the top and inside functions (deferred imports close circles too) count alike.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
from collections.abc import Iterable, Mapping
from pathlib import Path

import jaxstyle

PACKAGE = "jaxstyle"
# The layers above the core: they may import anything below them, and nothing below imports them.
FRONT_ENDS = ("jaxstyle.cli", "jaxstyle.serve")
# ``python -m jaxstyle`` runs the command line: an entry point, not a core module.
ENTRY_POINTS = ("jaxstyle.__main__",)


def package_modules() -> dict[str, Path]:
    """Every module of the package (packages included) -> its source file. Each is imported (the entry
    points are only found: importing ``__main__`` would run the command line)."""
    modules = {PACKAGE: Path(jaxstyle.__file__)}
    for info in pkgutil.walk_packages(jaxstyle.__path__, PACKAGE + "."):
        if info.name not in ENTRY_POINTS:
            importlib.import_module(info.name)
        spec = importlib.util.find_spec(info.name)
        assert spec is not None and spec.origin, info.name
        modules[info.name] = Path(spec.origin)
    return modules


def _resolve(name: str, modules: Iterable[str]) -> str | None:
    """``name`` if it is a module of the package, else the module it is an attribute of (or None)."""
    known = set(modules)
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, source: str, modules: Iterable[str], is_package: bool = False) -> set[str]:
    """The package's modules that ``module`` imports anywhere in ``source`` (top level, functions,
    ``TYPE_CHECKING`` blocks), resolved to modules: ``from jaxstyle.io import images`` -> ``jaxstyle.io.images``."""
    modules = set(modules)
    found: set[str] = set()
    base = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                origin = f"{anchor}.{node.module}" if node.module else anchor
            else:
                origin = node.module or ""
            names = [f"{origin}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                target = _resolve(name, modules)
                if target is not None and target != module:
                    found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports."""
    modules = package_modules()
    return {name: imports_of(name, path.read_text(encoding="utf-8"), modules, path.name == "__init__.py")
            for name, path in modules.items()}


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One import circle as ``[a, b, ..., a]``, or None when the graph has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_import_graph_has_no_circle():
    graph = import_graph()
    assert "jaxstyle.nn.vgg" in graph and "jaxstyle.methods.gatys" in graph  # the walk found the tree
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_core_modules_do_not_import_the_front_ends():
    graph = import_graph()

    def front(name: str) -> bool:
        return any(name == f or name.startswith(f + ".") for f in FRONT_ENDS)

    offenders = {module: sorted(t for t in targets if front(t)) for module, targets in graph.items()
                 if not front(module) and module not in ENTRY_POINTS}
    offenders = {module: targets for module, targets in offenders.items() if targets}
    assert not offenders, f"core modules import the front ends: {offenders}"


def test_the_checker_sees_function_level_and_relative_imports_and_finds_circles():
    modules = {"jaxstyle", "jaxstyle.a", "jaxstyle.b", "jaxstyle.pkg", "jaxstyle.pkg.c", "jaxstyle.pkg.d"}
    source = "import os\nfrom jaxstyle import a\n\ndef f():\n    from jaxstyle.pkg import c\n    from . import d\n"
    assert imports_of("jaxstyle.pkg.c", source, modules) == {"jaxstyle.a", "jaxstyle.pkg.d"}  # not itself
    assert imports_of("jaxstyle.b", source, modules) == {"jaxstyle.a", "jaxstyle.pkg.c", "jaxstyle"}
    assert imports_of("jaxstyle.pkg", "from . import c\n", modules, is_package=True) == {"jaxstyle.pkg.c"}
    assert imports_of("jaxstyle.a", "from jaxstyle.pkg.c import f\n", modules) == {"jaxstyle.pkg.c"}
    assert find_cycle({"x": {"y"}, "y": {"z"}, "z": set()}) is None
    assert find_cycle({"x": {"y"}, "y": {"z"}, "z": {"x"}}) == ["x", "y", "z", "x"]
