"""Verilator builds keyed by a hash of the Verilog, and cocotb runs on them.

cocotb's runner always passes ``--public-flat-rw``, which makes every signal public: builds take
2-4x longer and simulate 2-3x slower. Here only the ports are public (the ``.vlt`` file from
:mod:`imcgen.verilog`). An identical design is never rebuilt: the build directory is named by
the digest of its Verilog and control file, and a lock makes parallel test workers share it.
"""

import fcntl
import hashlib
import os
import shutil
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

from cocotb_tools.check_results import get_results
from cocotb_tools.runner import Verilator, VerilatorControlFile, Verilog

from .toolchain import cache_dir, configure

__all__ = ["SimulationError", "build", "run"]


class SimulationError(RuntimeError):
    """A simulation failed; the message ends with the tail of its log."""


class _PortsOnlyVerilator(Verilator):
    def _build_command(self):
        commands = super()._build_command()
        commands[0] = [arg for arg in commands[0] if arg != "--public-flat-rw"]
        return commands


@contextmanager
def _locked(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tail(path, lines=40):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def build(design, *, waves=False):
    """Build ``design`` (an :class:`imcgen.verilog.Design`) once; return its build directory."""
    configure()
    # The binary links cocotb's VPI library: a toolchain upgrade must not reuse old builds.
    tools = hashlib.sha256(f"{version('cocotb')} {version('verilator')}".encode()).hexdigest()[:6]
    key = f"{design.name}-{design.digest}-{tools}{'-waves' if waves else ''}"
    build_dir = cache_dir() / "builds" / key
    done = build_dir / "BUILT"
    with _locked(cache_dir() / "builds" / f"{key}.lock"):
        if done.exists():
            return build_dir
        shutil.rmtree(build_dir, ignore_errors=True)
        sources = build_dir / "src"
        sources.mkdir(parents=True)
        verilog = shutil.copy(design.verilog, sources / design.verilog.name)
        control = shutil.copy(design.control, sources / design.control.name)
        log = build_dir / "build.log"
        runner = _PortsOnlyVerilator()
        try:
            runner.build(
                sources=[VerilatorControlFile(control), Verilog(verilog)],
                hdl_toplevel=design.name,
                build_dir=build_dir,
                build_args=["-Wno-fatal"],  # warnings go to build.log; waived rules in the .vlt
                waves=waves,
                log_file=log,
            )
        except (RuntimeError, SystemExit):
            raise SimulationError(f"Verilator build of {design.name} failed; "
                                  f"log {log}:\n{_tail(log)}") from None
        done.write_text(design.digest)
    return build_dir


def run(design, build_dir, test_module, *, test_dir, testcase=None, env=None, waves=False,
        log_name="sim.log"):
    """Run cocotb ``test_module`` (an importable module name) on a built design.

    Raises :class:`SimulationError` unless every cocotb test passed.
    """
    configure()
    test_dir = Path(test_dir)
    test_dir.mkdir(parents=True, exist_ok=True)
    log = test_dir / log_name
    runner = _PortsOnlyVerilator()
    runner.build_dir = Path(build_dir)  # built already: test() only runs the binary
    extra_env = {"PYTHONPATH": os.pathsep.join(_python_path())}
    extra_env.update(env or {})
    try:
        results = runner.test(
            test_module=test_module,
            testcase=testcase,
            hdl_toplevel=design.name,
            hdl_toplevel_lang="verilog",  # built earlier, so the runner has no sources to look at
            build_dir=build_dir,
            test_dir=test_dir,
            extra_env=extra_env,
            waves=waves,
            log_file=log,
            results_xml=str(test_dir / "results.xml"),
        )
    except SystemExit:  # the runner exits instead of raising when run under pytest
        results = test_dir / "results.xml"
    try:
        total, failed = get_results(Path(results))
    except RuntimeError:
        total, failed = 0, 1
    if failed or not total:
        raise SimulationError(f"{failed} of {total} cocotb tests failed in {test_module}; "
                              f"log {log}:\n{_tail(log)}")
    return log


def _python_path():
    import sys

    return [p for p in sys.path if p]


def run_block(component, name, test_module, test_dir, *, config, seed, env=None):
    """Elaborate ``component``, build it (cached) and run the cocotb tests of ``test_module``.

    The cocotb side reads the configuration and seed back with
    :func:`imcgen.testbench.config_from_env` and :func:`imcgen.testbench.seed_from_env`.
    """
    import json

    from .verilog import write_design

    test_dir = Path(test_dir)
    design = write_design(component, name, test_dir / "rtl")
    build_dir = build(design)
    full_env = {"IMCGEN_CONFIG": json.dumps(config.to_dict()), "IMCGEN_SEED": str(seed)}
    full_env.update(env or {})
    return run(design, build_dir, test_module, test_dir=test_dir / "sim", env=full_env)
