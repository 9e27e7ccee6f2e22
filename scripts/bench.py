"""Benchmarks: Verilator build time (cold, warm compiler cache, cached) and simulated cycles/s;
golden write-verify throughput; the performance suite (fast engine against the plain C++
ceiling, golden model against X @ W, cycles against the ADC bound).

    ./scripts/bench [--preset default] [--vectors 2000] [--json out.json]
    ./scripts/bench --suite write_verify [--cells 1000000]
    ./scripts/bench --suite perf [--configs default,isaac,...] [--set KEY=VALUE] [--json perf.json]
    ./scripts/bench --suite perf --quick      # smoke instance (the default test suite runs it)
    ./scripts/bench --suite fmax [--configs default,small] [--blocks a,b] [--freq 100]
    ./scripts/bench --suite golden [--golden-vectors 20000] [--repeats 7]   # golden vs BLAS

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
    parser.add_argument("--suite", choices=("macro", "write_verify", "perf", "fmax", "golden"),
                        default="macro")
    parser.add_argument("--cells", type=int, default=1_000_000,
                        help="cells the write_verify suite programs (golden model)")
    perf = parser.add_argument_group("perf suite (scripts/bench_perf.py)")
    perf.add_argument("--configs", metavar="A,B",
                      help="configurations (default: default, default-dense, every other "
                           "preset, 256x256)")
    perf.add_argument("--cycles", type=int, default=2_000_000,
                      help="simulated cycles per fast-engine and ceiling run (sets the vectors)")
    perf.add_argument("--cocotb-cycles", type=int, default=1_000_000,
                      help="simulated cycles of the cocotb run")
    perf.add_argument("--golden-vectors", type=int, default=1000,
                      help="batch of the golden model and X @ W timings")
    perf.add_argument("--repeats", type=int, default=3,
                      help="alternated ceiling/fast runs and golden timings (best of each)")
    perf.add_argument("--no-cocotb", action="store_true", help="skip the cocotb build and runs")
    perf.add_argument("--reuse-cache", action="store_true",
                      help="use the usual build cache instead of an empty one (fresh builds "
                           "then reuse compiled runtime objects)")
    perf.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                      help="override one key in every configuration (repeatable), e.g. "
                           "--set adc_overlap=true")
    perf.add_argument("--quick", action="store_true",
                      help="smoke instance: the default preset, ~20k cycles, one repeat, usual "
                           "cache")
    fmax = parser.add_argument_group("fmax suite (scripts/bench_fmax.py): per-block ECP5 Fmax")
    fmax.add_argument("--blocks", metavar="A,B", help="blocks (default: every one of "
                      "imcgen.fpga.fmax.BLOCKS); --configs picks the presets (default, small)")
    fmax.add_argument("--freq", type=float, default=100.0, help="clock nextpnr aims at (MHz)")
    fmax.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
    args = parser.parse_args()
    if args.suite == "fmax":
        from bench_fmax import bench_fmax

        bench_fmax(args)
        return None
    if args.suite == "write_verify":
        return bench_write_verify(args)
    if args.suite == "golden":
        return bench_golden(args)
    if args.suite == "perf":
        from bench_perf import bench_perf

        args.cold = not (args.quick or args.reuse_cache)
        bench_perf(args)
        return None

    cache = Path(tempfile.mkdtemp(prefix="imcgen-bench-"))
    os.environ["IMCGEN_CACHE"] = str(cache)  # fully cold: builds and ccache start empty
    from imcgen import golden, load_config, simulate
    from imcgen.sim.runner import build
    from imcgen.sim.verilog import elaborate

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

    show(report, args.json)
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)


def show(report, json_path):
    width = max(map(len, report))
    for key, value in report.items():
        text = f"{value:,.2f}" if isinstance(value, float) else str(value)
        print(f"{key.ljust(width)}  {text}")
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=2) + "\n")


def bench_golden(args):
    """The golden model (``golden.run``: values, reads, cycles, from int64 inputs) against a
    plain float64 BLAS product ``X @ W`` of the same shapes (arrays already float64; NumPy's
    default BLAS threads, and one thread), on every preset, side by side, best of
    ``--repeats`` each; half the inputs zero (like ReLU activations). Target: golden within
    10x of the product (issue: cost and exploration)."""
    from imcgen import PRESETS, golden, load_config
    from imcgen.golden.blas import _one_thread

    def best(fn, *a):
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn(*a)
            times.append(time.perf_counter() - t0)
        return min(times)

    def one_thread(a, b):
        with _one_thread():
            a @ b

    V = args.golden_vectors
    rows = []
    rng = np.random.default_rng(0)
    for name in PRESETS:
        cfg = load_config(name)
        W = rng.integers(cfg.weight_min, cfg.weight_max + 1, (cfg.input_rows, cfg.outputs))
        X = rng.integers(cfg.input_min, cfg.input_max + 1, (V, cfg.input_rows))
        X = np.where(rng.random(X.shape) < 0.5, X, 0)
        Xf, Wf = X.astype(np.float64), W.astype(np.float64)
        result = golden.run(cfg, W, X)
        assert np.array_equal(result.sums, X @ W)

        row = {"preset": name, "shape": f"{V}x{cfg.input_rows} @ {cfg.input_rows}x"
                                        f"{cfg.outputs}",
               "golden_ms": 1e3 * best(golden.run, cfg, W, X),
               "blas_ms": 1e3 * best(np.matmul, Xf, Wf),
               "blas_one_thread_ms": 1e3 * best(one_thread, Xf, Wf)}
        row["ratio"] = row["golden_ms"] / row["blas_ms"]
        row["ratio_one_thread"] = row["golden_ms"] / row["blas_one_thread_ms"]
        rows.append(row)
    print(f"{'preset':<8} {'shape':<22} {'golden ms':>9} {'BLAS ms':>8} {'1-thr ms':>8} "
          f"{'ratio':>6} {'1-thr':>6}")
    for r in rows:
        print(f"{r['preset']:<8} {r['shape']:<22} {r['golden_ms']:9.3f} {r['blas_ms']:8.3f} "
              f"{r['blas_one_thread_ms']:8.3f} {r['ratio']:6.1f} {r['ratio_one_thread']:6.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"vectors": V, "rows": rows}, indent=2) + "\n")


def bench_write_verify(args):
    """Golden write-verify of ``--cells`` cells (random targets), per device kind and cell
    width: cells per second and the figures (tolerance, error, pulses)."""
    from imcgen.core.config import load_config
    from imcgen.golden import write_verify
    from imcgen.golden.programming import program_golden, summary

    report = {"cells": args.cells, "cpus": os.cpu_count()}
    for kind in ("rram", "pcm"):
        for cell_bits, adc_bits in ((1, 3), (2, 5), (5, 8)):
            # weight_bits = cell_bits + 1, differential: one slice, two columns per output.
            rows = max(1, args.cells // 1000)
            tiles = -(-rows // 1024)
            cfg = load_config(overrides={
                "device.kind": kind, "cell_bits": cell_bits, "adc_bits": adc_bits,
                "rows": -(-rows // tiles), "tiles": tiles, "outputs": 500,
                "weight_bits": cell_bits + 1, "rows_per_read": 1, "adcs": 1})
            rng = np.random.default_rng(0)
            W = rng.integers(cfg.weight_min, cfg.weight_max + 1,
                             size=(cfg.input_rows, cfg.outputs))
            requests = write_verify.array_requests(cfg, W)
            t0 = time.perf_counter()
            result = program_golden(cfg, requests=requests, passes=0)
            seconds = time.perf_counter() - t0
            figures = summary(cfg, result)
            key = f"{kind}_{cell_bits}bit"
            report[f"{key}_cells"] = len(requests)
            report[f"{key}_seconds"] = seconds
            report[f"{key}_cells_per_s"] = len(requests) / seconds
            report[f"{key}_in_tolerance"] = figures["healthy_in_tolerance"]
            report[f"{key}_mean_rel_error"] = figures["mean_relative_error"]
            report[f"{key}_mean_pulses"] = figures["mean_pulses"]
            report[f"{key}_readback_errors"] = int(
                (write_verify.readback_levels(cfg, result.code) !=
                 write_verify.readback_levels(cfg, requests.target)).sum())
    show(report, args.json)


if __name__ == "__main__":
    main()
