"""Encodings shared by the hardware, the golden model and the host.

A value that crosses the boundary between them (a result status, a pulse direction) is
declared here once; ``imcgen.hdl`` uses these enums as Amaranth shapes, ``imcgen.golden`` and
the host compare with their integer values.
"""

from enum import IntEnum

__all__ = ["Status", "Direction"]


class Status(IntEnum):
    """Outcome of programming one cell (write-verify result)."""

    OK = 0        # the verify code is within tolerance of the target
    STUCK = 1     # pulses at full amplitude no longer move the cell
    GAVE_UP = 2   # max_pulses pulses without reaching the band


class Direction(IntEnum):
    """Polarity of a programming pulse."""

    RESET = 0  # towards the minimum state (lower conductance)
    SET = 1    # towards the maximum state
