"""Board top: the macro (with its synthesizable crossbar stub) behind a UART command link.

A host drives the macro over one serial line with the protocol of docs/board.md (host side:
:mod:`imcgen.link.protocol`): SLIP-framed requests with a CRC-16, one response each, in order.

Blocks, line to macro and back, each a component of its own::

                 link domain (board clock)              |     macro domain (PLL)
    rx -> UartRx -> FlowControl -> RX FIFO -> SlipDecoder -> tokens -> Executor -> MacroTop
    tx <- UartTx <- FlowControl <- SlipEncoder (CRC, stuffing) <- bytes <--/

Two clock domains: the line's side (``sync``: the UART, the flow control, the RX FIFO, the
framing) runs on the board's clock, the executor, the batch memories and the macro on their own
(``macro``, from the FPGA's PLL: :class:`imcgen.hdl.pll.Pll`). They meet in two one-item
mailboxes (:class:`_Mailbox`: a data register held still in the writer's domain, a toggle
request synchronised to the reader, a toggle acknowledgement synchronised back): frame tokens
one way, response bytes the other, each item tagged ``first`` when it starts a frame. An item
crosses in about three cycles of each clock, against a UART byte time of 40 link cycles at
least, so one in flight keeps up with the line. (Amaranth's ``AsyncFIFO`` was there before: its
pointer comparison, increment and Gray coding were among the macro domain's longest paths on
the UP5K.) The UART's error events and CLEAR cross as pulses
(``amaranth.lib.cdc.PulseSynchronizer``: events come a byte time apart at most, many cycles of
either clock).

A reset of either domain cuts the frame it interrupts and nothing else. The mailboxes'
handshake registers have no reset, so a reset can neither set request and acknowledgement
apart (an item from nowhere, or an old one read again) nor lose an item half-way: an item in
flight arrives whole after the reset, and its tags decide what happens to it:

- a **link reset** restarts the decoder and the encoder; a token in flight reaches the
  executor, which drops the frame it was receiving when the next one opens (its first token),
  and response bytes are dropped up to the next response's first byte (the encoder restarted,
  so their frame's start is gone);
- a **macro reset** restarts the executor; a token in flight and those after it are dropped
  up to the next frame's first one, and the response side sends a ``cut`` item before any new
  byte, behind the byte in flight: the line's side restarts the encoder as it takes it (the
  host sees the cut response end broken and drops it), so no byte from before the reset
  reaches the restarted encoder.

So no request runs twice and no response is answered for another: a cut command either ran
(its response lost; the host reports the missing response) or did not.

:class:`imcgen.hdl.slip.SlipDecoder`, :class:`imcgen.hdl.slip.SlipEncoder`
    The framing (:mod:`imcgen.hdl.slip`).
:class:`imcgen.hdl.executor.Executor`
    Runs the commands (:mod:`imcgen.hdl.executor`). The RX FIFO holds the frames a host sends
    while one runs (back-to-back commands).
:class:`imcgen.hdl.flow.FlowControl`
    XON/XOFF both ways: the board stops the host before the RX FIFO overflows, and the host
    may stop the board.
:class:`BoardCore`
    The blocks connected, pins as ports.
:class:`BoardTop`
    :class:`BoardCore` on a platform's UART pins and LEDs, the baud divisor derived from the
    platform's clock.
"""

from fractions import Fraction

from amaranth import ClockDomain, ClockSignal, DomainRenamer, Elaboratable, Module, ResetSignal
from amaranth.hdl import Cat, ResetInserter, Signal
from amaranth.lib import cdc, data, io, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from imcgen.core.config import MacroConfig
from imcgen.core.requirements import require
from imcgen.hdl.common import Pipe, check_int
from imcgen.hdl.executor import (  # noqa: F401  (re-exported: the board's layouts)
    BATCH_DEPTH,
    RX_FIFO_DEPTH,
    Executor,
    error_layout,
    has_trng,
    info_layout,
    layouts_macro,
    request_layouts,
    response_layouts,
    status_layout,
    supported,
)
from imcgen.hdl.flow import FlowControl
from imcgen.hdl.macro_top import MacroTop
from imcgen.hdl.slip import CRC, SlipDecoder, SlipEncoder, Token, raw_layout, token_layout  # noqa: F401
from imcgen.hdl.uart import DATA_BITS, Uart, baud_divisor

__all__ = ["BoardCore", "BoardTop", "CRC", "Token", "token_layout", "raw_layout", "info_layout",
           "status_layout", "error_layout", "request_layouts", "layouts_macro",
           "response_layouts", "has_trng", "supported", "SlipDecoder", "SlipEncoder",
           "Executor", "RX_FIFO_DEPTH", "BATCH_DEPTH"]


class BoardCore(wiring.Component):
    """The macro behind the UART command link: the logic of a board top, pins as ports.

    Parameters
    ----------
    config : MacroConfig
        The macro; ``crossbar`` must be ``"stub"`` (a board has no analog boundary to drive).
    divisor : int or Fraction
        Link clock cycles per bit of the UART (:func:`imcgen.hdl.uart.baud_divisor`).
    timeout_cycles : int
        Idle link clock cycles inside a frame before it is answered as truncated (TIMEOUT).
    rx_fifo_depth : int
        Bytes buffered from the line while a command runs (at least 8: the flow control keeps
        an eighth of it for the host's reaction to ``XOFF``).
    clk_hz, macro_hz : int
        The link's and the macro's clocks, reported by INFO (0 when unknown).
    macro_timeout_cycles : int or None
        The longest wait for each TRNG byte, in macro clock cycles (default ``timeout_cycles``).
    batch_depth : int
        Vectors the batch memories hold (a power of two; 0: no batch commands).

    The ports of the two domains: ``clk``/``rst`` (link) and ``macro_clk``/``macro_rst``.

    Attributes
    ----------
    rx : In(1)
        Line from the host (asynchronous; idles high).
    tx : Out(1)
        Line to the host.
    link_error : Out(1)
        An error response was sent or the UART saw an error since the last CLEAR.
    macro_error : Out(1)
        A sticky flag of the macro's status is set.
    """

    def __init__(self, *, config, divisor, timeout_cycles, rx_fifo_depth=RX_FIFO_DEPTH,
                 clk_hz=0, macro_hz=0, macro_timeout_cycles=None, batch_depth=BATCH_DEPTH):
        if not isinstance(config, MacroConfig):
            raise TypeError(f"config must be an imcgen.core.config.MacroConfig, not {config!r}")
        require("board", config)  # an ImcError, a ValueError naming crossbar = 'external'
        self._config = config
        if isinstance(divisor, Fraction) and divisor.denominator > 1:
            Uart(divisor=divisor)._MustUse__silence = True  # its own check: sixteenths, >= 4
            self._divisor = divisor
        else:
            self._divisor = check_int("UART divisor", divisor, 4, 0xFFFF)
        self._timeout = check_int("link timeout", timeout_cycles, 1)
        self._depth = check_int("RX FIFO depth", rx_fifo_depth, 8, 0xFFFF)
        self._clk_hz = check_int("clock frequency", clk_hz, 0, 2**32 - 1)
        self._macro_hz = check_int("macro clock frequency", macro_hz, 0, 2**32 - 1)
        self._macro_timeout = check_int("macro link timeout", timeout_cycles
                                        if macro_timeout_cycles is None
                                        else macro_timeout_cycles, 1)
        self._batch = check_int("batch depth", batch_depth, 0, 1 << 15)
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "link_error": Out(1),
            "macro_error": Out(1),
        })

    @property
    def config(self):
        return self._config

    @property
    def divisor(self):
        return self._divisor

    @property
    def timeout_cycles(self):
        return self._timeout

    @property
    def rx_fifo_depth(self):
        return self._depth

    @property
    def batch_depth(self):
        return self._batch

    @property
    def macro_timeout_cycles(self):
        return self._macro_timeout

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        # The macro's side, in its own domain.
        macro = MacroTop(config=cfg)
        executor = Executor(
            config=cfg, timeout_cycles=self._macro_timeout, rx_fifo_depth=self._depth,
            divisor=self._divisor, clk_hz=self._clk_hz, macro_hz=self._macro_hz,
            batch_depth=self._batch)
        m.submodules.macro = DomainRenamer("macro")(macro)
        m.submodules.executor = DomainRenamer("macro")(executor)
        wiring.connect(m, executor.macro, macro)

        # The line's side, on the board clock.
        m.submodules.uart = uart = Uart(divisor=self._divisor)
        m.submodules.flow = flow = FlowControl(depth=self._depth)
        m.submodules.rx_fifo = fifo = SyncFIFOBuffered(width=DATA_BITS, depth=self._depth)
        m.submodules.decoder = decoder = SlipDecoder(timeout_cycles=self._timeout)
        encoder = SlipEncoder()
        m.d.comb += [uart.rx.eq(self.rx), self.tx.eq(uart.tx)]
        wiring.connect(m, uart.o, flow.line_i)
        wiring.connect(m, flow.rx, fifo.w_stream)
        m.d.comb += flow.level.eq(fifo.level)
        wiring.connect(m, fifo.r_stream, decoder.i)
        wiring.connect(m, encoder.o, flow.tx)
        wiring.connect(m, flow.line_o, uart.i)

        # Frame tokens to the macro's side, each tagged `first` when it opens a frame.
        tagged_token = data.StructLayout({"token": token_layout, "first": 1})
        tokens = _Mailbox(tagged_token.size, "sync", "macro")
        m.submodules.tokens = tokens
        in_frame = Signal()
        is_data = decoder.o.payload.kind == Token.DATA
        m.d.comb += [tokens.w_data.eq(Cat(decoder.o.payload, is_data & ~in_frame)),
                     tokens.w_en.eq(decoder.o.valid), decoder.o.ready.eq(tokens.w_rdy)]
        with m.If(decoder.o.valid & tokens.w_rdy):
            m.d.sync += in_frame.eq(is_data)
        token = tagged_token(tokens.r_data)
        # After a reset of the macro's side, tokens left from a cut frame are dropped up to the
        # next frame's first. A register slice keeps the crossing's handshake out of the
        # executor's receive logic.
        hunting = Signal(init=1)
        drop = hunting & ~token.first
        pipe = Pipe(tagged_token)
        m.submodules.token_pipe = DomainRenamer("macro")(pipe)
        m.d.comb += [pipe.i.payload.eq(token), pipe.i.valid.eq(tokens.r_rdy & ~drop),
                     tokens.r_en.eq(pipe.i.ready | drop),
                     executor.i.payload.eq(pipe.o.payload.token),
                     executor.first.eq(pipe.o.payload.first),
                     executor.i.valid.eq(pipe.o.valid), pipe.o.ready.eq(executor.i.ready)]
        with m.If(tokens.r_rdy & token.first):
            m.d.macro += hunting.eq(0)

        # Response bytes to the line's side, tagged `first` on a response's first byte; after
        # each reset of the macro's side a `cut` item goes first, behind any byte still in
        # flight: the line's side restarts the encoder when it takes it, so no byte from
        # before the reset reaches the restarted encoder.
        tagged_raw = data.StructLayout({"raw": raw_layout, "first": 1, "cut": 1})
        responses = _Mailbox(tagged_raw.size, "macro", "sync")
        m.submodules.responses = responses
        cut = Signal(init=1)  # set by the macro's reset, cleared as its item is written
        # A register slice first: the crossing's ready stays out of the executor's response
        # logic.
        out_frame = Signal()
        out_pipe = Pipe(raw_layout)
        m.submodules.response_pipe = DomainRenamer("macro")(out_pipe)
        wiring.connect(m, executor.o, out_pipe.i)
        m.d.comb += [responses.w_data.eq(Cat(out_pipe.o.payload, ~out_frame, cut)),
                     responses.w_en.eq(out_pipe.o.valid | cut),
                     out_pipe.o.ready.eq(responses.w_rdy & ~cut)]
        with m.If(responses.w_rdy):
            m.d.macro += cut.eq(0)
        with m.If(out_pipe.o.valid & responses.w_rdy & ~cut):
            m.d.macro += out_frame.eq(~out_pipe.o.payload.end)
        raw = tagged_raw(responses.r_data)
        # After a reset of the line's side, the encoder starts afresh: bytes left from the
        # response it was sending are dropped up to the next response's first.
        sending = Signal()  # a response's first byte has passed since the line's reset
        drop_raw = ~sending & ~raw.first
        restart = responses.r_rdy & raw.cut
        m.submodules.encoder = ResetInserter({"sync": restart})(encoder)
        m.d.comb += [encoder.i.payload.eq(raw.raw),
                     encoder.i.valid.eq(responses.r_rdy & ~raw.cut & ~drop_raw),
                     responses.r_en.eq(encoder.i.ready | drop_raw | raw.cut)]
        with m.If(responses.r_rdy & raw.first & ~raw.cut):
            m.d.sync += sending.eq(1)

        # The UART's error events counted on the macro's side; CLEAR back to the UART.
        counters = []
        for name, count in (("framing", uart.framing_errors), ("overrun", uart.overruns)):
            before = Signal.like(count, name=f"{name}_before")
            m.d.sync += before.eq(count)
            pulse = cdc.PulseSynchronizer("sync", "macro")
            m.submodules[f"{name}_event"] = pulse
            m.d.comb += pulse.i.eq((count != before) & (count != 0))  # counted up, not cleared
            mirror = Signal.like(count, name=f"{name}_count")
            full = Signal(name=f"{name}_full")  # saturated: a flag, not a compare in the enable
            with m.If(executor.clear):
                m.d.macro += [mirror.eq(0), full.eq(0)]
            with m.Elif(pulse.o & ~full):
                m.d.macro += [mirror.eq(mirror + 1), full.eq(mirror == (1 << len(count)) - 2)]
            counters.append(mirror)
        m.submodules.clear_pulse = clear = cdc.PulseSynchronizer("macro", "sync")
        m.d.comb += [
            clear.i.eq(executor.clear),
            uart.clear.eq(clear.o),
            executor.framing_errors.eq(counters[0]),
            executor.overruns.eq(counters[1]),
            self.link_error.eq((executor.bad_frames != 0) | Cat(counters).any()),
            self.macro_error.eq(macro.status.as_value().any()),
        ]
        return m


class _Mailbox(Elaboratable):
    """One item from ``w_domain`` to ``r_domain`` by a toggle handshake, with the write and read
    ports of an ``AsyncFIFO``.

    A write loads the data register and flips ``req``; the item is there for the reader while
    ``req`` (synchronised) differs from ``ack``, and taking it flips ``ack``; the writer may
    write again once ``ack`` (synchronised back) equals ``req``. The data register holds still
    from the write until the writer has seen the acknowledgement, two flip-flops of the read
    clock at least after the reader could first read it.

    No register of the handshake has a reset: a reset of either side can neither make an item
    appear (``req`` and ``ack`` set apart) nor lose one half-way. A reset leaves the item in
    flight, if any, to be taken whole; what a reset cuts is up to the item's tags (the board top
    drops it by its ``first`` bit, or sends a ``cut`` item behind it).
    """

    def __init__(self, width, w_domain, r_domain):
        self.w_domain, self.r_domain = w_domain, r_domain
        self.w_data = Signal(width)
        self.w_en = Signal()
        self.w_rdy = Signal()
        self.r_data = Signal(width)
        self.r_en = Signal()
        self.r_rdy = Signal()

    def elaborate(self, platform):
        m = Module()
        data_reg = Signal.like(self.w_data, reset_less=True)
        req, ack = Signal(reset_less=True), Signal(reset_less=True)
        req_seen, ack_seen = Signal(), Signal()
        m.submodules.req_sync = cdc.FFSynchronizer(req, req_seen, o_domain=self.r_domain)
        m.submodules.ack_sync = cdc.FFSynchronizer(ack, ack_seen, o_domain=self.w_domain)
        m.d.comb += [self.w_rdy.eq(req == ack_seen), self.r_rdy.eq(req_seen != ack),
                     self.r_data.eq(data_reg)]
        with m.If(self.w_en & self.w_rdy):
            m.d[self.w_domain] += [data_reg.eq(self.w_data), req.eq(~req)]
        with m.If(self.r_en & self.r_rdy):
            m.d[self.r_domain] += ack.eq(~ack)
        return m


class BoardTop(Elaboratable):
    """Board top: :class:`BoardCore` on the platform's UART and two LEDs.

    LED 0 lights on a link error (an error response or a UART error since the last CLEAR),
    LED 1 on a sticky flag of the macro's status.

    Parameters
    ----------
    config : MacroConfig
    baud : int
        Bit rate; the divisor comes from the platform's default clock (:func:`baud_divisor`,
        which refuses rates more than 2 % off).
    timeout_ms : float
        How long a frame may stall before it is answered as truncated.
    rx_fifo_depth : int
        Bytes buffered from the line while a command runs.
    macro_hz : int or None
        The macro's clock, made by the FPGA's PLL from the board clock
        (:class:`imcgen.hdl.pll.Pll`); None runs the macro on the board clock.
    batch_depth : int
        Vectors a batch run holds (block RAM; 0: no batch commands).
    """

    def __init__(self, *, config, baud=115200, timeout_ms=50.0, rx_fifo_depth=RX_FIFO_DEPTH,
                 macro_hz=None, batch_depth=BATCH_DEPTH):
        if isinstance(baud, bool) or not isinstance(baud, int) or baud < 1:
            raise ValueError(f"baud rate must be a positive integer, not {baud!r}")
        if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int | float) or \
                not timeout_ms > 0:
            raise ValueError(f"link timeout must be a positive number of ms, not {timeout_ms!r}")
        if macro_hz is not None:
            check_int("macro clock frequency", macro_hz, 1, 2**32 - 1)
        self.config, self.baud, self.timeout_ms = config, baud, timeout_ms
        self.rx_fifo_depth, self.macro_hz, self.batch_depth = rx_fifo_depth, macro_hz, batch_depth

    def core(self, clk_hz, macro_hz=None):
        """The :class:`BoardCore` this top builds for a ``clk_hz`` board clock (and the macro
        at ``macro_hz``, or on the board clock)."""
        macro_hz = clk_hz if macro_hz is None else macro_hz
        return BoardCore(config=self.config, divisor=baud_divisor(clk_hz, self.baud),
                         timeout_cycles=max(1, round(clk_hz * self.timeout_ms / 1000)),
                         rx_fifo_depth=self.rx_fifo_depth, clk_hz=int(clk_hz),
                         macro_hz=int(macro_hz), batch_depth=self.batch_depth,
                         macro_timeout_cycles=max(1, round(macro_hz * self.timeout_ms / 1000)))

    def elaborate(self, platform):
        if platform is None:
            raise TypeError("BoardTop is a board top: build it for a platform "
                            "(imcgen.fpga.build), it requests the UART pins from it")
        m = Module()
        clk_hz = platform.default_clk_frequency
        if self.macro_hz is None:  # the macro on the board clock
            m.domains.macro = macro = ClockDomain("macro")
            m.d.comb += [macro.clk.eq(ClockSignal("sync")),
                         macro.rst.eq(ResetSignal("sync", allow_reset_less=True))]
            macro_hz = clk_hz
        else:
            from imcgen.hdl.pll import Pll

            m.submodules.pll = pll = Pll(family=platform.family.lower(), in_hz=clk_hz,
                                         out_hz=self.macro_hz, domain="macro")
            macro_hz = pll.setting.achieved_hz
        m.submodules.core = core = self.core(clk_hz, macro_hz)
        pins = platform.request("uart", 0, dir="-")
        m.submodules.rx_buffer = rx_buffer = io.Buffer("i", pins.rx)
        m.submodules.tx_buffer = tx_buffer = io.Buffer("o", pins.tx)
        m.d.comb += [core.rx.eq(rx_buffer.i), tx_buffer.o.eq(core.tx)]
        for n, flag in enumerate((core.link_error, core.macro_error)):
            led = io.Buffer("o", platform.request("led", n, dir="-"))
            m.submodules[f"led{n}_buffer"] = led
            m.d.comb += led.o.eq(flag)
        return m
