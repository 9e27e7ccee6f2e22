"""Row scheduler: bit planes in, reads (sets of at most ``rows_per_read`` active rows) out.

``dense`` is the baseline of the IEEE Design & Test tutorial on in-memory computing for machine
learning (2021): consecutive groups of ``rows_per_read`` rows, every group read whatever its
bits. ``zero_skip`` (the same tutorial, Fig. 11) forms each read from the next
``rows_per_read`` rows whose bit is 1, so sparse planes take fewer reads. Commands leave from an
output register, so the prefix counts end there instead of running on into the SAR (gen/timing.py
counts the cycle): the next command is formed while the current one waits, one per cycle, and
the next plane is taken as the current plane's last command is registered, so the scheduler
never leaves the ADCs waiting.
"""

from amaranth import Module, Signal
from amaranth.hdl import Cat, Const, Mux, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from .common import Block, index_shape, popcount, saturating_prefix_counts
from .input_driver import plane_layout

__all__ = ["RowScheduler", "read_layout"]


def read_layout(config):
    return data.StructLayout({
        "rows": unsigned(config.rows),                         # word lines to enable
        "count": unsigned(config.rows_per_read.bit_length()),  # active rows (offset correction)
        "plane": index_shape(config.input_bits),
        "neg": unsigned(1),
        "last": unsigned(1),  # last read of the vector
        "skip": unsigned(1),  # no read: only closes a vector that needed none (zero_skip)
    })


class RowScheduler(Block):
    """One tile's row scheduler.

    Parameters
    ----------
    config : MacroConfig
        Uses ``rows``, ``rows_per_read``, ``input_bits`` and ``schedule``.

    Attributes
    ----------
    i : In(stream.Signature(plane_layout))
        Bit planes from the input driver.
    o : Out(stream.Signature(read_layout))
        Read commands for the SAR-ADC controller.
    """

    def __init__(self, *, config):
        super().__init__(config, {
            "i": In(stream.Signature(plane_layout(config))),
            "o": Out(stream.Signature(read_layout(config))),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        rows, per_read = cfg.rows, cfg.rows_per_read

        plane = Signal(plane_layout(cfg))
        active = Signal()  # a plane is held
        take = Signal(rows)  # rows of the read on offer
        final = Signal()  # the read on offer is the plane's last
        emit = Signal()  # there is a command on offer (a zero plane mid-vector has none)
        empty = Signal()  # zero_skip: no row of the plane is left
        count = Signal(range(per_read + 1))  # rows in `take`
        # The output register: `load` is the edge a formed command goes in (as the previous
        # one leaves, or into an empty register).
        load = Signal()
        m.d.comb += load.eq(~self.o.valid | self.o.ready)

        if cfg.schedule == "dense":
            groups = cfg.groups_per_plane
            group = Signal(index_shape(groups))
            with m.Switch(group):
                for g in range(groups):
                    with m.Case(g):
                        lo, hi = g * per_read, min((g + 1) * per_read, rows)
                        window = Const(((1 << (hi - lo)) - 1) << lo, rows)
                        m.d.comb += take.eq(plane.bits & window)
            m.d.comb += [
                final.eq(group == groups - 1),
                emit.eq(1),
                count.eq(popcount(take)),
            ]
            with m.If(self.i.valid & self.i.ready):
                m.d.sync += group.eq(0)
            with m.Elif(active & load):
                m.d.sync += group.eq(group + 1)
        else:
            remaining = Signal(rows)
            counts = saturating_prefix_counts(m, remaining, per_read + 1)
            m.d.comb += [
                take.eq(Cat(remaining[r] & (counts[r] <= per_read) for r in range(rows))),
                empty.eq(remaining == 0),
                final.eq(counts[-1] <= per_read),
                emit.eq(~empty | plane.last),
                count.eq(Mux(final, counts[-1], per_read)),  # no second adder tree
            ]
            with m.If(self.i.valid & self.i.ready):
                m.d.sync += remaining.eq(self.i.payload.bits)
            with m.Elif(active & load):
                m.d.sync += remaining.eq(remaining & ~take)

        with m.If(load):
            m.d.sync += [
                self.o.valid.eq(active & emit),
                self.o.payload.rows.eq(take),
                self.o.payload.count.eq(count),
                self.o.payload.plane.eq(plane.index),
                self.o.payload.neg.eq(plane.neg),
                self.o.payload.last.eq(plane.last & final),
                self.o.payload.skip.eq(empty),
            ]
        finish = active & final & load
        m.d.comb += self.i.ready.eq(~active | finish)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [plane.eq(self.i.payload), active.eq(1)]
        with m.Elif(finish):
            m.d.sync += active.eq(0)
        return m
