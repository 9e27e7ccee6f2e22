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


def decode(layout, word):
    """Fields of a struct payload as unsigned ints (an Amaranth ``StructLayout`` gives offsets)."""
    return {name: (word >> field.offset) & ((1 << field.width) - 1) for name, field in layout}


def encode(layout, **values):
    """Struct payload from field values (two's complement for negative values)."""
    word = 0
    for name, field in layout:
        word |= (int(values.get(name, 0)) & ((1 << field.width) - 1)) << field.offset
    return word


def config_from_env():
    """The MacroConfig a pytest process passed to its cocotb tests (``IMCGEN_CONFIG``)."""
    from .config import MacroConfig

    return MacroConfig(**json.loads(os.environ["IMCGEN_CONFIG"]))


def seed_from_env():
    return int(os.environ.get("IMCGEN_SEED", "1"))


async def start_clock(dut):
    from cocotb.clock import Clock

    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())


async def reset_dut(dut, cycles=3):
    from cocotb.triggers import ClockCycles, RisingEdge

    await RisingEdge(dut.clk)  # leave a read-only phase before writing
    dut.rst.value = 1
    await ClockCycles(dut.clk, cycles)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


def _stream(dut, prefix):
    """``valid``, ``ready`` and ``payload`` handles of the stream ``prefix``."""
    return (getattr(dut, f"{prefix}__valid"), getattr(dut, f"{prefix}__ready"),
            getattr(dut, f"{prefix}__payload"))


class StreamSource:
    """Drives ``<prefix>__valid/payload`` of an input stream, with optional random idle gaps.

    Sleeps on ``ready`` changes instead of polling every cycle.
    """

    def __init__(self, dut, prefix, rng=None, idle=0.0):
        self.dut = dut
        self.valid, self.ready, self.payload = _stream(dut, prefix)
        self.rng, self.idle = rng or random.Random(0), idle
        self.sent = 0  # transfers completed
        self.valid.value = 0

    async def send(self, word):
        from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

        if self.idle and self.rng.random() < self.idle:
            await ClockCycles(self.dut.clk, self.rng.randint(1, 6))
        self.payload.value = word
        self.valid.value = 1
        while True:  # the transfer happens on the first edge with ready high
            await ReadOnly()
            if not self.ready.value:
                await RisingEdge(self.ready)
                continue
            await RisingEdge(self.dut.clk)
            break
        self.valid.value = 0
        self.sent += 1

    async def send_all(self, words):
        for word in words:
            await self.send(word)


class StreamSink:
    """Collects the payloads of an output stream, with optional random backpressure.

    ``items`` holds ``(cycle, payload)`` in arrival order, ``cycle`` counting rising edges
    from the sink's start; ``arrived`` is set at each item.
    """

    def __init__(self, dut, prefix, rng=None, stall=0.0):
        from cocotb.triggers import Event

        self.dut = dut
        self.valid, self.ready, self.payload = _stream(dut, prefix)
        self.rng, self.stall = rng or random.Random(0), stall
        self.items = []
        self.arrived = Event()
        self.ready.value = 1
        if stall:
            cocotb.start_soon(self._backpressure())
        self._task = cocotb.start_soon(self._monitor())

    def _cycle(self):
        from cocotb.simtime import get_sim_time

        return int(get_sim_time("ns") // CLOCK_NS)

    async def _monitor(self):
        from cocotb.triggers import ReadOnly, RisingEdge

        while True:
            await ReadOnly()
            if not self.valid.value:
                await RisingEdge(self.valid)
                continue
            if self.ready.value:
                self.items.append((self._cycle(), int(self.payload.value)))
                self.arrived.set()
            await RisingEdge(self.dut.clk)

    async def _backpressure(self):
        from cocotb.triggers import RisingEdge

        while True:
            await RisingEdge(self.dut.clk)
            self.ready.value = int(self.rng.random() >= self.stall)

    async def wait(self, count):
        """Until ``count`` items have arrived."""
        while len(self.items) < count:
            self.arrived.clear()
            await self.arrived.wait()

    def clear(self):
        self.items.clear()


async def stream_test(dut, idle=0.0, stall=0.0, source="i", sink="o"):
    """Common start of a block test: configuration and seeded RNG from the environment, clock,
    a source on ``source`` with idle gaps, reset, and a sink on ``sink`` with backpressure.

    Returns ``(cfg, rng, source, sink)``.
    """
    cfg, rng = config_from_env(), random.Random(seed_from_env())
    await start_clock(dut)
    driver = StreamSource(dut, source, rng, idle)
    await reset_dut(dut)
    return cfg, rng, driver, StreamSink(dut, sink, rng, stall)


class CrossbarModel:
    """Python crossbar behind one tile's analog boundary (``docs/architecture.md`` section 8).

    Reads the boundary after each rising edge (the periphery drives it from registers), answers
    ``cmp`` at the falling edge, then applies the cell writes and the sample the coming edge
    makes. ``read_prefix`` names the read ports (``xbar__0__read__``); ``cell_prefix`` the cell
    write port, or None when the cells are set directly in :attr:`cells`.

    With ``record`` set, ``samples`` collects the cycle of every sample strobe and ``trials``
    every ``(cycle, group, dac)``, for tests of the SAR timing and search order.
    """

    def __init__(self, dut, cfg, read_prefix, cell_prefix=None):
        self.cfg, self.clk = cfg, dut.clk
        read = ("row_en", "sample", "col_sel", "dac", "cmp")
        self.sig = {name: getattr(dut, read_prefix + name) for name in read}
        if cell_prefix is not None:
            for name in ("we", "row", "group", "data"):
                self.sig["cell_" + name] = getattr(dut, cell_prefix + name)
        columns = cfg.adcs * cfg.column_groups  # lanes past the last column read as 0
        self.cells = np.zeros((cfg.rows, columns), dtype=np.int64)
        self.held = np.zeros(columns, dtype=np.int64)
        self.samples, self.trials = [], []
        self.record = False
        self.sig["cmp"].value = 0

    async def run(self):
        from cocotb.simtime import get_sim_time
        from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

        cfg, sig, lanes = self.cfg, self.sig, self.cfg.adcs
        has_cells = "cell_we" in sig
        while True:
            await RisingEdge(self.clk)
            await ReadOnly()
            group = int(sig["col_sel"].value)
            dac = unpack(int(sig["dac"].value), cfg.adc_bits, lanes, signed=False)
            cmp = 0
            for a in range(lanes):
                if self.held[group * lanes + a] >= dac[a]:
                    cmp |= 1 << a
            sample = int(sig["sample"].value)
            if sample:
                enables = int(sig["row_en"].value)
            write = has_cells and int(sig["cell_we"].value)
            if write:
                row, cgroup = int(sig["cell_row"].value), int(sig["cell_group"].value)
                levels = unpack(int(sig["cell_data"].value), cfg.cell_bits, lanes, signed=False)
            if self.record:
                cycle = int(get_sim_time("ns") // CLOCK_NS)
                if sample:
                    self.samples.append(cycle)
                self.trials.append((cycle, group, tuple(dac)))
            await FallingEdge(self.clk)
            sig["cmp"].value = cmp
            # Effects of the coming edge, after cmp was answered from the state before it.
            if write:
                self.cells[row, cgroup * lanes:(cgroup + 1) * lanes] = levels
            if sample:
                active = np.array([(enables >> r) & 1 for r in range(cfg.rows)], dtype=np.int64)
                self.held = active @ self.cells


class MacroTestbench:
    """Weight loader, vector source, result sink (and crossbar models) around ``MacroTop``.

    Parameters
    ----------
    dut : cocotb handle of the top
    cfg : MacroConfig
    seed : int
        Seeds every random choice (gaps, stalls).
    in_gaps, out_stalls : float
        Probability of an idle gap before an input vector / of ``o.ready`` low in a cycle.
    """

    def __init__(self, dut, cfg, seed, in_gaps=0.0, out_stalls=0.0):
        self.dut, self.cfg = dut, cfg
        self.rng = random.Random(seed)
        self.in_gaps, self.out_stalls = in_gaps, out_stalls
        self.models = []

    async def start(self):
        dut, cfg = self.dut, self.cfg
        await start_clock(dut)
        self.weights = StreamSource(dut, "w")
        self.inputs = StreamSource(dut, "i", self.rng, self.in_gaps)
        if cfg.crossbar == "external":
            for t in range(cfg.tiles):
                model = CrossbarModel(dut, cfg, f"xbar__{t}__read__", f"xbar__{t}__cell__")
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
        from .hdl.macro_top import result_layout

        cfg, layout = self.cfg, result_layout(self.cfg)
        fields = [decode(layout, word) for _, word in self.outputs.items]
        return [(unpack(f["y"], cfg.out_width, cfg.outputs), f["cycles"]) for f in fields]

    async def load_weights(self, weights):
        from .hdl.weight_mapper import weight_row_layout

        layout = weight_row_layout(self.cfg)
        for row, values in enumerate(np.asarray(weights)):
            await self.weights.send(encode(layout, row=row,
                                           weights=pack(values, self.cfg.weight_bits)))
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
        for n in range(start, len(vectors)):
            await self.inputs.send(pack(vectors[n], self.cfg.input_bits))

    async def wait_results(self, count):
        await self.outputs.wait(count)


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
            # Vectors accepted but unanswered when the reset hits: lost inside, resent below.
            spec["in_flight_at_reset"] = tb.inputs.sent - len(tb.outputs.items)
            await tb.reset()
            # The host resends every vector whose result it has not seen.
            await tb.send(vectors, start=len(tb.outputs.items))
        else:
            cocotb.start_soon(tb.send(vectors))
        step = max(1, len(vectors) // 100)
        while len(tb.outputs.items) < len(vectors):
            await tb.wait_results(min(len(vectors), len(tb.outputs.items) + step))
            progress.write_text(str(len(tb.outputs.items)))

    await with_timeout(body(), spec["timeout_ns"], "ns")
    # Keep listening for as long as a vector takes: a surplus (duplicated or stale) result
    # would show up as one row too many.
    from cocotb.triggers import Timer

    await Timer((min(cfg.max_cycles, 5000) + 64) * CLOCK_NS, "ns")
    y = np.array([r[0] for r in tb.results], dtype=np.int64).reshape(-1, cfg.outputs)
    cycles = np.array([r[1] for r in tb.results], dtype=np.int64)
    np.savez(job / "rtl.npz", y=y, cycles=cycles,
             in_flight_at_reset=spec.get("in_flight_at_reset", -1))


@cocotb.test()
async def macro_job(dut):
    """Drive the job in ``IMCGEN_JOB`` through the macro."""
    await run_job(dut)
