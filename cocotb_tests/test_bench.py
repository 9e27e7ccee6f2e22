"""The performance suite (``scripts/bench --suite perf``) cannot rot: its ``--quick`` instance
runs here (the default preset, ~20k cycles, one repeat). It checks that every figure is produced
and that every run inside agreed with the golden model; it asserts no speed (that is what the
suite itself is for)."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "scripts" / "bench.py"


def test_perf_suite_quick_smoke(tmp_path):
    out = tmp_path / "perf.json"
    done = subprocess.run([sys.executable, str(BENCH), "--suite", "perf", "--quick", "--json",
                           str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    (row,) = report["configs"]
    assert row["config"] == "default" and row["fast_match"]
    for key in ("elaborate_s", "build_fast_fresh_s", "build_fast_cached_s",
                "build_cocotb_fresh_s", "ceiling_cycles_per_s", "fast_cycles_per_s",
                "fast_vs_ceiling", "cocotb_cycles_per_s", "fast_startup_s", "golden_mvm_per_s",
                "matmul_mvm_per_s", "golden_vs_matmul", "cycles_vs_adc_bound"):
        assert row[key] > 0, (key, row)
    # Back to back, the fast engine and the plain harness simulate the same cycles (the
    # harness counts the edge that takes the last result, the engine stops before it).
    assert abs(row["fast_cycles"] - row["ceiling_cycles"]) <= 1, row
    assert row["cycles_vs_adc_bound"] >= 1.0, "cycles below the ADC compare time"
    assert "fast/C++" in done.stdout  # the table
