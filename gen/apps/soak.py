"""Soak: random MVMs across random configurations, with stalls on every stream and resets.

Every configuration is drawn at random (and built), its weights and inputs too, and every
stream stalls at random (weight rows and vectors idle before each transfer, the result stream
backpressured); resets hit after random numbers of results (the host resends what it has no
result for) and while weight rows load (it resends the row in flight). Each run is checked
against the golden model: values and cycle counts exactly, and no result lost or duplicated.
A third of the configurations are ``transposed`` and run a mixed stream of forward and backward
vectors. Everything derives from one seed, printed at the start and in the summary.

``scripts/soak`` runs it from the command line (``--mvms 100000`` for the full soak); the
default test suite runs a small instance so it cannot rot.
"""

import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np

from imcgen.core.config import MacroConfig
from imcgen.core.errors import ImcError

__all__ = ["SoakReport", "random_config", "stimulus", "soak_one", "soak"]


def random_config(rng):
    """A random legal configuration, small enough to build in tens of seconds."""
    while True:
        mapping = str(rng.choice(["differential", "offset"]))
        rows = int(rng.integers(1, 41))
        values = dict(
            rows=rows, tiles=int(rng.integers(1, 4)), outputs=int(rng.integers(1, 7)),
            input_bits=int(rng.integers(1, 9)), input_signed=bool(rng.integers(2)),
            weight_bits=int(rng.integers(2 if mapping == "differential" else 1, 11)),
            cell_bits=int(rng.integers(1, 4)), weight_mapping=mapping,
            adc_bits=int(rng.integers(1, 9)), schedule=str(rng.choice(["dense", "zero_skip"])),
            out_shift=int(rng.integers(0, 4)), out_relu=bool(rng.integers(2)),
            out_bits=int(rng.choice([0, 0, int(rng.integers(2, 20))])),
            crossbar=str(rng.choice(["stub", "stub", "stub", "external"])),
            rows_per_read=int(rng.choice([0, 0, int(rng.integers(1, rows + 1))])),
        )
        try:
            cfg = MacroConfig(**values, adcs=1)
            cfg = cfg.replace(adcs=int(rng.integers(1, cfg.physical_columns + 1)))
            return cfg.replace(adc_overlap=bool(rng.integers(4)))  # mostly the default
        except ImcError:  # e.g. an accumulator wider than 62 bits: draw again
            continue


def transposed_variant(cfg, seed, index):
    """A third of the configurations read both ways (``transposed``): drawn from a stream of
    their own, so the draws of the configuration and run stay those of the seed. Returns the
    configuration and, if transposed, the generator of the vectors' directions."""
    extra = np.random.default_rng([seed, index, 1])
    if extra.random() >= 1 / 3:
        return cfg, None
    try:
        return cfg.replace(transposed=True), extra
    except ImcError:  # backward sums wider than 62 bits
        return cfg, None


def directed(cfg, rng, X):
    """A mixed stream from forward vectors ``X``: about half turned into backward vectors of
    the same density (zero, full and most negative ones included). Returns ``(vectors,
    directions)`` for :func:`imcgen.sim.api.simulate`."""
    back = rng.random(len(X)) < 0.5
    vectors = []
    for x, b in zip(X, back, strict=True):
        if not b:
            vectors.append(x)
            continue
        density = np.count_nonzero(x) / len(x)
        y = rng.integers(cfg.input_min, cfg.input_max + 1, size=cfg.outputs)
        vectors.append(np.where(rng.random(cfg.outputs) < density, y, 0))
    return vectors, ["backward" if b else "forward" for b in back]


def stimulus(cfg, rng, vectors, backward=False):
    """Full-range weights; inputs of every density plus the extreme vectors (``backward``:
    backward vectors, one element per output)."""
    W = rng.integers(cfg.weight_min, cfg.weight_max + 1, size=(cfg.input_rows, cfg.outputs))
    W[0] = cfg.weight_max
    W[-1] = cfg.weight_min
    width = cfg.outputs if backward else cfg.input_rows
    density = rng.random((vectors, 1))
    X = rng.integers(cfg.input_min, cfg.input_max + 1, size=(vectors, width))
    X = np.where(rng.random(X.shape) < density, X, 0)
    extremes = np.array([np.zeros(width), np.full(width, cfg.input_max),
                         np.full(width, cfg.input_min)], dtype=np.int64)
    return W, np.concatenate([extremes, X])


@dataclass
class SoakReport:
    seed: int
    seconds: float = 0.0
    configs: int = 0
    mvms: int = 0
    cycles: int = 0
    resets: int = 0
    backward: int = 0  # backward MVMs among them (transposed configurations)
    mismatched: int = 0  # vectors whose values or cycles differ from the golden model
    lost: int = 0
    duplicated: int = 0
    failures: list = field(default_factory=list)

    @property
    def passed(self):
        return not (self.mismatched or self.lost or self.duplicated or self.failures)

    def summary(self):
        return (f"soak seed {self.seed}: {self.mvms} MVMs ({self.backward} backward, "
                f"{self.cycles} cycles) on "
                f"{self.configs} random configurations with {self.resets} resets in "
                f"{self.seconds:.0f} s: {self.mismatched} mismatched, {self.lost} lost, "
                f"{self.duplicated} duplicated, {len(self.failures)} failed runs")


def soak_one(seed, index, cycles_per_config=300_000, max_vectors=3000):
    """One random configuration and run; returns a dict of counts (for a process pool)."""
    from imcgen.sim.api import simulate

    rng = np.random.default_rng([seed, index])
    cfg, directions = transposed_variant(random_config(rng), seed, index)
    mean_cycles = max(1, cfg.max_cycles // 2)
    vectors = int(np.clip(cycles_per_config // mean_cycles, 20, max_vectors))
    W, X = stimulus(cfg, rng, vectors)
    resets = sorted(int(r) for r in rng.integers(1, len(X), size=int(rng.integers(0, 4))))
    weight_reset = int(rng.integers(1, cfg.input_rows)) if cfg.input_rows > 1 and \
        rng.random() < 0.3 else None
    run_seed = int(rng.integers(2**32))
    counts = dict(index=index, config=cfg.to_dict(), vectors=len(X), resets=len(resets) +
                  (weight_reset is not None), run_seed=run_seed)
    direction = "forward"
    if directions is not None:
        X, direction = directed(cfg, directions, X)
        counts["backward"] = direction.count("backward")
    try:
        result = simulate(cfg, W, X, seed=run_seed, direction=direction,
                          in_gaps=float(rng.uniform(0, 0.5)),
                          w_gaps=float(rng.uniform(0, 0.5)),
                          out_stalls=float(rng.uniform(0, 0.5)), reset_after=resets,
                          weight_reset_after=weight_reset)
    except Exception as err:  # a build or simulation failure is a finding, not a crash
        return {**counts, "failure": f"{type(err).__name__}: {err}".splitlines()[0]}
    got, want = len(result.y), len(result.y_golden)
    common = min(got, want)
    bad = (result.y[:common] != result.y_golden[:common]).any(axis=1) | \
        (result.cycles[:common] != result.cycles_golden[:common])
    counts.update(mvms=common, cycles=int(result.cycles_golden.sum()),
                  mismatched=int(bad.sum()), lost=max(0, want - got),
                  duplicated=max(0, got - want))
    if bad.any() or got != want:
        counts["failure"] = result.mismatch_report().replace("\n", "; ")
    return counts


def soak(seed, mvms, jobs=1, out=None, cycles_per_config=300_000):
    """Run random configurations until ``mvms`` MVMs were checked; returns a SoakReport."""
    report = SoakReport(seed=seed)
    start = time.perf_counter()
    say = out.write if out is not None else (lambda text: None)
    say(f"soak seed {seed}: target {mvms} MVMs, {jobs} parallel runs\n")
    index = 0
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        pending = set()
        while report.mvms < mvms or pending:
            # Keep every worker busy while the MVMs still to come are not yet in flight.
            while report.mvms + len(pending) * 500 < mvms and len(pending) < jobs:
                pending.add(pool.submit(soak_one, seed, index, cycles_per_config))
                index += 1
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                counts = future.result()
                report.configs += 1
                report.resets += counts["resets"]
                for key in ("mvms", "cycles", "backward", "mismatched", "lost", "duplicated"):
                    setattr(report, key, getattr(report, key) + counts.get(key, 0))
                if "failure" in counts:
                    report.failures.append(counts)
                verdict = f"FAILED {counts['failure']}" if "failure" in counts else "ok"
                report.seconds = time.perf_counter() - start
                say(f"  config {counts['index']}: {counts.get('mvms', 0)} MVMs, "
                    f"{counts['resets']} resets, {verdict} | total {report.mvms}/{mvms} in "
                    f"{report.seconds:.0f} s\n")
    report.seconds = time.perf_counter() - start
    say(report.summary() + "\n")
    return report
