"""Old module paths (before the layers of docs/architecture.md) still import, with a
DeprecationWarning, so that user scripts written against them keep working.

``import imcgen.config`` binds the very module ``imcgen.core.config`` (one object: a
monkeypatch through either name reaches both).
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    "imcgen.config": "imcgen.core.config", "imcgen.timing": "imcgen.core.timing",
    "imcgen.codes": "imcgen.core.codes", "imcgen.draws": "imcgen.core.draws",
    "imcgen.errors": "imcgen.core.errors", "imcgen.checks": "imcgen.core.checks",
    "imcgen.progress": "imcgen.core.progress", "imcgen.cost": "imcgen.sim.budget",
    "imcgen.protocol": "imcgen.fpga.protocol", "imcgen.toolchain": "imcgen.sim.toolchain",
    "imcgen.runner": "imcgen.sim.runner", "imcgen.verilog": "imcgen.sim.verilog",
    "imcgen.generate": "imcgen.sim.generate", "imcgen.waves": "imcgen.sim.waves",
    "imcgen.simulation": "imcgen.sim.api", "imcgen.fast": "imcgen.sim.fast",
    "imcgen.fast_cxx": "imcgen.sim.fast_cxx", "imcgen.tb": "imcgen.sim.tb",
    "imcgen.tb.streams": "imcgen.sim.tb.streams", "imcgen.tb.analog": "imcgen.sim.tb.analog",
    "imcgen.tb.macro": "imcgen.sim.tb.macro", "imcgen.tb.board": "imcgen.fpga.tb_board",
    "imcgen.resources": "imcgen.fpga.resources", "imcgen.fmax": "imcgen.fpga.fmax",
    "imcgen.host": "imcgen.fpga.host", "imcgen.board_sim": "imcgen.fpga.board_sim",
    "imcgen.demo": "imcgen.apps.demo", "imcgen.program": "imcgen.golden.programming",
    "imcgen.accuracy": "imcgen.apps.accuracy", "imcgen.trng_report": "imcgen.apps.trng_report",
    "imcgen.soak": "imcgen.apps.soak", "imcgen.plots": "imcgen.apps.plots",
    "imcgen.board_cli": "imcgen.cli.board",
}


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name in MOVED:
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        new = MOVED[module.__name__]
        warnings.warn(f"{module.__name__} moved to {new}", DeprecationWarning, stacklevel=2)
        # The import system returns what sys.modules holds after exec_module: the real module.
        sys.modules[module.__name__] = importlib.import_module(new)


def install():
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
