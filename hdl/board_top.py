"""Board top: the macro (with its synthesizable crossbar stub) behind a UART command link.

A host drives the macro over one serial line with the protocol of docs/board.md (host side:
:mod:`imcgen.link.protocol`): SLIP-framed requests with a CRC-16, one response each, in order.

Blocks, line to macro and back, each a component of its own::

                 link domain (board clock)              |     macro domain (PLL)
    rx -> UartRx -> FlowControl -> RX FIFO -> SlipDecoder -> tokens -> Executor -> MacroTop
    tx <- UartTx <- FlowControl <- SlipEncoder (CRC, stuffing) <- bytes <--/

Two clock domains: the line's side (``sync``: the UART, the flow control, the RX FIFO, the
framing) runs on the board's clock, the executor, the batch memories and the macro on their own
(``macro``, from the FPGA's PLL: :class:`imcgen.hdl.pll.Pll`). They meet in two asynchronous
FIFOs (``amaranth.lib.fifo.AsyncFIFO``): frame tokens one way, response bytes the other, each
item tagged ``first`` when it starts a frame. The UART's error events and CLEAR cross as pulses
(``amaranth.lib.cdc.PulseSynchronizer``: events come a byte time apart at most, many cycles of
either clock). A reset of either domain cuts the frame it interrupts and nothing else:

- a **link reset** empties the token FIFO; the executor drops the frame it was receiving when
  the next one opens (its first token), and response bytes already queued are dropped up to
  the next response's first byte (the encoder restarted, so their frame's start is gone);
- a **macro reset** empties the response FIFO and restarts the encoder (``r_rst``: the host
  sees the cut response end broken and drops it); tokens already queued are dropped up to the
  next frame's first one.

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
from amaranth.lib.fifo import AsyncFIFO, SyncFIFOBuffered
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
           "Executor", "RX_FIFO_DEPTH", "BATCH_DEPTH", "CROSSING_DEPTH"]

#: Items each clock-crossing FIFO holds (tokens in, response bytes out).
CROSSING_DEPTH = 8


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
        tokens = _crossing(m, "tokens", tagged_token.size, "sync", "macro")
        in_frame = Signal()
        is_data = decoder.o.payload.kind == Token.DATA
        m.d.comb += [tokens.w_data.eq(Cat(decoder.o.payload, is_data & ~in_frame)),
                     tokens.w_en.eq(decoder.o.valid), decoder.o.ready.eq(tokens.w_rdy)]
        with m.If(decoder.o.valid & tokens.w_rdy):
            m.d.sync += in_frame.eq(is_data)
        token = tagged_token(tokens.r_data)
        # After a reset of the macro's side, tokens left from a cut frame are dropped up to the
        # next frame's first. A register slice then ends the FIFO's pointer comparison (its
        # r_rdy) before the executor's receive logic: no path runs from one into the other.
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

        # Response bytes to the line's side, tagged `first` on a response's first byte.
        tagged_raw = data.StructLayout({"raw": raw_layout, "first": 1})
        responses = _crossing(m, "responses", tagged_raw.size, "macro", "sync")
        # A register slice first: the FIFO's w_rdy (a pointer comparison) stays out of the
        # executor's response logic.
        out_frame = Signal()
        out_pipe = Pipe(raw_layout)
        m.submodules.response_pipe = DomainRenamer("macro")(out_pipe)
        wiring.connect(m, executor.o, out_pipe.i)
        m.d.comb += [responses.w_data.eq(Cat(out_pipe.o.payload, ~out_frame)),
                     responses.w_en.eq(out_pipe.o.valid), out_pipe.o.ready.eq(responses.w_rdy)]
        with m.If(out_pipe.o.valid & responses.w_rdy):
            m.d.macro += out_frame.eq(~out_pipe.o.payload.end)
        raw = tagged_raw(responses.r_data)
        # After a reset of the line's side, the encoder starts afresh: bytes left from the
        # response it was sending are dropped up to the next response's first. A reset of the
        # macro's side (r_rst) restarts the encoder in the middle of its frame.
        sending = Signal()  # a response's first byte has passed since the line's reset
        drop_raw = ~sending & ~raw.first
        m.submodules.encoder = ResetInserter({"sync": responses.r_rst})(encoder)
        m.d.comb += [encoder.i.payload.eq(raw.raw), encoder.i.valid.eq(responses.r_rdy & ~drop_raw),
                     responses.r_en.eq(encoder.i.ready | drop_raw)]
        with m.If(responses.r_rdy & raw.first):
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
            with m.If(executor.clear):
                m.d.macro += mirror.eq(0)
            with m.Elif(pulse.o & (mirror != (1 << len(count)) - 1)):
                m.d.macro += mirror.eq(mirror + 1)
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


def _crossing(m, name, width, w_domain, r_domain):
    """An AsyncFIFO from ``w_domain`` to ``r_domain`` whose write-side reset lasts until the
    read side has seen it (its ``r_rst``, synchronised back). The FIFO empties itself on a
    write-side reset by copying the write pointer into the read side while ``r_rst`` holds; a
    reset shorter than the read clock's synchroniser delay would let it copy a stale pointer
    and read old entries again (seen in simulation with the macro at a third of the link's
    clock), so the reset is stretched by this handshake."""
    domain = ClockDomain(f"{name}_w", local=True)
    m.domains += domain
    fifo = AsyncFIFO(width=width, depth=CROSSING_DEPTH, w_domain=domain.name, r_domain=r_domain)
    m.submodules[name] = fifo
    hold = Signal(init=1, name=f"{name}_reset_hold")  # set by the reset, cleared once seen
    seen = Signal(name=f"{name}_reset_seen")
    m.submodules[f"{name}_reset_seen"] = cdc.FFSynchronizer(fifo.r_rst, seen, o_domain=w_domain)
    with m.If(seen):
        m.d[w_domain] += hold.eq(0)
    m.d.comb += [domain.clk.eq(ClockSignal(w_domain)),
                 domain.rst.eq(ResetSignal(w_domain, allow_reset_less=True) | hold)]
    return fifo


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
