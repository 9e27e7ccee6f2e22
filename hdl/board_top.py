"""Board top: the macro (with its synthesizable crossbar stub) behind a UART command link.

A host drives the macro over one serial line with the protocol of docs/board.md (host side:
:mod:`imcgen.link.protocol`): SLIP-framed requests with a CRC-16, one response each, in order.

Blocks, line to macro and back, each a component of its own::

    rx -> UartRx -> FlowControl -> RX FIFO -> SlipDecoder -> Executor -> MacroTop
    tx <- UartTx <- FlowControl <- SlipEncoder (CRC, stuffing) <-----/

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

from amaranth import Elaboratable, Module
from amaranth.lib import io, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from imcgen.core.config import MacroConfig
from imcgen.core.requirements import require
from imcgen.hdl.common import check_int
from imcgen.hdl.executor import (  # noqa: F401  (re-exported: the board's layouts)
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
           "Executor", "RX_FIFO_DEPTH"]


class BoardCore(wiring.Component):
    """The macro behind the UART command link: the logic of a board top, pins as ports.

    Parameters
    ----------
    config : MacroConfig
        The macro; ``crossbar`` must be ``"stub"`` (a board has no analog boundary to drive).
    divisor : int
        Clock cycles per bit of the UART (:func:`imcgen.hdl.uart.baud_divisor`).
    timeout_cycles : int
        Idle cycles inside a frame before it is answered as truncated (TIMEOUT), and the
        longest wait for each TRNG byte.
    rx_fifo_depth : int
        Bytes buffered from the line while a command runs (at least 8: the flow control keeps
        an eighth of it for the host's reaction to ``XOFF``).
    clk_hz : int
        The clock, reported by INFO (0 when unknown).

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
                 clk_hz=0):
        if not isinstance(config, MacroConfig):
            raise TypeError(f"config must be an imcgen.core.config.MacroConfig, not {config!r}")
        require("board", config)  # an ImcError, a ValueError naming crossbar = 'external'
        self._config = config
        self._divisor = check_int("UART divisor", divisor, 4, 0xFFFF)
        self._timeout = check_int("link timeout", timeout_cycles, 1)
        self._depth = check_int("RX FIFO depth", rx_fifo_depth, 8, 0xFFFF)
        self._clk_hz = check_int("clock frequency", clk_hz, 0, 2**32 - 1)
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

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        m.submodules.macro = macro = MacroTop(config=cfg)
        m.submodules.uart = uart = Uart(divisor=self._divisor)
        m.submodules.flow = flow = FlowControl(depth=self._depth)
        m.submodules.rx_fifo = fifo = SyncFIFOBuffered(width=DATA_BITS, depth=self._depth)
        m.submodules.decoder = decoder = SlipDecoder(timeout_cycles=self._timeout)
        m.submodules.executor = executor = Executor(
            config=cfg, timeout_cycles=self._timeout, rx_fifo_depth=self._depth,
            divisor=self._divisor, clk_hz=self._clk_hz)
        m.submodules.encoder = encoder = SlipEncoder()
        m.d.comb += [uart.rx.eq(self.rx), self.tx.eq(uart.tx)]
        wiring.connect(m, uart.o, flow.line_i)
        wiring.connect(m, flow.rx, fifo.w_stream)
        m.d.comb += flow.level.eq(fifo.level)
        wiring.connect(m, fifo.r_stream, decoder.i)
        # The decoder and the encoder register both sides of their streams (docs/architecture.md
        # section 11): the executor's decisions, theirs and the UART's never meet in a cycle.
        wiring.connect(m, decoder.o, executor.i)
        wiring.connect(m, executor.o, encoder.i)
        wiring.connect(m, encoder.o, flow.tx)
        wiring.connect(m, flow.line_o, uart.i)
        wiring.connect(m, executor.macro, macro)
        m.d.comb += [
            executor.framing_errors.eq(uart.framing_errors),
            executor.overruns.eq(uart.overruns),
            uart.clear.eq(executor.clear),
            self.link_error.eq((executor.bad_frames != 0) | uart.framing_error | uart.overrun),
            self.macro_error.eq(macro.status.as_value().any()),
        ]
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
    """

    def __init__(self, *, config, baud=115200, timeout_ms=50.0, rx_fifo_depth=RX_FIFO_DEPTH):
        if isinstance(baud, bool) or not isinstance(baud, int) or baud < 1:
            raise ValueError(f"baud rate must be a positive integer, not {baud!r}")
        if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int | float) or \
                not timeout_ms > 0:
            raise ValueError(f"link timeout must be a positive number of ms, not {timeout_ms!r}")
        self.config, self.baud, self.timeout_ms = config, baud, timeout_ms
        self.rx_fifo_depth = rx_fifo_depth

    def core(self, clk_hz):
        """The :class:`BoardCore` this top builds for a ``clk_hz`` clock."""
        return BoardCore(config=self.config, divisor=baud_divisor(clk_hz, self.baud),
                         timeout_cycles=max(1, round(clk_hz * self.timeout_ms / 1000)),
                         rx_fifo_depth=self.rx_fifo_depth, clk_hz=int(clk_hz))

    def elaborate(self, platform):
        if platform is None:
            raise TypeError("BoardTop is a board top: build it for a platform "
                            "(imcgen.fpga.build), it requests the UART pins from it")
        m = Module()
        m.submodules.core = core = self.core(platform.default_clk_frequency)
        pins = platform.request("uart", 0, dir="-")
        m.submodules.rx_buffer = rx_buffer = io.Buffer("i", pins.rx)
        m.submodules.tx_buffer = tx_buffer = io.Buffer("o", pins.tx)
        m.d.comb += [core.rx.eq(rx_buffer.i), tx_buffer.o.eq(core.tx)]
        for n, flag in enumerate((core.link_error, core.macro_error)):
            led = io.Buffer("o", platform.request("led", n, dir="-"))
            m.submodules[f"led{n}_buffer"] = led
            m.d.comb += led.o.eq(flag)
        return m
