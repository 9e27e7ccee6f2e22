"""cocotb testbench of the whole macro, shared by ``imcgen simulate`` and the regression tests.

The process that starts the simulator writes a job file (``IMCGEN_JOB``: configuration, weights,
inputs, stimulus options, seed); :func:`run_job` drives it and writes the RTL's outputs and cycle
counts back. Comparison with the golden model happens outside, in :mod:`imcgen.simulate`.

Speed: the driver and monitor sleep on value changes of ``ready``/``valid`` instead of polling
every cycle, so a vector costs a handful of Python wake-ups whatever its cycle count. Only the
stall generators and the Python crossbar model (``crossbar = "external"``) run every cycle.
"""

import json
import os
import random
from pathlib import Path

import cocotb
import numpy as np

__all__ = ["pack", "unpack", "MacroTestbench", "CrossbarModel", "run_job"]

CLOCK_NS = 10


def pack(values, width):
    """Pack integers (two's complement, ``width`` bits each, element 0 lowest) into one int."""
    mask = (1 << width) - 1
    word = 0
    for n, value in enumerate(values):
        word |= (int(value) & mask) << (n * width)
    return word


def unpack(word, width, count, signed=True, offset=0):
    """Inverse of :func:`pack`, starting at bit ``offset``."""
    mask = (1 << width) - 1
    out = []
    for n in range(count):
        v = (word >> (offset + n * width)) & mask
        if signed and v >> (width - 1):
            v -= 1 << width
        out.append(v)
    return out


def _index_bits(count):
    return max(1, (count - 1).bit_length())


class CrossbarModel:
    """Python crossbar behind one tile's analog boundary (``docs/architecture.md`` section 8).

    Reads the boundary after each rising edge (the periphery drives it from registers), answers
    ``cmp`` at the falling edge, then applies the cell writes and the sample the edge will make.
    """

    def __init__(self, dut, cfg, tile):
        self.cfg = cfg
        prefix = f"xbar__{tile}__"
        self.sig = {name: getattr(dut, prefix + name) for name in (
            "read__row_en", "read__sample", "read__col_sel", "read__dac", "read__cmp",
            "cell__we", "cell__row", "cell__group", "cell__data")}
        self.clk = dut.clk
        self.cells = np.zeros((cfg.rows, cfg.adcs * cfg.column_groups), dtype=np.int64)
        self.held = np.zeros(cfg.adcs * cfg.column_groups, dtype=np.int64)
        self.row_bits = 1 << np.arange(cfg.rows, dtype=object)

    async def run(self):
        from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

        cfg, sig, lanes = self.cfg, self.sig, self.cfg.adcs
        while True:
            await RisingEdge(self.clk)
            await ReadOnly()
            group = int(sig["read__col_sel"].value)
            dac = unpack(int(sig["read__dac"].value), cfg.adc_bits, lanes, signed=False)
            cmp = 0
            for a in range(lanes):
                if self.held[group * lanes + a] >= dac[a]:
                    cmp |= 1 << a
            we = int(sig["cell__we"].value)
            sample = int(sig["read__sample"].value)
            if we:
                row, cgroup = int(sig["cell__row"].value), int(sig["cell__group"].value)
                levels = unpack(int(sig["cell__data"].value), cfg.cell_bits, lanes, signed=False)
            if sample:
                enables = int(sig["read__row_en"].value)
            await FallingEdge(self.clk)
            sig["read__cmp"].value = cmp
            # Effects of the coming edge, after cmp was answered from the state before it.
            if we:
                self.cells[row, cgroup * lanes:(cgroup + 1) * lanes] = levels
            if sample:
                active = np.array([(enables >> r) & 1 for r in range(cfg.rows)], dtype=np.int64)
                self.held = active @ self.cells


class MacroTestbench:
    """Driver, monitor and stall generators for ``MacroTop``.

    Parameters
    ----------
    dut : cocotb handle of the top
    cfg : MacroConfig
    seed : int
        Seeds every random choice (gaps, stalls).
    in_gaps, out_stalls : float
        Probability that the input stream idles before a vector / that ``o.ready`` is low in a
        cycle.
    """

    def __init__(self, dut, cfg, seed, in_gaps=0.0, out_stalls=0.0):
        self.dut, self.cfg = dut, cfg
        self.rng = random.Random(seed)
        self.in_gaps, self.out_stalls = in_gaps, out_stalls
        self.results = []  # (y list, cycles) in arrival order
        from cocotb.triggers import Event

        self.arrived = Event()  # set by the monitor at each result
        self.models = []

    async def start(self):
        from cocotb.clock import Clock
        from cocotb.triggers import ClockCycles

        dut = self.dut
        cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
        dut.i__valid.value = 0
        dut.w__valid.value = 0
        dut.o__ready.value = 1
        if self.cfg.crossbar == "external":
            for t in range(self.cfg.tiles):
                getattr(dut, f"xbar__{t}__read__cmp").value = 0
                model = CrossbarModel(dut, self.cfg, t)
                self.models.append(model)
                cocotb.start_soon(model.run())
        await self.reset()
        if self.out_stalls:
            cocotb.start_soon(self._stall_output())
        self.monitor = cocotb.start_soon(self._monitor())
        await ClockCycles(dut.clk, 1)

    async def reset(self, cycles=3):
        from cocotb.triggers import ClockCycles, RisingEdge

        await RisingEdge(self.dut.clk)  # leave a read-only phase before writing
        self.dut.rst.value = 1
        self.dut.i__valid.value = 0  # the host drops what it was offering
        self.dut.w__valid.value = 0
        await ClockCycles(self.dut.clk, cycles)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def _transfer(self, valid, ready):
        """Hold ``valid`` until the edge that transfers; sleep while ``ready`` is low."""
        from cocotb.triggers import ReadOnly, RisingEdge

        valid.value = 1
        while True:
            await ReadOnly()
            if not ready.value:
                await RisingEdge(ready)
                continue
            await RisingEdge(self.dut.clk)
            break
        valid.value = 0

    async def load_weights(self, weights):
        cfg, dut = self.cfg, self.dut
        row_bits = _index_bits(cfg.input_rows)
        for row, values in enumerate(np.asarray(weights)):
            dut.w__payload.value = row | (pack(values, cfg.weight_bits) << row_bits)
            await self._transfer(dut.w__valid, dut.w__ready)
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
        from cocotb.triggers import ClockCycles

        cfg, dut = self.cfg, self.dut
        for n in range(start, len(vectors)):
            if self.in_gaps and self.rng.random() < self.in_gaps:
                await ClockCycles(dut.clk, self.rng.randint(1, 8))
            dut.i__payload.value = pack(vectors[n], cfg.input_bits)
            await self._transfer(dut.i__valid, dut.i__ready)

    async def _monitor(self):
        from cocotb.triggers import ReadOnly, RisingEdge

        cfg, dut = self.cfg, self.dut
        y_bits = cfg.out_width * cfg.outputs
        while True:
            await ReadOnly()
            if not dut.o__valid.value:
                await RisingEdge(dut.o__valid)
                continue
            if dut.o__ready.value:
                word = int(dut.o__payload.value)
                y = unpack(word, cfg.out_width, cfg.outputs)
                cycles = (word >> y_bits) & ((1 << cfg.cycle_bits) - 1)
                self.results.append((y, cycles))
                self.arrived.set()
            await RisingEdge(dut.clk)

    async def _stall_output(self):
        from cocotb.triggers import RisingEdge

        while True:
            await RisingEdge(self.dut.clk)
            self.dut.o__ready.value = int(self.rng.random() >= self.out_stalls)

    async def wait_results(self, count):
        while len(self.results) < count:
            self.arrived.clear()
            await self.arrived.wait()


async def run_job(dut):
    """Body of the cocotb test: load the job, drive it, write the results."""
    from cocotb.triggers import with_timeout

    from .config import MacroConfig

    job = Path(os.environ["IMCGEN_JOB"])
    spec = json.loads((job / "job.json").read_text())
    arrays = np.load(job / "stimulus.npz")
    cfg = MacroConfig(**spec["config"])
    weights, vectors = arrays["weights"], arrays["inputs"]
    progress = job / "progress"

    tb = MacroTestbench(dut, cfg, spec["seed"], spec["in_gaps"], spec["out_stalls"])
    await tb.start()

    async def body():
        await tb.load_weights(weights)
        reset_after = spec.get("reset_after")
        if reset_after is not None and reset_after < len(vectors):
            sender = cocotb.start_soon(tb.send(vectors))
            await tb.wait_results(reset_after)
            sender.cancel()
            await tb.reset()
            # The host resends every vector whose result it has not seen.
            await tb.send(vectors, start=len(tb.results))
        else:
            cocotb.start_soon(tb.send(vectors))
        step = max(1, len(vectors) // 100)
        while len(tb.results) < len(vectors):
            await tb.wait_results(min(len(vectors), len(tb.results) + step))
            progress.write_text(str(len(tb.results)))

    await with_timeout(body(), spec["timeout_ns"], "ns")
    y = np.array([r[0] for r in tb.results], dtype=np.int64).reshape(-1, cfg.outputs)
    cycles = np.array([r[1] for r in tb.results], dtype=np.int64)
    np.savez(job / "rtl.npz", y=y, cycles=cycles)


@cocotb.test()
async def macro_job(dut):
    """Drive the job in ``IMCGEN_JOB`` through the macro."""
    await run_job(dut)
