"""Run the RTL (Verilator through cocotb) and the golden model on the same weights and inputs."""

import json
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import golden, timing
from .checks import check_inputs, check_weights
from .errors import ImcError, SimulationError
from .runner import build, run
from .verilog import TOP_NAME, elaborate

__all__ = ["SimResult", "simulate", "simulate_trng", "run_job"]



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


def _dump_end_ns(path):
    """Time of the last change in a VCD (its last ``#time`` line), in ns; None if unknown."""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        handle.seek(max(0, handle.tell() - 65536))
        times = [line for line in handle.read().splitlines() if line.startswith(b"#")]
    return int(times[-1][1:]) / 1000 if times else None  # the dump's timescale is 1 ps


def _read_start(cfg, inputs, rtl):
    """Each answered vector's first compute-read index per tile (the physical model's noise
    key). Between resets the vectors read in order, back to back (with overlap, a vector is
    accepted before the last one's reads are over), so only the first of each reset epoch is
    located by the samples its tile took before its accept edge (a reset loses the reads of
    a vector inside); the others follow from the reads of the one before."""
    from .golden.row_scheduler import reads_per_tile

    samples, edges = rtl["compute_samples"], rtl["vector_edges"]
    counts = reads_per_tile(cfg, inputs)
    epoch = np.searchsorted(rtl["reset_edges"], edges, side="right")
    start = np.zeros((len(edges), cfg.tiles), dtype=np.int64)
    for t in range(cfg.tiles):
        before = np.searchsorted(np.sort(samples[samples[:, 0] == t, 1]), edges)
        for k in range(len(edges)):
            first = k == 0 or epoch[k] != epoch[k - 1]
            start[k, t] = before[k] if first else start[k - 1, t] + counts[k - 1, t]
    return start


def simulate(cfg, weights, inputs, *, seed=None, in_gaps=0.0, out_stalls=0.0, w_gaps=0.0,
             reset_after=None, weight_reset_after=None, raw_rows=None, waves_dir=None,
             work_dir=None, progress=None, program=None, program_reset_after=None,
             p_gaps=0.0, r_stalls=0.0, load_weights=None, engine="cocotb"):
    """Run ``inputs`` through the RTL and the golden model.

    Parameters
    ----------
    cfg : MacroConfig
    weights : array_like of int, shape (rows*tiles, outputs)
    inputs : array_like of int, shape (vectors, rows*tiles)
    seed : int, optional
        Seeds the stimulus timing (gaps, stalls); drawn at random and recorded when omitted.
    in_gaps, w_gaps, out_stalls : float
        Probability of an idle gap before an input vector / a weight row, and of ``o.ready``
        low in a cycle.
    reset_after : int or list of int, optional
        Assert reset once this many results have arrived (each of them), then resend the
        vectors not answered.
    weight_reset_after : int, optional
        Assert reset once this many weight rows were taken, then resend from the row in flight.
    raw_rows : list of (int, list of int), optional
        Weight rows sent as given after loading (e.g. out-of-range indices, which the macro
        drops and flags in ``status``).
    waves_dir : path, optional
        Build with tracing and leave ``dump.vcd``, the Verilog and a ``.gtkw`` file there.
    work_dir : path, optional
        Keep the job files, the RTL and the simulator log there. By default they go to a
        temporary directory that is removed at the end, failed or not (the simulator log is
        then kept in the cache's ``logs`` directory and named by the error).
    progress : callable(done, total), optional
        Called from the calling thread while the simulation runs.
    program : "array", list of (row, column, target), or dict, optional
        Programmable devices: before the vectors, write-verify ``weights`` in array mode, or
        the given single-cell requests (global row, physical column, target verify code); a
        dict ``{"requests": [...], "passes": n}`` sends the requests, then ``n`` array passes.
    program_reset_after : int, optional
        Reset once this many programming results arrived; the host resends every cell it has
        no result for as a single request.
    p_gaps, r_stalls : float
        Idle gaps before program requests, backpressure on programming results.
    load_weights : bool, optional
        Load ``weights`` exactly (default: unless ``program`` is given).
    engine : "cocotb" or "fast"
        ``"fast"``: a C++ driver runs the whole batch (:mod:`imcgen.fast`); stub crossbar and
        plain MVM runs only, anything else is refused with an :class:`ImcError`.

    Returns
    -------
    SimResult
    """
    weights, inputs = check_weights(cfg, weights), check_inputs(cfg, inputs)
    if engine != "cocotb":
        from .fast import simulate_fast

        return simulate_fast(**{k: v for k, v in locals().items() if k != "simulate_fast"})
    if cfg.analog.physical and cfg.crossbar == "stub":
        raise ImcError("analog.device", cfg.analog.device,
                       "the physical analog model runs in the Python crossbar; the "
                       "synthesizable stub is digital: set crossbar = \"external\"")
    seed = secrets.randbelow(2**32) if seed is None else int(seed)
    if load_weights is None:
        load_weights = program is None
    resets = [] if reset_after is None else (
        [int(reset_after)] if np.isscalar(reset_after) else [int(r) for r in reset_after])

    keep = work_dir is not None
    # Absolute: the simulator runs in its own directory.
    scratch = Path(work_dir).resolve() if keep else Path(tempfile.mkdtemp(prefix="imcgen-"))
    waves_dir = Path(waves_dir).resolve() if waves_dir is not None else None
    try:
        scratch.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        design = elaborate(cfg, waves_dir or scratch / "rtl")
        build_dir = build(design, waves=waves_dir is not None)
        build_seconds = time.perf_counter() - t0

        job = scratch / "job"
        shutil.rmtree(job, ignore_errors=True)
        job.mkdir(parents=True)
        np.savez(job / "stimulus.npz", weights=weights, inputs=inputs)
        load_cycles = (cfg.input_rows + len(raw_rows or ())) * (cfg.column_groups + 8)
        from .golden.row_scheduler import reads_per_tile

        vector_cycles = int(timing.vector_cycles(cfg, reads_per_tile(cfg, inputs)).sum())
        budget = 2 * (load_cycles + vector_cycles + 20 * len(inputs)) + 10_000
        budget += (len(resets) + 1) * 2 * cfg.max_cycles * 4
        if in_gaps or out_stalls or w_gaps or p_gaps or r_stalls:
            budget *= 8
        job_spec = {
            "config": cfg.to_dict(), "seed": seed, "in_gaps": in_gaps, "w_gaps": w_gaps,
            "out_stalls": out_stalls, "resets": resets, "weight_reset_after": weight_reset_after,
            "raw_rows": [[int(r), [int(w) for w in ws]] for r, ws in (raw_rows or ())],
            "load_weights": bool(load_weights), "p_gaps": p_gaps, "r_stalls": r_stalls,
        }
        if program is not None:
            if isinstance(program, str):  # "array"
                plan = {"requests": [], "passes": 1}
            elif isinstance(program, dict):
                plan = {"requests": list(program.get("requests", [])),
                        "passes": int(program.get("passes", 0))}
            else:
                plan = {"requests": list(program), "passes": 0}
            # The reset comes a seeded random delay after the given result: up to three
            # program-and-verify iterations, so that it may cut a cell mid-pulse.
            delay = np.random.default_rng([seed, 7]).integers(
                3 * timing.verify_loop_cycles(cfg) + 1)
            job_spec["program"] = {
                "requests": [[int(v) for v in r] for r in plan["requests"]],
                "passes": plan["passes"], "reset_after": program_reset_after,
                "reset_delay": int(delay)}
            cells = plan["passes"] * cfg.input_rows * cfg.physical_columns + \
                len(plan["requests"])
            budget += 4 * cells * int(timing.program_cycles(cfg, cfg.write_verify.max_pulses))
        job_spec["timeout_ns"] = budget * 10
        (job / "job.json").write_text(json.dumps(job_spec))

        rtl, sim_seconds = run_job(design, build_dir, scratch, seed, progress,
                                   default_total=len(inputs), keep=keep,
                                   waves=waves_dir is not None)
        states = None
        replay = None
        if program is not None:
            from .golden import device, weight_mapper
            from .program import golden_replay

            replay = golden_replay(cfg, rtl)
            states = replay[0].states
            if load_weights:
                states = device.load_levels(cfg, states, weight_mapper.cell_levels(cfg, weights))
        read_start = None
        if cfg.analog.physical and cfg.crossbar == "external" and len(inputs):
            read_start = _read_start(cfg, inputs, rtl)
        expected = golden.run(cfg, weights, inputs, states=states, read_start=read_start)
        waves = None
        if waves_dir is not None:
            from .waves import write_gtkw

            waves = Path(waves_dir) / "dump.vcd"
            shutil.copy(scratch / "sim" / "dump.vcd", waves)
            write_gtkw(cfg, design.verilog, Path(waves_dir) / f"{TOP_NAME}.gtkw", waves.name,
                       top=TOP_NAME, span_ns=_dump_end_ns(waves))
        status = {str(k): int(v) for k, v in zip(rtl["status_names"], rtl["status"], strict=True)}
        return SimResult(
            config=cfg, y=rtl["y"], cycles=rtl["cycles"], y_golden=expected.y,
            cycles_golden=expected.cycles, reads=expected.reads, clipped=expected.clipped,
            seed=seed, build_seconds=build_seconds, sim_seconds=sim_seconds, waves=waves,
            status=status,
            extra={"in_flight_at_reset": rtl["in_flight_at_reset"].tolist(),
                   "weight_rows_resent": int(rtl["weight_rows_resent"]),
                   **{k: rtl[k] for k in ("row_edges", "request_edges", "result_edges",
                                          "reset_edges", "output_edges",
                                          "accept_edges") if k in rtl}},
            program_rtl=rtl["program_results"] if program is not None else None,
            program_golden=replay,
            states=rtl["states"] if program is not None and "states" in rtl else None,
            states_golden=states)
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)


def run_job(design, build_dir, scratch, seed, progress=None, default_total=0, keep=False,
            waves=False):
    """Run the job in ``scratch/job`` on the built design (cocotb ``imcgen.tb.macro``) while
    reporting progress; returns ``(rtl results, simulation seconds)``."""
    job = scratch / "job"
    t0 = time.perf_counter()
    failure = []

    def target():
        try:
            run(design, build_dir, "imcgen.tb.macro", test_dir=scratch / "sim",
                env={"IMCGEN_JOB": str(job)}, waves=waves)
        except Exception as err:  # reported from the calling thread
            failure.append(err)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.5)
        if progress:
            try:  # "done total" of the phase under way
                done, total = map(int, (job / "progress").read_text().split())
            except (OSError, ValueError):
                done, total = 0, default_total
            progress(done, total)
    sim_seconds = time.perf_counter() - t0
    if failure:
        err = failure[0]
        if not keep and isinstance(err, SimulationError) and err.log is not None:
            err = _keep_log(err, seed)
        raise err
    return dict(np.load(job / "rtl.npz")), sim_seconds


def simulate_trng(cfg, nbytes, *, seed=None, stalls=0.0, reset_after=None, clear_alarms=0,
                  work_dir=None, progress=None):
    """Run the macro's TRNG (``trng.enabled``) on Verilator until ``nbytes`` bytes arrived.

    ``stalls``: probability that the byte stream is not ready in a cycle. ``reset_after``:
    assert reset once this many bytes arrived (then enable again). ``clear_alarms``: how many
    health-test alarms the host clears (each time it reads the status, then pulses clear).
    Returns the RTL's dict: ``bytes`` (before any reset), ``bytes_after`` (after it), the
    status fields, and the alarms seen (pulses counter, rct, apt at each).
    """
    if not cfg.trng.enabled:
        raise ImcError("trng.enabled", False, "the TRNG needs --set trng.enabled=true")
    seed = secrets.randbelow(2**32) if seed is None else int(seed)
    keep = work_dir is not None
    scratch = Path(work_dir).resolve() if keep else Path(tempfile.mkdtemp(prefix="imcgen-"))
    try:
        scratch.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        design = elaborate(cfg, scratch / "rtl")
        build_dir = build(design)
        build_seconds = time.perf_counter() - t0
        job = scratch / "job"
        shutil.rmtree(job, ignore_errors=True)
        job.mkdir(parents=True)
        zeros = np.zeros((0, cfg.input_rows), dtype=np.int64)
        np.savez(job / "stimulus.npz", weights=np.zeros((cfg.input_rows, cfg.outputs), np.int64),
                 inputs=zeros)
        per_byte = 8 / max(cfg.trng.sources * 0.2 * (0.3 if cfg.trng.debias else 1), 0.05)
        budget = int((nbytes + 16) * per_byte * cfg.trng.round_cycles * (8 if stalls else 2))
        budget += 200_000 * (1 + clear_alarms)
        (job / "job.json").write_text(json.dumps({
            "config": cfg.to_dict(), "seed": seed, "load_weights": False,
            "trng": {"bytes": int(nbytes), "stalls": stalls, "reset_after": reset_after,
                     "clear_alarms": int(clear_alarms)},
            "timeout_ns": budget * 10}))
        rtl, sim_seconds = run_job(design, build_dir, scratch, seed, progress,
                                   default_total=nbytes, keep=keep)
        rtl.update(seed=seed, build_seconds=build_seconds, sim_seconds=sim_seconds)
        return rtl
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)


def _keep_log(err, seed):
    """Move a failed run's simulator log out of the scratch directory before it is removed."""
    from .toolchain import cache_dir

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
