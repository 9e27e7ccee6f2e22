"""``imcgen sweep SPEC.toml``: design-space exploration on a Dask cluster.

Every point is a configuration (the spec's base with some keys changed) evaluated by
:func:`evaluate_point`: the golden model's accuracy or precision on the workload, and the cost
model's energy, area, latency and throughput from the exact event counts
(:mod:`imcgen.apps.cost`), optionally the FPGA resources (the fitted model, or Yosys). The
points are a grid or the generations of an NSGA-II search (optuna's ``NSGAIISampler``, asked
a generation at a time, told the results); they run as Dask tasks on a local cluster sized to
the machine or on a running one (``--scheduler tcp://HOST:PORT``). docs/sweep.md has the spec.

Results: each finished point is one line of ``points.jsonl`` in the output directory,
written as it arrives, so an interrupted sweep keeps what it did and a rerun of the same spec
skips those points; ``results.parquet`` (pyarrow) holds the whole table and ``pareto.png``
the front. A point that fails (a configuration the schema refuses, an error on a worker) is a
row with its one-line error, never the end of the sweep; a worker lost mid-sweep costs nothing
(Dask runs its tasks again elsewhere).
"""

import itertools
import json
import math
import os
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imcgen.core.errors import ImcError

__all__ = ["Spec", "load_spec", "points_of", "evaluate_point", "run_sweep", "pareto_mask",
           "OBJECTIVES", "MAX_POINTS"]

#: What a point reports that a search may optimise, and in which direction.
OBJECTIVES = {
    "accuracy": "maximize", "bits": "maximize", "rms": "minimize",
    "energy_pj": "minimize", "area_mm2": "minimize", "latency_ns": "minimize",
    "cycles": "minimize", "tops_per_w": "maximize", "tops_per_mm2": "maximize",
    "mvm_per_s": "maximize", "fpga_ecp5_luts": "minimize", "fpga_ecp5_ffs": "minimize",
    "yosys_luts": "minimize", "yosys_ffs": "minimize",  # fpga = "synth"
}
MAX_POINTS = 100_000
_SWEEP_KEYS = {"preset", "config", "mode", "vectors", "seed", "objectives", "generations",
               "population", "fpga", "set"}


@dataclass(frozen=True)
class Spec:
    """A parsed sweep specification (docs/sweep.md)."""

    base: dict                      # the base configuration, as MacroConfig.to_dict()
    mode: str                       # "grid" or "nsga2"
    axes: dict                      # grid: key -> values; nsga2: key -> values or (lo, hi)
    vectors: int = 200
    seed: int = 0
    objectives: tuple = ("rms", "energy_pj", "area_mm2")
    generations: int = 4
    population: int = 16
    fpga: str = "model"             # "model" (fitted), "synth" (Yosys), "none"
    source: str = ""
    changes: dict = field(default_factory=dict)  # the spec's fixed [sweep.set]

    @property
    def size(self):
        if self.mode == "grid":
            return math.prod(len(v) for v in self.axes.values())
        return self.generations * self.population


def _where(path, key):
    return f"{path}: {key}"


def load_spec(path):
    """The :class:`Spec` in the TOML file ``path``; :class:`ImcError` naming the field."""
    from imcgen.core.checks import read_config_text
    from imcgen.core.config import load_config

    text = read_config_text(path, "SPEC")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ImcError("SPEC", str(path), f"is not valid TOML ({str(err).splitlines()[0]})") \
            from None
    sweep = data.get("sweep", {})
    if not isinstance(sweep, dict):
        raise ImcError(_where(path, "sweep"), sweep, "must be a table")
    unknown = sorted(set(data) - {"sweep", "grid", "space"})
    if unknown:
        raise ImcError(_where(path, unknown[0]), data[unknown[0]],
                       "unknown table; allowed: sweep, grid, space")
    unknown = sorted(set(sweep) - _SWEEP_KEYS)
    if unknown:
        raise ImcError(_where(path, f"sweep.{unknown[0]}"), sweep[unknown[0]],
                       "unknown key; allowed: " + ", ".join(sorted(_SWEEP_KEYS)))
    mode = sweep.get("mode", "grid")
    if mode not in ("grid", "nsga2"):
        raise ImcError(_where(path, "sweep.mode"), mode, "must be one of 'grid', 'nsga2'")
    config = sweep.get("config")
    if config is not None:
        if not isinstance(config, str):
            raise ImcError(_where(path, "sweep.config"), config, "must be a file name")
        config = str(Path(path).parent / config)
    preset = sweep.get("preset", "default")
    fixed = sweep.get("set", {})
    if not isinstance(fixed, dict):
        raise ImcError(_where(path, "sweep.set"), fixed, "must be a table of key = value")
    fixed = _flat(fixed)
    try:
        cfg = load_config(preset if config is None else None, config)
        cfg = cfg.replace(**fixed)
    except ImcError as err:
        raise ImcError(_where(path, f"sweep ({err.field})"), err.value, err.allowed) from None
    fpga = sweep.get("fpga", "model")
    if fpga not in ("model", "synth", "none"):
        raise ImcError(_where(path, "sweep.fpga"), fpga,
                       "must be one of 'model', 'synth', 'none'")
    table = "grid" if mode == "grid" else "space"
    axes = data.get(table, {})
    if not isinstance(axes, dict) or not axes:
        raise ImcError(_where(path, table), axes,
                       f"must be a table of key = [values] (mode = '{mode}')")
    axes = _flat(axes)
    for key, values in axes.items():
        _check_axis(path, table, key, values)
    objectives = sweep.get("objectives", list(Spec.objectives))
    if not isinstance(objectives, list) or not objectives:
        raise ImcError(_where(path, "sweep.objectives"), objectives,
                       "must be a list of " + ", ".join(OBJECTIVES))
    for name in objectives:
        if name not in OBJECTIVES:
            raise ImcError(_where(path, "sweep.objectives"), name,
                           "must be among " + ", ".join(OBJECTIVES))
    spec = Spec(base=cfg.to_dict(), mode=mode, axes=axes,
                vectors=_int(path, "sweep.vectors", sweep.get("vectors", 200), 1, 10**6),
                seed=_int(path, "sweep.seed", sweep.get("seed", 0), 0, 2**63 - 1),
                objectives=tuple(objectives),
                generations=_int(path, "sweep.generations", sweep.get("generations", 4), 1,
                                 10_000),
                population=_int(path, "sweep.population", sweep.get("population", 16), 2,
                                10_000),
                fpga=fpga, source=str(path), changes=fixed)
    if spec.size > MAX_POINTS:
        raise ImcError(_where(path, table), f"{spec.size} points",
                       f"at most {MAX_POINTS} points per sweep")
    return spec


def _flat(table, prefix=""):
    """``{"analog": {"device": [...]}}`` and ``{"analog.device": [...]}`` alike, dotted."""
    out = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _text(value):
    return str(value).lower() if isinstance(value, bool) else str(value)


def _int(path, key, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ImcError(_where(path, key), value, f"must be an integer in {lo}..{hi}")
    return value


def _check_axis(path, table, key, values):
    """Each value of an axis must be a legal value of its key, alone (a combination may still
    clash: that point is recorded as failed, with its error)."""
    from imcgen.core.config import _field

    where = _where(path, f"{table}.{key}")
    spec = _field(key)
    if spec is None:
        raise ImcError(where, values, "unknown configuration key (imcgen config keys)")
    if not isinstance(values, list) or not values:
        raise ImcError(where, values, "must be a non-empty list of values")
    if len(values) != len({json.dumps(v) for v in values}):
        raise ImcError(where, values, "lists a value twice")
    for value in values:
        try:
            spec.check(key, value)
        except ImcError as err:
            raise ImcError(where, value, err.allowed) from None


def points_of(spec):
    """The grid's points, ``[{key: value}]`` in a stable order (the last key fastest)."""
    keys = list(spec.axes)
    return [dict(zip(keys, combo, strict=True))
            for combo in itertools.product(*(spec.axes[k] for k in keys))]


def point_key(changes):
    """The identity of a point: its canonical JSON (the spec's fixed keys are the base's)."""
    return json.dumps(changes, sort_keys=True, separators=(",", ":"))


def evaluate_point(base, changes, vectors, seed, fpga="model"):
    """One point: ``base`` (a configuration dict) with ``changes``, evaluated on the golden
    model and the cost model. Returns a flat dict; a point that cannot be evaluated returns
    its one-line error in ``error`` instead of figures. Runs on a Dask worker: imports here."""
    start = time.perf_counter()
    row = {"key": point_key(changes), **{f"set.{k}": v for k, v in changes.items()},
           "error": None}
    try:
        from imcgen.apps import accuracy
        from imcgen.apps.cost import cost
        from imcgen.core.config import MacroConfig

        cfg = MacroConfig.from_dict(base).replace(**changes)
        work = accuracy.workload(cfg, seed, vectors)
        quality = accuracy.evaluate(cfg, work)
        report = cost(cfg, work.X, work.W, fpga=fpga == "model")
        row.update(report.as_row())
        row.update({"rms": quality.rms, "bits": min(quality.bits, 64.0),
                    "accuracy": quality.accuracy, "workload": work.name})
        if fpga == "synth":
            row.update(_synth(cfg))
    except ImcError as err:
        row["error"] = str(err)
    except Exception as err:  # noqa: BLE001  (a point's failure is a row, never fatal)
        row["error"] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    row["seconds"] = time.perf_counter() - start
    row["worker"] = os.environ.get("DASK_WORKER_NAME", "") or _worker_name()
    return row


def _worker_name():
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "local"


def _synth(cfg):
    """Yosys resources of the bare macro (``imcgen fpga --synth-only``), where Yosys is."""
    import tempfile

    from imcgen.fpga import flow
    from imcgen.hdl.macro_top import MacroTop

    with tempfile.TemporaryDirectory(prefix="imcgen-sweep-") as tmp:
        report = flow.synth_only(MacroTop(config=cfg), "ecp5", build_dir=tmp, name="top",
                                 hierarchy=False)
    return {f"yosys_{k}": v for k, v in report["resources"].items()}


# -- the cluster ------------------------------------------------------------------------------


def connect(scheduler=None, workers=None):
    """A Dask client: to ``scheduler`` (``tcp://HOST:PORT``), else to a new local cluster of
    ``workers`` processes (default: one per core) bound to 127.0.0.1."""
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler, timeout="3s")
    cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                           processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0",
                           silence_logs=40)
    return Client(cluster)


class Journal:
    """``points.jsonl``: one line per finished point, appended and flushed as it arrives."""

    def __init__(self, path):
        self.path = Path(path)
        self.rows = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by an interruption: that point runs again
                self.rows[row["key"]] = row
        self._handle = open(self.path, "a")  # noqa: SIM115  (kept open for the sweep)

    def add(self, row):
        self.rows[row["key"]] = row
        self._handle.write(json.dumps(row, default=_json_default) + "\n")
        self._handle.flush()

    def close(self):
        self._handle.close()


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


def run_sweep(spec, out_dir, scheduler=None, workers=None, out=sys.stderr, client=None):
    """Run ``spec``'s points on Dask; returns the rows (done before and now) in point order.

    Writes ``points.jsonl`` as points finish, then ``results.parquet`` and ``pareto.png``.
    """
    out_dir = Path(out_dir)
    own = client is None
    client = client or connect(scheduler, workers)  # before anything is written
    start = time.perf_counter()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "spec.json").write_text(json.dumps(
            {"source": spec.source, "base": spec.base, "mode": spec.mode,
             "axes": spec.axes, "vectors": spec.vectors, "seed": spec.seed}, indent=1) + "\n")
        journal = Journal(out_dir / "points.jsonl")
        out.write(f"sweep: {spec.size} points ({spec.mode}) on "
                  f"{len(client.scheduler_info()['workers'])} Dask workers; dashboard "
                  f"{client.dashboard_link}\n")
        if spec.mode == "grid":
            rows = _run_points(client, spec, points_of(spec), journal, out)
        else:
            rows = _run_nsga2(client, spec, journal, out)
        journal.close()
    finally:
        if own:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
    seconds = time.perf_counter() - start
    write_results(rows, out_dir, spec)
    failed = sum(1 for r in rows if r["error"])
    out.write(f"sweep: {len(rows)} points ({failed} failed) in {seconds:.1f} s; "
              f"{out_dir / 'results.parquet'}\n")
    return rows


def _run_points(client, spec, points, journal, out):
    """Evaluate ``points`` (skipping those in the journal); rows in the points' order."""
    from distributed import as_completed

    todo = [p for p in points if point_key(p) not in journal.rows]
    done = len(points) - len(todo)
    if done:
        out.write(f"sweep: {done} of {len(points)} points done before, skipped\n")
    futures = {}
    for changes in todo:
        future = client.submit(evaluate_point, spec.base, changes, spec.vectors, spec.seed,
                               spec.fpga, key=f"point-{_digest(spec, changes)}", pure=False,
                               retries=2)
        futures[future] = changes
    finished = 0
    for future in as_completed(futures):
        changes = futures[future]
        try:
            row = future.result()
        except Exception as err:  # noqa: BLE001  (a lost task is a failed point)
            row = {"key": point_key(changes), **{f"set.{k}": v for k, v in changes.items()},
                   "error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
                   "seconds": None, "worker": None}
        journal.add(row)
        finished += 1
        if finished == len(futures) or finished % max(1, len(futures) // 20) == 0:
            out.write(f"sweep: {done + finished}/{len(points)} points\n")
    return [journal.rows[point_key(p)] for p in points]


def _digest(spec, changes):
    import hashlib

    return hashlib.sha256((json.dumps(spec.base, sort_keys=True) + point_key(changes) +
                           f"{spec.vectors}/{spec.seed}/{spec.fpga}").encode()).hexdigest()[:16]


def _run_nsga2(client, spec, journal, out):
    """NSGA-II (optuna) a generation at a time: ask ``population`` trials, evaluate them on the
    cluster, tell the results; failed points are failed trials."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = [OBJECTIVES[name] for name in spec.objectives]
    sampler = optuna.samplers.NSGAIISampler(population_size=spec.population, seed=spec.seed)
    study = optuna.create_study(directions=directions, sampler=sampler)
    rows, order = {}, []
    for generation in range(spec.generations):
        trials = [study.ask() for _ in range(spec.population)]
        points = [{key: trial.suggest_categorical(key, values) for key, values in
                   spec.axes.items()} for trial in trials]
        out.write(f"sweep: generation {generation + 1}/{spec.generations}\n")
        fresh = list({point_key(p): p for p in points}.values())
        for row in _run_points(client, spec, fresh, journal, out):
            rows[row["key"]] = row
        for trial, changes in zip(trials, points, strict=True):
            row = rows[point_key(changes)]
            values = [row.get(name) for name in spec.objectives]
            if row["error"] or any(v is None or not math.isfinite(v) for v in values):
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, values)
            if row["key"] not in order:
                order.append(row["key"])
    return [rows[key] for key in order]


# -- results ----------------------------------------------------------------------------------


def pareto_mask(values, directions):
    """Boolean mask of the non-dominated rows of ``values`` (``(n, k)``; NaN rows never
    on the front) for ``directions`` ("minimize"/"maximize" per column)."""
    v = np.array(values, dtype=np.float64)
    if v.size == 0:
        return np.zeros(len(values), dtype=bool)
    v = v * np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    ok = np.isfinite(v).all(axis=1)
    mask = ok.copy()
    for i in np.flatnonzero(ok):
        others = v[ok]
        dominated = (others <= v[i]).all(axis=1) & (others < v[i]).any(axis=1)
        mask[i] = not dominated.any()
    return mask


def write_results(rows, out_dir, spec):
    """``results.parquet`` (every row, the configuration keys as ``set.*`` columns, the
    Pareto membership as ``pareto``) and ``pareto.png``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out_dir = Path(out_dir)
    good = [r for r in rows if not r["error"]]
    values = [[r.get(name, float("nan")) if r.get(name) is not None else float("nan")
               for name in spec.objectives] for r in good]
    mask = pareto_mask(values, [OBJECTIVES[n] for n in spec.objectives])
    front = {r["key"] for r, m in zip(good, mask, strict=True) if m}
    columns = sorted({k for r in rows for k in r}, key=lambda k: (not k.startswith("set."), k))
    table = {c: [_cell(r.get(c)) for r in rows] for c in columns}
    table["pareto"] = [r["key"] in front for r in rows]
    from imcgen.core.checks import written_whole

    with written_whole(out_dir / "results.parquet") as tmp:
        pq.write_table(pa.table(table), tmp)
    if len(spec.objectives) >= 2 and good:
        _plot(good, mask, spec, out_dir / "pareto.png")


def _cell(value):
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _plot(rows, mask, spec, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from imcgen.core.checks import written_whole

    x_name, y_name = spec.objectives[:2]
    x = np.array([r.get(x_name, np.nan) for r in rows], dtype=float)
    y = np.array([r.get(y_name, np.nan) for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    if len(spec.objectives) > 2:
        c = np.array([r.get(spec.objectives[2], np.nan) for r in rows], dtype=float)
        points = ax.scatter(x, y, c=c, s=14, cmap="viridis", alpha=0.7)
        fig.colorbar(points, ax=ax, label=spec.objectives[2])
    else:
        ax.scatter(x, y, s=14, alpha=0.6, label="points")
    # The front of the two plotted objectives as a line; the front of all of them marked.
    two = pareto_mask(np.stack([x, y], axis=1),
                      [OBJECTIVES[x_name], OBJECTIVES[y_name]])
    order = np.argsort(x[two])
    ax.plot(x[two][order], y[two][order], "r-", lw=1.2, label=f"front: {x_name}, {y_name}")
    if len(spec.objectives) > 2:
        ax.scatter(x[mask], y[mask], s=40, facecolors="none", edgecolors="r",
                   label="front: all objectives")
    ax.set_xlabel(x_name)
    ax.set_ylabel(y_name)
    for axis, values in (("x", x), ("y", y)):
        finite = values[np.isfinite(values)]
        if finite.size and finite.min() > 0 and finite.max() / finite.min() > 100:
            getattr(ax, f"set_{axis}scale")("log")
    ax.set_title(f"{len(rows)} points, {int(mask.sum())} on the front")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    with written_whole(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
