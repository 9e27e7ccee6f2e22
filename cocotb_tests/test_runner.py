"""The Verilator build cache: keyed by what the binary depends on, verified before reuse.

The scenario users hit: a second checkout or a recreated virtual environment at another path
reused a cached binary whose rpath pointed into the first environment; once that was gone,
every simulation died with "return code 127". Here one environment builds, is deleted, and
another runs the same design from the same cache.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from imcgen.core.config import MacroConfig
from imcgen.sim.runner import SimulationError, build, run, toolchain
from imcgen.sim.verilog import elaborate

TINY = MacroConfig(rows=4, tiles=1, outputs=2, input_bits=2, weight_bits=3, cell_bits=1,
                   adc_bits=3, adcs=2)


def shadow_environment(path):
    """A virtual environment at ``path`` with this one's packages: links to all of them, except
    cocotb and cocotb_tools, which are copied so that cocotb's library directory (which cocotb
    resolves through links) lives inside the new environment, as in a real second venv."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(path)], check=True)
    site = Path(sysconfig.get_paths()["purelib"])
    target = next((path / "lib").glob("python3*/site-packages"))
    for entry in site.iterdir():
        if entry.name in ("cocotb", "cocotb_tools"):
            shutil.copytree(entry, target / entry.name, symlinks=True)
        elif not (target / entry.name).exists():
            (target / entry.name).symlink_to(entry)
    return path / "bin" / "python"


def simulate_from(python, cache, tmp_path, name):
    np.save(tmp_path / "W.npy", np.array([[1, -2], [3, 0], [-1, 2], [2, 3]]))
    np.save(tmp_path / "X.npy", np.array([[1, 2, 3, 0], [3, 3, 3, 3]]))
    (tmp_path / "tiny.toml").write_text(TINY.to_toml())
    return subprocess.run(
        [str(python), "-m", "imcgen.cli", "simulate", "--config", tmp_path / "tiny.toml",
         "--weights", tmp_path / "W.npy",
         "--inputs", tmp_path / "X.npy", "-o", tmp_path / f"{name}.npz"],
        capture_output=True, text=True, env={**os.environ, "IMCGEN_CACHE": str(cache)})


def test_a_build_from_a_deleted_environment_is_not_reused(tmp_path):
    cache = tmp_path / "cache"
    other = shadow_environment(tmp_path / "other-venv")
    first = simulate_from(other, cache, tmp_path, "first")
    assert first.returncode == 0, first.stdout + first.stderr
    shutil.rmtree(tmp_path / "other-venv")  # the environment that built it is gone
    second = simulate_from(sys.executable, cache, tmp_path, "second")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "values match, cycles match" in second.stdout
    builds = [p for p in (cache / "builds").iterdir() if p.is_dir()]
    libs = {json.loads((p / "BUILT").read_text())["toolchain"]["cocotb_libs"] for p in builds}
    assert toolchain()[0]["cocotb_libs"] in libs and len(builds) == 2, libs


def test_a_stale_or_broken_cached_build_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("IMCGEN_CACHE", str(tmp_path / "cache"))
    design = elaborate(TINY, tmp_path / "rtl")
    build_dir = build(design)
    binary = build_dir / design.name
    stamp = binary.stat().st_mtime_ns
    assert build(design) == build_dir and binary.stat().st_mtime_ns == stamp  # trusted: reused
    record = json.loads((build_dir / "BUILT").read_text())
    record["toolchain"]["cocotb_libs"] = "/nonexistent/cocotb/libs"  # built elsewhere
    (build_dir / "BUILT").write_text(json.dumps(record))
    assert build(design) == build_dir
    assert json.loads((build_dir / "BUILT").read_text())["toolchain"] == toolchain()[0]
    binary.unlink()  # half-deleted cache entry
    build(design)
    assert binary.is_file()


def test_a_simulator_that_cannot_start_is_one_line_naming_build_and_log(tmp_path):
    design = elaborate(TINY, tmp_path / "rtl")
    fake = tmp_path / "fake-build"
    fake.mkdir()  # no binary in it
    with pytest.raises(SimulationError) as err:
        run(design, fake, "imcgen.sim.tb.macro", test_dir=tmp_path / "sim")
    summary = err.value.summary
    assert "\n" not in summary and str(fake) in summary and "sim.log" in summary, summary
