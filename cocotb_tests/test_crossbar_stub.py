"""Crossbar stub: cell writes, sample-and-hold of the active rows, comparators, non-volatile
cells (``docs/architecture.md`` section 8), driven directly at the analog boundary."""

import random

import cocotb
import numpy as np
import pytest
from cocotb.triggers import ReadOnly, RisingEdge

from imcgen.config import MacroConfig
from imcgen.golden.crossbar_stub import held_values
from imcgen.hdl.analog import dac_layout, levels_layout
from imcgen.hdl.crossbar_stub import CrossbarStub
from imcgen.runner import run_block
from imcgen.tb.streams import config_from_env, encode, reset_dut, seed_from_env, start_clock

CONFIGS = {
    "r8-a3-s2": MacroConfig(rows=8, tiles=1, outputs=3, weight_bits=4, cell_bits=2, adcs=3,
                            adc_bits=6),
    "r20-a8-s3": MacroConfig(rows=20, tiles=1, outputs=4, weight_bits=7, cell_bits=3, adcs=8,
                             adc_bits=8),
    "r5-a1-s1": MacroConfig(rows=5, tiles=1, outputs=2, weight_bits=3, cell_bits=1, adcs=1,
                            adc_bits=2),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_crossbar_stub(name, tmp_path, seed):
    cfg = CONFIGS[name]
    run_block(CrossbarStub(config=cfg), "crossbar_stub", "test_crossbar_stub", tmp_path,
              config=cfg, seed=seed)


def port(dut, name):
    return getattr(dut, f"xbar__{name}")


async def write_cells(dut, cfg, cells):
    lanes = cfg.adcs
    port(dut, "cell__we").value = 1
    for row in range(cfg.rows):
        for group in range(cfg.column_groups):
            port(dut, "cell__row").value = row
            port(dut, "cell__group").value = group
            levels = cells[row, group * lanes:(group + 1) * lanes].tolist()
            port(dut, "cell__data").value = encode(levels_layout(cfg), levels)
            await RisingEdge(dut.clk)
    port(dut, "cell__we").value = 0


async def check_read(dut, cfg, cells, rows, rng):
    """Sample ``rows``, scramble the row enables, probe every lane on both sides of its value."""
    port(dut, "read__row_en").value = rows
    port(dut, "read__sample").value = 1
    await RisingEdge(dut.clk)
    port(dut, "read__sample").value = 0
    port(dut, "read__row_en").value = rng.getrandbits(cfg.rows)  # must not matter: held
    values = held_values(cells, rows)
    lanes, top = cfg.adcs, cfg.adc_max
    for group in range(cfg.column_groups):
        column = values[group * lanes:(group + 1) * lanes]
        probes = [np.minimum(column, top), np.minimum(column + 1, top),
                  np.array([rng.randint(0, top) for _ in range(lanes)])]
        for dac in probes:
            port(dut, "read__col_sel").value = group
            port(dut, "read__dac").value = encode(dac_layout(cfg), dac.tolist())
            await ReadOnly()
            want = sum(1 << a for a in range(lanes) if column[a] >= dac[a])
            got = int(port(dut, "read__cmp").value)
            assert got == want, (f"group {group} rows {rows:#x} dac {dac.tolist()} column "
                                 f"{column.tolist()}: cmp {got:#x} != {want:#x} "
                                 f"(seed {seed_from_env()})")
            await RisingEdge(dut.clk)


@cocotb.test()
async def comparators_follow_held_rows_and_cells_survive_reset(dut):
    cfg, rng = config_from_env(), random.Random(seed_from_env())
    await start_clock(dut)
    for name in ("cell__we", "read__sample", "read__row_en", "read__col_sel", "read__dac"):
        port(dut, name).value = 0
    await reset_dut(dut)
    columns = cfg.adcs * cfg.column_groups
    cells = np.array([[rng.randint(0, cfg.cell_max) for _ in range(columns)]
                      for _ in range(cfg.rows)], dtype=np.int64)
    await write_cells(dut, cfg, cells)
    row_sets = [0, (1 << cfg.rows) - 1] + [rng.getrandbits(cfg.rows) for _ in range(6)]
    for rows in row_sets:
        await check_read(dut, cfg, cells, rows, rng)
    await reset_dut(dut)  # cells are non-volatile; only the sample-and-hold is cleared
    for rows in row_sets[:3]:
        await check_read(dut, cfg, cells, rows, rng)
