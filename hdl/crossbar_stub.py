"""Behavioural, synthesizable crossbar stub and the analog boundary it sits behind.

The boundary is what a real macro's digital periphery sees of its analog array: row enables, a
sample strobe, a column-group select, one DAC code per ADC, the comparator results, and a cell
write port. The stub answers exactly what ``docs/architecture.md`` section 8 specifies, so a
Python crossbar model on the same ports (``crossbar = "external"``) is a drop-in replacement.

Cells live in a memory addressed by column group: one word holds, for each ADC lane, the levels
of that lane's column in every row, so the comparator reads one word and sums the held rows.
The sample-and-hold keeps the active-row set: the same as holding the column values, because
levels cannot change during a conversion, and far smaller than one register per column.
"""

from amaranth import Module, Signal
from amaranth.hdl import Cat, Mux, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .common import Block, adder_tree, index_shape

__all__ = ["ReadPortSignature", "CellPortSignature", "AnalogSignature", "CrossbarStub"]


class ReadPortSignature(wiring.Signature):
    """Read side of the boundary, as driven by the SAR-ADC controller."""

    def __init__(self, config):
        super().__init__({
            "row_en": Out(config.rows),
            "sample": Out(1),
            "col_sel": Out(index_shape(config.column_groups)),
            "dac": Out(data.ArrayLayout(unsigned(config.adc_bits), config.adcs)),
            "cmp": In(config.adcs),
        })


class CellPortSignature(wiring.Signature):
    """Write side of the boundary: the levels of one row in one column group."""

    def __init__(self, config):
        super().__init__({
            "we": Out(1),
            "row": Out(index_shape(config.rows)),
            "group": Out(index_shape(config.column_groups)),
            "data": Out(data.ArrayLayout(unsigned(config.cell_bits), config.adcs)),
        })


class AnalogSignature(wiring.Signature):
    """The whole boundary of one tile, periphery side (use ``.flip()`` for the crossbar)."""

    def __init__(self, config):
        super().__init__({
            "read": Out(ReadPortSignature(config)),
            "cell": Out(CellPortSignature(config)),
        })


class CrossbarStub(Block):
    """One tile's crossbar: cell levels, column sums of the held rows, comparators.

    Parameters
    ----------
    config : MacroConfig
        Uses ``rows``, ``cell_bits``, ``adcs``, ``adc_bits`` and ``column_groups``.

    Attributes
    ----------
    xbar : In(AnalogSignature)
        The analog boundary, driven by the periphery.
    """

    def __init__(self, *, config):
        super().__init__(config, {"xbar": In(AnalogSignature(config))})

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        rows, lanes = cfg.rows, cfg.adcs
        read, cell = self.xbar.read, self.xbar.cell

        # Element a*rows + r is the level of row r in lane a's column of the addressed group.
        m.submodules.cells = cells = Memory(
            shape=data.ArrayLayout(unsigned(cfg.cell_bits), lanes * rows),
            depth=cfg.column_groups, init=[])
        write = cells.write_port(granularity=1)
        lookup = cells.read_port(domain="comb")
        m.d.comb += [
            write.addr.eq(cell.group),
            write.en.eq(Cat(cell.we & (cell.row == r) for _ in range(lanes) for r in range(rows))),
            lookup.addr.eq(read.col_sel),
        ]
        for a in range(lanes):
            for r in range(rows):
                m.d.comb += write.data[a * rows + r].eq(cell.data[a])

        held = Signal(rows)  # sample-and-hold: the rows of the last sample
        with m.If(read.sample):
            m.d.sync += held.eq(read.row_en)

        value_width = (rows * cfg.cell_max).bit_length()
        column = [Signal(value_width, name=f"column{a}") for a in range(lanes)]
        for a in range(lanes):
            levels = [lookup.data[a * rows + r] for r in range(rows)]
            m.d.comb += column[a].eq(adder_tree(Mux(held[r], levels[r], 0) for r in range(rows)))
        m.d.comb += read.cmp.eq(Cat(column[a] >= read.dac[a] for a in range(lanes)))
        return m
