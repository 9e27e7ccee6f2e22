"""XON/XOFF flow control of the board link, both ways (docs/board.md section 1).

Without it a host that sends faster than the board answers (requests whose responses are
longer than they are, such as INFO) overruns the receive FIFO and whole requests vanish.

Receive side
    Between the UART and the receive FIFO: a raw ``XON`` (0x11) or ``XOFF`` (0x13) from the
    host is taken off the line (frames stuff both, so neither is ever data) and stops
    (``XOFF``) or resumes (``XON``) this end's sending after the current byte. Flow-control
    bytes of this end's own go out even while stopped, as a terminal's do.
Send side
    Between the SLIP encoder and the UART, an output register: ``XOFF`` goes out as soon as
    the register is free once the FIFO holds ``xoff`` bytes or more, ``XON`` once it is down
    to ``xon`` or fewer after an ``XOFF`` (:func:`imcgen.link.protocol.flow_levels`), and
    once after a reset (a host stopped by an ``XOFF`` before it resumes). The
    levels are compared into registers: the FIFO's count never meets the UART's ready in a
    cycle.

Reference: :mod:`imcgen.golden.flow`.
"""

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from imcgen.hdl.common import check_int
from imcgen.hdl.uart import DATA_BITS
from imcgen.link.protocol import XOFF, XON, flow_levels

__all__ = ["FlowControl"]


class FlowControl(wiring.Component):
    """XON/XOFF between a UART and a link whose receive FIFO is ``depth`` bytes deep.

    Parameters
    ----------
    depth : int
        The receive FIFO's depth; the levels come from :func:`flow_levels`.

    Attributes
    ----------
    line_i : In(stream.Signature(8))
        Bytes from the UART's receiver.
    rx : Out(stream.Signature(8))
        The data bytes among them, to the receive FIFO.
    level : In(range(depth + 1))
        The receive FIFO's fill.
    tx : In(stream.Signature(8))
        Line bytes of the responses (the SLIP encoder's).
    line_o : Out(stream.Signature(8))
        Bytes to the UART's transmitter: ``tx`` and the flow-control bytes.
    stopped : Out(1)
        The host has sent ``XOFF`` and no ``XON`` since.
    """

    def __init__(self, *, depth):
        self._depth = check_int("RX FIFO depth", depth, 8, 0xFFFF)
        self._xoff, self._xon = flow_levels(self._depth)
        super().__init__({
            "line_i": In(stream.Signature(DATA_BITS)),
            "rx": Out(stream.Signature(DATA_BITS)),
            "level": In(range(self._depth + 1)),
            "tx": In(stream.Signature(DATA_BITS)),
            "line_o": Out(stream.Signature(DATA_BITS)),
            "stopped": Out(1),
        })

    @property
    def levels(self):
        """``(xoff, xon)``: the FIFO levels of this end's ``XOFF`` and ``XON``."""
        return self._xoff, self._xon

    def elaborate(self, platform):
        m = Module()
        byte = self.line_i.payload
        is_flow = (byte == XON) | (byte == XOFF)
        m.d.comb += [
            self.rx.payload.eq(byte),
            self.rx.valid.eq(self.line_i.valid & ~is_flow),
            self.line_i.ready.eq(self.rx.ready | is_flow),
        ]
        with m.If(self.line_i.valid & is_flow):
            m.d.sync += self.stopped.eq(byte == XOFF)

        full, drained = Signal(), Signal(init=1)  # the FIFO level, compared a cycle earlier
        m.d.sync += [full.eq(self.level >= self._xoff), drained.eq(self.level <= self._xon)]
        # XOFF sent, XON not yet; set at reset, so a board comes out of reset with an XON (a
        # host stopped by an XOFF before the reset resumes).
        told = Signal(init=1)
        free = ~self.line_o.valid | self.line_o.ready
        with m.If(self.line_o.valid & self.line_o.ready):
            m.d.sync += self.line_o.valid.eq(0)
        with m.If(free):
            with m.If(full & ~told):
                m.d.sync += [self.line_o.valid.eq(1), self.line_o.payload.eq(XOFF), told.eq(1)]
            with m.Elif(drained & told):
                m.d.sync += [self.line_o.valid.eq(1), self.line_o.payload.eq(XON), told.eq(0)]
            with m.Elif(~self.stopped):
                m.d.comb += self.tx.ready.eq(1)
                with m.If(self.tx.valid):
                    m.d.sync += [self.line_o.valid.eq(1), self.line_o.payload.eq(self.tx.payload)]
        return m
