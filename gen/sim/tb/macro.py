"""The whole macro driven from a job file: ``imcgen simulate``, ``imcgen program --rtl`` and the
macro regressions.

The process that starts the simulator writes a job (``IMCGEN_JOB``: configuration, weights,
inputs, stimulus options, seed); :func:`run_job` drives it and writes what the RTL returned
(outputs, cycle counts, status, programming results and the times of the events a golden
replay needs). Comparison with the golden model happens outside, in :mod:`imcgen.sim.cocotb_engine`.

Phases, each optional: program cells by write-verify (a weight matrix in array mode, or single
cell requests), load weights exactly, run vectors. Stimulus options: idle gaps on every input
stream, backpressure on every output stream, resets after given numbers of results (the host
then resends every vector, or every cell, it has no result for), a reset while weight rows load
(the host resends from the row in flight: rewriting a row is idempotent), and raw weight rows
sent after loading (out-of-range indices or excluded values, which the macro must drop and
flag).
"""

import json
import os
import random
from pathlib import Path

import cocotb
import numpy as np

from imcgen.sim.tb.analog import CrossbarModel
from imcgen.sim.tb.streams import (
    CLOCK_NS,
    StreamSink,
    StreamSource,
    cycle_now,
    decode,
    encode,
    start_clock,
)

__all__ = ["MacroTestbench", "run_job"]

RESULT_FIELDS = ("row", "column", "code", "reads", "pulses", "status")


class MacroTestbench:
    """Weight loader, vector source, result sinks (and crossbar models) around ``MacroTop``.

    Parameters
    ----------
    dut : cocotb handle of the top
    cfg : MacroConfig
    seed : int
        Seeds every random choice (gaps, stalls).
    in_gaps, w_gaps, p_gaps : float
        Probability of an idle gap before an input vector / a weight row / a program request.
    out_stalls, r_stalls : float
        Probability of ``o.ready`` / ``r.ready`` low in a cycle.
    """

    def __init__(self, dut, cfg, seed, in_gaps=0.0, out_stalls=0.0, w_gaps=0.0, p_gaps=0.0,
                 r_stalls=0.0):
        from imcgen.hdl.macro_top import input_layout, result_layout, status_layout
        from imcgen.hdl.weight_mapper import weight_row_layout

        self.dut, self.cfg = dut, cfg
        self.rng = random.Random(seed)
        self.in_gaps, self.out_stalls, self.w_gaps = in_gaps, out_stalls, w_gaps
        self.p_gaps, self.r_stalls = p_gaps, r_stalls
        self.models = []
        self.reset_edges = []
        self.backward = None  # transposed: each vector's direction (run_job sets it)
        self.layouts = dict(vector=input_layout(cfg),
                            weights=weight_row_layout(cfg), result=result_layout(cfg),
                            status=status_layout(cfg))
        if cfg.programmable:
            from imcgen.hdl import write_verify

            self.layouts["request"] = write_verify.request_layout(cfg)
            self.layouts["program_result"] = write_verify.result_layout(cfg)

    async def start(self):
        dut, cfg = self.dut, self.cfg
        await start_clock(dut)
        self.weights = StreamSource(dut, "w", self.rng, self.w_gaps)
        self.inputs = StreamSource(dut, "i", self.rng, self.in_gaps)
        if cfg.programmable:
            self.requests = StreamSource(dut, "p", self.rng, self.p_gaps)
        if cfg.requant.enabled:
            self.requant = StreamSource(dut, "q", self.rng, self.w_gaps)
        dut.clear.value = 0
        if cfg.trng.enabled:
            dut.trng_ctl.value = 0
        if cfg.crossbar == "external":
            shared = None
            if cfg.analog.physical:
                from imcgen.sim.tb.analog import AnalogShared

                shared = AnalogShared(cfg)
            for t in range(cfg.tiles):
                model = CrossbarModel(dut, cfg, f"xbar__{t}__", tile=t, shared=shared)
                self.models.append(model)
                cocotb.start_soon(model.run())
            if cfg.trng.enabled:
                from imcgen.sim.tb.analog import EntropyModel

                self.entropy = EntropyModel(dut, cfg)
                cocotb.start_soon(self.entropy.run())
        await self.reset(record=False)
        self.outputs = StreamSink(dut, "o", self.rng, self.out_stalls)
        if cfg.programmable:
            self.programmed = StreamSink(dut, "r", self.rng, self.r_stalls)

    async def reset(self, record=True, cycles=3):
        """Assert reset for ``cycles`` edges; the host drops whatever it was offering."""
        from cocotb.triggers import ClockCycles, RisingEdge

        dut = self.dut
        await RisingEdge(dut.clk)  # leave a read-only phase before writing
        dut.i__valid.value = 0
        dut.w__valid.value = 0
        if self.cfg.programmable:
            dut.p__valid.value = 0
        if self.cfg.requant.enabled:
            dut.q__valid.value = 0
        await RisingEdge(dut.clk)
        dut.rst.value = 1
        if record:
            self.reset_edges.append(cycle_now() + 1)  # the first edge that samples it
        await ClockCycles(dut.clk, cycles)
        dut.rst.value = 0
        await RisingEdge(dut.clk)

    @property
    def results(self):
        """``(y list, cycles)`` of every result so far, in arrival order; with ``transposed``
        ``(y or x, padded to the longer, cycles, backward)``."""
        fields = [decode(self.layouts["result"], word) for _, word in self.outputs.items]
        if not self.cfg.transposed:
            return [(f["y"], f["cycles"]) for f in fields]
        width = max(self.cfg.outputs, self.cfg.input_rows)
        out = []
        for f in fields:
            value = f["x"] if f["backward"] else f["y"]
            out.append((value + [0] * (width - len(value)), f["cycles"], f["backward"]))
        return out

    @property
    def program_results(self):
        """``[row, column, code, reads, pulses, status]`` of every programming result."""
        layout = self.layouts["program_result"]
        return [[decode(layout, word)[k] for k in RESULT_FIELDS]
                for _, word in self.programmed.items]

    @property
    def status(self):
        return decode(self.layouts["status"], self.dut.status.value)

    def weight_row(self, row, values, program=False):
        value = {"row": int(row), "weights": [int(v) for v in values]}
        if self.cfg.programmable:
            value["program"] = int(program)
        return encode(self.layouts["weights"], value)

    async def load_weights(self, weights, reset_after=None):
        """Send every weight row; with ``reset_after`` = k, reset once k rows were taken and
        resend from the row that was in flight. Returns the number of rows resent."""
        words = [self.weight_row(r, values) for r, values in enumerate(np.asarray(weights))]
        resent = 0
        if reset_after is not None and 0 < reset_after < len(words):
            await self.weights.send_all(words[:reset_after])
            await self.reset()  # row reset_after-1 may be half written: send it again
            await self.weights.send_all(words[reset_after - 1:])
            resent = 1
        else:
            await self.weights.send_all(words)
        await self._idle()
        return resent

    async def load_requant(self, bias, scale):
        """Every output's bias and scale, one transfer on ``q`` (kept through resets)."""
        from imcgen.hdl.output_stage import requant_layout

        word = encode(requant_layout(self.cfg), {"bias": [int(b) for b in bias],
                                                 "scale": [int(v) for v in scale]})
        await self.requant.send(word)
        await self._idle()

    async def send_raw_rows(self, rows):
        """Weight rows exactly as given ``[(index, [weights])]`` (the macro may drop them)."""
        for row, values in rows:
            await self.weights.send(self.weight_row(row, values))
        await self._idle()

    async def program(self, spec, weights, progress=None):
        """Write-verify, in this order: single cell requests ``spec["requests"]``, then the
        weight matrix in array mode (rows flagged ``program``) ``spec["passes"]`` times. An
        optional reset after ``reset_after`` results (plus ``reset_delay`` cycles), after which
        every cell without a result is resent as a single request.

        Returns the cells in the order their results come, ``[global row, column, target,
        source, seq]`` (source 0: the ``seq``-th program request, 1: a cell of the ``seq``-th
        weight row taken), and the number of results before the reset (None without one).
        """
        from cocotb.triggers import ClockCycles, RisingEdge

        from imcgen.golden.weight_mapper import cell_levels

        cfg, request = self.cfg, self.layouts["request"]

        def exists(r, c):  # a request for a cell that does not exist is dropped: no result
            return r < cfg.input_rows and c < cfg.physical_columns

        singles = [list(map(int, c)) for c in spec.get("requests", [])]
        cells = [[r, c, t, 0, n] for n, (r, c, t) in enumerate(singles) if exists(r, c)]
        request_words = [encode(request, {"row": r, "column": c, "target": t})
                         for r, c, t in singles]
        row_words = []
        if spec.get("passes", 0):
            levels = cell_levels(cfg, weights)
            for p in range(spec["passes"]):
                for i, values in enumerate(np.asarray(weights)):
                    t, r = divmod(i, cfg.rows)
                    seq = p * cfg.input_rows + i
                    cells += [[i, c, cfg.verify_targets[levels[t, r, c]], 1, seq]
                              for c in range(cfg.physical_columns)]
                    row_words.append(self.weight_row(i, values, program=True))

        async def send():
            await self.requests.send_all(request_words)
            await self.weights.send_all(row_words)

        reset_after = spec.get("reset_after")
        cut = None
        if reset_after is not None and reset_after < len(cells):
            sender = cocotb.start_soon(send())
            await self.programmed.wait(reset_after)
            # A little later, so that the reset may cut a cell mid-pulse.
            await ClockCycles(self.dut.clk, int(spec.get("reset_delay", 0)) + 1)
            sender.cancel()
            await self.reset()
            cut = len(self.programmed.items)
            resent = cells[cut:]
            base = len(self.requests.times)
            cells = cells[:cut] + [[r, c, t, 0, base + n] for n, (r, c, t, _, _) in
                                   enumerate(resent)]
            await self.requests.send_all([encode(request, {"row": r, "column": c, "target": t})
                                          for r, c, t, _, _ in resent])
        else:
            cocotb.start_soon(send())
        step = max(1, len(cells) // 100)
        while len(self.programmed.items) < len(cells):
            await self.programmed.wait(min(len(cells), len(self.programmed.items) + step))
            if progress is not None:
                progress.write_text(f"{len(self.programmed.items)} {len(cells)}")
        await RisingEdge(self.dut.clk)  # leave the read-only phase the last result came in
        await self._idle()
        return cells, cut, (resent[0] if cut is not None and resent else None)

    async def _idle(self):
        """Return on the first edge after which the macro is idle (a writable phase)."""
        from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

        while True:
            await ReadOnly()
            if not self.dut.busy.value:
                await RisingEdge(self.dut.clk)
                return
            await FallingEdge(self.dut.busy)

    async def send(self, vectors, start=0):
        layout = self.layouts["vector"]
        for n in range(start, len(vectors)):
            vector = [int(x) for x in vectors[n]]
            if self.cfg.transposed:
                back = self.backward is not None and bool(self.backward[n])
                value = {"x": vector, "backward": int(back)}
            else:
                value = vector
            await self.inputs.send(encode(layout, value))

    async def wait_results(self, count):
        await self.outputs.wait(count)


async def run_trng(dut, tb, spec, job):
    """The TRNG phase: enable it, collect ``bytes`` bytes from ``t`` under backpressure, reset
    once after ``reset_after`` bytes (then enable again), and clear up to ``clear_alarms``
    health-test alarms (each noted with the status counters at that moment)."""
    from cocotb.triggers import ClockCycles

    from imcgen.hdl.trng import control_layout, status_layout

    cfg = tb.cfg
    want, reset_after = spec["bytes"], spec.get("reset_after")
    clears = spec.get("clear_alarms", 0)
    sink = StreamSink(dut, "t", tb.rng, spec.get("stalls", 0.0))
    ctl = control_layout(cfg)
    status_fields = status_layout(cfg)
    dut.trng_ctl.value = encode(ctl, {"enable": 1, "clear": 0})
    split, alarms = None, []
    progress = job / "progress"
    while len(sink.items) < want:
        await ClockCycles(dut.clk, 64)
        progress.write_text(f"{min(len(sink.items), want)} {want}")
        if split is None and reset_after is not None and len(sink.items) >= reset_after:
            split = len(sink.items)
            await tb.reset()
            dut.trng_ctl.value = encode(ctl, {"enable": 1, "clear": 0})
            continue
        status = decode(status_fields, dut.trng_status.value)
        if status["rct_alarm"] or status["apt_alarm"]:
            alarms.append([status["pulses"], status["rct_alarm"], status["apt_alarm"],
                           len(sink.items)])
            if len(alarms) > clears:
                break
            dut.trng_ctl.value = encode(ctl, {"enable": 1, "clear": 1})
            await ClockCycles(dut.clk, 1)
            dut.trng_ctl.value = encode(ctl, {"enable": 1, "clear": 0})
    await ClockCycles(dut.clk, 2)
    status = decode(status_fields, dut.trng_status.value)
    received = [word for _, word in sink.items]
    split = len(received) if split is None else split
    return dict(trng_bytes=np.array(received[:split], dtype=np.uint8),
                trng_bytes_after=np.array(received[split:], dtype=np.uint8),
                trng_alarms=np.array(alarms, dtype=np.int64).reshape(-1, 4),
                trng_status_names=np.array(sorted(status)),
                trng_status=np.array([status[k] for k in sorted(status)], dtype=np.int64),
                trng_reset_edges=np.array(tb.reset_edges, dtype=np.int64))


async def run_job(dut):
    """Body of the cocotb test: load the job, drive it, write the results."""
    from cocotb.triggers import Timer, with_timeout

    from imcgen.core.config import MacroConfig

    job = Path(os.environ["IMCGEN_JOB"])
    spec = json.loads((job / "job.json").read_text())
    arrays = np.load(job / "stimulus.npz")
    cfg = MacroConfig.from_dict(spec["config"])
    weights, vectors = arrays["weights"], arrays["inputs"]
    if cfg.transposed and vectors.shape[1] < max(cfg.input_rows, cfg.outputs):  # forward only
        vectors = np.pad(vectors, ((0, 0), (0, max(cfg.input_rows, cfg.outputs) -
                                            vectors.shape[1])))
    progress = job / "progress"
    program = spec.get("program")

    tb = MacroTestbench(dut, cfg, spec["seed"], spec.get("in_gaps", 0.0),
                        spec.get("out_stalls", 0.0), spec.get("w_gaps", 0.0),
                        spec.get("p_gaps", 0.0), spec.get("r_stalls", 0.0))
    await tb.start()
    tb.backward = arrays["backward"] if "backward" in arrays else None
    in_flight = []
    delivered = []  # accept edge of each answered vector, in result order
    resent_rows = 0
    programmed = {}

    trng_results = {}

    async def body():
        nonlocal resent_rows
        if spec.get("trng") is not None:
            trng_results.update(await run_trng(dut, tb, spec["trng"], job))
            return
        if program is not None:
            cells, cut, cut_cell = await tb.program(program, weights, progress)
            programmed.update(cells=cells, cut=cut, cut_cell=cut_cell)
            progress.write_text(f"0 {len(vectors)}")
        if program is None or spec.get("load_weights"):
            resent_rows = await tb.load_weights(weights, spec.get("weight_reset_after"))
        if spec.get("raw_rows"):
            await tb.send_raw_rows(spec["raw_rows"])
        if "requant_bias" in arrays:
            await tb.load_requant(arrays["requant_bias"], arrays["requant_scale"])
        # Resets after given numbers of results; after each the host resends every vector it
        # has no result for.
        resets = sorted(r for r in spec.get("resets", []) if r < len(vectors))
        start = 0
        segment = len(tb.inputs.times)  # accept edges of this stretch between resets
        for point in resets:
            if point < len(tb.outputs.items):
                continue
            sender = cocotb.start_soon(tb.send(vectors, start))
            await tb.wait_results(point)
            sender.cancel()
            # Accepted but unanswered when the reset hits: lost inside, resent below.
            in_flight.append(tb.inputs.sent - len(tb.outputs.items))
            await tb.reset()
            answered = len(tb.outputs.items) - start
            delivered.extend(tb.inputs.times[segment:segment + answered])
            segment = len(tb.inputs.times)
            tb.inputs.sent = start = len(tb.outputs.items)
        cocotb.start_soon(tb.send(vectors, start))
        step = max(1, len(vectors) // 100)
        while len(tb.outputs.items) < len(vectors):
            await tb.wait_results(min(len(vectors), len(tb.outputs.items) + step))
            progress.write_text(f"{len(tb.outputs.items)} {len(vectors)}")
        delivered.extend(tb.inputs.times[segment:segment + len(vectors) - start])

    await with_timeout(body(), spec["timeout_ns"], "ns")
    # Keep listening for as long as a vector takes: a surplus (duplicated or stale) result
    # would show up as one row too many.
    await Timer((min(cfg.max_cycles, 5000) + 64) * CLOCK_NS, "ns")
    status = tb.status
    results = tb.results
    width = max(cfg.outputs, cfg.input_rows) if cfg.transposed else cfg.outputs
    y = np.array([r[0] for r in results], dtype=np.int64).reshape(-1, width)
    cycles = np.array([r[1] for r in results], dtype=np.int64)
    if cfg.transposed:
        directed = np.array([r[2] for r in results], dtype=bool)
        if tb.backward is None:  # forward vectors only: the forward outputs
            y = y[:, :cfg.outputs]
    # The edge each result left (o.valid & o.ready): the stream's throughput.
    extra = {"output_edges": np.array([c + 1 for c, _ in tb.outputs.items], dtype=np.int64),
             "accept_edges": np.array(tb.inputs.times, dtype=np.int64)}  # every vector taken
    if program is not None:
        extra = dict(
            program_results=np.array(tb.program_results, dtype=np.int64).reshape(-1, 6),
            program_cells=np.array(programmed["cells"], dtype=np.int64).reshape(-1, 5),
            program_cut=-1 if programmed["cut"] is None else programmed["cut"],
            # The cell the reset cut, as first sent: [row, column, target, source, seq].
            program_cut_cell=np.array(programmed["cut_cell"] or [-1] * 5, dtype=np.int64),
            # Event edges a golden replay of a reset needs (docs/write_verify.md section 4).
            row_edges=np.array(tb.weights.times, dtype=np.int64),
            request_edges=np.array(tb.requests.times, dtype=np.int64),
            result_edges=np.array([c + 1 for c, _ in tb.programmed.items], dtype=np.int64),
            reset_edges=np.array(tb.reset_edges, dtype=np.int64))
    if tb.models:
        extra["states"] = np.stack([model.states[:, :cfg.physical_columns]
                                    for model in tb.models])
        extra["wear"] = np.stack([model.wear for model in tb.models])
        # The physical analog model keys its noise by each tile's compute-read index: the
        # cycle of every compute sample, and each answered vector's accept edge.
        extra["compute_samples"] = np.array(
            [[t, c] for t, model in enumerate(tb.models) for c in model.compute_samples],
            dtype=np.int64).reshape(-1, 2)
        if cfg.transposed:  # tile 0's transposed samples (the tiles read in lockstep)
            extra["back_samples"] = np.array(tb.models[0].back_samples, dtype=np.int64)
        extra["vector_edges"] = np.array(delivered, dtype=np.int64)
        extra["reset_edges"] = np.array(tb.reset_edges, dtype=np.int64)
    if cfg.transposed:
        extra["backward"] = directed
    np.savez(job / "rtl.npz", y=y, cycles=cycles, in_flight_at_reset=np.array(in_flight),
             status=np.array([status[k] for k in sorted(status)]),
             status_names=np.array(sorted(status)), weight_rows_resent=resent_rows, **extra,
             **trng_results)


@cocotb.test()
async def macro_job(dut):
    """Drive the job in ``IMCGEN_JOB`` through the macro."""
    await run_job(dut)
