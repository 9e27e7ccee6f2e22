"""Shift-and-add: ADC codes in, one tile's partial sums out per vector.

Codes of a read arrive one column group at a time; groups before the last wait in a buffer, and
when the last group arrives a static tree forms each output's read value: slice k weighs
2^(k*cell_bits), G- is subtracted from G+ (differential), or 2^(weight_bits-1) times the read's
active-row count is subtracted (offset, ISAAC's correction: exact even when the read clipped).
The next stage scales that value by the plane's significance, the last adds it into the partial
sum (subtracts it, for the MSB plane of signed inputs); the vector's last read sends the sum
out.
"""

from amaranth import Module, Signal
from amaranth.hdl import Mux, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from imcgen.hdl.common import Block, Pipe, adder_tree, index_shape
from imcgen.hdl.sar_adc import code_layout

__all__ = ["ShiftAdd", "psum_layout"]


def psum_layout(config):
    return data.ArrayLayout(signed(config.psum_bits), config.outputs)


class ShiftAdd(Block):
    """One tile's shift-and-add unit.

    Parameters
    ----------
    config : MacroConfig
        Uses the column map, ``cell_bits``, ``weight_mapping``, ``weight_bits`` and the widths.

    Attributes
    ----------
    i : In(stream.Signature(code_layout))
        ADC codes from the SAR-ADC controller.
    o : Out(stream.Signature(psum_layout))
        The tile's partial sum of each output, once per vector.
    """

    def __init__(self, *, config):
        super().__init__(config, {
            "i": In(stream.Signature(code_layout(config))),
            "o": Out(stream.Signature(psum_layout(config))),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        lanes, groups, s = cfg.adcs, cfg.column_groups, cfg.cell_bits
        item = self.i.payload

        # Codes of groups 0..G-2 of the current read; the last group comes straight from the input.
        buffered = [Signal(data.ArrayLayout(unsigned(cfg.adc_bits), lanes), name=f"group{g}")
                    for g in range(groups - 1)]
        with m.If(self.i.valid & self.i.ready):
            with m.Switch(item.group):
                for g in range(groups - 1):
                    with m.Case(g):
                        m.d.sync += buffered[g].eq(item.codes)

        def code(column):
            g, a = divmod(column, lanes)
            return item.codes[a] if g == groups - 1 else buffered[g][a]

        read_value = [Signal(signed(cfg.read_bits), name=f"read{j}") for j in range(cfg.outputs)]
        for j in range(cfg.outputs):
            terms = []
            for k in range(cfg.slices):
                pos = code(cfg.column(j, k, 0))
                if cfg.polarities == 2:
                    terms.append((pos - code(cfg.column(j, k, 1))) << (k * s))
                else:
                    terms.append(pos << (k * s))
            value = adder_tree(terms)
            if cfg.weight_offset:
                value = value - (item.count * cfg.weight_offset)
            m.d.comb += read_value[j].eq(value)

        # Stage 1: the read's value per output, registered when its last group arrives. Stage
        # 2: scaled by its plane's significance. Stage 3: accumulated. Three stages, so no
        # stage holds an adder tree, a shifter and an adder in a row (gen/core/timing.py).
        value = Signal(data.ArrayLayout(signed(cfg.read_bits), cfg.outputs))
        value_valid = Signal()
        value_plane = Signal(index_shape(cfg.input_bits))
        value_neg = Signal()
        value_last = Signal()
        staged = Signal(data.ArrayLayout(signed(cfg.read_bits + cfg.input_bits - 1),
                                         cfg.outputs))
        staged_valid = Signal()
        staged_neg = Signal()
        staged_last = Signal()
        # The sums go out through a register slice (hdl/common.py Pipe), whose output register
        # is the stage 3 register of a vector's last read, at no extra latency. The last stage
        # holds a vector's last read only while the slice is full (another tile is not done
        # with two results): a register, so no ready path from behind `o` (the adder
        # network's join of the tiles, the output stage) reaches the stages' enables, and no
        # enable here decodes more than registers. Otherwise a code is taken every cycle, so a
        # vector may follow the last one's final read at once (ADC overlap).
        m.submodules.out = out = Pipe(psum_layout(cfg))
        m.d.comb += [self.o.valid.eq(out.o.valid), self.o.payload.eq(out.o.payload),
                     out.o.ready.eq(self.o.ready)]
        # `hold` is a register, formed from the next state of its three terms (the stages'
        # flags below, the slice's `full_next`), so the ready given to the SAR's slice is one.
        hold = Signal()
        next_valid = Mux(hold, staged_valid, value_valid)
        next_last = Mux(hold, staged_last, value_last)
        m.d.sync += hold.eq(next_valid & next_last & out.full_next)
        end_of_read = self.i.valid & self.i.ready & ((item.group == groups - 1) | item.skip)
        with m.If(~hold):
            m.d.sync += [value_valid.eq(end_of_read), staged_valid.eq(value_valid),
                         staged_neg.eq(value_neg), staged_last.eq(value_last)]
            for j in range(cfg.outputs):
                # Subtracting is adding the complement and a carry in (stage 3): the
                # complement here, beside the shift, leaves stage 3 one adder.
                m.d.sync += staged[j].eq((value[j] << value_plane) ^ -value_neg)
        with m.If(end_of_read):
            m.d.sync += [value_plane.eq(item.plane), value_neg.eq(item.neg),
                         value_last.eq(item.last)]
            for j in range(cfg.outputs):
                m.d.sync += value[j].eq(Mux(item.skip, 0, read_value[j]))

        # Stage 3: accumulate (subtract for the MSB plane of signed inputs: the stage before
        # complemented the value).
        acc = Signal(psum_layout(cfg))
        m.d.comb += out.i.valid.eq(staged_valid & staged_last)
        for j in range(cfg.outputs):
            total = acc[j] + staged[j] + staged_neg
            m.d.comb += out.i.payload[j].eq(total)
            with m.If(staged_valid & ~hold):
                m.d.sync += acc[j].eq(Mux(staged_last, 0, total))

        m.d.comb += self.i.ready.eq(~hold)
        return m
