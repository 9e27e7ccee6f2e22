"""The whole macro driven from a job file: ``imcgen simulate`` and the macro regressions.

The process that starts the simulator writes a job (``IMCGEN_JOB``: configuration, weights,
inputs, stimulus options, seed); :func:`run_job` drives it and writes the RTL's outputs, cycle
counts and status back. Comparison with the golden model happens outside, in
:mod:`imcgen.simulation`.

Stimulus options: idle gaps on the weight and vector streams, backpressure on the result
stream, resets after given numbers of results (the host then resends every vector it has no
result for), a reset while weight rows load (the host resends from the row that was in
flight: rewriting a row is idempotent), and raw weight rows sent after loading (out-of-range
indices or excluded values, which the macro must drop and flag).
"""

import json
import os
import random
from pathlib import Path

import cocotb
import numpy as np

from .analog import CrossbarModel
from .streams import CLOCK_NS, StreamSink, StreamSource, decode, encode, reset_dut, start_clock

__all__ = ["MacroTestbench", "run_job"]


class MacroTestbench:
    """Weight loader, vector source, result sink (and crossbar models) around ``MacroTop``.

    Parameters
    ----------
    dut : cocotb handle of the top
    cfg : MacroConfig
    seed : int
        Seeds every random choice (gaps, stalls).
    in_gaps, w_gaps, out_stalls : float
        Probability of an idle gap before an input vector / a weight row, and of ``o.ready``
        low in a cycle.
    """

    def __init__(self, dut, cfg, seed, in_gaps=0.0, out_stalls=0.0, w_gaps=0.0):
        from ..hdl.input_driver import vector_layout
        from ..hdl.macro_top import result_layout, status_layout
        from ..hdl.weight_mapper import weight_row_layout

        self.dut, self.cfg = dut, cfg
        self.rng = random.Random(seed)
        self.in_gaps, self.out_stalls, self.w_gaps = in_gaps, out_stalls, w_gaps
        self.models = []
        self.layouts = dict(vector=vector_layout(cfg, cfg.input_rows),
                            weights=weight_row_layout(cfg), result=result_layout(cfg),
                            status=status_layout(cfg))

    async def start(self):
        dut, cfg = self.dut, self.cfg
        await start_clock(dut)
        self.weights = StreamSource(dut, "w", self.rng, self.w_gaps)
        self.inputs = StreamSource(dut, "i", self.rng, self.in_gaps)
        dut.clear.value = 0
        if cfg.crossbar == "external":
            for t in range(cfg.tiles):
                model = CrossbarModel(dut, cfg, f"xbar__{t}__", tile=t)
                self.models.append(model)
                cocotb.start_soon(model.run())
        await self.reset()
        self.outputs = StreamSink(dut, "o", self.rng, self.out_stalls)

    async def reset(self):
        from cocotb.triggers import RisingEdge

        await RisingEdge(self.dut.clk)  # leave a read-only phase before writing
        self.dut.i__valid.value = 0  # the host drops what it was offering
        self.dut.w__valid.value = 0
        await reset_dut(self.dut)

    @property
    def results(self):
        """``(y list, cycles)`` of every result so far, in arrival order."""
        fields = [decode(self.layouts["result"], word) for _, word in self.outputs.items]
        return [(f["y"], f["cycles"]) for f in fields]

    @property
    def status(self):
        return decode(self.layouts["status"], self.dut.status.value)

    def weight_row(self, row, values):
        return encode(self.layouts["weights"], {"row": int(row),
                                                "weights": [int(v) for v in values]})

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

    async def send_raw_rows(self, rows):
        """Weight rows exactly as given ``[(index, [weights])]`` (the macro may drop them)."""
        for row, values in rows:
            await self.weights.send(self.weight_row(row, values))
        await self._idle()

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
            await self.inputs.send(encode(layout, [int(x) for x in vectors[n]]))

    async def wait_results(self, count):
        await self.outputs.wait(count)


async def run_job(dut):
    """Body of the cocotb test: load the job, drive it, write the results."""
    from cocotb.triggers import Timer, with_timeout

    from ..config import MacroConfig

    job = Path(os.environ["IMCGEN_JOB"])
    spec = json.loads((job / "job.json").read_text())
    arrays = np.load(job / "stimulus.npz")
    cfg = MacroConfig.from_dict(spec["config"])
    weights, vectors = arrays["weights"], arrays["inputs"]
    progress = job / "progress"

    tb = MacroTestbench(dut, cfg, spec["seed"], spec.get("in_gaps", 0.0),
                        spec.get("out_stalls", 0.0), spec.get("w_gaps", 0.0))
    await tb.start()
    in_flight = []
    resent_rows = 0

    async def body():
        nonlocal resent_rows
        resent_rows = await tb.load_weights(weights, spec.get("weight_reset_after"))
        if spec.get("raw_rows"):
            await tb.send_raw_rows(spec["raw_rows"])
        # Resets after given numbers of results; after each the host resends every vector it
        # has no result for.
        resets = sorted(r for r in spec.get("resets", []) if r < len(vectors))
        start = 0
        for point in resets:
            if point < len(tb.outputs.items):
                continue
            sender = cocotb.start_soon(tb.send(vectors, start))
            await tb.wait_results(point)
            sender.cancel()
            # Accepted but unanswered when the reset hits: lost inside, resent below.
            in_flight.append(tb.inputs.sent - len(tb.outputs.items))
            await tb.reset()
            tb.inputs.sent = start = len(tb.outputs.items)
        cocotb.start_soon(tb.send(vectors, start))
        step = max(1, len(vectors) // 100)
        while len(tb.outputs.items) < len(vectors):
            await tb.wait_results(min(len(vectors), len(tb.outputs.items) + step))
            progress.write_text(str(len(tb.outputs.items)))

    await with_timeout(body(), spec["timeout_ns"], "ns")
    # Keep listening for as long as a vector takes: a surplus (duplicated or stale) result
    # would show up as one row too many.
    await Timer((min(cfg.max_cycles, 5000) + 64) * CLOCK_NS, "ns")
    status = tb.status
    y = np.array([r[0] for r in tb.results], dtype=np.int64).reshape(-1, cfg.outputs)
    cycles = np.array([r[1] for r in tb.results], dtype=np.int64)
    np.savez(job / "rtl.npz", y=y, cycles=cycles, in_flight_at_reset=np.array(in_flight),
             status=np.array([status[k] for k in sorted(status)]),
             status_names=np.array(sorted(status)), weight_rows_resent=resent_rows)


@cocotb.test()
async def macro_job(dut):
    """Drive the job in ``IMCGEN_JOB`` through the macro."""
    await run_job(dut)
