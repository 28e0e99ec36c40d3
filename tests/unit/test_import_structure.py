"""The package's shape: every module imports on its own, modules import each other without
cycles, no module reaches into another's private names, and none grows past a size one
reader can hold.

An import cycle can hide behind import order: ``a`` imports ``b`` which imports ``a`` works
when ``a`` comes first and fails when ``b`` does.  So each module is imported first, with no
other thinkchain module loaded, in a fresh interpreter.  A cycle closed by an import inside a
function never fails an import at all; the static check finds those.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "thinkchain"
MAX_LINES = 400
# Running this module runs the command line; it is not imported by anything.
NOT_IMPORTED = {"thinkchain.__main__"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def is_package(name: str) -> bool:
    return (SRC / Path(*name.split(".")) / "__init__.py").exists()


def is_module(name: str) -> bool:
    path = SRC / Path(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def imported_from(path: Path, node: ast.ImportFrom) -> str:
    """The absolute name of the module a ``from ... import`` reads from."""
    if node.level == 0:
        return node.module or ""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
    return f"{base}.{node.module}" if node.module else base


# Imports each module given on the command line first: before each, every thinkchain module
# is forgotten, so the import runs as in a fresh interpreter (third-party modules stay loaded:
# they never import thinkchain, and reloading them would only cost time).
IMPORT_EACH_FIRST = textwrap.dedent(
    """
    import importlib, json, sys, traceback

    failures = {}
    for name in sys.argv[1:]:
        for loaded in [m for m in sys.modules if m == "thinkchain" or m.startswith("thinkchain.")]:
            del sys.modules[loaded]
        try:
            importlib.import_module(name)
        except BaseException:
            failures[name] = traceback.format_exc(limit=-3)
    print(json.dumps(failures))
    """
)


def test_every_module_imports_first_on_its_own() -> None:
    names = [module_name(p) for p in module_files()]
    names = [n for n in names if n not in NOT_IMPORTED]
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH_FIRST, *names],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=SRC.parent,
    )
    assert done.returncode == 0, done.stderr
    failures = json.loads(done.stdout.strip().splitlines()[-1])
    report = "\n".join(f"{name}:\n{trace}" for name, trace in sorted(failures.items()))
    assert not failures, f"modules that fail to import first:\n{report}"


def thinkchain_imports(path: Path) -> set[str]:
    """The thinkchain modules ``path`` imports, at the top or inside functions; imports only
    for type checkers (``if TYPE_CHECKING:``) do not count."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom):
            source = imported_from(path, node)
            if source == "thinkchain" or source.startswith("thinkchain."):
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    found.add(sub if is_module(sub) else source)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "thinkchain")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    found.discard(module_name(path))
    return found


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or around a loop (Tarjan)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def connect(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        for dep in sorted(graph[node] & graph.keys()):
            if dep not in order:
                connect(dep)
                low[node] = min(low[node], low[dep])
            elif dep in stack:
                low[node] = min(low[node], order[dep])
        if low[node] == order[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in order:
            connect(node)
    return cycles


def test_no_import_cycles_even_through_imports_inside_functions() -> None:
    graph = {module_name(p): thinkchain_imports(p) for p in module_files()}
    cycles = import_cycles(graph)
    assert not cycles, "modules that import each other:\n" + "\n".join(
        " <-> ".join(group) for group in cycles
    )


def test_no_module_imports_a_private_name_from_another_module() -> None:
    offenders = []
    for path in module_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            source = imported_from(path, node)
            if source != "thinkchain" and not source.startswith("thinkchain."):
                continue
            for alias in node.names:
                name = alias.name
                if not name.startswith("_") or (name.startswith("__") and name.endswith("__")):
                    continue
                # A private submodule of a package belongs to that package's modules.
                if is_package(source) and is_module(f"{source}.{name}"):
                    continue
                where = path.relative_to(SRC.parent)
                offenders.append(f"{where}:{node.lineno} imports {name} from {source}")
    assert not offenders, "private names imported across modules:\n" + "\n".join(offenders)


def test_no_module_is_over_the_line_limit() -> None:
    sizes = {p: len(p.read_text(encoding="utf-8").splitlines()) for p in module_files()}
    offenders = [
        f"{p.relative_to(SRC.parent)} ({n} lines)"
        for p, n in sorted(sizes.items())
        if n > MAX_LINES
    ]
    assert not offenders, f"modules over {MAX_LINES} lines:\n" + "\n".join(offenders)


# The parts of the package and the parts each may import.  The chain is the core: it knows
# backends only by their protocol (chain/backend.py) and runs code through the sandbox; the
# sandbox needs only where thinkchain keeps its files; models serve the chain's protocol; the
# faces (cli, ui, proxy, eval, history) use the core and never one another, except the command
# line, which starts every face, and the page, which records history.  The proxy reads the
# package's version from the root.
ALLOWED_IMPORTS = {
    "folders": set(),
    "sandbox": {"folders"},
    "chain": {"sandbox"},
    "models": {"chain", "folders"},
    "history": {"chain", "folders"},
    "eval": {"chain"},
    "proxy": {"chain", "models", "ROOT"},
    "ui": {"chain", "models", "history", "sandbox"},
    "cli": {"chain", "models", "history", "eval", "proxy", "ui", "sandbox", "folders"},
    "ROOT": {"chain", "models"},
    "testing": {"chain"},  # the fake OpenAI server tests and benchmarks start
}


def part_of(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "ROOT"


def test_each_part_imports_only_the_parts_below_it() -> None:
    offenders = []
    for path in module_files():
        here = module_name(path)
        if here in NOT_IMPORTED:
            continue
        part = part_of(here)
        assert part in ALLOWED_IMPORTS, f"{here}: a new part of the package; place it above"
        for imported in sorted(thinkchain_imports(path)):
            there = part_of(imported)
            if there != part and there not in ALLOWED_IMPORTS[part]:
                offenders.append(f"{here} imports {imported} ({part} -> {there})")
    assert not offenders, "imports across the layers:\n" + "\n".join(offenders)
