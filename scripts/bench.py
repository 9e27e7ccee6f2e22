"""Benchmarks: Verilator build time (cold, warm compiler cache, cached) and simulated cycles/s.

    ./scripts/bench [--preset default] [--vectors 2000] [--json out.json]

Numbers depend on the machine; the closing notes of the issues quote runs of this script.
"""

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--vectors", type=int, default=2000)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()

    cache = Path(tempfile.mkdtemp(prefix="imcgen-bench-"))
    os.environ["IMCGEN_CACHE"] = str(cache)  # fully cold: builds and ccache start empty
    from imcgen import golden, load_config, simulate
    from imcgen.runner import build
    from imcgen.simulation import elaborate

    report = {"preset": args.preset, "cpus": os.cpu_count()}
    cfg = load_config(args.preset)
    work = Path(tempfile.mkdtemp(prefix="imcgen-bench-work-"))

    t0 = time.perf_counter()
    design = elaborate(cfg, work / "rtl")
    report["elaborate_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_dir = build(design)
    report["build_cold_s"] = time.perf_counter() - t0
    shutil.rmtree(build_dir)  # same design, compiler cache warm (the usual case for a new config)
    t0 = time.perf_counter()
    build(design)
    report["build_warm_ccache_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    build(design)
    report["build_cached_s"] = time.perf_counter() - t0

    rng = np.random.default_rng(0)
    W = rng.integers(cfg.weight_min, cfg.weight_max + 1, size=(cfg.input_rows, cfg.outputs))
    X = rng.integers(cfg.input_min, cfg.input_max + 1, size=(args.vectors, cfg.input_rows))
    X = np.where(rng.random(X.shape) < 0.5, X, 0)  # half the inputs zero, like ReLU activations
    for schedule in ("zero_skip", "dense"):
        c = cfg.replace(schedule=schedule)
        result = simulate(c, W, X, seed=0, work_dir=work / schedule)
        assert result.match, result.mismatch_report()
        cycles = int(result.cycles.sum())
        report[f"{schedule}_cycles_per_vector"] = float(result.cycles.mean())
        report[f"{schedule}_sim_s"] = result.sim_seconds
        report[f"{schedule}_cycles_per_s"] = cycles / result.sim_seconds
    t0 = time.perf_counter()
    golden.run(cfg, W, X)
    report["golden_vectors_per_s"] = args.vectors / (time.perf_counter() - t0)

    width = max(map(len, report))
    for key, value in report.items():
        text = f"{value:,.2f}" if isinstance(value, float) else str(value)
        print(f"{key.ljust(width)}  {text}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
