"""Crossbar stub: cell writes, sample-and-hold of the active rows, comparators (compute and
verify references), programming pulses and stuck cells, non-volatile cells
(``docs/architecture.md`` section 8, ``docs/write_verify.md`` section 1), driven directly at
the analog boundary and checked against the shared NumPy crossbar and device models."""

import random

import cocotb
import numpy as np
import pytest
from cocotb.triggers import ReadOnly, RisingEdge

from imcgen.core.codes import Direction
from imcgen.core.config import MacroConfig
from imcgen.core.draws import cell_where
from imcgen.golden import device
from imcgen.golden.crossbar_stub import compare, held_values
from imcgen.golden.sar_adc import convert
from imcgen.hdl.analog import dac_layout, levels_layout
from imcgen.hdl.crossbar_stub import CrossbarStub, stuck_cells
from imcgen.sim.runner import run_block
from imcgen.sim.tb.streams import config_from_env, encode, reset_dut, seed_from_env, start_clock

CONFIGS = {
    "r8-a3-s2": MacroConfig(rows=8, tiles=1, outputs=3, weight_bits=4, cell_bits=2, adcs=3,
                            adc_bits=6),
    "r20-a8-s3": MacroConfig(rows=20, tiles=1, outputs=4, weight_bits=7, cell_bits=3, adcs=8,
                             adc_bits=8, adc_overlap=True),  # two sample-and-hold buffers
    "r5-a1-s1": MacroConfig(rows=5, tiles=1, outputs=2, weight_bits=3, cell_bits=1, adcs=1,
                            adc_bits=2, adc_overlap=True),
    # Programmable devices, with stuck cells (tile 1 of 2: the draws address the tile).
    "rram-r6-a3-stuck": MacroConfig(rows=6, tiles=2, outputs=2, weight_bits=4, cell_bits=2,
                                    adcs=3, adc_bits=5, adc_overlap=True,
                                    tables={"device": {"kind": "rram", "stuck_fraction": 0.2,
                                                       "noise": 1.0}}),
    # Cells in block RAM, read a cycle late: two-stage sums (dwell 3 > 2) and overlap (one).
    "bram-r8-a4-s2": MacroConfig(rows=8, tiles=1, outputs=3, weight_bits=4, cell_bits=2, adcs=4,
                                 adc_bits=4, tables={"stub": {"cells": "block_ram"}}),
    "bram-r6-a2-overlap": MacroConfig(rows=6, tiles=1, outputs=2, weight_bits=3, cell_bits=1,
                                      adcs=2, adc_bits=2, adc_overlap=True,
                                      tables={"stub": {"cells": "block_ram"}}),
    "pcm-r4-a2-s3": MacroConfig(rows=4, tiles=1, outputs=2, weight_bits=7, cell_bits=3, adcs=2,
                                adc_bits=7,
                                tables={"device": {"kind": "pcm", "stuck_fraction": 0.1,
                                                   "frac_bits": 3}}),
}
TILE = {"rram-r6-a3-stuck": 1}


@pytest.mark.parametrize("name", CONFIGS)
def test_crossbar_stub(name, tmp_path, seed):
    cfg = CONFIGS[name]
    tile = TILE.get(name, 0)
    run_block(CrossbarStub(config=cfg, tile=tile), "crossbar_stub", "test_crossbar_stub",
              tmp_path, config=cfg, seed=seed, env={"IMCGEN_TILE": str(tile)})


def port(dut, name):
    return getattr(dut, f"xbar__{name}")


def tile_of():
    import os

    return int(os.environ.get("IMCGEN_TILE", "0"))


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
    if cfg.stub_block_ram:  # read a cycle late: a read's rows follow a cycle later
        await RisingEdge(dut.clk)


_previous = {}  # the last read checked: (rows, verify), in the buffer the comparators read


async def check_read(dut, cfg, states, rows, rng, verify=False):
    """Sample ``rows`` (with overlap: into the buffer the comparators do not read, and check
    that they still answer the previous read), switch buffers, scramble the row enables and
    probe every lane around its expected code, driving the boundary as a SAR does (hdl/analog.py:
    the rows applied a cycle before the sample with two-stage sums; `col_sel` on the group
    before the read's first, wrapping, until the conversion starts). A verify read here walks every
    group, which a SAR never does: `verify` drops after the sample so the stub sums them all."""
    bank = int(port(dut, "read__bank").value)
    port(dut, "read__row_en").value = rows
    port(dut, "read__col_sel").value = cfg.column_groups - 1  # before group 0, wrapping
    if cfg.programmable:
        port(dut, "read__verify").value = int(verify)
    if cfg.sum_stages == 2:  # presample
        await RisingEdge(dut.clk)
    port(dut, "read__sample").value = 1
    await RisingEdge(dut.clk)
    port(dut, "read__sample").value = 0
    if cfg.programmable:
        port(dut, "read__verify").value = 0
    lanes, top = cfg.adcs, cfg.adc_max
    if cfg.overlap and "read" in _previous and not verify:  # sampled into the other buffer
        old_rows, old_verify = _previous["read"]
        old = held_values(states, old_rows)  # the stub holds the row set
        dac = np.array([rng.randint(1, top) for _ in range(lanes)])
        last = cfg.column_groups - 1  # the comparators stay on the previous read's last group
        port(dut, "read__col_sel").value = last
        port(dut, "read__dac").value = encode(dac_layout(cfg), dac.tolist())
        await ReadOnly()
        want = int(np.dot(compare(cfg, old[last * lanes:(last + 1) * lanes], dac, old_verify),
                          1 << np.arange(lanes)))
        assert int(port(dut, "read__cmp").value) == want, "the sample overwrote the read held"
        await RisingEdge(dut.clk)
    port(dut, "read__bank").value = 1 - bank
    port(dut, "read__row_en").value = rng.getrandbits(cfg.rows)  # must not matter: held
    values = held_values(states, rows)
    _previous["read"] = (rows, verify)
    for group in range(cfg.column_groups):
        column = values[group * lanes:(group + 1) * lanes]
        code = convert(cfg, column, verify)
        probes = [np.maximum(code, 1), np.minimum(code + 1, top),
                  np.array([rng.randint(1, top) for _ in range(lanes)])]
        for dac in probes:
            port(dut, "read__col_sel").value = group
            port(dut, "read__dac").value = encode(dac_layout(cfg), dac.tolist())
            await ReadOnly()
            want = int(np.dot(compare(cfg, column, dac, verify), 1 << np.arange(lanes)))
            got = int(port(dut, "read__cmp").value)
            assert got == want, (f"group {group} rows {rows:#x} verify {verify} dac "
                                 f"{dac.tolist()} column {column.tolist()}: cmp {got:#x} != "
                                 f"{want:#x} (seed {seed_from_env()})")
            await RisingEdge(dut.clk)


async def start(dut):
    cfg, rng = config_from_env(), random.Random(seed_from_env())
    await start_clock(dut)
    names = ["cell__we", "read__sample", "read__bank", "read__row_en", "read__col_sel",
             "read__dac"]
    if cfg.programmable:
        names += ["read__verify", "prog__pulse"]
    for name in names:
        port(dut, name).value = 0
    port(dut, "read__col_sel").value = cfg.column_groups - 1  # where a SAR rests from reset
    await reset_dut(dut)
    _previous.clear()
    columns = cfg.adcs * cfg.column_groups
    # Golden states: the device's fresh array, padded lanes past the last column at 0.
    states = np.zeros((cfg.rows, columns), dtype=np.int64)
    states[:, :cfg.physical_columns] = device.initial_states(cfg)[tile_of()]
    return cfg, rng, states


@cocotb.test()
async def comparators_follow_held_rows_and_cells_survive_reset(dut):
    cfg, rng, states = await start(dut)
    columns = cfg.adcs * cfg.column_groups
    cells = np.array([[rng.randint(0, cfg.cell_max) for _ in range(columns)]
                      for _ in range(cfg.rows)], dtype=np.int64)
    await write_cells(dut, cfg, cells)
    pc = cfg.physical_columns
    loaded = cells << cfg.state_frac
    stuck = device.stuck_map(cfg)[0][tile_of()]
    loaded[:, :pc] = np.where(stuck, states[:, :pc], loaded[:, :pc])  # stuck cells keep theirs
    row_sets = [0, (1 << cfg.rows) - 1] + [rng.getrandbits(cfg.rows) for _ in range(6)]
    for rows in row_sets:
        await check_read(dut, cfg, loaded, rows, rng)
    await reset_dut(dut)  # cells are non-volatile; only the sample-and-hold is cleared
    _previous["read"] = (0, False)  # both buffers hold no row
    for rows in row_sets[:3]:
        await check_read(dut, cfg, loaded, rows, rng)


@cocotb.test()
async def pulses_move_cells_like_the_device_model(dut):
    # Random pulses to random cells; after each, a verify read of the cell's row and a compute
    # read of random rows probe the comparators around the golden states. Stuck cells (drawn
    # at elaboration from the device seed) must not move.
    cfg, rng, states = await start(dut)
    if not cfg.programmable:
        return
    # Cells are non-volatile across the tests of this run: start from level 0 everywhere
    # (stuck cells stay at their rail).
    await write_cells(dut, cfg, np.zeros_like(states))
    stuck = device.stuck_map(cfg)[0][tile_of()]
    states[:, :cfg.physical_columns] = np.where(stuck, states[:, :cfg.physical_columns], 0)
    assert stuck.any() and {(r, c) for r, c in zip(*np.nonzero(stuck), strict=True)} == \
        set(stuck_cells(cfg, tile_of()))
    wear = np.zeros((cfg.rows, cfg.physical_columns), dtype=np.int64)
    pulse_cycles = cfg.write_verify.pulse_cycles
    for _ in range(40):
        row, column = rng.randrange(cfg.rows), rng.randrange(cfg.physical_columns)
        up = rng.random() < 0.6
        amp = rng.randint(1, (1 << cfg.write_verify.amp_bits) - 1)
        port(dut, "prog__row").value = row
        port(dut, "prog__group").value = column // cfg.adcs
        port(dut, "prog__lane").value = column % cfg.adcs
        port(dut, "prog__direction").value = int(Direction.SET if up else Direction.RESET)
        port(dut, "prog__amp").value = amp
        port(dut, "prog__pulse").value = 1
        for _ in range(pulse_cycles):
            await RisingEdge(dut.clk)
        port(dut, "prog__pulse").value = 0
        port(dut, "prog__amp").value = rng.randint(0, 3)  # latched at the start: must not matter
        await RisingEdge(dut.clk)
        await RisingEdge(dut.clk)
        if not stuck[row, column]:
            where = cell_where(cfg, tile_of(), row, column)
            states[row, column] = device.apply_pulse(cfg, states[row, column], up, amp, where,
                                                     wear[row, column])
            wear[row, column] += 1
        await check_read(dut, cfg, states, 1 << row, rng, verify=True)
        await check_read(dut, cfg, states, rng.getrandbits(cfg.rows), rng)
    assert wear.sum() > 0
