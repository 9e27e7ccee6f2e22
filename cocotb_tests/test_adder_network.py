"""Adder network: the tiles' partial sums in, their sum out, against ``golden.adder_network``."""

import random

import cocotb
import numpy as np
import pytest
from cocotb.triggers import with_timeout

from imcgen.core.config import MacroConfig
from imcgen.golden.adder_network import add_tiles
from imcgen.hdl.adder_network import AdderNetwork, sum_layout
from imcgen.hdl.shift_add import psum_layout
from imcgen.sim.runner import run_block
from imcgen.sim.tb.streams import (
    StreamSink,
    StreamSource,
    config_from_env,
    decode,
    encode,
    reset_dut,
    seed_from_env,
    start_clock,
)

CONFIGS = {f"tiles{t}": MacroConfig(rows=8, tiles=t, outputs=3, input_signed=True)
           for t in (1, 2, 3, 5)}


@pytest.mark.parametrize("name", CONFIGS)
def test_adder_network(name, tmp_path, seed):
    cfg = CONFIGS[name]
    run_block(AdderNetwork(config=cfg), "adder_network", "test_adder_network", tmp_path,
              config=cfg, seed=seed)


async def run(dut, idle, stall, count=40):
    cfg, rng = config_from_env(), random.Random(seed_from_env())
    await start_clock(dut)
    sources = [StreamSource(dut, f"i__{t}", rng, idle) for t in range(cfg.tiles)]
    await reset_dut(dut)
    sink = StreamSink(dut, "o", rng, stall)
    lo, hi = cfg.psum_range
    psums = np.array([[[rng.choice((lo, hi, rng.randint(lo, hi))) for _ in range(cfg.outputs)]
                       for _ in range(cfg.tiles)] for _ in range(count)])
    for t, source in enumerate(sources):  # every tile's stream has its own gaps
        cocotb.start_soon(source.send_all([encode(psum_layout(cfg), p[t].tolist()) for p in psums]))
    await with_timeout(sink.wait(count), 500 * count + 1000, "ns")
    expected = add_tiles(psums)
    for n, (_, word) in enumerate(sink.items):
        got = decode(sum_layout(cfg), word)
        assert got == expected[n].tolist(), f"vector {n} (seed {seed_from_env()})"
    return cfg, sink


@cocotb.test()
async def sums_match_golden_under_stalls(dut):
    await run(dut, idle=0.4, stall=0.4)


@cocotb.test()
async def one_sum_per_cycle_when_streams_flow(dut):
    # Pipelined: with every input valid and the output ready, a sum leaves every cycle.
    cfg, sink = await run(dut, idle=0.0, stall=0.0)
    cycles = [c for c, _ in sink.items]
    assert cycles == list(range(cycles[0], cycles[0] + len(cycles))), cycles
