"""The layers of docs/architecture.md hold: every import (module level or inside a function)
goes down or sideways, never up, nothing imports the CLI, and there is no import cycle."""

import ast
from pathlib import Path

import pytest

import imcgen
import imcgen.golden
import imcgen.hdl

#: Layer of each package, lowest first; a module may import its own layer and those below.
LAYERS = {
    "imcgen.core": 0,
    "imcgen.link": 1,
    "imcgen.hdl": 2,
    "imcgen.golden": 2,
    "imcgen.sim": 3,
    "imcgen.fpga": 4,
    "imcgen.apps": 5,
    "imcgen": 6,  # the package's public API (imcgen/__init__.py) and its compatibility names
    "imcgen.cli": 7,
}
#: hdl and golden are independent of each other: a golden model that imports the hardware
#: agrees with its bugs (docs/architecture.md).
APART = {("imcgen.hdl", "imcgen.golden"), ("imcgen.golden", "imcgen.hdl")}


def sources():
    """``{module: source text}`` of every module of the installed package."""
    out = {}
    for package in (imcgen, imcgen.hdl, imcgen.golden):
        root = Path(package.__file__).parent
        prefix = package.__name__
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if prefix == "imcgen" and parts[0] in ("hdl", "golden"):
                continue  # not there in an installed tree; the editable one maps them apart
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([prefix, *parts])] = path.read_text()
    return out


def imports(module, text, known):
    """imcgen modules that ``module`` imports anywhere in ``text`` (function bodies too)."""
    is_package = module in {m.rsplit(".", 1)[0] for m in known if "." in m}
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".") if is_package else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names]
            if not all(n in known for n in names):
                names.append(base)  # names from the module itself, not submodules
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def layer(module):
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return best, LAYERS[best]


def graph(texts):
    known = set(texts)
    return {m: imports(m, t, known) for m, t in texts.items()}


def violations(edges):
    out = []
    for module, targets in edges.items():
        here, level = layer(module)
        for target in targets:
            there, target_level = layer(target)
            if module == "imcgen" and target.startswith(("imcgen.core", "imcgen.golden")):
                continue
            if target_level > level or (here, there) in APART:
                out.append(f"{module} ({here}) imports {target} ({there})")
            elif target_level == 6 and here != "imcgen" and target == "imcgen":
                out.append(f"{module} imports the top-level package imcgen (import the layer)")
    return sorted(out)


def cycles(edges):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                out.append(sorted(scc))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_every_import_goes_down_a_layer_or_sideways():
    assert violations(graph(sources())) == []


def test_no_import_cycle():
    assert cycles(graph(sources())) == []


def test_nothing_imports_the_cli():
    edges = graph(sources())
    assert [m for m, ts in edges.items() if not m.startswith("imcgen.cli")
            and any(t.startswith("imcgen.cli") for t in ts)] == []


@pytest.mark.parametrize("module, planted, expect", [
    ("imcgen.core.timing", "from imcgen.sim import runner", "imcgen.sim.runner"),
    ("imcgen.golden.sar_adc", "def f():\n    from imcgen.hdl import sar_adc", "imcgen.hdl.sar_adc"),
    ("imcgen.hdl.common", "from ..apps import demo", "imcgen.apps.demo"),
    ("imcgen.link.codec", "import imcgen.fpga.host", "imcgen.fpga.host"),
])
def test_a_planted_upward_import_is_caught(module, planted, expect):
    texts = sources()
    texts[module] += "\n" + planted + "\n"
    found = violations(graph(texts))
    assert len(found) == 1 and expect in found[0], found


def test_a_planted_cycle_is_caught():
    texts = sources()
    texts["imcgen.core.errors"] += "\ndef f():\n    from imcgen.core import checks\n"
    assert any("imcgen.core.errors" in scc for scc in cycles(graph(texts)))
