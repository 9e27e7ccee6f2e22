"""The performance suite of ``scripts/bench --suite perf`` (issue: golden model near the BLAS
limit, regressions near the Verilator ceiling, ADCs never idle).

For every preset (``default`` in both schedules) and a 256-row x 256-physical-column array,
measured side by side in one run:

- elaboration (Amaranth -> Verilog) and the Verilator builds: the fast engine's driver fresh
  (this Verilog never built; the compiler cache may hold the runtime), again with a warm
  compiler cache, and cached (trusted build directory); the cocotb build fresh and cached;
- simulated cycles/s: the plain C++ harness (:func:`imcgen.sim.fast.run_ceiling`, ports only, no
  stalls, no checks: the ceiling), the fast engine (:func:`imcgen.sim.cocotb_engine.simulate` with
  ``engine="fast"``, vector phase) and its ratio to the ceiling, alternated ``--repeats`` times,
  best of each; cocotb (whole run, and without its fixed start-up);
- start-up of a cached fast run in a fresh process (``simulate`` of one vector; and the
  import), and of a cocotb run of one vector;
- the golden model's MVM/s (``golden.run``) against plain NumPy ``X @ W`` (int64) on the
  same shapes, best of ``--repeats``;
- cycles per vector against the ADC bound: the busiest tile's compare cycles (reads x column
  groups x adc bits), over the same back-to-back run (throughput) and per vector (latency).

Every fast-engine and cocotb run is checked against the golden model (values and cycles).
The table's "cocotb c/s" leaves out cocotb's fixed start-up (a one-vector run, "cocotb start
s"); the JSON also has the whole-run figure (``cocotb_cycles_per_s``). "start s" is a cached
fast run of one vector in a fresh process, after the imports (``import_s`` in the JSON).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# Sized like the 256 rows x 256 physical columns: 8-bit weights over four 2-bit cells
# (offset mapping) for 64 outputs, 8-bit inputs, 32 ADCs of 8 bits (8 column groups).
ARRAY_256 = dict(rows=256, tiles=1, outputs=64, input_bits=8, weight_bits=8, cell_bits=2,
                 weight_mapping="offset", adc_bits=8, adcs=32, schedule="dense")

TARGETS = {"fast_vs_ceiling": 0.80, "startup_s": 0.5, "golden_mvm_per_s": 100_000,
           "golden_vs_matmul": 0.10, "cycles_vs_adc_bound": 1.02}


def configs(names, sets=()):
    from imcgen import PRESETS, MacroConfig, load_config
    from imcgen.core.config import parse_set
    from imcgen.core.errors import ImcError

    table = {"default": load_config("default"),
             "default-dense": load_config("default", overrides={"schedule": "dense"})}
    table.update({name: load_config(name) for name in PRESETS if name != "default"})
    table["256x256"] = MacroConfig(**ARRAY_256)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise SystemExit(f"bench: unknown configuration(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(table)}")
    try:
        overrides = parse_set(sets)
        table = {name: cfg.replace(**overrides) for name, cfg in table.items()}
    except ImcError as err:
        raise SystemExit(f"bench: {err}") from None
    return {name: table[name] for name in names} if names else table


def workload(cfg, rng, cycles, cap=20_000):
    """Full-range weights, half-zero inputs (like ReLU activations), enough vectors for about
    ``cycles`` simulated cycles (at least 3)."""
    from imcgen.core import timing
    from imcgen.golden.row_scheduler import reads_per_tile

    W = rng.integers(cfg.weight_min, cfg.weight_max + 1, size=(cfg.input_rows, cfg.outputs))

    def draw(n):
        X = rng.integers(cfg.input_min, cfg.input_max + 1, size=(n, cfg.input_rows))
        return np.where(rng.random(X.shape) < 0.5, X, 0)

    probe = draw(64)
    per_vector = float(timing.vector_cycles(cfg, reads_per_tile(cfg, probe)).mean())
    n = int(min(cap, max(3, cycles // max(per_vector, 1.0))))
    return W, draw(n)


def _best(function, repeats, min_seconds=0.0):
    """Best (shortest) seconds per call of ``function`` over ``repeats`` timings, each looping
    until ``min_seconds`` passed."""
    best = float("inf")
    for _ in range(repeats):
        calls, t0 = 0, time.perf_counter()
        while True:
            function()
            calls += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= min_seconds:
                break
        best = min(best, elapsed / calls)
    return best


_STARTUP = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from imcgen import load_config, simulate
from imcgen.core.config import MacroConfig
t1 = time.perf_counter()
cfg = MacroConfig.from_dict(json.loads(sys.argv[1]))
W, X = np.load(sys.argv[2]), np.load(sys.argv[3])
t2 = time.perf_counter()
r = simulate(cfg, W, X, seed=0, engine=sys.argv[4])
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "run_s": t3 - t2, "match": r.match,
                  "build_s": r.build_seconds}))
"""


def startup(cfg, W, X, engine, work, repeats=3):
    """Seconds of a one-vector ``simulate`` in a fresh process (cached build), and of the
    import before it: the best of ``repeats`` processes (``first_run_s``: the first)."""
    np.save(work / "W.npy", W)
    np.save(work / "X1.npy", X[:1])
    runs = []
    for _ in range(repeats):
        done = subprocess.run([sys.executable, "-c", _STARTUP, json.dumps(cfg.to_dict()),
                               str(work / "W.npy"), str(work / "X1.npy"), engine],
                              capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        if not runs[-1]["match"]:
            raise SystemExit(f"bench: the one-vector {engine} run differs from the golden model")
    return {"run_s": min(r["run_s"] for r in runs), "import_s": min(r["import_s"] for r in runs),
            "first_run_s": runs[0]["run_s"]}


def bench_config(name, cfg, args, work):
    from imcgen import golden, simulate
    from imcgen.sim.fast import build_native, elaborated, run_ceiling
    from imcgen.sim.runner import build
    from imcgen.sim.verilog import elaborate

    row = {"config": name, "rows": cfg.input_rows, "physical_columns": cfg.physical_columns,
           "tiles": cfg.tiles, "schedule": cfg.schedule}
    rng = np.random.default_rng(0)
    W, X = workload(cfg, rng, args.cycles)
    row["vectors"] = len(X)

    def say(text):
        print(f"  {name}: {text}", file=sys.stderr, flush=True)

    say("elaborating")
    t0 = time.perf_counter()
    elaborate(cfg, work / "rtl")
    row["elaborate_s"] = time.perf_counter() - t0
    design = elaborated(cfg)  # the memo the fast engine reads (elaborates again if cold)

    say("building the fast driver")
    t0 = time.perf_counter()
    binary = build_native(design, "fast")
    row["build_fast_fresh_s"] = time.perf_counter() - t0
    if not args.quick:
        shutil.rmtree(binary.parent)
        t0 = time.perf_counter()
        build_native(design, "fast")
        row["build_fast_warm_ccache_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_native(design, "fast")
    row["build_fast_cached_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_native(design, "ceiling")
    row["build_ceiling_fresh_s"] = time.perf_counter() - t0
    if not args.no_cocotb:
        say("building for cocotb")
        t0 = time.perf_counter()
        build(design)
        row["build_cocotb_fresh_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        build(design)
        row["build_cocotb_cached_s"] = time.perf_counter() - t0

    say(f"ceiling and fast engine, {len(X)} vectors x {args.repeats}")
    ceiling, fast, result = [], [], None
    for _ in range(args.repeats):
        report = run_ceiling(cfg, W, X)
        ceiling.append(report["cycles"] / report["seconds"])
        result = simulate(cfg, W, X, seed=0, engine="fast")
        if not result.match:
            raise SystemExit(f"bench: {name}: the fast engine differs from the golden model\n"
                             + result.mismatch_report())
        fast.append(result.extra["vector_edges"] / result.extra["vector_seconds"])
    row["ceiling_cycles"] = report["cycles"]
    row["fast_cycles"] = result.extra["vector_edges"]
    row["ceiling_cycles_per_s"] = max(ceiling)
    row["fast_cycles_per_s"] = max(fast)
    row["fast_vs_ceiling"] = row["fast_cycles_per_s"] / row["ceiling_cycles_per_s"]
    row["fast_mvm_per_s"] = row["fast_cycles_per_s"] * len(X) / row["fast_cycles"]
    row["fast_run_s"] = result.sim_seconds
    row["fast_match"] = result.match

    # Throughput and latency against the ADC compare time of the busiest tile.
    from imcgen.core import timing

    if hasattr(timing, "adc_bound"):
        bound = timing.adc_bound(cfg, result.reads)
    else:  # a timing model from before adc_bound: the same figure
        bound = result.reads.max(axis=1) * cfg.column_groups * cfg.adc_bits
    row["cycles_per_vector"] = row["fast_cycles"] / len(X)
    row["adc_bound_per_vector"] = float(bound.mean())
    row["cycles_vs_adc_bound"] = row["fast_cycles"] / max(int(bound.sum()), 1)
    row["latency_vs_adc_bound"] = float(result.cycles.mean()) / max(float(bound.mean()), 1e-9)

    say("cached start-up (fresh process)")
    up = startup(cfg, W, X, "fast", work, repeats=1 if args.quick else 3)
    row["fast_startup_s"], row["import_s"] = up["run_s"], up["import_s"]
    row["fast_startup_first_s"] = up["first_run_s"]
    if not args.no_cocotb:
        n = int(max(3, min(len(X), len(X) * args.cocotb_cycles / max(row["fast_cycles"], 1))))
        say(f"cocotb, {n} vectors")
        subset = X[:n]
        edges = simulate(cfg, W, subset, seed=0, engine="fast").extra["vector_edges"]
        slow = simulate(cfg, W, subset, seed=0)
        if not slow.match:
            raise SystemExit(f"bench: {name}: cocotb differs from the golden model\n"
                             + slow.mismatch_report())
        one = simulate(cfg, W, X[:1], seed=0)
        row["cocotb_vectors"] = n
        row["cocotb_startup_s"] = one.sim_seconds
        row["cocotb_cycles_per_s"] = edges / slow.sim_seconds
        row["cocotb_cycles_per_s_steady"] = edges / max(slow.sim_seconds - one.sim_seconds, 1e-3)
        row["fast_vs_cocotb"] = row["fast_cycles_per_s"] / row["cocotb_cycles_per_s"]

    say(f"golden model, {args.golden_vectors} vectors")
    Xg = np.resize(X, (args.golden_vectors, cfg.input_rows))
    expected = golden.run(cfg, W, Xg)
    assert expected.y.shape == (len(Xg), cfg.outputs)
    seconds = _best(lambda: golden.run(cfg, W, Xg), args.repeats)
    W64, X64 = W.astype(np.int64), Xg.astype(np.int64)
    matmul = _best(lambda: X64 @ W64, args.repeats, min_seconds=0.1)
    row["golden_mvm_per_s"] = len(Xg) / seconds
    row["matmul_mvm_per_s"] = len(Xg) / matmul
    row["golden_vs_matmul"] = row["golden_mvm_per_s"] / row["matmul_mvm_per_s"]
    return row


COLUMNS = [  # (key, heading, format)
    ("config", "config", "{}"), ("vectors", "vec", "{}"),
    ("elaborate_s", "elab s", "{:.1f}"), ("build_fast_fresh_s", "build s", "{:.1f}"),
    ("build_fast_warm_ccache_s", "warm s", "{:.1f}"), ("build_fast_cached_s", "cached s",
                                                       "{:.2f}"),
    ("build_cocotb_fresh_s", "cocotb build s", "{:.1f}"),
    ("cocotb_cycles_per_s_steady", "cocotb c/s", "{:,.0f}"),
    ("cocotb_startup_s", "cocotb start s", "{:.1f}"),
    ("fast_cycles_per_s", "fast c/s", "{:,.0f}"), ("fast_mvm_per_s", "fast MVM/s", "{:,.0f}"),
    ("ceiling_cycles_per_s", "C++ c/s", "{:,.0f}"),
    ("fast_vs_ceiling", "fast/C++", "{:.2f}"), ("fast_startup_s", "start s", "{:.2f}"),
    ("golden_mvm_per_s", "golden MVM/s", "{:,.0f}"), ("matmul_mvm_per_s", "X@W MVM/s",
                                                      "{:,.0f}"),
    ("golden_vs_matmul", "golden/X@W", "{:.3f}"), ("cycles_per_vector", "cyc/vec", "{:.1f}"),
    ("cycles_vs_adc_bound", "/ADC bound", "{:.3f}"),
]


def table(rows):
    head = [h for _, h, _ in COLUMNS]
    body = [[fmt.format(row[k]) if k in row else "-" for k, _, fmt in COLUMNS] for row in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)


def bench_perf(args):
    names = [n for n in (args.configs or "").split(",") if n]
    if args.quick:
        names = names or ["default"]  # shares its builds with the macro and fast-engine tests
        args.cycles, args.cocotb_cycles = min(args.cycles, 20_000), min(args.cocotb_cycles,
                                                                         10_000)
        args.golden_vectors, args.repeats = min(args.golden_vectors, 200), 1
    cache = None
    if args.cold:  # builds and compiler cache start empty (set before imcgen is imported)
        cache = Path(tempfile.mkdtemp(prefix="imcgen-bench-"))
        os.environ["IMCGEN_CACHE"] = str(cache)
    from importlib.metadata import version

    chosen = configs(names, args.sets)
    work = Path(tempfile.mkdtemp(prefix="imcgen-bench-work-"))
    report = {"suite": "perf", "quick": bool(args.quick), "cold_cache": bool(args.cold),
              "cpus": os.cpu_count(), "verilator": version("verilator"),
              "date": time.strftime("%Y-%m-%d %H:%M:%S"), "cycles": args.cycles,
              "repeats": args.repeats, "set": list(args.sets), "targets": TARGETS, "configs": []}
    try:
        for name, cfg in chosen.items():
            (work / name).mkdir()
            report["configs"].append(bench_config(name, cfg, args, work / name))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)
    print(table(report["configs"]))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return report
