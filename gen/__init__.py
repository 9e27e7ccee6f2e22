"""imcgen: generator and bit-exact verifier for in-memory-computing macro periphery.

Python API (the CLI ``imcgen`` calls the same functions)::

    from imcgen import load_config, simulate, golden
    cfg = load_config("default", overrides=["schedule=dense"])
    result = simulate(cfg, W, X)          # RTL on Verilator + golden model
    assert result.match
"""

from . import golden  # noqa: E402  (NumPy only; after config and errors, which it uses)
from .config import PRESETS, MacroConfig, load_config
from .errors import ImcError

__all__ = ["MacroConfig", "PRESETS", "load_config", "ImcError", "simulate", "golden"]


def __getattr__(name):
    # Amaranth, cocotb and Verilator load only when the RTL is asked for.
    if name == "simulate":
        from .simulation import simulate

        return simulate
    raise AttributeError(name)
