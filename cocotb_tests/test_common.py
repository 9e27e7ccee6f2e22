"""The register slice (``hdl/common.py`` Pipe) in Amaranth's simulator: order kept, nothing
lost or duplicated under random valid and ready, one cycle of latency, one item per cycle, two
slots, and ``i.ready`` from a register."""

import random

import pytest
from amaranth.sim import Simulator

from imcgen.hdl.common import Pipe


def run(pattern, cycles):
    """Drive ``Pipe(8)`` for ``cycles`` cycles; ``pattern(cycle) -> (offer, ready)``. Returns
    the transfers in and out as ``(cycle, value)`` and each cycle's ``i.ready``."""
    dut = Pipe(8)
    taken, given, readies = [], [], []

    async def bench(ctx):
        value = 0
        for cycle in range(cycles):
            offer, ready = pattern(cycle)
            ctx.set(dut.i.valid, offer)
            ctx.set(dut.i.payload, value)
            ctx.set(dut.o.ready, 0)
            before = ctx.get(dut.i.ready)
            ctx.set(dut.o.ready, ready)
            readies.append(ctx.get(dut.i.ready))
            assert readies[-1] == before, "i.ready follows o.ready combinationally"
            if ctx.get(dut.o.valid) and ready:
                given.append((cycle, ctx.get(dut.o.payload)))
            if offer and readies[-1]:
                taken.append((cycle, value))
                value = (value + 1) % 256
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return taken, given, readies


def test_pipe_keeps_order_under_random_stalls(seed):
    rng = random.Random(seed)
    taken, given, _ = run(lambda c: (rng.random() < 0.6, rng.random() < 0.5), 2000)
    assert len(taken) > 500, seed
    # Every item leaves once, in order, at least a cycle after it entered.
    values = [v for _, v in given]
    assert values == [v for _, v in taken][:len(values)], seed
    assert len(taken) - len(values) <= 2, seed  # at most the two slots still held
    for (t_in, _), (t_out, _) in zip(taken, given, strict=False):
        assert t_out >= t_in + 1, seed


def test_pipe_flows_one_per_cycle_with_one_cycle_of_latency():
    taken, given, readies = run(lambda c: (True, True), 50)
    assert [c for c, _ in taken] == list(range(50)) and all(readies)
    assert given == [(c + 1, v) for c, v in taken[:-1]]


@pytest.mark.parametrize("stall", [1, 2, 5])
def test_pipe_holds_two_items_while_stalled(stall):
    # Output stalled from cycle 0 for `stall` cycles: two items go in, then i.ready drops
    # until the output moves; then items flow again without a gap.
    taken, given, readies = run(lambda c: (True, c >= stall), 20)
    held = [c for c, _ in taken if c < stall]
    assert held == list(range(min(stall, 2)))
    assert readies[:stall] == [1] * min(stall, 2) + [0] * (stall - min(stall, 2))
    assert [v for _, v in given] == [v for _, v in taken][:len(given)]
    assert [c for c, _ in given] == list(range(stall, 20))
