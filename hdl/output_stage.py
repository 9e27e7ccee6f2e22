"""Output stage: arithmetic shift, optional ReLU, optional signed saturation, in that order.

Post-processing runs at the full accumulator precision before any rounding (the IEEE
Design & Test in-memory computing tutorial, 2021). The shift
floors (arithmetic shift of two's complement); saturation clamps to a signed ``out_bits`` range.
"""

from amaranth import Module
from amaranth.hdl import Mux, signed
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from imcgen.hdl.adder_network import sum_layout
from imcgen.hdl.common import Block

__all__ = ["OutputStage", "output_layout"]


def output_layout(config):
    return data.ArrayLayout(signed(config.out_width), config.outputs)


class OutputStage(Block):
    """Registered shift / ReLU / saturation of each output.

    Parameters
    ----------
    config : MacroConfig
        Uses ``out_shift``, ``out_relu``, ``out_bits``, ``sum_bits`` and ``out_width``.

    Attributes
    ----------
    i : In(stream.Signature(sum_layout))
    o : Out(stream.Signature(output_layout))
    """

    def __init__(self, *, config):
        super().__init__(config, {
            "i": In(stream.Signature(sum_layout(config))),
            "o": Out(stream.Signature(output_layout(config))),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += self.o.valid.eq(1)
            for j in range(cfg.outputs):
                y = self.i.payload[j] >> cfg.out_shift  # signed: arithmetic, floors
                if cfg.out_relu:
                    y = Mux(y < 0, 0, y)
                if cfg.out_bits:
                    lo, hi = -(1 << (cfg.out_bits - 1)), (1 << (cfg.out_bits - 1)) - 1
                    y = Mux(y < lo, lo, Mux(y > hi, hi, y))
                m.d.sync += self.o.payload[j].eq(y)
        return m
