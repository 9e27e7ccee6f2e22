"""What a run will cost before it starts: elaboration, Verilator build, simulation, memory.

The model is fitted to measurements on a 2-core machine (``scripts/bench``); it only has to tell
minutes from hours. A run estimated above :data:`MAX_SECONDS` or above the machine's memory is
refused with the estimate unless the user passes ``--allow-long``.
"""

import os
from dataclasses import dataclass

import numpy as np

from imcgen.core.errors import ImcError

__all__ = ["Estimate", "estimate", "check_affordable", "check_memory", "program_estimate",
           "check_programming", "MAX_SECONDS"]

MAX_SECONDS = 3600.0


@dataclass(frozen=True)
class Estimate:
    elaborate_s: float
    build_s: float
    simulate_s: float
    memory_bytes: int

    @property
    def seconds(self):
        return self.elaborate_s + self.build_s + self.simulate_s

    def describe(self):
        parts = [f"{name} {_duration(value)}" for name, value in (
            ("elaboration", self.elaborate_s), ("Verilator build", self.build_s),
            ("simulation", self.simulate_s)) if value]
        return (f"about {_duration(self.seconds)} ({', '.join(parts)}) and "
                f"{self.memory_bytes / 2**30:.1f} GiB")


def _duration(seconds):
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _machine_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def estimate(cfg, inputs=None, rtl=True, in_gaps=0.0, out_stalls=0.0, backward=False):
    """Cost of generating (``inputs=None``) or simulating ``inputs`` on ``cfg``, with idle
    gaps before vectors (1..6 cycles with probability ``in_gaps``) and the output not ready
    with probability ``out_stalls`` in a cycle (every cycle of a result's stall then repeats:
    ``1 / (1 - out_stalls)`` times as many). ``backward``: ``inputs`` are backward vectors
    (``transposed``).

    The comparator trees of the crossbar stub dominate elaboration and build: every tile sums
    ``rows`` cell values for each of its ``adcs`` lanes.
    """
    from imcgen.core import timing
    from imcgen.golden.row_scheduler import reads_per_tile

    lanes = cfg.tiles * cfg.rows * cfg.adcs
    if cfg.transposed:  # the row side's sums: an output tree per lane, muxed by row and part
        lanes += cfg.tiles * cfg.adcs * cfg.outputs
    growth = 1 + lanes / 8192  # superlinear: larger netlists slow Yosys and g++ per node
    elaborate_s = 2 + 5e-3 * lanes * growth
    build_s = (10 + 8e-3 * lanes * growth) if rtl else 0.0
    cells = cfg.tiles * cfg.rows * cfg.physical_columns
    memory = (0.3 + 2.5e-5 * lanes * growth) * 2**30 + 24 * cells
    simulate_s = 0.0
    if inputs is not None and rtl:
        X = np.asarray(inputs)
        cycles = 0
        for start in range(0, len(X), 4096):  # exact cycles from the schedule alone
            part = X[start:start + 4096]
            if backward:
                from imcgen.golden import transpose

                cycles += int(transpose.cycles(cfg, transpose.reads(cfg, part)).sum())
            else:
                cycles += int(timing.vector_cycles(cfg, reads_per_tile(cfg, part)).sum())
        cycles = cycles / max(1.0 - out_stalls, 1e-12) + 3.5 * in_gaps * len(X)
        rate = 1.5e5 / (1 + lanes / 4096)  # simulated cycles per second through cocotb
        simulate_s = 2 + cycles / rate
    return Estimate(elaborate_s, build_s, simulate_s, int(memory))


def check_affordable(cfg, inputs=None, rtl=True, allow_long=False, what="this run",
                     in_gaps=0.0, out_stalls=0.0, backward=False):
    """Raise :class:`ImcError` with the estimate if ``what`` would take hours or too much memory."""
    cost = estimate(cfg, inputs, rtl, in_gaps=in_gaps, out_stalls=out_stalls,
                    backward=backward)
    if allow_long:
        return cost
    limit = 0.75 * _machine_memory()
    if cost.seconds > MAX_SECONDS or cost.memory_bytes > limit:
        raise ImcError("estimate", f"{_duration(cost.seconds)}, "
                                   f"{cost.memory_bytes / 2**30:.1f} GiB",
                       f"{what} needs {cost.describe()}; allowed without --allow-long: "
                       f"{_duration(MAX_SECONDS)} and {limit / 2**30:.0f} GiB (shrink the "
                       f"configuration or the batch, or pass --allow-long)")
    return cost


def check_memory(field, value, need_bytes, what):
    """Refuse ``what`` (named by the option ``field`` = ``value``) when it needs more than
    three quarters of the machine's memory: no flag makes that run (it would end in a
    MemoryError after its work)."""
    limit = 0.75 * _machine_memory()
    if need_bytes > limit:
        raise ImcError(field, value, f"{what} needs about {need_bytes / 2**30:.1f} GiB, more "
                                     f"than the {limit / 2**30:.0f} GiB allowed here: ask for "
                                     f"less per run")


#: Golden write-verify (``golden.programming``): cells per second and peak bytes per cell,
#: measured on isaac with an RRAM device (0.8 M cells/s at 1 pass, 2.4 M/s at 4; 131 B/cell).
GOLDEN_PROGRAM_RATE = 4e5
GOLDEN_PROGRAM_BYTES = 160


def program_estimate(cfg, cells, rtl):
    """Cost of write-verifying ``cells`` cells: on the golden model alone, or (``rtl``) also
    on the RTL, whose run takes the timing model's cycles for a cell of eight pulses."""
    from imcgen.core import timing

    golden_s = cells / GOLDEN_PROGRAM_RATE
    memory = GOLDEN_PROGRAM_BYTES * cells
    if not rtl:
        return Estimate(0.0, 0.0, golden_s, int(memory))
    base = estimate(cfg, None, rtl=True)
    lanes = cfg.tiles * cfg.rows * cfg.adcs
    if cfg.transposed:  # the row side's sums: an output tree per lane, muxed by row and part
        lanes += cfg.tiles * cfg.adcs * cfg.outputs
    cycles = cells * int(timing.program_cycles(cfg, 8))
    simulate_s = 2 + golden_s + cycles / (1.5e5 / (1 + lanes / 4096))
    return Estimate(base.elaborate_s, base.build_s, simulate_s,
                    int(max(base.memory_bytes, memory)))


def check_programming(cfg, cells, rtl, allow_long=False, field="cells", value=None):
    """Refuse programming ``cells`` cells when it would take hours (unless ``allow_long``) or
    more memory than the machine has (always: it would fail after its work); the memory
    refusal names ``field`` = ``value`` (the option that asked for the cells)."""
    cost = program_estimate(cfg, cells, rtl)
    check_memory(field, cells if value is None else value, cost.memory_bytes,
                 f"programming {cells} cells")
    if cost.seconds > MAX_SECONDS and not allow_long:
        where = "the RTL and the golden model" if rtl else "the golden model"
        raise ImcError("estimate", _duration(cost.seconds),
                       f"programming {cells} cells on {where} needs {cost.describe()}; "
                       f"allowed without --allow-long: {_duration(MAX_SECONDS)} (program "
                       f"fewer cells or passes{', or drop --rtl' if rtl else ''}, or pass "
                       f"--allow-long)")
    return cost
