"""imcgen: generator and bit-exact verifier for in-memory-computing macro periphery.

Python API (the CLI ``imcgen`` calls the same functions)::

    from imcgen import load_config, simulate, golden
    cfg = load_config("default", overrides=["schedule=dense"])
    result = simulate(cfg, W, X)          # RTL on Verilator + golden model
    assert result.match
"""

from imcgen import _moved, golden  # noqa: E402  (golden: NumPy only)
from imcgen.core.config import PRESETS, MacroConfig, load_config
from imcgen.core.errors import ImcError

_moved.install()

__all__ = ["MacroConfig", "PRESETS", "load_config", "ImcError", "simulate", "golden"]


def __getattr__(name):
    # Amaranth, cocotb and Verilator load only when the RTL is asked for.
    if name == "simulate":
        from imcgen.sim.api import simulate

        return simulate
    raise AttributeError(name)
