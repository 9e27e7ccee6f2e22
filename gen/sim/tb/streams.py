"""Stream drivers and monitors for cocotb; payloads go through the one codec
(:mod:`imcgen.link.codec`), so a testbench never derives a field offset or width a second time.

Speed: drivers and monitors sleep on value changes of ``ready``/``valid`` instead of polling
every cycle, so a transfer costs a handful of Python wake-ups whatever its cycle count; only
the stall generators run every cycle.
"""

import json
import os
import random

import cocotb

from imcgen.link.codec import decode, encode  # re-exported: the testbenches' codec
from imcgen.sim.engine import CLOCK_NS

__all__ = ["CLOCK_NS", "encode", "decode", "config_from_env", "seed_from_env", "start_clock",
           "reset_dut", "StreamSource", "StreamSink", "stream_test", "cycle_now"]



def config_from_env():
    """The MacroConfig a pytest process passed to its cocotb tests (``IMCGEN_CONFIG``)."""
    from imcgen.core.config import MacroConfig

    return MacroConfig.from_dict(json.loads(os.environ["IMCGEN_CONFIG"]))


def seed_from_env():
    return int(os.environ.get("IMCGEN_SEED", "1"))


def cycle_now():
    """Rising edges since time 0 (the clock starts at 0 with period :data:`CLOCK_NS`)."""
    from cocotb.simtime import get_sim_time

    return int(get_sim_time("ns") // CLOCK_NS)


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

    ``sent`` counts completed transfers and ``times`` holds the cycle of each.
    """

    def __init__(self, dut, prefix, rng=None, idle=0.0):
        self.dut = dut
        self.valid, self.ready, self.payload = _stream(dut, prefix)
        self.rng, self.idle = rng or random.Random(0), idle
        self.sent = 0
        self.times = []
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
        self.times.append(cycle_now())

    async def send_all(self, words):
        for word in words:
            await self.send(word)


class StreamSink:
    """Collects the payloads of an output stream, with optional random backpressure.

    ``items`` holds ``(cycle, payload)`` in arrival order; ``arrived`` is set at each item.
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

    async def _monitor(self):
        from cocotb.triggers import ReadOnly, RisingEdge

        while True:
            await ReadOnly()
            if not self.valid.value:
                await RisingEdge(self.valid)
                continue
            if self.ready.value:
                self.items.append((cycle_now(), int(self.payload.value)))
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
