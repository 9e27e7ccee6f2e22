"""The engine interface: one frozen run specification, one result, one timeout budget.

An engine runs a :class:`RunSpec` on the RTL of a configuration and returns a
:class:`SimResult` next to the golden model's. Two implement it: the cocotb engine
(:mod:`imcgen.sim.cocotb_engine`, Python drives every stream) and the fast engine
(:mod:`imcgen.sim.fast`, a generated C++ driver runs the whole batch). Before any work,
``engine.supports(cfg, spec)`` says in one line why it cannot run a case (an unraised
:class:`ImcError` naming the keyword), or ``None``; :func:`imcgen.sim.api.simulate` picks the
engine and raises the refusal.
"""

import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imcgen.core import timing
from imcgen.core.checks import check_back_inputs, check_inputs, check_weights
from imcgen.core.errors import ImcError, SimulationError
from imcgen.golden.row_scheduler import reads_per_tile
from imcgen.sim.toolchain import cache_dir

__all__ = ["CLOCK_NS", "RunSpec", "SimResult", "Engine", "USE_COCOTB", "budget_cycles",
           "keep_log", "split_directions"]

#: Period of the simulated clock (both engines; waves and timeouts are in ns).
CLOCK_NS = 10

#: How a refusal names the engine that runs everything (the CLI spells it ``--engine cocotb``).
USE_COCOTB = 'engine="cocotb" (the default)'


def _resets(reset_after):
    if reset_after is None:
        return ()
    return (int(reset_after),) if np.isscalar(reset_after) else tuple(int(r) for r in reset_after)


def _program_plan(program):
    """``program`` as ``{"requests": [[row, column, target], ...], "passes": n}`` or None."""
    if program is None:
        return None
    if isinstance(program, str):  # "array"
        return {"requests": [], "passes": 1}
    if isinstance(program, dict):
        requests, passes = program.get("requests", []), int(program.get("passes", 0))
    else:
        requests, passes = program, 0
    return {"requests": [[int(v) for v in r] for r in requests], "passes": passes}


@dataclass(frozen=True, eq=False)
class RunSpec:
    """What one run does, whichever engine runs it (see :func:`imcgen.sim.api.simulate` for
    each field's meaning). Build it with :meth:`make`, which checks and normalises."""

    weights: np.ndarray
    inputs: np.ndarray
    seed: int
    in_gaps: float = 0.0
    out_stalls: float = 0.0
    w_gaps: float = 0.0
    resets: tuple = ()
    weight_reset_after: int | None = None
    raw_rows: tuple = ()
    waves_dir: Path | None = None
    work_dir: Path | None = None
    program: dict | None = None
    program_reset_after: int | None = None
    p_gaps: float = 0.0
    r_stalls: float = 0.0
    load_weights: bool = True
    requant: tuple | None = None  # (bias, scale) loaded through q before the vectors
    # ``transposed``: which vectors are backward (``inputs`` then holds every vector in its
    # first ``rows * tiles`` or ``outputs`` columns); None when all are forward.
    backward: np.ndarray | None = None

    @classmethod
    def make(cls, cfg, weights, inputs, **options):
        """A checked spec from :func:`imcgen.sim.api.simulate`'s options (the one place they
        are listed): arrays checked against ``cfg``, the seed drawn when None, ``reset_after``
        as a tuple ``resets``, paths resolved, ``program`` as a plan, ``load_weights``
        defaulting to "unless programming"."""
        weights = check_weights(cfg, weights)
        inputs, backward = _directed(cfg, inputs, options.pop("direction", "forward"))
        seed = options.pop("seed", None)
        program = options.pop("program", None)
        load_weights = options.pop("load_weights", None)
        raw_rows = options.pop("raw_rows", None) or ()
        requant = options.pop("requant", None)
        if requant is not None:
            if not cfg.requant.enabled:
                raise ImcError("requant", "given", "needs a configuration with "
                                                   "requant.enabled = true")
            from imcgen.golden.output_stage import requant_params

            requant = requant_params(cfg, requant)
        paths = {k: Path(options.pop(k)).resolve() if options.get(k) is not None
                 else options.pop(k, None) for k in ("waves_dir", "work_dir")}
        return cls(
            weights=weights, inputs=inputs,
            seed=secrets.randbelow(2**32) if seed is None else int(seed),
            resets=_resets(options.pop("reset_after", None)),
            raw_rows=tuple((int(r), tuple(int(w) for w in ws)) for r, ws in raw_rows),
            program=_program_plan(program),
            load_weights=(program is None) if load_weights is None else bool(load_weights),
            requant=requant, backward=backward,
            **paths, **options)

    @property
    def stalled(self):
        return bool(self.in_gaps or self.out_stalls or self.w_gaps or self.p_gaps
                    or self.r_stalls)


def _directed(cfg, inputs, direction):
    """``(inputs, backward)`` from :func:`imcgen.sim.api.simulate`'s ``inputs`` and
    ``direction``: forward vectors alone as before (``backward`` None); else every vector
    checked against its direction, in a ``(V, max(rows * tiles, outputs))`` array whose first
    columns hold it, and ``backward`` flags them."""
    if isinstance(direction, str):
        if direction == "forward":
            return check_inputs(cfg, inputs), None
        if direction != "backward":
            raise ImcError("direction", direction,
                           "must be 'forward', 'backward' or one of them per vector")
        vectors = check_back_inputs(cfg, inputs)
        flags = np.ones(len(vectors), dtype=bool)
        rows = list(vectors)
    else:
        names = [str(d) for d in direction]
        bad = [d for d in names if d not in ("forward", "backward")]
        if bad:
            raise ImcError("direction", bad[0], "each must be 'forward' or 'backward'")
        flags = np.array([d == "backward" for d in names], dtype=bool)
        if len(inputs) != len(flags):
            raise ImcError("direction", f"{len(flags)} directions",
                           f"must give one per vector ({len(inputs)})")
        if flags.any() and not cfg.transposed:
            raise ImcError("transposed", False, "backward vectors need transposed = true "
                                                "(--set transposed=true)")
        rows = []
        for n, (vector, back) in enumerate(zip(inputs, flags, strict=True)):
            check = check_back_inputs if back else check_inputs
            rows.append(check(cfg, np.asarray(vector).reshape(1, -1), name=f"inputs[{n}]")[0])
    if not cfg.transposed:  # only forward vectors can get here
        return np.asarray(rows, dtype=np.int64).reshape(-1, cfg.input_rows), None
    width = max(cfg.input_rows, cfg.outputs)
    padded = np.zeros((len(rows), width), dtype=np.int64)
    for n, row in enumerate(rows):
        padded[n, :len(row)] = row
    return padded, flags


def split_directions(cfg, spec):
    """``(forward index, forward inputs, backward index, backward inputs)`` of a spec."""
    if spec.backward is None:
        return np.arange(len(spec.inputs)), spec.inputs, np.zeros(0, dtype=np.int64), None
    fwd, back = np.flatnonzero(~spec.backward), np.flatnonzero(spec.backward)
    return fwd, spec.inputs[fwd, :cfg.input_rows], back, spec.inputs[back, :cfg.outputs]


def budget_cycles(cfg, spec):
    """Clock edges after which a run counts as hung: a guard, not a measurement. Generous
    multiples of what the timing model predicts (loads, vectors, resets, programming), the
    same for every engine."""
    rows = cfg.input_rows + len(spec.raw_rows)
    load = rows * (cfg.column_groups + 8)
    _, forward, _, backward = split_directions(cfg, spec)
    vectors = int(timing.vector_cycles(cfg, reads_per_tile(cfg, forward)).sum()) \
        if len(forward) else 0
    if backward is not None and len(backward):
        from imcgen.golden import transpose

        vectors += int(transpose.cycles(cfg, transpose.reads(cfg, backward)).sum())
    budget = 2 * (load + vectors + 20 * len(spec.inputs)) + 10_000
    budget += (len(spec.resets) + 1) * 8 * cfg.max_cycles
    if spec.program is not None:
        cells = spec.program["passes"] * cfg.input_rows * cfg.physical_columns + \
            len(spec.program["requests"])
        budget += 4 * cells * int(timing.program_cycles(cfg, cfg.write_verify.max_pulses))
    # A stalled output repeats each of its cycles 1 / (1 - p) times on average: four times
    # that, and never less than the eightfold margin of any stalled run.
    stall = max(spec.out_stalls, spec.r_stalls)
    factor = max(8.0 if spec.stalled else 1.0, 4.0 / max(1.0 - stall, 1e-9))
    return int(budget * factor)


class Engine:
    """An engine runs a :class:`RunSpec` on the RTL of a configuration."""

    #: The name ``simulate(..., engine=NAME)`` and ``--engine NAME`` take.
    name = ""

    def supports(self, cfg, spec):
        """``None`` when this engine runs ``spec`` on ``cfg``; else the one-line reason, as an
        unraised :class:`ImcError` naming the keyword (checked before any work)."""
        return None

    def run(self, cfg, spec, progress=None):
        """Build (cached) and run; ``progress(done, total)`` is called from this thread."""
        raise NotImplementedError


@dataclass
class SimResult:
    """Outputs and cycle counts of the RTL next to those of the golden model."""

    config: object
    y: np.ndarray
    cycles: np.ndarray
    y_golden: np.ndarray
    cycles_golden: np.ndarray
    reads: np.ndarray
    clipped: np.ndarray
    seed: int
    build_seconds: float
    sim_seconds: float
    waves: Path | None = None
    status: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    # Write-verify programming (``program=``): the RTL's results, one row per programmed cell
    # ``[row, column, code, reads, pulses, status]``, and the golden replay of the same run.
    program_rtl: np.ndarray | None = None
    program_golden: object = None
    states: np.ndarray | None = None  # the Python crossbar's final states (external builds)
    states_golden: np.ndarray | None = None  # the golden model's, after every phase

    @property
    def values_match(self):
        return self.y.shape == self.y_golden.shape and bool(np.array_equal(self.y, self.y_golden))

    @property
    def cycles_match(self):
        return self.cycles.shape == self.cycles_golden.shape and \
            bool(np.array_equal(self.cycles, self.cycles_golden))

    @property
    def program_expected(self):
        """``[row, column, code, reads, pulses, status]`` the golden replay expects, in order."""
        if self.program_golden is None:
            return None
        report, delivered = self.program_golden
        req = report.requests
        rows = np.stack([req.tile * self.config.rows + req.row, req.column, report.code,
                         report.reads, report.pulses, report.status], axis=1)
        return rows[delivered]

    @property
    def program_match(self):
        if self.program_rtl is None:
            return True
        expected = self.program_expected
        ok = self.program_rtl.shape == expected.shape and \
            bool(np.array_equal(self.program_rtl, expected))
        if self.states is not None:
            ok = ok and bool(np.array_equal(self.states, self.states_golden))
        return ok

    @property
    def match(self):
        return self.values_match and self.cycles_match and self.program_match

    def mismatch_report(self, limit=5):
        """A few lines locating the first differences, with the seed to rerun."""
        lines = [f"seed {self.seed}"]
        if not self.program_match:
            got, want = self.program_rtl, self.program_expected
            if got.shape != want.shape:
                lines.append(f"programming: RTL returned {len(got)} results, expected "
                             f"{len(want)}")
            else:
                for n in np.flatnonzero((got != want).any(axis=1))[:limit]:
                    lines.append(f"programming result {n} [row, column, code, reads, pulses, "
                                 f"status]: {got[n].tolist()} != golden {want[n].tolist()}")
            if self.states is not None and not np.array_equal(self.states, self.states_golden):
                lines.append("programming: final states differ from the golden model")
        if self.y.shape != self.y_golden.shape:
            lines.append(f"RTL returned {self.y.shape[0]} vectors, "
                         f"expected {self.y_golden.shape[0]}")
            return "\n".join(lines)
        for v in np.flatnonzero((self.y != self.y_golden).any(axis=1))[:limit]:
            lines.append(f"vector {v}: y {self.y[v].tolist()} "
                         f"!= golden {self.y_golden[v].tolist()}")
        for v in np.flatnonzero(self.cycles != self.cycles_golden)[:limit]:
            lines.append(f"vector {v}: cycles {self.cycles[v]} != golden {self.cycles_golden[v]}")
        return "\n".join(lines)


def keep_log(err, seed):
    """Move a failed run's simulator log out of the scratch directory before it is removed."""
    logs = cache_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    kept = logs / f"sim-{time.strftime('%Y%m%d-%H%M%S')}-seed{seed}.log"
    try:
        shutil.copy(err.log, kept)
    except OSError:
        kept = None
    for old in sorted(logs.glob("sim-*.log"))[:-20]:  # keep the last 20
        old.unlink(missing_ok=True)
    summary = err.summary.replace(str(err.log), str(kept)) if kept else err.summary
    return SimulationError(f"{summary} (seed {seed})", kept)
