"""Output stage: requantization or shift, then optional ReLU, then optional signed saturation.

Post-processing runs at the full accumulator precision before any rounding (the IEEE
Design & Test in-memory computing tutorial, 2021). Without ``[requant]`` the shift floors
(arithmetic shift of two's complement). With it, each output ``j`` is ``(sum + bias[j]) *
scale[j]``, exact, then divided by ``2^out_shift`` in the configured rounding (one add and one
arithmetic shift; ties to even look at the bits shifted out): folded batch norm, or a layer's
requantization to the next layer's input width. Saturation clamps to a signed ``out_bits``
range. The golden model is ``golden/output_stage.py``.

``bias`` and ``scale`` arrive on ``q`` (one transfer sets every output's) and are kept through
resets, as the weights in the cells are; until loaded they are 0 and 1.
"""

from amaranth import Module, Signal
from amaranth.hdl import Mux, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from imcgen.hdl.adder_network import sum_layout
from imcgen.hdl.common import Block

__all__ = ["OutputStage", "output_layout", "requant_layout"]


def output_layout(config):
    return data.ArrayLayout(signed(config.out_width), config.outputs)


def requant_layout(config):
    """Every output's bias and scale, loaded at once (``[requant]``)."""
    return data.StructLayout({
        "bias": data.ArrayLayout(signed(config.bias_bits), config.outputs),
        "scale": data.ArrayLayout(unsigned(config.requant.scale_bits), config.outputs),
    })


def _round_shift(m, p, shift, rounding):
    """``p / 2^shift`` rounded: the RTL of :func:`imcgen.golden.output_stage.round_shift`."""
    if not shift:
        return p
    one, half = 1 << shift, 1 << (shift - 1)
    neg = p < 0
    if rounding == "floor":
        return p >> shift
    if rounding == "ceil":
        return (p + (one - 1)) >> shift
    if rounding == "zero":
        return (p + Mux(neg, one - 1, 0)) >> shift
    if rounding == "half_up":
        return (p + half) >> shift
    if rounding == "half_away":
        return (p + Mux(neg, half - 1, half)) >> shift
    # half_even: up when the bits shifted out exceed a half, or equal it and the floor is odd
    q = Signal(signed(len(p) - shift + 1))
    rest = p.as_unsigned()[:shift]
    m.d.comb += q.eq(p >> shift)
    return q + ((rest > half) | ((rest == half) & q[0]))


class OutputStage(Block):
    """Registered requantization (or shift) / ReLU / saturation of each output.

    Parameters
    ----------
    config : MacroConfig
        Uses ``out_shift``, ``out_relu``, ``out_bits``, ``sum_bits``, ``out_width`` and the
        ``[requant]`` table.

    Attributes
    ----------
    i : In(stream.Signature(sum_layout))
    o : Out(stream.Signature(output_layout))
    q : In(stream.Signature(requant_layout))
        ``[requant]`` only: every output's bias and scale; always ready.
    """

    def __init__(self, *, config):
        members = {
            "i": In(stream.Signature(sum_layout(config))),
            "o": Out(stream.Signature(output_layout(config))),
        }
        if config.requant.enabled:
            members["q"] = In(stream.Signature(requant_layout(config)))
        super().__init__(config, members)

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        requant = cfg.requant.enabled
        if requant:
            # Kept through resets (reset_less), as the cells keep the weights.
            bias = [Signal(signed(cfg.bias_bits), reset_less=True, name=f"bias{j}")
                    for j in range(cfg.outputs)]
            scale = [Signal(cfg.requant.scale_bits, init=1, reset_less=True, name=f"scale{j}")
                     for j in range(cfg.outputs)]
            m.d.comb += self.q.ready.eq(1)
            with m.If(self.q.valid):
                for j in range(cfg.outputs):
                    m.d.sync += [bias[j].eq(self.q.payload.bias[j]),
                                 scale[j].eq(self.q.payload.scale[j])]
        outputs = []  # combinationally, from the sums offered
        for j in range(cfg.outputs):
            if requant:
                product = Signal(signed(cfg.product_bits), name=f"product{j}")
                m.d.comb += product.eq((self.i.payload[j] + bias[j]) * scale[j])
                y = _round_shift(m, product, cfg.out_shift, cfg.requant.rounding)
            else:
                y = self.i.payload[j] >> cfg.out_shift  # signed: arithmetic, floors
            if cfg.out_relu:
                y = Mux(y < 0, 0, y)
            if cfg.out_bits:
                lo, hi = -(1 << (cfg.out_bits - 1)), (1 << (cfg.out_bits - 1)) - 1
                y = Mux(y < lo, lo, Mux(y > hi, hi, y))
            outputs.append(y)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.o.valid.eq(1)] + [self.o.payload[j].eq(y)
                                                 for j, y in enumerate(outputs)]
        return m
