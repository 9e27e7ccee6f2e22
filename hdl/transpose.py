"""Transposed reads: the blocks of the backward path only (docs/architecture.md section 13).

A backward vector drives the columns: an input driver and a row scheduler over the outputs
(the forward blocks with ``lines = outputs``), then :class:`PartSequencer` reads each column
chunk once per part (slice, polarity), since a row's current mixes every driven column and
the parts differ in significance and sign. Each tile's row side has its own SAR-ADC controller
(:class:`imcgen.hdl.sar_adc.SarAdcController` with ``transposed``) converting the rows in
``row_groups``, and :class:`BackShiftAdd` weighs the codes by part and plane into one sum per
row. Every tile sees the same vector, so the tiles run in lockstep and their sums are
concatenated (the tiles hold different rows).
"""

from amaranth import Module, Signal
from amaranth.hdl import Mux, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from imcgen.hdl.common import Block, Pipe, index_shape
from imcgen.hdl.input_driver import InputDriver, vector_layout
from imcgen.hdl.row_scheduler import RowScheduler, back_read_layout, read_layout
from imcgen.hdl.sar_adc import code_layout

__all__ = ["ColumnPath", "PartSequencer", "BackShiftAdd", "back_sum_layout"]


def back_sum_layout(config):
    """One tile's backward sums: one full-precision element per row."""
    return data.ArrayLayout(signed(config.back_bits), config.rows)


class ColumnPath(Block):
    """Backward vectors in, transposed reads out: the input driver and the row scheduler over
    the columns (``lines = outputs``, with the plane register slice between them, as on the
    forward side), then the part sequencer. One serves every tile.

    Attributes
    ----------
    i : In(stream.Signature(vector_layout(config, outputs)))
    o : Out(stream.Signature(back_read_layout))
    """

    def __init__(self, *, config):
        super().__init__(config, {
            "i": In(stream.Signature(vector_layout(config, config.outputs))),
            "o": Out(stream.Signature(back_read_layout(config))),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        m.submodules.driver = driver = InputDriver(config=cfg, lines=cfg.outputs)
        m.submodules.plane_pipe = pipe = Pipe(driver.o.payload.shape())
        m.submodules.scheduler = scheduler = RowScheduler(config=cfg, lines=cfg.outputs)
        m.submodules.parts = parts = PartSequencer(config=cfg)
        wiring.connect(m, wiring.flipped(self.i), driver.i)
        wiring.connect(m, driver.o, pipe.i)
        wiring.connect(m, pipe.o, scheduler.i)
        wiring.connect(m, scheduler.o, parts.i)
        wiring.connect(m, parts.o, wiring.flipped(self.o))
        return m


class PartSequencer(Block):
    """Each column read command, once per part (slice ``part // polarities``, polarity
    ``part % polarities``), from a register; ``last`` on the last part only, a skip token once.

    Attributes
    ----------
    i : In(stream.Signature(read_layout(config, outputs)))
        Column reads from the column scheduler.
    o : Out(stream.Signature(back_read_layout))
        Transposed reads for the row side's SAR-ADC controllers.
    """

    def __init__(self, *, config):
        super().__init__(config, {
            "i": In(stream.Signature(read_layout(config, config.outputs))),
            "o": Out(stream.Signature(back_read_layout(config))),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        command = Signal(read_layout(cfg, cfg.outputs))
        part = Signal(index_shape(cfg.parts))
        have = Signal()
        final = (part == cfg.parts - 1) | command.skip  # the command's last read goes out
        m.d.comb += [
            self.o.valid.eq(have),
            self.o.payload.rows.eq(command.rows),
            self.o.payload.count.eq(command.count),
            self.o.payload.plane.eq(command.plane),
            self.o.payload.neg.eq(command.neg),
            self.o.payload.skip.eq(command.skip),
            self.o.payload.part.eq(part),
            self.o.payload.last.eq(command.last & final),
            self.i.ready.eq(~have | (self.o.ready & final)),
        ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [command.eq(self.i.payload), part.eq(0), have.eq(1)]
        with m.Elif(self.o.ready & have):
            with m.If(final):
                m.d.sync += have.eq(0)
            with m.Else():
                m.d.sync += part.eq(part + 1)
        return m


class BackShiftAdd(Block):
    """One tile's backward sums: each row group's codes weighed by their part (``2^(k *
    cell_bits)``, negative for G-; the offset mapping's correction, ``2^(Bw-1)`` per driven
    column, once per chunk with part 0) and their plane, accumulated per row; the vector's last
    code sends every row's sum out.

    Three stages, as the forward shift-and-add: the term, the term scaled by its plane (and
    complemented for the MSB plane of signed inputs), the accumulation. Arithmetic is modulo
    ``2^back_bits``: the final sums fit (``back_range``), so no intermediate width matters.

    Attributes
    ----------
    i : In(stream.Signature(code_layout(config, transposed=True)))
    o : Out(stream.Signature(back_sum_layout))
    """

    def __init__(self, *, config):
        super().__init__(config, {
            "i": In(stream.Signature(code_layout(config, transposed=True))),
            "o": Out(stream.Signature(back_sum_layout(config))),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        lanes, width = cfg.adcs, cfg.back_bits
        item = self.i.payload

        def stage(name):
            return dict(valid=Signal(name=f"{name}_valid"),
                        group=Signal(index_shape(cfg.row_groups), name=f"{name}_group"),
                        neg=Signal(name=f"{name}_neg"), last=Signal(name=f"{name}_last"),
                        values=[Signal(signed(width), name=f"{name}{a}") for a in range(lanes)])

        term, scaled = stage("term"), stage("scaled")
        plane = Signal(index_shape(cfg.input_bits))
        hold = scaled["valid"] & scaled["last"] & self.o.valid & ~self.o.ready
        m.d.comb += self.i.ready.eq(~hold)

        # Stage 1: the term of each lane.
        correction = item.count * cfg.weight_offset if cfg.weight_offset else 0
        with m.If(~hold):
            m.d.sync += term["valid"].eq(self.i.valid)
            with m.If(self.i.valid):
                m.d.sync += [term["group"].eq(item.group), term["neg"].eq(item.neg),
                             term["last"].eq(item.last), plane.eq(item.plane)]
                with m.Switch(item.part):
                    for part in range(cfg.parts):
                        k, p = divmod(part, cfg.polarities)
                        with m.Case(part):
                            for a in range(lanes):
                                value = item.codes[a] << (k * cfg.cell_bits)
                                value = -value if p == 1 else value
                                if part == 0:
                                    value = value - correction
                                m.d.sync += term["values"][a].eq(Mux(item.skip, 0, value))
            # Stage 2: scaled by the plane; complemented for the MSB plane of signed inputs
            # (the carry-in of stage 3 completes the negation).
            m.d.sync += [scaled["valid"].eq(term["valid"]), scaled["group"].eq(term["group"]),
                         scaled["neg"].eq(term["neg"]), scaled["last"].eq(term["last"])]
            for a in range(lanes):
                m.d.sync += scaled["values"][a].eq((term["values"][a] << plane) ^
                                                   -term["neg"])

        # Stage 3: accumulate into the rows of the group.
        acc = [Signal(signed(width), name=f"acc{r}") for r in range(cfg.rows)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(scaled["valid"] & ~hold):
            for r in range(cfg.rows):
                g, a = divmod(r, lanes)
                here = scaled["group"] == g
                total = Signal(signed(width), name=f"total{r}")
                m.d.comb += total.eq(Mux(here, acc[r] + scaled["values"][a] + scaled["neg"],
                                         acc[r]))
                with m.If(scaled["last"]):
                    m.d.sync += [self.o.payload[r].eq(total), acc[r].eq(0)]
                with m.Else():
                    m.d.sync += acc[r].eq(total)
            with m.If(scaled["last"]):
                m.d.sync += self.o.valid.eq(1)
        return m
