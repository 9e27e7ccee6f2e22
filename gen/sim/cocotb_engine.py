"""The cocotb engine: the RTL on Verilator with Python driving every stream, next to the golden
model; and the TRNG runs, which only this engine does."""

import json
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from imcgen import golden
from imcgen.core import timing
from imcgen.core.errors import SimulationError
from imcgen.core.requirements import require, unmet
from imcgen.golden.row_scheduler import reads_per_tile
from imcgen.sim.engine import CLOCK_NS, Engine, SimResult, budget_cycles, keep_log
from imcgen.sim.runner import build, run
from imcgen.sim.verilog import TOP_NAME, elaborate
from imcgen.sim.waves import write_gtkw

__all__ = ["CocotbEngine", "simulate_trng", "run_job"]


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


class CocotbEngine(Engine):
    """Verilator through cocotb: Python drives every stream (:mod:`imcgen.sim.tb.macro`), so
    it runs everything: programming, the Python crossbar, waves."""

    name = "cocotb"

    def supports(self, cfg, spec):
        return unmet("analog_physics", cfg)

    def run(self, cfg, spec, progress=None):
        keep = spec.work_dir is not None
        # Absolute (RunSpec resolves it): the simulator runs in its own directory.
        scratch = spec.work_dir if keep else Path(tempfile.mkdtemp(prefix="imcgen-"))
        waves_dir = spec.waves_dir
        try:
            scratch.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            design = elaborate(cfg, waves_dir or scratch / "rtl")
            build_dir = build(design, waves=waves_dir is not None)
            build_seconds = time.perf_counter() - t0
            rtl, sim_seconds = self._simulate(cfg, spec, design, build_dir, scratch, progress)
            return self._result(cfg, spec, design, scratch, rtl, build_seconds, sim_seconds)
        finally:
            if not keep:
                shutil.rmtree(scratch, ignore_errors=True)

    def _simulate(self, cfg, spec, design, build_dir, scratch, progress):
        job = scratch / "job"
        shutil.rmtree(job, ignore_errors=True)
        job.mkdir(parents=True)
        requant = {} if spec.requant is None else \
            {"requant_bias": spec.requant[0], "requant_scale": spec.requant[1]}
        directed = {} if spec.backward is None else {"backward": spec.backward}
        np.savez(job / "stimulus.npz", weights=spec.weights, inputs=spec.inputs, **requant,
                 **directed)
        job_spec = {
            "config": cfg.to_dict(), "seed": spec.seed, "in_gaps": spec.in_gaps,
            "w_gaps": spec.w_gaps, "out_stalls": spec.out_stalls, "resets": list(spec.resets),
            "weight_reset_after": spec.weight_reset_after,
            "raw_rows": [[r, list(ws)] for r, ws in spec.raw_rows],
            "load_weights": spec.load_weights, "p_gaps": spec.p_gaps,
            "r_stalls": spec.r_stalls, "timeout_ns": budget_cycles(cfg, spec) * CLOCK_NS,
        }
        if spec.program is not None:
            # The reset comes a seeded random delay after the given result: up to three
            # program-and-verify iterations, so that it may cut a cell mid-pulse.
            delay = np.random.default_rng([spec.seed, 7]).integers(
                3 * timing.verify_loop_cycles(cfg) + 1)
            job_spec["program"] = {**spec.program, "reset_after": spec.program_reset_after,
                                   "reset_delay": int(delay)}
        (job / "job.json").write_text(json.dumps(job_spec))
        return run_job(design, build_dir, scratch, spec.seed, progress,
                       default_total=len(spec.inputs), keep=spec.work_dir is not None,
                       waves=spec.waves_dir is not None)

    def _result(self, cfg, spec, design, scratch, rtl, build_seconds, sim_seconds):
        weights, inputs, program = spec.weights, spec.inputs, spec.program
        states = None
        replay = None
        if program is not None:
            from imcgen.golden import device, weight_mapper
            from imcgen.golden.programming import golden_replay

            replay = golden_replay(cfg, rtl)
            states = replay[0].states
            if spec.load_weights:
                states = device.load_levels(cfg, states, weight_mapper.cell_levels(cfg, weights))
        read_start = None
        if cfg.analog.physical and cfg.crossbar == "external" and len(inputs) and \
                spec.backward is None:
            read_start = _read_start(cfg, inputs, rtl)
        if spec.backward is None:
            expected = golden.run(cfg, weights, inputs, states=states, read_start=read_start,
                                  requant=spec.requant)
        else:
            expected = _golden_directed(cfg, spec, states, rtl)
        waves = None
        if spec.waves_dir is not None:
            waves = spec.waves_dir / "dump.vcd"
            shutil.copy(scratch / "sim" / "dump.vcd", waves)
            write_gtkw(cfg, design.verilog, spec.waves_dir / f"{TOP_NAME}.gtkw", waves.name,
                       top=TOP_NAME, span_ns=_dump_end_ns(waves))
        status = {str(k): int(v) for k, v in zip(rtl["status_names"], rtl["status"], strict=True)}
        y, extra = rtl["y"], {}
        if spec.backward is not None:
            extra["backward"] = spec.backward
            y = _directed_rows(cfg, spec, y, rtl["backward"])
        return SimResult(
            config=cfg, y=y, cycles=rtl["cycles"], y_golden=expected.y,
            cycles_golden=expected.cycles, reads=expected.reads, clipped=expected.clipped,
            seed=spec.seed, build_seconds=build_seconds, sim_seconds=sim_seconds, waves=waves,
            status=status,
            extra={**extra, "in_flight_at_reset": rtl["in_flight_at_reset"].tolist(),
                   "weight_rows_resent": int(rtl["weight_rows_resent"]),
                   **{k: rtl[k] for k in ("row_edges", "request_edges", "result_edges",
                                          "reset_edges", "output_edges",
                                          "accept_edges") if k in rtl}},
            program_rtl=rtl["program_results"] if program is not None else None,
            program_golden=replay,
            states=rtl["states"] if program is not None and "states" in rtl else None,
            states_golden=states)


def _golden_directed(cfg, spec, states, rtl):
    """The golden results of a stream with backward vectors, in order: ``y`` of the direction's
    width (all backward: ``rows * tiles``) or, mixed, padded to the longer width. The physical
    model's noise keys: the forward vectors' as :func:`_read_start` finds them among
    themselves; a backward vector's first transposed-read index is the transposed samples
    taken before its accept edge (a backward vector enters an idle macro)."""
    from types import SimpleNamespace

    from imcgen.golden import transpose
    from imcgen.sim.engine import split_directions

    fwd, forward, back, backward = split_directions(cfg, spec)
    V = len(spec.inputs)
    width = _width(cfg, spec.backward)
    y = np.zeros((V, width), dtype=np.int64)
    cycles = np.zeros(V, dtype=np.int64)
    reads = np.zeros((V, cfg.tiles), dtype=np.int64)
    clipped = np.zeros(V, dtype=bool)
    physical = cfg.analog.physical and cfg.crossbar == "external"
    edges = rtl["vector_edges"] if physical else None
    if len(fwd):
        start = _read_start(cfg, forward, {**rtl, "vector_edges": edges[fwd]}) \
            if physical else None
        run = golden.run(cfg, spec.weights, forward, states=states, requant=spec.requant,
                         read_start=start)
        y[fwd, :cfg.outputs], cycles[fwd], reads[fwd], clipped[fwd] = \
            run.y, run.cycles, run.reads, run.clipped
    if len(back):
        start = np.searchsorted(rtl["back_samples"], edges[back]) if physical else None
        run = transpose.run(cfg, spec.weights, backward, states=states, read_start=start)
        y[back, :cfg.input_rows], cycles[back], clipped[back] = run.x, run.cycles, run.clipped
        reads[back] = run.reads[:, np.newaxis]  # every tile issues the same reads
    return SimpleNamespace(y=y, cycles=cycles, reads=reads, clipped=clipped)


def _width(cfg, backward):
    """Width of a directed stream's results: the direction's, or the longer when mixed."""
    if backward.all() and len(backward):
        return cfg.input_rows
    if not backward.any():
        return cfg.outputs
    return max(cfg.input_rows, cfg.outputs)


def _directed_rows(cfg, spec, y, flags):
    """The RTL's results (padded rows, ``flags`` from each result's ``backward`` bit) in the
    golden model's shape; a result whose direction differs from its vector's is zeroed past
    the other width, so the comparison fails on it."""
    width = _width(cfg, spec.backward)
    out = y[:, :width].copy()
    n = min(len(flags), len(spec.backward))
    wrong = np.flatnonzero(flags[:n] != spec.backward[:n])
    out[wrong] = np.iinfo(np.int64).min  # beyond any result's range: never golden
    return out


def run_job(design, build_dir, scratch, seed, progress=None, default_total=0, keep=False,
            waves=False):
    """Run the job in ``scratch/job`` on the built design (cocotb ``imcgen.sim.tb.macro``) while
    reporting progress; returns ``(rtl results, simulation seconds)``."""
    job = scratch / "job"
    t0 = time.perf_counter()
    failure = []

    def target():
        try:
            run(design, build_dir, "imcgen.sim.tb.macro", test_dir=scratch / "sim",
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
            err = keep_log(err, seed)
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
    require("trng", cfg)
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
            "timeout_ns": budget * CLOCK_NS}))
        rtl, sim_seconds = run_job(design, build_dir, scratch, seed, progress,
                                   default_total=nbytes, keep=keep)
        rtl.update(seed=seed, build_seconds=build_seconds, sim_seconds=sim_seconds)
        return rtl
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)
