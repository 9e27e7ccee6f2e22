"""Shift-and-add: ADC codes in, a tile's partial sums out, against ``golden.shift_add``."""


import cocotb
import numpy as np
import pytest
from cocotb.triggers import with_timeout

from imcgen.core.config import MacroConfig
from imcgen.golden.shift_add import read_values
from imcgen.hdl.sar_adc import code_layout
from imcgen.hdl.shift_add import ShiftAdd, psum_layout
from imcgen.sim.runner import run_block
from imcgen.sim.tb.streams import decode, encode, seed_from_env, stream_test

CONFIGS = {
    "differential-s2-a8": MacroConfig(rows=16, tiles=1, outputs=4, weight_bits=5, cell_bits=2,
                                      adcs=8, input_bits=4, input_signed=True),
    "differential-s1-a3-partial-group": MacroConfig(rows=8, tiles=1, outputs=3, weight_bits=4,
                                                    cell_bits=1, adcs=4, adc_bits=3),
    "offset-s2-a1": MacroConfig(rows=12, tiles=1, outputs=2, weight_bits=6, cell_bits=2,
                                weight_mapping="offset", adcs=1, adc_bits=6, input_bits=6,
                                input_signed=True),
    "offset-s3-a6-single-group": MacroConfig(rows=10, tiles=1, outputs=3, weight_bits=6,
                                             cell_bits=3, weight_mapping="offset", adcs=6,
                                             adc_bits=5),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_shift_add(name, tmp_path, seed):
    cfg = CONFIGS[name]
    run_block(ShiftAdd(config=cfg), "shift_add", "test_shift_add", tmp_path,
              config=cfg, seed=seed)


def vectors(cfg, rng, count):
    """Per vector: reads a real tile could produce (codes, plane, neg, active-row count).

    Each plane has at most ``groups_per_plane`` reads sharing at most ``rows`` active rows, and
    a code is at most its read's active rows times its slice's top level (or full scale): the
    ranges the accumulator widths are derived from.
    """
    lanes = cfg.adcs * cfg.column_groups
    top = [(1 << cfg.slice_bits[k]) - 1 for j, k, p in cfg.column_map]
    out = []
    for n in range(count):
        reads = []
        planes = [] if n % 5 == 0 else rng.sample(range(cfg.input_bits),
                                                  rng.randint(1, cfg.input_bits))
        for plane in planes:
            free = cfg.rows
            for _ in range(rng.randint(1, cfg.groups_per_plane)):
                active = rng.randint(0, min(free, cfg.rows_per_read))
                free -= active
                codes = [rng.randint(0, min(cfg.adc_max, active * top[c]))
                         if c < cfg.physical_columns else rng.randint(0, cfg.adc_max)
                         for c in range(lanes)]
                reads.append(dict(codes=codes, plane=plane, count=active,
                                  neg=int(cfg.input_signed and plane == cfg.input_bits - 1)))
        rng.shuffle(reads)
        out.append(reads)
    return out


def items(cfg, reads):
    """The code stream of one vector: one item per group and read, or one skip item."""
    layout, lanes, groups = code_layout(cfg), cfg.adcs, cfg.column_groups
    if not reads:
        return [encode(layout, {"group": groups - 1, "last": 1, "skip": 1})]
    words = []
    for n, read in enumerate(reads):
        for g in range(groups):
            last = int(n == len(reads) - 1 and g == groups - 1)
            words.append(encode(layout, {
                "codes": read["codes"][g * lanes:(g + 1) * lanes], "group": g,
                "count": read["count"], "plane": read["plane"], "neg": read["neg"],
                "last": last}))
    return words


def expected_psum(cfg, reads):
    total = np.zeros(cfg.outputs, dtype=np.int64)
    for read in reads:
        codes = np.array(read["codes"][:cfg.physical_columns])  # padded lanes are ignored
        weight = -(1 << read["plane"]) if read["neg"] else 1 << read["plane"]
        total += weight * read_values(cfg, codes, np.int64(read["count"]))
    return total.tolist()


@cocotb.test()
async def partial_sums_match_golden_under_stalls(dut):
    cfg, rng, source, sink = await stream_test(dut, 0.3, 0.5)
    stimulus = vectors(cfg, rng, 30)
    words = [w for reads in stimulus for w in items(cfg, reads)]
    cocotb.start_soon(source.send_all(words))
    await with_timeout(sink.wait(len(stimulus)), 200 * len(words) + 2000, "ns")
    for n, ((_, word), reads) in enumerate(zip(sink.items, stimulus, strict=True)):
        got = decode(psum_layout(cfg), word)
        assert got == expected_psum(cfg, reads), f"vector {n} (seed {seed_from_env()})"
