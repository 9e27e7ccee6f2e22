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
"""

from amaranth import Module, Signal
from amaranth.hdl import Mux, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from .common import Block, index_shape
from .crossbar_stub import ReadPortSignature
from .row_scheduler import read_layout

__all__ = ["SarAdcController", "code_layout"]


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
    """

    def __init__(self, *, config):
        super().__init__(config, {
            "i": In(stream.Signature(read_layout(config))),
            "o": Out(stream.Signature(code_layout(config))),
            "xbar": Out(ReadPortSignature(config)),
        })

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

        def take_command():
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid):
                m.d.sync += command.eq(self.i.payload)
                with m.If(self.i.payload.skip):
                    m.next = "SKIP"
                with m.Else():
                    m.d.sync += [xbar.row_en.eq(self.i.payload.rows), xbar.sample.eq(1)]
                    m.next = "SAMPLE"
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

        with m.FSM(init="IDLE", name="sar"):
            with m.State("IDLE"):
                take_command()
            with m.State("SKIP"):
                with m.If(out_free):
                    emit(0, groups - 1, command.last, 1)
                    m.next = "IDLE"
            with m.State("SAMPLE"):  # the crossbar samples at the end of this cycle
                m.d.sync += [
                    xbar.sample.eq(0), xbar.row_en.eq(0), xbar.col_sel.eq(0),
                    code.eq(0), trial.eq(msb),
                ]
                m.next = "CONVERT"
            with m.State("CONVERT"):
                with m.If(~trial[0]):
                    m.d.sync += [code.eq(result), trial.eq(trial >> 1)]
                with m.Elif(out_free):  # group converted; a full output register stalls here
                    last_group = xbar.col_sel == groups - 1
                    emit(result, xbar.col_sel, command.last & last_group, 0)
                    with m.If(~last_group):
                        m.d.sync += [xbar.col_sel.eq(xbar.col_sel + 1), code.eq(0), trial.eq(msb)]
                    with m.Else():
                        take_command()
        return m
