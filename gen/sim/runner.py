"""Verilator builds keyed by everything the binary depends on, and cocotb runs on them.

cocotb's runner always passes ``--public-flat-rw``, which makes every signal public: builds take
2-4x longer and simulate 2-3x slower. Here only the ports are public (the ``.vlt`` file from
:mod:`imcgen.sim.verilog`). An identical design is never rebuilt: the build directory is named by
the digest of its Verilog and control file and of the toolchain that built it, and a lock makes
parallel test workers share it.

The binary links cocotb's VPI library by absolute path (an rpath into the environment that
built it), so the key includes that path, the tool versions and the Python, and a cached build
is verified before it is trusted (its record matches this environment, its libraries resolve);
a stale one is rebuilt. Two checkouts or virtual environments on one machine never share a
binary that points into the other.
"""

import hashlib
import json
import os
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path

from imcgen.core.errors import SimulationError
from imcgen.sim import cache
from imcgen.sim.toolchain import cache_dir, configure

__all__ = ["SimulationError", "build", "cached_build", "run"]


#: make variables of every build, cocotb and native: the model's C++ compiles as one unit, so
#: the Verilator headers are parsed once instead of once per file. A third less CPU per build
#: (default preset: 18 s of CPU to 11 s), which is what a parallel suite or sweep pays for;
#: one build alone on an idle machine takes up to 15 % longer (no parallel make inside it).
MAKE_VARIABLES = ["VM_PARALLEL_BUILDS=0"]


def _ports_only_verilator():
    """cocotb's Verilator runner without ``--public-flat-rw`` (cocotb imports only here, so
    that the native builds of :mod:`imcgen.sim.fast` start without it)."""
    from cocotb_tools.runner import Verilator

    class _PortsOnlyVerilator(Verilator):
        def _build_command(self):
            commands = super()._build_command()
            commands[0] = [arg for arg in commands[0] if arg != "--public-flat-rw"]
            commands[1] += MAKE_VARIABLES
            return commands

    return _PortsOnlyVerilator()


def toolchain():
    """What a built binary depends on besides its Verilog: a dict, and its short digest.

    cocotb's ``libs_dir`` is where the binary's rpath points; the Python and the tool versions
    decide what the VPI library and the compiled runtime expect.
    """
    import sys

    import cocotb_tools.config

    record = {
        "cocotb": version("cocotb"),
        "verilator": version("verilator"),
        "cocotb_libs": str(cocotb_tools.config.libs_dir),
        "verilator_root": str(configure()),
        "python": sys.version.split()[0],
    }
    digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:8]
    return record, digest


def _missing_libraries(binary):
    """Shared libraries ``binary`` needs that do not resolve (``ldd``), or [] if unknown."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    try:
        out = subprocess.run([ldd, str(binary)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.split()[0] for line in out.stdout.splitlines() if "not found" in line]


def _trusted(build_dir, binary, record):
    """A cached build is reused only if it was built here, for this environment, and loads."""
    try:
        built = json.loads((build_dir / "BUILT").read_text())
    except (OSError, ValueError):
        return False
    if built.get("toolchain") != record or not binary.is_file():
        return False
    if "cocotb_libs" in record and not Path(record["cocotb_libs"]).is_dir():
        return False
    return not _missing_libraries(binary)


def cached_build(key, record, binary_name, produce, *, what, extra=None):
    """The build directory ``<cache>/builds/<key>``: reused if trusted (see :func:`_trusted`),
    else made by ``produce(build_dir, log)`` under a lock, checked to load, and recorded.

    ``key`` must name everything the binary depends on; ``record`` is the environment it is
    trusted in (written to ``BUILT`` with ``extra``). Raises :class:`SimulationError` naming
    the build directory and ``build.log`` on failure (``what`` names the build in it).
    """
    build_dir = cache_dir() / "builds" / key
    binary = build_dir / binary_name
    with cache.locked(cache_dir() / "builds" / f"{key}.lock"):
        if _trusted(build_dir, binary, record):
            cache.touch(build_dir)
            return build_dir
        shutil.rmtree(build_dir, ignore_errors=True)  # stale or half-built: start over
        build_dir.mkdir(parents=True)
        log = build_dir / "build.log"
        produce(build_dir, log)
        missing = _missing_libraries(binary)
        if not binary.is_file() or missing:
            raise SimulationError(f"Verilator build of {what} in {build_dir} produced no "
                                  f"loadable binary (missing {', '.join(missing) or 'binary'}); "
                                  f"see {log}", log)
        (build_dir / "BUILT").write_text(json.dumps({**(extra or {}), "toolchain": record},
                                                    indent=1))
        cache.touch(build_dir)
    cache.prune()  # a new entry: back under the limit (never this one: it was just used)
    return build_dir


def build(design, *, waves=False):
    """Build ``design`` (an :class:`imcgen.sim.verilog.Design`) once; return its build directory.

    Raises :class:`SimulationError` naming the build directory and ``build.log`` on failure.
    """
    record, tools = toolchain()
    key = f"{design.name}-{design.digest}-{tools}{'-waves' if waves else ''}"

    def produce(build_dir, log):
        from cocotb_tools.runner import VerilatorControlFile, Verilog

        sources = build_dir / "src"
        sources.mkdir(parents=True)
        verilog = shutil.copy(design.verilog, sources / design.verilog.name)
        control = shutil.copy(design.control, sources / design.control.name)
        runner = _ports_only_verilator()
        try:
            runner.build(
                sources=[VerilatorControlFile(control), Verilog(verilog)],
                hdl_toplevel=design.name,
                build_dir=build_dir,
                # warnings go to build.log; waived rules in the .vlt
                build_args=["-Wno-fatal"],
                waves=waves,
                log_file=log,
            )
        except (RuntimeError, SystemExit, OSError):
            raise SimulationError(f"Verilator build of {design.name} failed in {build_dir}; "
                                  f"see {log}", log) from None

    return cached_build(key, record, design.name, produce, what=design.name,
                        extra={"digest": design.digest})


def run(design, build_dir, test_module, *, test_dir, testcase=None, env=None, waves=False,
        log_name="sim.log"):
    """Run cocotb ``test_module`` (an importable module name) on a built design.

    Raises :class:`SimulationError` (one line naming the build directory and the log) unless
    every cocotb test passed.
    """
    from cocotb_tools.check_results import get_results

    configure()
    test_dir = Path(test_dir)
    test_dir.mkdir(parents=True, exist_ok=True)
    log = test_dir / log_name
    runner = _ports_only_verilator()
    runner.build_dir = Path(build_dir)  # built already: test() only runs the binary
    extra_env = {"PYTHONPATH": os.pathsep.join(_python_path())}
    extra_env.update(env or {})
    results = test_dir / "results.xml"
    results.unlink(missing_ok=True)  # never read a previous run's verdict
    try:
        runner.test(
            test_module=test_module,
            testcase=testcase,
            hdl_toplevel=design.name,
            hdl_toplevel_lang="verilog",  # built earlier, so the runner has no sources to look at
            build_dir=build_dir,
            test_dir=test_dir,
            extra_env=extra_env,
            waves=waves,
            log_file=log,
            results_xml=str(results),
        )
    except (SystemExit, RuntimeError, OSError):
        # The runner exits (under pytest) or raises (a simulator that could not start, e.g.
        # return code 127); the results file, if any, tells which tests ran.
        pass
    try:
        total, failed = get_results(results)
    except (RuntimeError, OSError, ValueError):
        total, failed = 0, 1
    if failed or not total:
        what = (f"{failed} of {total} cocotb tests failed in {test_module}" if total
                else f"the simulator of {design.name} did not run {test_module}")
        raise SimulationError(f"{what} (build {build_dir}); see {log}", log)
    return log


def _python_path():
    import sys

    return [p for p in sys.path if p]


def run_block(component, name, test_module, test_dir, *, config, seed, env=None, waves=None):
    """Elaborate ``component``, build it (cached) and run the cocotb tests of ``test_module``.

    The cocotb side reads the configuration and seed back with
    :func:`imcgen.sim.tb.streams.config_from_env` and :func:`imcgen.sim.tb.streams.seed_from_env`.
    """
    import json

    from imcgen.sim.verilog import write_design

    test_dir = Path(test_dir)
    if waves is None:  # WAVES=1 traces a block test into <test_dir>/sim/dump.vcd
        waves = os.environ.get("WAVES", "") not in ("", "0")
    design = write_design(component, name, test_dir / "rtl")
    build_dir = build(design, waves=waves)
    full_env = {"IMCGEN_CONFIG": json.dumps(config.to_dict()), "IMCGEN_SEED": str(seed)}
    full_env.update(env or {})
    return run(design, build_dir, test_module, test_dir=test_dir / "sim", env=full_env,
               waves=waves)
