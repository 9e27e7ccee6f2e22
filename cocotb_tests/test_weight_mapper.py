"""Weight mapper: weight rows in, cell writes out, against ``golden.weight_mapper.cell_levels``."""

import random

import cocotb
import numpy as np
import pytest
from cocotb.triggers import ReadOnly, RisingEdge, with_timeout

from imcgen.config import MacroConfig
from imcgen.golden.weight_mapper import cell_levels
from imcgen.hdl.weight_mapper import WeightMapper, weight_row_layout
from imcgen.runner import run_block
from imcgen.testbench import (
    StreamSource,
    config_from_env,
    encode,
    pack,
    reset_dut,
    seed_from_env,
    start_clock,
    unpack,
)

CONFIGS = {
    "differential-w5-s2": MacroConfig(rows=6, tiles=2, outputs=3, weight_bits=5, cell_bits=2,
                                      adcs=4),
    "differential-w8-s3-top-slice-narrow": MacroConfig(rows=4, tiles=3, outputs=2, weight_bits=8,
                                                       cell_bits=3, adcs=5),
    "offset-w16-s2-isaac-like": MacroConfig(rows=5, tiles=1, outputs=2, weight_bits=16,
                                            cell_bits=2, weight_mapping="offset", adcs=1),
    "offset-w1-s1": MacroConfig(rows=3, tiles=2, outputs=4, weight_bits=1, cell_bits=1,
                                weight_mapping="offset", adcs=3),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_weight_mapper(name, tmp_path, seed):
    cfg = CONFIGS[name]
    run_block(WeightMapper(config=cfg), "weight_mapper", "test_weight_mapper", tmp_path,
              config=cfg, seed=seed)


async def watch_writes(dut, cfg, writes):
    """Record every cycle's cell write as (cycle, tile, row, group, levels)."""
    cycle = 0
    while True:
        await RisingEdge(dut.clk)
        cycle += 1
        await ReadOnly()
        if int(dut.cell__we.value):
            writes.append((cycle, int(dut.tile.value), int(dut.cell__row.value),
                           int(dut.cell__group.value),
                           unpack(int(dut.cell__data.value), cfg.cell_bits, cfg.adcs, False)))


async def run(dut, idle):
    cfg, rng = config_from_env(), random.Random(seed_from_env())
    await start_clock(dut)
    source = StreamSource(dut, "i", rng, idle)
    await reset_dut(dut)
    W = np.array([[rng.randint(cfg.weight_min, cfg.weight_max) for _ in range(cfg.outputs)]
                  for _ in range(cfg.input_rows)])
    W[0, :] = cfg.weight_min  # both ends of the range
    W[-1, :] = cfg.weight_max
    writes = []
    cocotb.start_soon(watch_writes(dut, cfg, writes))
    layout = weight_row_layout(cfg)
    words = [encode(layout, row=i, weights=pack(W[i], cfg.weight_bits))
             for i in range(cfg.input_rows)]
    await with_timeout(source.send_all(words), 200 * len(words) * cfg.column_groups, "ns")
    await RisingEdge(dut.clk)
    while int(dut.busy.value):
        await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)

    levels = cell_levels(cfg, W)
    lanes, columns = cfg.adcs, cfg.physical_columns
    expected = []
    for i in range(cfg.input_rows):
        t, r = divmod(i, cfg.rows)
        for g in range(cfg.column_groups):
            data = [int(levels[t, r, g * lanes + a]) if g * lanes + a < columns else 0
                    for a in range(lanes)]
            expected.append((t, r, g, data))
    got = [w[1:] for w in writes]
    for n, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g == e, f"write {n}: got {g}, expected {e} (seed {seed_from_env()})"
    return writes


@cocotb.test()
async def cells_match_golden_with_gaps(dut):
    await run(dut, idle=0.4)


@cocotb.test()
async def rows_are_written_back_to_back(dut):
    # One column group per cycle and the next row taken on the last group: no idle cycle.
    writes = await run(dut, idle=0.0)
    cycles = [w[0] for w in writes]
    assert cycles == list(range(cycles[0], cycles[0] + len(cycles))), cycles
