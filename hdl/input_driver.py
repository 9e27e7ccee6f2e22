"""Bit-serial input driver: an input vector in, its bit planes out, one per handshake.

Inputs are applied to the word lines bit by bit with one voltage, no DAC ("bit by bit" in Yan
et al., "Resistive memory-based in-memory computing", 2019).
Planes go out least significant first; the MSB plane of signed inputs is flagged ``neg`` since it
weighs -2^(input_bits-1). With ``schedule = zero_skip`` planes whose bits are all zero are
skipped at no cost (a priority encoder picks the next non-zero plane); an all-zero vector still
emits one empty plane flagged ``last`` so that downstream blocks close the vector.
"""

from amaranth import Module, Signal
from amaranth.hdl import Cat, Const, Mux, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from imcgen.hdl.common import Block, index_shape

__all__ = ["InputDriver", "element_shape", "vector_layout", "plane_layout"]


def element_shape(config):
    return signed(config.input_bits) if config.input_signed else unsigned(config.input_bits)


def vector_layout(config, rows):
    return data.ArrayLayout(element_shape(config), rows)


def plane_layout(config, lines=None):
    """A bit plane of ``lines`` driven lines (default: the tile's rows)."""
    return data.StructLayout({
        "bits": unsigned(lines or config.rows),  # one bit per driven line
        "index": index_shape(config.input_bits),  # plane significance b
        "neg": unsigned(1),                     # weighs -2^b (MSB of signed inputs)
        "last": unsigned(1),                    # last plane of this vector
    })


class InputDriver(Block):
    """One tile's input driver.

    Parameters
    ----------
    config : MacroConfig
        Uses ``rows``, ``input_bits``, ``input_signed`` and ``schedule``.
    lines : int, optional
        Driven lines (elements per vector): the tile's rows, or the outputs for the columns
        of transposed reads (docs/architecture.md section 13).

    Attributes
    ----------
    i : In(stream.Signature(vector_layout))
        Input vector of the tile (``lines`` elements).
    o : Out(stream.Signature(plane_layout))
        Bit planes.
    """

    def __init__(self, *, config, lines=None):
        self._lines = lines or config.rows
        super().__init__(config, {
            "i": In(stream.Signature(vector_layout(config, self._lines))),
            "o": Out(stream.Signature(plane_layout(config, self._lines))),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        bits, rows = cfg.input_bits, self._lines

        vector = Signal(data.ArrayLayout(unsigned(bits), rows))
        pending = Signal(bits)  # planes still to emit
        lowest = Signal(bits)   # one-hot: the plane going out now
        index = Signal(index_shape(bits))

        m.d.comb += lowest.eq(Cat(pending[b] & ~pending[:b].any() for b in range(bits)))
        for b in reversed(range(bits)):  # the last assignment wins: lowest set bit
            with m.If(pending[b]):
                m.d.comb += index.eq(b)

        def plane(source, b):
            return Cat(source[r][b] for r in range(rows))

        last = (pending & ~lowest) == 0
        # The plane as an AND-OR over the one-hot `lowest`: a function of the pending bits and
        # one row's element (two LUT levels), not of a decoded index.
        m.d.comb += self.o.payload.bits.eq(
            Cat(Cat(vector[r][b] & lowest[b] for b in range(bits)).any()
                for r in range(rows)))
        m.d.comb += [
            self.o.valid.eq(pending != 0),
            self.o.payload.index.eq(index),
            self.o.payload.neg.eq(int(cfg.input_signed) & (index == bits - 1)),
            self.o.payload.last.eq(last),
            # Take the next vector while the last plane of this one leaves: no bubble.
            self.i.ready.eq((pending == 0) | (self.o.ready & last)),
        ]

        incoming = data.View(data.ArrayLayout(unsigned(bits), rows), self.i.payload.as_value())
        if cfg.schedule == "zero_skip":
            nonzero = Cat(plane(incoming, b).any() for b in range(bits))
            first = Cat(nonzero[0] | (nonzero == 0), nonzero[1:])  # all zero: one empty plane
        else:
            first = Const((1 << bits) - 1, bits)  # dense: every plane, zero or not

        # The vector register loads whenever the driver may take one, offered or not; the
        # offer's valid decides only whether its planes become pending (the last LUT level),
        # so the macro's accept logic reaches no enable.
        with m.If(self.i.ready):
            m.d.sync += [vector.eq(incoming), pending.eq(Mux(self.i.valid, first, 0))]
        with m.Elif(self.o.ready):  # o.valid: some plane is pending (i.ready is low)
            m.d.sync += pending.eq(pending & ~lowest)
        return m
