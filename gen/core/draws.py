"""Which random quantity each counter-based draw names, and where a cell is.

Every stochastic draw is ``threefry2x32(key=(seed, what), counter=(where, when))``
(:mod:`imcgen.golden.rng`, :mod:`imcgen.hdl.rng`). This module is the one place that says what
``what``, ``where`` and ``when`` are for each kind of draw, so the hardware, the golden model
and the cocotb-side crossbar address the same numbers.
"""

from enum import IntEnum

__all__ = ["What", "cell_where", "cell_where_bits", "column_where", "compare_what",
           "line_where", "read_what"]


class What(IntEnum):
    """Key word 1 of a draw: the kind of quantity drawn."""

    STUCK = 1   # where = cell, when = 0: is the cell stuck, and on or off
    PULSE = 2   # where = cell, when = the cell's pulse count: programming noise of that pulse
    TRNG = 3    # where = a group of four entropy sources, when = the round's event: delays
    READ = 4    # where = (tile, column), when = the tile's compute-read index: read noise
    PROGRAM = 5     # where = cell, when = 0: programming error of the analog model
    DRIFT = 6       # where = cell, when = 0: the cell's drift exponent
    COMPARE = 7     # what = 7 + (bit under test << 8), where = (tile, column), when = read
    REFERENCE = 8   # where = 0, when = 0: noise of the drift-compensation reference read
    ROW_READ = 9    # where = (tile, row), when = the tile's transposed-read index: read noise
    ROW_COMPARE = 10  # what = 10 + (bit << 8), where = (tile, row), when = transposed read


def _bits(count):
    return max(1, (count - 1).bit_length())


def cell_where_bits(cfg):
    """``(tile_bits, row_bits, column_bits)`` of a cell address."""
    return _bits(cfg.tiles), _bits(cfg.rows), _bits(cfg.physical_columns)


def cell_where(cfg, tile, row, column):
    """The ``where`` of a cell: tile, row and physical column concatenated (column lowest).

    Concatenation, not a product, so hardware forms it by wiring alone. Works on ints and on
    NumPy integer arrays alike.
    """
    _, row_bits, column_bits = cell_where_bits(cfg)
    return (tile << (row_bits + column_bits)) | (row << column_bits) | column


def column_where(cfg, tile, column):
    """The ``where`` of a tile's physical column (read and comparator noise)."""
    _, _, column_bits = cell_where_bits(cfg)
    return (tile << column_bits) | column


def compare_what(bit, transposed=False):
    """The ``what`` of a comparator-noise draw: the SAR bit under test rides in the high bits
    (a row-side comparator's with ``transposed``)."""
    return int(What.ROW_COMPARE if transposed else What.COMPARE) + (bit << 8)


def read_what(transposed=False):
    """The ``what`` of a read-noise draw: a column's, or a row's (``transposed``)."""
    return int(What.ROW_READ if transposed else What.READ)


def line_where(cfg, tile, line, transposed=False):
    """The ``where`` of a sensed line: a tile's physical column, or its row (``transposed``:
    docs/architecture.md section 13)."""
    if not transposed:
        return column_where(cfg, tile, line)
    _, row_bits, _ = cell_where_bits(cfg)
    return (tile << row_bits) | line
