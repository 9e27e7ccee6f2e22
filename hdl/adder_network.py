"""Adder network: the tiles' partial sums in, their sum out, through a pipelined binary tree.

A layer split over several arrays adds its partial sums digitally (Yan et al., "Resistive
memory-based in-memory computing", 2019: "partitioned ... onto a few smaller arrays"; the IEEE
Design & Test in-memory computing tutorial, 2021, Fig. 14). The tree has ceil(log2(tiles))
register levels (one for a single tile) and advances as a whole whenever its output register is
free.
"""

import math

from amaranth import Module, Signal
from amaranth.hdl import Cat, signed
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from imcgen.hdl.common import Block
from imcgen.hdl.shift_add import psum_layout

__all__ = ["AdderNetwork", "sum_layout"]


def sum_layout(config):
    return data.ArrayLayout(signed(config.sum_bits), config.outputs)


class AdderNetwork(Block):
    """Joins ``tiles`` partial-sum streams and adds them.

    Parameters
    ----------
    config : MacroConfig
        Uses ``tiles``, ``outputs``, ``psum_bits`` and ``sum_bits``.

    Attributes
    ----------
    i : In(stream.Signature(psum_layout)).array(tiles)
        One partial-sum stream per tile; all are taken on the same edge.
    o : Out(stream.Signature(sum_layout))
        The sums.
    """

    def __init__(self, *, config):
        super().__init__(config, {
            "i": In(stream.Signature(psum_layout(config))).array(config.tiles),
            "o": Out(stream.Signature(sum_layout(config))),
        })

    @property
    def latency(self):
        return max(1, math.ceil(math.log2(self.config.tiles)))

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        levels = self.latency

        advance = ~self.o.valid | self.o.ready
        all_valid = Signal()  # join: every tile's partial sum is taken on the same edge
        m.d.comb += all_valid.eq(Cat(self.i[t].valid for t in range(cfg.tiles)).all())
        for t in range(cfg.tiles):
            m.d.comb += self.i[t].ready.eq(advance & all_valid)

        # Level l holds ceil(tiles / 2^l) partial sums and a valid bit; the last level is `o`.
        terms = [self.i[t].payload for t in range(cfg.tiles)]
        valid = all_valid
        for level in range(levels):
            paired = [[terms[n][j] + terms[n + 1][j] for j in range(cfg.outputs)]
                      if n + 1 < len(terms) else [terms[n][j] for j in range(cfg.outputs)]
                      for n in range(0, len(terms), 2)]
            if level == levels - 1:
                stage, stage_valid = [self.o.payload], self.o.valid
            else:
                stage = [Signal(sum_layout(cfg), name=f"level{level}_{n}")
                         for n in range(len(paired))]
                stage_valid = Signal(name=f"level{level}_valid")
            with m.If(advance):
                m.d.sync += stage_valid.eq(valid)
                for n, sums in enumerate(paired):
                    for j in range(cfg.outputs):
                        m.d.sync += stage[n][j].eq(sums[j])
            terms, valid = stage, stage_valid
        return m
