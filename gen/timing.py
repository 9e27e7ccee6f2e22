"""The one timing model of the macro: each block's latency, summed into cycles per vector.

Every number here is a statement about the RTL in ``hdl/`` that the cocotb tests check cycle
for cycle (the block tests each block's own latency, the macro test the sum). The golden
model, the configuration (cycle counter width), the manifest, the cost estimate and the docs
read them from here; nothing else writes a cycle formula.

A vector's cycle count is the number of clock edges from the edge that accepts it on the input
stream to the edge that writes its result into the output FIFO (docs/architecture.md section
7). Its path: input driver -> row scheduler -> the reads of the busiest tile -> SAR code
register -> shift-and-add (read value, then accumulate) -> adder tree -> output stage.
"""

import math

import numpy as np

__all__ = ["LATENCY", "read_cycles", "verify_read_cycles", "adder_levels", "fixed_cycles",
           "vector_cycles", "max_vector_cycles"]

# Cycles each block adds to a vector, besides the reads (see the functions below for those
# that depend on the configuration).
LATENCY = {
    "input_driver": 1,    # vector accepted -> its first plane offered to the scheduler
    "row_scheduler": 1,   # plane taken -> its first read command offered to the SAR
    "sar_adc": 1,         # after the reads: the last group's codes registered on the output
    "shift_add": 2,       # read value registered, then accumulated into the partial sum
    "output_stage": 1,    # shift / ReLU / saturation registered, written into the FIFO
}


def read_cycles(cfg):
    """Cycles of one compute read: one sample cycle, then ``adc_bits`` compares per group.

    The SAR takes the next read command in the last compare cycle, so back-to-back reads cost
    exactly this many cycles each and the ADCs idle only in the sample cycles.
    """
    return 1 + cfg.column_groups * cfg.adc_bits


def verify_read_cycles(cfg):
    """Cycles of one single-cell verify read: sample, then ``adc_bits`` compares (one group)."""
    return 1 + cfg.adc_bits


def adder_levels(cfg):
    """Register levels of the adder network: a binary tree over the tiles, at least one."""
    return max(1, math.ceil(math.log2(cfg.tiles)))


def fixed_cycles(cfg):
    """Cycles of a vector besides its reads."""
    return sum(LATENCY.values()) + adder_levels(cfg)


def vector_cycles(cfg, reads):
    """Cycles per vector from the reads each tile issues.

    Tiles run in parallel, so the busiest one sets the pace; a tile with no read (zero_skip,
    all its inputs zero) passes one skip token, which costs one cycle.

    Parameters
    ----------
    cfg : MacroConfig
    reads : array_like of int, shape (V, tiles)

    Returns
    -------
    ndarray of int64, shape (V,)
    """
    reads = np.asarray(reads, dtype=np.int64).reshape(-1, cfg.tiles)
    busiest = np.maximum(reads * read_cycles(cfg), 1).max(axis=1) if reads.size else \
        np.zeros(len(reads), dtype=np.int64)
    return fixed_cycles(cfg) + busiest


def max_vector_cycles(cfg):
    """Cycles of the slowest possible vector: every read of the dense schedule."""
    return fixed_cycles(cfg) + cfg.input_bits * cfg.groups_per_plane * read_cycles(cfg)
