"""Weight mapper: weight rows in, cell writes out, against ``golden.weight_mapper.cell_levels``."""

import random

import cocotb
import numpy as np
import pytest
from cocotb.triggers import ReadOnly, RisingEdge, with_timeout

from imcgen.core.config import MacroConfig
from imcgen.golden.weight_mapper import cell_levels
from imcgen.hdl.analog import levels_layout
from imcgen.hdl.weight_mapper import WeightMapper, weight_row_layout
from imcgen.sim.runner import run_block
from imcgen.sim.tb.streams import (
    StreamSource,
    config_from_env,
    decode,
    encode,
    reset_dut,
    seed_from_env,
    start_clock,
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
    levels = levels_layout(cfg)
    cycle = 0
    while True:
        await RisingEdge(dut.clk)
        cycle += 1
        await ReadOnly()
        if int(dut.cell__we.value):
            writes.append((cycle, int(dut.tile.value), int(dut.cell__row.value),
                           int(dut.cell__group.value),
                           decode(levels, dut.cell__data.value)))


async def watch_drops(dut, drops):
    """Record every cycle's dropped-row pulse as (row, weight) flags (combinational: sampled
    before the edge that takes the row)."""
    while True:
        await ReadOnly()
        value = int(dut.dropped.value)
        if value:
            drops.append((value & 1, value >> 1))
        await RisingEdge(dut.clk)


def bad_rows(cfg, rng, count):
    """Rows the mapper must drop: indices past rows*tiles, or the excluded differential value."""
    index_bits = max(1, (cfg.input_rows - 1).bit_length())
    out = []
    for _ in range(count):
        weights = [rng.randint(cfg.weight_min, cfg.weight_max) for _ in range(cfg.outputs)]
        kinds = (["row"] if (1 << index_bits) > cfg.input_rows else []) + (
            ["weight"] if cfg.weight_mapping == "differential" else [])
        kind = rng.choice(kinds)
        row = rng.randrange(cfg.input_rows, 1 << index_bits) if kind == "row" else \
            rng.randrange(cfg.input_rows)
        if kind == "weight":
            weights[rng.randrange(cfg.outputs)] = -(1 << (cfg.weight_bits - 1))
        out.append(({"row": row, "weights": weights}, (int(kind == "row"), int(kind == "weight"))))
    return out


async def run(dut, idle, bad=0):
    cfg, rng = config_from_env(), random.Random(seed_from_env())
    await start_clock(dut)
    source = StreamSource(dut, "i", rng, idle)
    await reset_dut(dut)
    W = np.array([[rng.randint(cfg.weight_min, cfg.weight_max) for _ in range(cfg.outputs)]
                  for _ in range(cfg.input_rows)])
    W[0, :] = cfg.weight_min  # both ends of the range
    W[-1, :] = cfg.weight_max
    writes, drops = [], []
    cocotb.start_soon(watch_writes(dut, cfg, writes))
    cocotb.start_soon(watch_drops(dut, drops))
    layout = weight_row_layout(cfg)
    words = [encode(layout, {"row": i, "weights": W[i].tolist()})
             for i in range(cfg.input_rows)]
    rejects = bad_rows(cfg, rng, bad)
    for row, _ in rejects:  # anywhere among the good rows
        words.insert(rng.randrange(len(words) + 1), encode(layout, row))
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
    assert sorted(drops) == sorted(flags for _, flags in rejects), (drops, rejects)
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


@cocotb.test()
async def bad_rows_are_dropped_flagged_and_never_written(dut):
    # An FPGA host drives this port directly: a row index past rows*tiles (the field is wider
    # unless rows*tiles is a power of two) or the differential mapping's excluded weight is
    # taken, flagged on `dropped` and written nowhere; every good row still lands exactly.
    cfg = config_from_env()
    index_bits = max(1, (cfg.input_rows - 1).bit_length())
    if (1 << index_bits) == cfg.input_rows and cfg.weight_mapping != "differential":
        return  # nothing a host can send is out of range
    await run(dut, idle=0.3, bad=12)
