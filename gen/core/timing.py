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

__all__ = ["LATENCY", "compare_cycles", "read_cycles", "presample_cycles", "verify_read_cycles",
           "adder_levels",
           "fixed_cycles", "vector_cycles", "stream_cycles", "adc_bound", "max_vector_cycles",
           "ACCEPT_TO_LAUNCH", "BATCH_START", "BATCH_END", "batch_cycles", "BACK_LATENCY",
           "BACK_ACCEPT_TO_LAUNCH", "back_read_cycles", "back_fixed_cycles",
           "back_vector_cycles"]

# Cycles each block adds to a vector, besides the reads (see the functions below for those
# that depend on the configuration).
LATENCY = {
    "input_driver": 2,    # vector accepted -> its first plane offered, registered (plane pipe)
    "row_scheduler": 3,   # plane taken -> moved on (per-plane sums) -> its first read registered
    "sar_adc": 1,         # after the reads: the last group's codes registered on the output
    "shift_add": 3,       # read value registered, scaled by its plane, accumulated
    "output_stage": 1,    # shift / ReLU / saturation registered, written into the FIFO
}


def compare_cycles(cfg):
    """Compare cycles of one compute read: ``adc_bits`` per column group."""
    return cfg.column_groups * cfg.adc_bits


def read_cycles(cfg):
    """Cycles one compute read adds to its vector.

    Without overlap: one sample cycle, then the compares; the SAR takes the next command in
    the last compare cycle. With overlap (``cfg.overlap``) the next read is sampled into the
    second sample-and-hold buffer during the current read's last compare cycle, so reads cost
    their compares alone and only a vector's first read has a sample cycle of its own (counted
    in :func:`fixed_cycles`).
    """
    return compare_cycles(cfg) + (0 if cfg.overlap else 1)


def presample_cycles(cfg):
    """Cycles a read taken by an idle SAR waits before its sample: with two-stage column sums
    (``cfg.sum_stages``) the stub sums the first group over two cycles, so a read taken between
    conversions spends one cycle with its rows applied before the sample. A read that follows
    another is taken one cycle before that read's last compare and costs nothing extra."""
    return 1 if cfg.sum_stages == 2 else 0


def verify_read_cycles(cfg):
    """Cycles of one single-cell verify read: (presample,) sample, then ``adc_bits`` compares
    (one group)."""
    return presample_cycles(cfg) + 1 + cfg.adc_bits


def adder_levels(cfg):
    """Register levels of the adder network: a binary tree over the tiles, at least one."""
    return max(1, math.ceil(math.log2(cfg.tiles)))


def fixed_cycles(cfg):
    """Cycles of a vector besides its reads: with overlap, its first sample cycle too; with
    two-stage column sums, its first read's presample cycle (a skip token, too, waits a cycle
    in either case, so a vector without reads costs the same fixed part)."""
    return sum(LATENCY.values()) + adder_levels(cfg) + (1 if cfg.overlap else 0) + \
        presample_cycles(cfg)


def _busiest(cfg, reads):
    reads = np.asarray(reads, dtype=np.int64).reshape(-1, cfg.tiles)
    if not reads.size:
        return np.zeros(len(reads), dtype=np.int64)
    # A tile with no read passes a skip token: one cycle (with overlap, besides the cycle
    # every vector has for its first sample). Column by column: a reduction over the short
    # tile axis is several times slower than elementwise maxima.
    busiest = reads[:, 0].copy()
    for t in range(1, reads.shape[1]):
        np.maximum(busiest, reads[:, t], out=busiest)
    return np.maximum(busiest * read_cycles(cfg), 1)


def vector_cycles(cfg, reads):
    """Cycles per vector from the reads each tile issues: the ``cycles`` the macro reports.

    Tiles run in parallel, so the busiest one sets the pace. Without overlap, a vector's
    cycles run from the edge that accepts it to the edge that writes its result into the
    output FIFO, and a tile with no read (zero_skip, all its inputs zero) passes a skip token
    in one cycle. With overlap they run from the vector's launch (every tile takes its first
    read command on the same edge, ``ACCEPT_TO_LAUNCH`` edges after the accept when the macro
    is idle) plus ``ACCEPT_TO_LAUNCH``: the latency of a vector offered to an idle macro, a
    function of the vector alone whatever the traffic around it.

    Parameters
    ----------
    cfg : MacroConfig
    reads : array_like of int, shape (V, tiles)

    Returns
    -------
    ndarray of int64, shape (V,)
    """
    return fixed_cycles(cfg) + _busiest(cfg, reads)


def stream_cycles(cfg, reads):
    """Cycles between a result and the one before in a stream offered back to back (no input
    gaps, no output stalls): with overlap, the busiest tile's compares; without, the whole
    :func:`vector_cycles` (one vector at a time).

    Exact when neither vector has a tile without reads (zero_skip): the command after a skip
    token is never taken early, so a skip token can add a cycle to the gap.
    """
    if not cfg.overlap:
        return vector_cycles(cfg, reads)
    return _busiest(cfg, reads)


def adc_bound(cfg, reads):
    """The ADCs' compare cycles of the busiest tile per vector: a lower bound on the cycles
    per vector of any schedule of these reads."""
    reads = np.asarray(reads, dtype=np.int64).reshape(-1, cfg.tiles)
    return reads.max(axis=1, initial=0) * compare_cycles(cfg) if reads.size else \
        np.zeros(len(reads), dtype=np.int64)


def max_vector_cycles(cfg):
    """Cycles of the slowest possible vector (forward, or backward with ``transposed``):
    every read of the dense schedule."""
    slowest = fixed_cycles(cfg) + cfg.input_bits * cfg.groups_per_plane * read_cycles(cfg)
    if cfg.transposed:
        dense = cfg.input_bits * cfg.back_groups_per_plane * cfg.parts
        slowest = max(slowest, back_fixed_cycles(cfg) + dense * back_read_cycles(cfg))
    return slowest


# -- transposed reads (docs/architecture.md section 13) ----------------------------------------
# A backward vector: input driver and row scheduler over the columns (as forward), the part
# sequencer (one read per slice and polarity of each column chunk, from a register), the row
# side's SAR (no overlap, one sum stage: the stub sums a row group a cycle ahead), the
# backward shift-and-add (term, scaled, accumulated) and the result straight into the FIFO.
BACK_LATENCY = {
    "input_driver": 2,
    "row_scheduler": 3,
    "part_sequencer": 1,  # command registered with its part counter
    "sar_adc": 1,
    "shift_add": 3,       # term registered, scaled by its plane, accumulated
}

BACK_ACCEPT_TO_LAUNCH = BACK_LATENCY["input_driver"] + BACK_LATENCY["row_scheduler"] + \
    BACK_LATENCY["part_sequencer"]


def back_read_cycles(cfg):
    """Cycles of one backward read: its sample, then ``adc_bits`` compares per row group (the
    next command is taken in the last compare)."""
    return 1 + cfg.row_groups * cfg.adc_bits


def back_fixed_cycles(cfg):
    """Cycles of a backward vector besides its reads."""
    return sum(BACK_LATENCY.values())


def back_vector_cycles(cfg, reads):
    """Cycles of each backward vector from its reads (every tile issues the same ones: the
    same vector drives them all); a vector without reads passes a skip token in one cycle.

    Parameters
    ----------
    cfg : MacroConfig
    reads : array_like of int, shape (V,)
        Backward reads per vector, parts counted.
    """
    reads = np.asarray(reads, dtype=np.int64)
    return back_fixed_cycles(cfg) + np.maximum(reads * back_read_cycles(cfg), 1)


ACCEPT_TO_LAUNCH = LATENCY["input_driver"] + LATENCY["row_scheduler"]


# -- batch runs on a board (hdl/executor.py, BATCH_RUN) -----------------------------------------
# The executor enters RUN on edge E0; its read-ahead reads the first vector (edge E0+1), loads
# it into the offer buffer (E0+2), and the idle macro accepts it on E0+3. Every later vector
# waits in the buffer before the macro can take it, so the macro sets the pace. A result
# written into the output FIFO on edge W is taken on W+2 (the FIFO's output register, then the
# handshake), and the run's answer counts the edges from E0 to the last result's take.
BATCH_START = 3  # edges from a run's start to its first vector's accept
BATCH_END = 2    # edges from a result's FIFO write to its take by the run


def batch_cycles(cfg, reads):
    """Macro clock cycles a board's batch run of these vectors takes (its ``BATCH_RUN``
    answer): the first vector's latency, then each result's interval after the one before
    (:func:`stream_cycles`: exact, except that with overlap a tile without reads may add a
    cycle), between the run's fixed start and end.

    Parameters
    ----------
    cfg : MacroConfig
    reads : array_like of int, shape (V, tiles), V >= 1
    """
    reads = np.asarray(reads, dtype=np.int64).reshape(-1, cfg.tiles)
    first = int(vector_cycles(cfg, reads[:1])[0])
    return BATCH_START + first + int(stream_cycles(cfg, reads[1:]).sum()) + BATCH_END


# -- write-verify (docs/write_verify.md section 4) ---------------------------------------------
# Counted from T0, the edge at which the FSM enters READ for a cell's first verify read: the
# SAR takes the verify command at T0+1, (with two-stage column sums waits a presample cycle,)
# samples, compares adc_bits times and registers the code at T0+1+verify_read_cycles; the FSM
# takes it one edge later and decides (CHECK) by T0+3+verify_read_cycles.
# A pulse then lasts pulse_cycles cycles; the crossbar updates the cell on the edge after it
# ends, one cycle into the next READ. A single request's T0 is its accept edge; in array mode
# the first cell of a row starts 2 edges after the row is taken (the mapper hands the levels
# over, the FSM picks the column's target), the next cell 1 edge after the previous result
# was taken.

def verify_loop_cycles(cfg):
    """Cycles of one program-and-verify iteration: decide, pulse, read."""
    return 3 + verify_read_cycles(cfg) + cfg.write_verify.pulse_cycles


def program_cycles(cfg, pulses):
    """Cycles from a cell's T0 to the edge after which its result is offered."""
    return 3 + verify_read_cycles(cfg) + \
        np.asarray(pulses, dtype=np.int64) * verify_loop_cycles(cfg)


def pulses_applied(cfg, start, edge):
    """Pulses a cell started at edge ``start`` (its T0) has taken by edge ``edge`` included:
    pulse j (1, 2, ...) updates the cell at ``start + j * verify_loop_cycles + 1``."""
    return max(0, (int(edge) - 1 - int(start)) // verify_loop_cycles(cfg))


ARRAY_ROW_START = 2     # edges from taking a weight row (array mode) to its first cell's T0
ARRAY_NEXT_START = 1    # edges from taking a cell's result to the next cell's T0


# -- TRNG (docs/trng.md section 4) -----------------------------------------------------------

def trng_draw_cycles(cfg):
    """Cycles the crossbar stub takes to draw a round's delays: one to start the generator,
    its latency, one to take the draws, one table lookup per source, one to finish."""
    return 3 + cfg.device.rng_latency + cfg.trng.sources


def trng_warmup(cfg):
    """Cycles the TRNG waits after reset before its first pulse (the stub's first draw)."""
    return trng_draw_cycles(cfg) + 1


def trng_round_cycles(trng):
    """Cycles of one unstalled TRNG round: one to start, the write pulse, the reset pulse, one
    to evaluate the counts (health tests, debiasing, packing)."""
    return 2 + trng.pulse_cycles + trng.reset_cycles
