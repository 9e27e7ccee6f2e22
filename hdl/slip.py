"""SLIP framing in hardware (RFC 1055), both ways, for the board link (docs/board.md).

:class:`SlipDecoder`
    Line bytes to tokens: data bytes, the end of a frame (or of a frame with a bad escape), and
    a timeout when a frame stops arriving before its closing ``END``.
:class:`SlipEncoder`
    Response bytes and an end token to a framed, stuffed line with the CRC appended.

The host side of the same framing (:func:`imcgen.link.protocol.escape`,
:class:`imcgen.link.protocol.FrameReader`) is the reference both are tested against.
"""

from amaranth import Module, Signal
from amaranth.hdl import Mux
from amaranth.lib import crc, data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from imcgen.hdl.common import check_int, one_hot
from imcgen.hdl.uart import DATA_BITS
from imcgen.link.protocol import END, ESC, STUFFED

__all__ = ["CRC", "Token", "token_layout", "raw_layout", "SlipDecoder", "SlipEncoder"]

#: CRC of every frame (amaranth's catalogue; the host computes it with binascii.crc_hqx).
CRC = crc.catalog.CRC16_IBM_3740


_TIMER_LOW_BITS = 8  # SlipDecoder: the low part of the split timeout count


def _stuffed(m, value, prefix):
    """``(special, code)``: signals saying whether ``value`` is a stuffed byte
    (:data:`STUFFED`: ``END``, ``ESC``, ``XON``, ``XOFF``) and the byte after ``ESC`` for it."""
    special = Signal(name=f"{prefix}_special")
    code = Signal(DATA_BITS, name=f"{prefix}_code")
    for byte, escape in STUFFED.items():
        with m.If(value == byte):
            m.d.comb += [special.eq(1), code.eq(escape)]
    return special, code


class Token(enum.Enum, shape=2):
    """What the SLIP decoder passes on."""

    DATA = 0      # one unstuffed byte of the frame
    END = 1       # the frame's closing delimiter
    BAD_END = 2   # closing delimiter of a frame that held a bad escape
    TIMEOUT = 3   # the frame stopped arriving (no byte for the timeout) before its END


token_layout = data.StructLayout({"kind": Token, "data": DATA_BITS})
#: Response bytes into the encoder: ``end`` closes the frame (its ``data`` is ignored).
raw_layout = data.StructLayout({"data": DATA_BITS, "end": 1})


class SlipDecoder(wiring.Component):
    """Line bytes to frame tokens (SLIP, RFC 1055), with a timeout for truncated frames.

    Bytes before the first ``END`` after reset, and after a timeout, are dropped (the line may
    be mid-frame); empty frames are skipped. A frame that has started and receives no byte for
    ``timeout_cycles`` cycles while the consumer is ready ends with a ``TIMEOUT`` token.

    Parameters
    ----------
    timeout_cycles : int
        Idle cycles inside a frame before it counts as truncated.

    Attributes
    ----------
    i : In(stream.Signature(8))
        Line bytes.
    o : Out(stream.Signature(token_layout))
        Tokens (:class:`Token`).
    """

    def __init__(self, *, timeout_cycles):
        self._timeout = check_int("SLIP decoder timeout", timeout_cycles, 1)
        super().__init__({
            "i": In(stream.Signature(DATA_BITS)),
            "o": Out(stream.Signature(token_layout)),
        })

    @property
    def timeout_cycles(self):
        return self._timeout

    def elaborate(self, platform):
        m = Module()
        # Registered on both sides, at a token per two cycles at most (a UART byte takes a
        # hundred or more): the byte and its class come from input registers, the token goes
        # into the output register when it is empty, so no decision reads the FIFO's block
        # RAM output (ECP5 DP16KD: about 6 ns clock to output) or the consumer's ready. Two
        # input registers: the line byte as it leaves the block RAM, then the byte and its class.
        line = Signal(DATA_BITS)
        line_valid = Signal()
        have = Signal()               # a byte waits, classed
        byte = Signal(DATA_BITS)
        is_end, is_esc, is_code = Signal(), Signal(), Signal()  # is_code: follows an ESC
        unstuffed = Signal(DATA_BITS)  # the data byte it stands for after an ESC
        take = Signal()               # the waiting byte is consumed this cycle
        m.d.comb += self.i.ready.eq(~line_valid)
        with m.If(~line_valid):
            m.d.sync += [line_valid.eq(self.i.valid), line.eq(self.i.payload)]
        with m.Elif(~have):
            m.d.sync += line_valid.eq(0)
        with m.If(~have):
            m.d.sync += [have.eq(line_valid), byte.eq(line), is_end.eq(line == END),
                         is_esc.eq(line == ESC), is_code.eq(0)]
            for data_byte, code in STUFFED.items():
                with m.If(line == code):
                    m.d.sync += [is_code.eq(1), unstuffed.eq(data_byte)]
        with m.Elif(take):
            m.d.sync += have.eq(0)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        free = ~self.o.valid  # a token may be registered
        started = Signal()  # a byte of the current frame was taken
        bad = Signal()      # it held a bad escape
        # Idle cycles left less one: the frame has timed out when it goes negative, a
        # register bit read on the next cycle instead of a comparison of the whole count.
        # The count is split so that no carry chain spans it (50 ms is 20 bits at 12 MHz):
        # `low`, its low bits, and `high`, the rest (signed, its sign the timeout), which
        # counts down as `low` wraps, told by a register (`low_zero`) instead of a borrow.
        reload = self._timeout - 1
        low = Signal(_TIMER_LOW_BITS, init=reload % (1 << _TIMER_LOW_BITS))
        low_zero = Signal(init=low.init == 0)
        high = Signal(range(-1, (reload >> _TIMER_LOW_BITS) + 1),
                      init=reload >> _TIMER_LOW_BITS)
        expired = high[-1]

        def restart_timer():
            m.d.sync += [low.eq(low.init), low_zero.eq(low_zero.init), high.eq(high.init)]

        def emit():
            """Offer the token the payload register holds (below)."""
            m.d.sync += self.o.valid.eq(1)

        def idle_count():  # inside a frame, nothing arriving, the consumer listening
            with m.If(~have & free & started):
                m.d.sync += [low.eq(low - 1), low_zero.eq(low == 1)]
                with m.If(low_zero):
                    m.d.sync += high.eq(high - 1)

        with m.If(have):  # a byte arrived: the frame is not idle
            restart_timer()

        with m.FSM(init="HUNT", name="slip_rx") as fsm:
            with m.State("HUNT"):  # wait for a delimiter
                m.d.comb += take.eq(1)
                with m.If(have & is_end):
                    m.next = "FRAME"
            with m.State("FRAME"):
                with m.If(expired):
                    m.next = "TIMED_OUT"
                with m.Elif(have & free):
                    m.d.comb += take.eq(1)
                    with m.If(is_end):
                        with m.If(started):
                            emit()  # END, or BAD_END after a bad escape
                        # else: an empty frame, a delimiter only
                    with m.Elif(is_esc):
                        m.next = "ESCAPED"
                    with m.Else():
                        emit()  # DATA: the byte
                idle_count()
            with m.State("ESCAPED"):
                with m.If(expired):
                    m.next = "TIMED_OUT"
                with m.Elif(have & free):
                    m.d.comb += take.eq(1)
                    m.next = "FRAME"
                    with m.If(is_code | is_end):
                        # DATA (END, ESC, XON or XOFF); BAD_END if the frame ends inside it
                        emit()
                idle_count()
            with m.State("TIMED_OUT"):  # the line waits until the token is registered
                with m.If(free):
                    emit()  # TIMEOUT
                    restart_timer()
                    m.next = "HUNT"
        # The token's payload loads while the output is empty: the token the state emits for
        # the byte waiting (or TIMEOUT), so the payload's enable is one register bit and the
        # FSM decides only `valid`.
        escaped_state = fsm.ongoing("ESCAPED")
        with m.If(free):
            with m.If(fsm.ongoing("TIMED_OUT")):
                m.d.sync += self.o.payload.kind.eq(Token.TIMEOUT)
            with m.Elif(is_end):
                m.d.sync += self.o.payload.kind.eq(Mux(bad | escaped_state, Token.BAD_END,
                                                       Token.END))
            with m.Else():
                m.d.sync += self.o.payload.kind.eq(Token.DATA)
            m.d.sync += self.o.payload.data.eq(
                Mux(escaped_state, unstuffed, byte))
        # The frame's flags as sums of products of registers (no enable logic): cleared as a
        # frame opens, ends or times out; `started` set by its first byte (or escape), `bad`
        # by an escape followed by anything but a stuffing code or END.
        go = have & free
        in_frame = fsm.ongoing("FRAME") & ~expired & go
        escaped = fsm.ongoing("ESCAPED") & ~expired & go
        clear = ((fsm.ongoing("HUNT") & have & is_end) | ((in_frame | escaped) & is_end)
                 | (fsm.ongoing("TIMED_OUT") & free))
        m.d.sync += [
            started.eq(~clear & (started | (in_frame & ~is_end))),
            bad.eq(~clear & (bad | (escaped & ~is_code))),
        ]
        one_hot(fsm)
        return m


class SlipEncoder(wiring.Component):
    """Response bytes to a framed line: ``END``, stuffed bytes, stuffed CRC (MSB first), ``END``.

    The first data byte opens a frame; a token with ``end`` set closes it (append the CRC of
    the frame's bytes, then ``END``) and is taken after the closing ``END`` went out.

    Attributes
    ----------
    i : In(stream.Signature(raw_layout))
        Response bytes; ``end`` closes the frame.
    o : Out(stream.Signature(8))
        Line bytes.
    """

    def __init__(self):
        super().__init__({
            "i": In(stream.Signature(raw_layout)),
            "o": Out(stream.Signature(DATA_BITS)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.tx_crc = check = CRC(data_width=DATA_BITS).create()
        # Registered on both sides like the decoder: the token and whether its byte needs
        # stuffing come from the input register, line bytes go into the output register.
        have = Signal()
        token = Signal(raw_layout)
        special = Signal()  # the token's byte is stuffed (END, ESC, XON, XOFF)
        token_code = Signal(DATA_BITS)  # the byte after ESC for it
        take = Signal()
        m.d.comb += self.i.ready.eq(~have)
        with m.If(~have):
            is_special, code = _stuffed(m, self.i.payload.data, "in")
            m.d.sync += [have.eq(self.i.valid), token.eq(self.i.payload),
                         special.eq(is_special), token_code.eq(code)]
        with m.Elif(take):
            m.d.sync += have.eq(0)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        free = ~self.o.valid
        second = Signal()  # the second byte of an escape is due

        def put(value):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(value)]

        def send(value, is_special, code, done):
            """Send ``value`` stuffed; call ``done()`` in the cycle its last byte goes."""
            with m.If(free):
                with m.If(~second):
                    put(Mux(is_special, ESC, value))
                    with m.If(is_special):
                        m.d.sync += second.eq(1)
                    with m.Else():
                        done()
                with m.Else():
                    put(code)
                    m.d.sync += second.eq(0)
                    done()

        # The CRC's bytes are classed a cycle ahead: it settles two cycles before CRC_HI
        # (the last byte is taken, then the end token loaded).
        crc_special = Signal(2)  # the high byte, then the low byte, is stuffed
        crc_codes = [Signal(DATA_BITS, name=f"crc_code{n}") for n in range(2)]
        for n, half in enumerate((check.crc[8:16], check.crc[0:8])):
            is_special, code = _stuffed(m, half, f"crc{n}")
            m.d.sync += [crc_special[n].eq(is_special), crc_codes[n].eq(code)]

        with m.FSM(init="IDLE", name="slip_tx") as fsm:
            with m.State("IDLE"):
                with m.If(have & free):
                    put(END)
                    m.d.comb += check.start.eq(1)
                    m.next = "BODY"
            with m.State("BODY"):
                with m.If(have & ~token.end):
                    def consume():
                        m.d.comb += [take.eq(1), check.valid.eq(1), check.data.eq(token.data)]
                    send(token.data, special, token_code, consume)
                with m.Elif(have):
                    m.next = "CRC_HI"

            def after(state):
                def go():
                    m.next = state
                return go

            with m.State("CRC_HI"):
                send(check.crc[8:16], crc_special[0], crc_codes[0], after("CRC_LO"))
            with m.State("CRC_LO"):
                send(check.crc[0:8], crc_special[1], crc_codes[1], after("CLOSE"))
            with m.State("CLOSE"):
                with m.If(free):
                    put(END)
                    m.d.comb += take.eq(1)  # the end token
                    m.next = "IDLE"
        one_hot(fsm)
        return m
