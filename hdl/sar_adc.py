"""SAR-ADC controller: read commands in, ADC codes out, one column group at a time.

Per read: one SAMPLE cycle (row enables applied, the crossbar samples every column), then for
each column group the ``adcs`` ADCs run a binary search in parallel, MSB first, one compare per
bit (trial = code | bit; keep the bit when the comparator says column >= trial). The seeds give
no SAR algorithm; this is the textbook one. The next command is taken in the last compare cycle,
so consecutive reads leave the ADCs idle only for their sample cycle:
``1 + column_groups * adc_bits`` cycles per read.

Everything this block drives across the analog boundary comes from registers, never from
``cmp`` combinationally, so a crossbar model may read the boundary after a clock edge and answer
before the next one.

Programmable devices add a verify command port (``vi``: one cell, tile-local row, column group
and lane) arbitrated with the compute commands (compute first; a command is only ever taken
between conversions) and a tagged verify result (``vo``): the same ADCs convert the verify
reads, one column group with the verify reference, ``1 + adc_bits`` cycles each.
"""

from amaranth import Module, Signal
from amaranth.hdl import Mux, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from .analog import ReadPortSignature
from .common import Block, index_shape, record_fsm
from .row_scheduler import read_layout

__all__ = ["SarAdcController", "code_layout", "verify_layout"]


def verify_layout(config):
    """A verify read: one cell of the tile."""
    return data.StructLayout({
        "row": index_shape(config.rows),
        "group": index_shape(config.column_groups),
        "lane": index_shape(config.adcs),
    })


def code_layout(config):
    return data.StructLayout({
        "codes": data.ArrayLayout(unsigned(config.adc_bits), config.adcs),
        "group": index_shape(config.column_groups),  # columns group*adcs + lane
        "count": unsigned(config.rows_per_read.bit_length()),
        "plane": index_shape(config.input_bits),
        "neg": unsigned(1),
        "last": unsigned(1),  # last group of the vector's last read
        "skip": unsigned(1),  # no codes: closes a vector that needed no read
    })


class SarAdcController(Block):
    """One tile's SAR-ADC controller driving ``adcs`` shared ADCs.

    Parameters
    ----------
    config : MacroConfig
        Uses ``rows``, ``adcs``, ``adc_bits``, ``column_groups``, ``rows_per_read``, ``input_bits``.

    Attributes
    ----------
    i : In(stream.Signature(read_layout))
        Read commands from the row scheduler.
    o : Out(stream.Signature(code_layout))
        Codes of one column group per transfer, with the read's tags.
    xbar : Out(ReadPortSignature)
        Read side of the analog boundary.
    vi : In(stream.Signature(verify_layout))
        Verify reads (programmable devices only).
    vo : Out(stream.Signature(unsigned(adc_bits)))
        The verify code of each verify read.
    """

    def __init__(self, *, config):
        members = {
            "i": In(stream.Signature(read_layout(config))),
            "o": Out(stream.Signature(code_layout(config))),
            "xbar": Out(ReadPortSignature(config)),
        }
        if config.programmable:
            members["vi"] = In(stream.Signature(verify_layout(config)))
            members["vo"] = Out(stream.Signature(unsigned(config.adc_bits)))
        super().__init__(config, members)

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        lanes, groups, msb = cfg.adcs, cfg.column_groups, 1 << (cfg.adc_bits - 1)

        command = Signal(read_layout(cfg))
        code = Signal(data.ArrayLayout(unsigned(cfg.adc_bits), lanes))  # bits decided so far
        trial = Signal(cfg.adc_bits)  # one-hot: the bit under test
        result = Signal(data.ArrayLayout(unsigned(cfg.adc_bits), lanes))

        xbar = self.xbar
        for a in range(lanes):
            m.d.comb += [
                xbar.dac[a].eq(code[a] | trial),
                # Keep the bit under test when the column is at least the trial code.
                result[a].eq(code[a] | Mux(xbar.cmp[a], trial, 0)),
            ]

        out_free = ~self.o.valid | self.o.ready
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        verifying = Signal()  # the conversion under way is a verify read
        cell = Signal(verify_layout(cfg)) if cfg.programmable else None
        if cfg.programmable:
            with m.If(self.vo.valid & self.vo.ready):
                m.d.sync += self.vo.valid.eq(0)

        def take_command():
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid):
                m.d.sync += [command.eq(self.i.payload), verifying.eq(0)]
                with m.If(self.i.payload.skip):
                    m.next = "SKIP"
                with m.Else():
                    m.d.sync += [xbar.row_en.eq(self.i.payload.rows), xbar.sample.eq(1)]
                    if cfg.programmable:
                        m.d.sync += xbar.verify.eq(0)
                    m.next = "SAMPLE"
            if cfg.programmable:  # a verify read only when no compute read waits
                with m.Elif(self.vi.valid & ~self.vo.valid):
                    m.d.comb += self.vi.ready.eq(1)
                    m.d.sync += [
                        cell.eq(self.vi.payload), verifying.eq(1), xbar.verify.eq(1),
                        xbar.row_en.eq(1 << self.vi.payload.row), xbar.sample.eq(1),
                    ]
                    m.next = "SAMPLE"
                with m.Else():
                    m.next = "IDLE"
            else:
                with m.Else():
                    m.next = "IDLE"

        def emit(codes, group, last, skip):
            m.d.sync += [
                self.o.valid.eq(1),
                self.o.payload.codes.eq(codes),
                self.o.payload.group.eq(group),
                self.o.payload.count.eq(command.count),
                self.o.payload.plane.eq(command.plane),
                self.o.payload.neg.eq(command.neg),
                self.o.payload.last.eq(last),
                self.o.payload.skip.eq(skip),
            ]

        with m.FSM(init="IDLE", name="sar") as fsm:
            with m.State("IDLE"):
                take_command()
            with m.State("SKIP"):
                with m.If(out_free):
                    emit(0, groups - 1, command.last, 1)
                    m.next = "IDLE"
            with m.State("SAMPLE"):  # the crossbar samples at the end of this cycle
                m.d.sync += [
                    xbar.sample.eq(0), xbar.row_en.eq(0), code.eq(0), trial.eq(msb),
                    xbar.col_sel.eq(Mux(verifying, cell.group, 0) if cfg.programmable else 0),
                ]
                m.next = "CONVERT"
            with m.State("CONVERT"):
                with m.If(~trial[0]):
                    m.d.sync += [code.eq(result), trial.eq(trial >> 1)]
                if cfg.programmable:
                    with m.Elif(verifying):  # one group; the addressed lane's code goes out
                        m.d.sync += [self.vo.valid.eq(1), self.vo.payload.eq(result[cell.lane])]
                        m.next = "IDLE"
                with m.Elif(out_free):  # group converted; a full output register stalls here
                    last_group = xbar.col_sel == groups - 1
                    emit(result, xbar.col_sel, command.last & last_group, 0)
                    with m.If(~last_group):
                        m.d.sync += [xbar.col_sel.eq(xbar.col_sel + 1), code.eq(0), trial.eq(msb)]
                    with m.Else():
                        take_command()
        record_fsm("sar", fsm)
        return m
