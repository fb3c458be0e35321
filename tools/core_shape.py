"""The shape of the core: lines per module, big modules, classes and functions, import cycles.

Usage::

    python tools/core_shape.py [ROOT]      # ROOT: a checkout (default: this one)

Counts ``core/curator`` without ``testing/`` and ``examples/`` (the kit and
the example ship with the core but are not its run path), as
``docs/architecture.md`` records them before and after a reshaping. Lines are
physical lines. Import cycles are among imports made when a module loads (not
those inside functions or under ``TYPE_CHECKING``).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

BIG_MODULE, BIG_CLASS, LONG_FUNCTION = 400, 300, 60

CONCERNS = {
    "the model (pipeline, outcomes, errors)": ("model", "_version", "_moved", "__init__"),
    "backends (Work, the base class, built-ins)": ("backends",),
    "running (the run, its loop)": ("running",),
    "the checkpoint (store, resume, reading)": ("checkpoint",),
    "observing (capture, metrics, reporters)": ("observing",),
    "the plugin host (hooks, registry)": ("plugin_host",),
    "the command line": ("cli", "__main__"),
}
"""Sub-packages (and top-level modules) of ``curator`` by what they are about."""

PLUGIN_BASES = frozenset(
    {"curator.backends.backend", "curator.observing.reporter", "curator.observing.features"}
)
"""The base classes of the plugin kinds the plugin host registers (it may import those)."""

FORBIDDEN = {
    "the model": (
        "backends", "running", "the checkpoint", "observing", "the plugin host", "the command line"
    ),
    "the plugin host": ("backends", "running", "the checkpoint", "observing", "the command line"),
    "observing": ("backends", "running", "the checkpoint", "the command line"),
    "backends": ("running", "the checkpoint", "the command line"),
    "the checkpoint": ("backends", "running", "the command line"),
    "running": ("the command line",),
}  # fmt: skip
"""The import rules between concerns (by the first words of their names): what each must not
import when it loads (the plugin host may import :data:`PLUGIN_BASES`). The command line may
import everything; nothing but it imports it. Each sub-package's docstring says the same."""


def concern_of(name: str) -> str:
    """The concern of module ``name`` (``curator.running.loop``), short as in FORBIDDEN."""
    top = name.split(".")[1] if "." in name else "__init__"
    for concern, tops in CONCERNS.items():
        if top in tops:
            return concern.split(" (")[0]
    return "other"


def broken_rules(graph: dict[str, set[str]]) -> list[str]:
    """Each import that breaks :data:`FORBIDDEN`."""
    broken = []
    for module, imported in sorted(graph.items()):
        mine = concern_of(module)
        for other in sorted(imported):
            theirs = concern_of(other)
            if mine == "the plugin host" and other in PLUGIN_BASES:
                continue
            if theirs in FORBIDDEN.get(mine, ()):
                broken.append(f"{module} ({mine}) imports {other} ({theirs})")
    return broken


def modules(package: Path, whole: bool = False) -> dict[str, Path]:
    """The modules of ``package`` by dotted name (``testing/``, ``examples/`` only if ``whole``)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if not whole and parts[1:2] in (("testing",), ("examples",)):
            continue
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph(found: dict[str, Path]) -> dict[str, set[str]]:
    """Each module's imports of the others made when it loads (not in functions or for typing)."""
    return {
        name: _imports(ast.parse(path.read_text(encoding="utf-8")), set(found)) - {name}
        for name, path in found.items()
    }


def _imports(tree: ast.Module, known: set[str]) -> set[str]:
    wanted: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        else:
            continue
        wanted |= {name for name in names if name in known}
    return wanted


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for node in graph:
        if node not in index:
            visit(node)
    return found


def main() -> None:
    """Print the shape of the checkout named on the command line (default: this one)."""
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
    found = modules(root / "core" / "curator")
    lines = {name: len(path.read_text().splitlines()) for name, path in found.items()}
    graph = import_graph(found)
    classes, functions = [], []
    for name, path in found.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > BIG_CLASS:
                    classes.append((size, f"{name}.{node.name}"))
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > LONG_FUNCTION:
                    functions.append((size, f"{name}:{node.name}"))
    by_concern = dict.fromkeys(CONCERNS, 0)
    for name, count in lines.items():
        top = name.split(".")[1] if "." in name else "__init__"
        concern = next((c for c, tops in CONCERNS.items() if top in tops), "other")
        by_concern[concern] = by_concern.get(concern, 0) + count
    big = sorted(((n, m) for m, n in lines.items() if n > BIG_MODULE), reverse=True)
    print(f"core lines (without testing/, examples/): {sum(lines.values()):,} in {len(lines)}")
    for concern, count in by_concern.items():
        print(f"  {count:6,}  {concern}")
    print(f"modules over {BIG_MODULE} lines: {len(big)}")
    for count, name in big:
        print(f"  {count:5}  {name}")
    print(f"classes over {BIG_CLASS} lines: {len(classes)}")
    for count, name in sorted(classes, reverse=True):
        print(f"  {count:5}  {name}")
    print(f"functions over {LONG_FUNCTION} lines: {len(functions)}")
    for count, name in sorted(functions, reverse=True):
        print(f"  {count:5}  {name}")
    broken = broken_rules(graph)
    print(f"imports across concerns against the rules: {len(broken)}")
    for line in broken:
        print(f"  {line}")
    loops = cycles(graph)
    print(f"import cycles: {len(loops)}")
    for cycle in loops:
        print("  " + " <-> ".join(cycle))


if __name__ == "__main__":
    main()
