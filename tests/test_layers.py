"""Dependencies point one way (DESIGN.md, "Dependencies"): every import of every edgesnn
module — at the top or inside a function — is checked against the layer table below, and the
module graph must have no cycle.

The table is the rule. A stage (``graph`` .. ``host``) imports only the stages listed for it;
``report`` renders results and reaches no device, trainer or builder; the pipeline is the one
layer that chains stages; the CLI and the API sit on top and nothing imports them.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "edgesnn"

#: Importable by every module, and importing only each other: the version (``edgesnn/__init__``
#: binds everything else lazily, by name), packaged resource paths, atomic file writes, the
#: lazy re-export helper and the progress display (standard library only).
SHARED = {"edgesnn", "_resources", "atomic", "_lazy", "progress"}

#: unit -> the units it may import (besides itself and SHARED). A unit is a top-level module
#: or subpackage of edgesnn.
STAGES = {
    "graph": set(),  # IR, .esg, golden simulator: numpy only
    "data": {"graph"},  # the spike encoders share the golden simulator's PRNG
    "devices": set(),
    "snn": {"data", "graph"},  # training knows nothing of targets or devices
    "compress": {"snn", "data", "graph"},
    "interop": {"snn", "data", "graph"},
    "crossbar": {"graph", "devices"},
    "export": {"graph", "data", "devices", "crossbar", "interop"},
    "build": {"devices"},
    "energy": {"graph", "devices"},
    "host": {"graph", "devices"},  # only talks to devices
    "results": {"graph"},
    "report": {"results", "energy", "graph", "devices"},
    "report_html": {"report", "results"},
}
PIPELINE = {"pipeline": set(STAGES)}
ENTRY = {
    "api": {"pipeline"},
    "commands": {"cli", "pipeline", *STAGES},
    "cli": set(),  # finds the commands by name (importlib), imports none of them
    "__main__": {"cli"},
}
ALLOWED = {**STAGES, **PIPELINE, **ENTRY}


def _module_name(path: Path) -> str:
    parts = ["edgesnn", *path.relative_to(PKG).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py")) if "_share" not in p.parts}


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _imports(name: str, path: Path) -> set[str]:
    """Every edgesnn module ``name`` imports, wherever the import statement is.
    ``from P import m`` names module ``P.m`` when that is a module; a plain ``import P`` of
    the module's own package binds the package object and is not counted."""
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("edgesnn") and not name.startswith(alias.name + "."):
                    out.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target != "edgesnn" and not target.startswith("edgesnn."):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in MODULES or _is_module(sub) else target)
    out.discard(name)
    return out


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "edgesnn"


MODULES = _modules()
EDGES = {m: _imports(m, p) for m, p in MODULES.items()}


def test_every_unit_is_in_the_table() -> None:
    units = {_unit(m) for m in MODULES}
    unknown = units - set(ALLOWED) - SHARED
    assert not unknown, f"add {sorted(unknown)} to the layer table (and to DESIGN.md)"


def test_imports_point_down() -> None:
    bad = []
    for module, targets in sorted(EDGES.items()):
        unit = _unit(module)
        allowed = SHARED if unit in SHARED else ALLOWED.get(unit, set()) | SHARED | {unit}
        for target in sorted(targets):
            if _unit(target) not in allowed:
                bad.append(f"{module} imports {target}")
    assert not bad, "imports against DESIGN.md's direction:\n" + "\n".join(bad)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in edges:
                    continue
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_no_import_cycles() -> None:
    cycles = _cycles(EDGES)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize(("edges", "expected"), [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_the_cycle_finder_finds_cycles(edges: dict[str, set[str]], expected: list) -> None:
    assert _cycles(edges) == expected


def test_the_walker_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    src = ("from __future__ import annotations\n"
           "def f():\n    from edgesnn.snn.train import train\n"
           "    from .graph import esg\n    import edgesnn.host.link\n")
    fake = tmp_path / "m.py"
    fake.write_text(src)
    got = _imports("edgesnn.report", fake)
    assert got == {"edgesnn.snn.train", "edgesnn.graph.esg", "edgesnn.host.link"}, got
