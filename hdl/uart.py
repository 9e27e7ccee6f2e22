"""8N1 UART: a receiver and a transmitter with byte streams, for a host link to the macro.

The line idles high; a byte is a low start bit, eight data bits LSB first and a high stop bit,
each ``divisor`` clock cycles long. :func:`baud_divisor` picks the divisor for a clock and a
baud rate, and refuses one whose rounding error exceeds 2 % (the far end has its own error,
and mid-bit sampling tolerates about 4 % in all).

Fractional divisors: a divisor may have a fraction in sixteenths (``Fraction(133, 16)``: 3 Mbaud
from 25 MHz, 0.25 % off, where the integer 8 is 4 % off). Each bit then lasts the integer part
or one cycle more, as a 4-bit phase accumulator carries, so the bits average the exact
divisor and every sample point stays within one cycle of its ideal place. :func:`baud_divisor`
picks one only when the nearest integer is more than 0.5 % off.

Receiver (:class:`UartRx`)
    ``rx`` passes a two-flop synchroniser. The first low sample starts a candidate start bit;
    ``divisor // 2`` cycles later (mid-bit) the line must still be low, else the low was a
    glitch and the receiver returns to idle without a byte. Data bits and the stop bit are
    sampled at their middles, ``divisor`` cycles apart. A low stop bit is a *framing error*:
    the byte is dropped, counted, and the receiver waits for the line to go high again before
    it looks for a start bit (a break, the line held low, is one framing error, not many).

    Overrun policy: the byte register holds one byte until the stream takes it, which leaves a
    consumer a whole byte time (ten bit times) to answer ``o.valid``. A byte completed while the
    previous one is still waiting (``o.valid`` high, ``o.ready`` low in that cycle) is *dropped*
    and counted; the waiting byte stays, unchanged, as the stream rules require (a payload may
    not change while it is offered). Newest-lost rather than oldest-lost keeps the bytes the
    consumer does get in order and contiguous from the start of a burst.

Transmitter (:class:`UartTx`)
    Takes a byte when idle or in the last cycle of a stop bit, so a continuous stream leaves
    back-to-back frames exactly ``10 * divisor`` cycles apart. ``tx`` comes from a register:
    no glitches.
"""

from fractions import Fraction

from amaranth import Cat, Elaboratable, Module, Signal
from amaranth.lib import cdc, io, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

__all__ = [
    "DATA_BITS", "MIN_DIVISOR", "MAX_BAUD_ERROR",
    "baud_divisor", "UartRx", "UartTx", "Uart", "UartEchoCore", "UartEcho",
]

DATA_BITS = 8
#: Fewest clock cycles per bit: the mid-bit check needs at least two samples into a bit.
MIN_DIVISOR = 4
#: Largest rounding error of the bit rate that :func:`baud_divisor` accepts (fraction).
MAX_BAUD_ERROR = 0.02
#: A divisor's fraction is in steps of 1/FRACTION_STEPS cycle.
FRACTION_STEPS = 16
#: :func:`baud_divisor` keeps an integer divisor up to this rounding error.
INTEGER_BAUD_ERROR = 0.005


def _check_divisor(divisor):
    if not isinstance(divisor, bool) and isinstance(divisor, int | Fraction) and \
            divisor >= MIN_DIVISOR and FRACTION_STEPS % Fraction(divisor).denominator == 0:
        return divisor if isinstance(divisor, int) or divisor.denominator > 1 else int(divisor)
    raise ValueError(f"UART divisor must be at least {MIN_DIVISOR} clock cycles per bit, an "
                     f"integer or a Fraction in 1/{FRACTION_STEPS} steps, not {divisor!r}")


def _bit_timing(m, divisor):
    """``(reload, advance)``: the timer's reload value for the next bit (its cycles less two)
    and the statements that step the phase accumulator of a fractional divisor once per bit
    (none for an integer divisor)."""
    whole, steps = divmod(int(Fraction(divisor) * FRACTION_STEPS), FRACTION_STEPS)
    if not steps:
        return whole - 2, []
    phase = Signal(4, name="phase")  # sixteenths of a cycle owed to the bits so far
    carry = (phase + steps)[4]
    return whole - 2 + carry, [phase.eq(phase + steps)]


def _check_counter_bits(counter_bits):
    if isinstance(counter_bits, bool) or not isinstance(counter_bits, int) or counter_bits < 1:
        raise ValueError(f"UART error counter width must be a positive integer, "
                         f"not {counter_bits!r}")
    return counter_bits


def baud_divisor(clk_hz, baud):
    """Clock cycles per bit for ``baud`` from a ``clk_hz`` clock, rounded to the nearest.

    Parameters
    ----------
    clk_hz : int or float
        Clock frequency in Hz.
    baud : int or float
        Bit rate in bits per second.

    Returns
    -------
    int or Fraction
        The divisor, at least :data:`MIN_DIVISOR`: the nearest integer when it is within
        0.5 % (:data:`INTEGER_BAUD_ERROR`), else the nearest sixteenth of a cycle.

    Raises
    ------
    ValueError
        If either rate is not positive, if the divisor would be below :data:`MIN_DIVISOR`, or
        if the bit rate it gives is more than :data:`MAX_BAUD_ERROR` (2 %) off ``baud``.
    """
    for label, value in (("clock frequency", clk_hz), ("baud rate", baud)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(f"UART {label} must be a positive number, not {value!r}")
    divisor = max(1, round(clk_hz / baud))
    if abs(clk_hz / divisor - baud) / baud > INTEGER_BAUD_ERROR:
        sixteenths = Fraction(round(clk_hz / baud * FRACTION_STEPS), FRACTION_STEPS)
        divisor = int(sixteenths) if sixteenths.denominator == 1 else sixteenths
    if divisor < MIN_DIVISOR:
        raise ValueError(f"Baud rate {baud} is too fast for a {clk_hz:g} Hz clock: "
                         f"{clk_hz / baud:.2f} cycles per bit, at least {MIN_DIVISOR} needed")
    actual = clk_hz / divisor
    error = abs(actual - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ValueError(f"Baud rate {baud} cannot be made from a {clk_hz:g} Hz clock within "
                         f"{MAX_BAUD_ERROR:.0%}: divisor {float(divisor):g} gives {actual:.0f} "
                         f"baud ({error:.2%} off)")
    return divisor


class UartRx(wiring.Component):
    """8N1 receiver: ``rx`` line in, bytes out as a stream.

    Parameters
    ----------
    divisor : int or Fraction
        Clock cycles per bit, at least :data:`MIN_DIVISOR` (see :func:`baud_divisor`).
    counter_bits : int
        Width of the saturating error counters.

    Attributes
    ----------
    rx : In(1)
        The line, asynchronous to the clock; idles high.
    o : Out(stream.Signature(8))
        Received bytes. A byte waits here until taken; see the module notes on overrun.
    clear : In(1)
        Clears both error counters (and so both sticky flags) in the cycle it is high.
    framing_error : Out(1)
        Sticky: a stop bit was low since the last ``clear``.
    overrun : Out(1)
        Sticky: a byte was dropped because the previous one was not taken.
    framing_errors, overruns : Out(counter_bits)
        How many of each since the last ``clear``, saturating at the all-ones value.
    """

    def __init__(self, *, divisor, counter_bits=8):
        self._divisor = _check_divisor(divisor)
        self._counter_bits = _check_counter_bits(counter_bits)
        super().__init__({
            "rx": In(1, init=1),
            "o": Out(stream.Signature(DATA_BITS)),
            "clear": In(1),
            "framing_error": Out(1),
            "overrun": Out(1),
            "framing_errors": Out(counter_bits),
            "overruns": Out(counter_bits),
        })

    @property
    def divisor(self):
        return self._divisor

    @property
    def counter_bits(self):
        return self._counter_bits

    def elaborate(self, platform):
        m = Module()
        divisor = self._divisor
        half = int(divisor) // 2
        reload, advance = _bit_timing(m, divisor)

        line = Signal(init=1)  # rx after the synchroniser
        m.submodules.rx_sync = cdc.FFSynchronizer(self.rx, line, init=1, stages=2)

        # Cycles left until the next sample point, less one: the point is reached when the
        # count goes negative, a register bit instead of a comparison of the whole count.
        timer = Signal(range(-1, int(divisor)), init=-1)
        expired = timer[-1]
        bit = Signal(range(DATA_BITS))  # data bit being received
        shift = Signal(DATA_BITS)  # data bits so far, LSB first: each enters at the top
        byte_done = Signal()  # stop bit high: a byte to deliver this cycle
        frame_bad = Signal()  # stop bit low

        with m.If(~expired):
            m.d.sync += timer.eq(timer - 1)

        with m.FSM(init="IDLE", name="rx"):
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(half - 2)
                    m.next = "START"
            with m.State("START"):  # mid start bit: still low, or it was a glitch
                with m.If(expired):
                    with m.If(line):
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [timer.eq(reload), bit.eq(0), *advance]
                        m.next = "DATA"
            with m.State("DATA"):
                with m.If(expired):
                    m.d.sync += [
                        shift.eq((line << (DATA_BITS - 1)) | (shift >> 1)),
                        timer.eq(reload),
                        bit.eq(bit + 1),
                        *advance,
                    ]
                    with m.If(bit == DATA_BITS - 1):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(expired):
                    with m.If(line):
                        m.d.comb += byte_done.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.comb += frame_bad.eq(1)
                        m.next = "BREAK"
            with m.State("BREAK"):  # after a framing error: wait for the line to go high
                with m.If(line):
                    m.next = "IDLE"

        # One-byte output register; a byte arriving while it is still full is dropped.
        free = ~self.o.valid | self.o.ready
        dropped = Signal()
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(byte_done):
            with m.If(free):
                m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(shift)]
            with m.Else():
                m.d.comb += dropped.eq(1)

        # Counted a cycle later, from registers: the drop decision ends at the consumer's
        # ready (a FIFO's level comparison), the counters' logic starts at a register.
        events = Signal(2)
        m.d.sync += events.eq(Cat(frame_bad, dropped))
        top = (1 << self._counter_bits) - 1
        for count, event in ((self.framing_errors, events[0]), (self.overruns, events[1])):
            with m.If(self.clear):
                m.d.sync += count.eq(0)
            with m.Elif(event & (count != top)):
                m.d.sync += count.eq(count + 1)
        m.d.comb += [
            self.framing_error.eq(self.framing_errors != 0),
            self.overrun.eq(self.overruns != 0),
        ]
        return m


class UartTx(wiring.Component):
    """8N1 transmitter: bytes in as a stream, ``tx`` line out.

    Parameters
    ----------
    divisor : int or Fraction
        Clock cycles per bit, at least :data:`MIN_DIVISOR` (see :func:`baud_divisor`).

    Attributes
    ----------
    i : In(stream.Signature(8))
        Bytes to send; one is taken when the line is idle or a stop bit is ending.
    tx : Out(1)
        The line, from a register; idles high.
    busy : Out(1)
        A frame is on the line.
    """

    def __init__(self, *, divisor):
        self._divisor = _check_divisor(divisor)
        super().__init__({
            "i": In(stream.Signature(DATA_BITS)),
            "tx": Out(1, init=1),
            "busy": Out(1),
        })

    @property
    def divisor(self):
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        reload, advance = _bit_timing(m, self._divisor)

        timer = Signal(range(-1, int(self._divisor)), init=-1)  # cycles left in the bit, less one
        expired = timer[-1]
        bit = Signal(range(DATA_BITS))
        shift = Signal(DATA_BITS)  # data bits not yet sent, next one at bit 0

        with m.If(~expired):
            m.d.sync += timer.eq(timer - 1)

        def take():
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid):
                m.d.sync += [self.tx.eq(0), shift.eq(self.i.payload), timer.eq(reload), *advance]
                m.next = "START"

        with m.FSM(init="IDLE", name="tx") as fsm:
            with m.State("IDLE"):
                take()
            with m.State("START"):
                with m.If(expired):
                    m.d.sync += [
                        self.tx.eq(shift[0]), shift.eq(shift >> 1),
                        bit.eq(0), timer.eq(reload), *advance,
                    ]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(expired):
                    m.d.sync += [timer.eq(reload), bit.eq(bit + 1), *advance]
                    with m.If(bit == DATA_BITS - 1):
                        m.d.sync += self.tx.eq(1)
                        m.next = "STOP"
                    with m.Else():
                        m.d.sync += [self.tx.eq(shift[0]), shift.eq(shift >> 1)]
            with m.State("STOP"):
                with m.If(expired):  # last cycle of the stop bit: next frame may start
                    m.next = "IDLE"
                    take()
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m


class Uart(wiring.Component):
    """Receiver and transmitter sharing one divisor: the host link of a design.

    Parameters
    ----------
    divisor : int or Fraction
        Clock cycles per bit, at least :data:`MIN_DIVISOR` (see :func:`baud_divisor`).
    counter_bits : int
        Width of the receiver's saturating error counters.

    Attributes
    ----------
    rx : In(1)
        Line from the host.
    tx : Out(1)
        Line to the host.
    o : Out(stream.Signature(8))
        Bytes received (:class:`UartRx`).
    i : In(stream.Signature(8))
        Bytes to send (:class:`UartTx`).
    clear, framing_error, overrun, framing_errors, overruns, busy
        As in :class:`UartRx` and :class:`UartTx`.
    """

    def __init__(self, *, divisor, counter_bits=8):
        self._divisor = _check_divisor(divisor)
        self._counter_bits = _check_counter_bits(counter_bits)
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "o": Out(stream.Signature(DATA_BITS)),
            "i": In(stream.Signature(DATA_BITS)),
            "clear": In(1),
            "framing_error": Out(1),
            "overrun": Out(1),
            "framing_errors": Out(counter_bits),
            "overruns": Out(counter_bits),
            "busy": Out(1),
        })

    @property
    def divisor(self):
        return self._divisor

    @property
    def counter_bits(self):
        return self._counter_bits

    def elaborate(self, platform):
        m = Module()
        m.submodules.receiver = rx = UartRx(divisor=self._divisor,
                                            counter_bits=self._counter_bits)
        m.submodules.transmitter = tx = UartTx(divisor=self._divisor)
        wiring.connect(m, rx.o, wiring.flipped(self.o))
        wiring.connect(m, wiring.flipped(self.i), tx.i)
        m.d.comb += [
            rx.rx.eq(self.rx),
            self.tx.eq(tx.tx),
            rx.clear.eq(self.clear),
            self.framing_error.eq(rx.framing_error),
            self.overrun.eq(rx.overrun),
            self.framing_errors.eq(rx.framing_errors),
            self.overruns.eq(rx.overruns),
            self.busy.eq(tx.busy),
        ]
        return m


class UartEchoCore(wiring.Component):
    """Every byte received is sent back, through a FIFO: the logic of the echo board top.

    The FIFO absorbs a host that sends slightly faster than the rounded bit rate: each frame
    received then ends a little before the echo of the previous one does.

    Parameters
    ----------
    divisor : int or Fraction
        Clock cycles per bit, at least :data:`MIN_DIVISOR` (see :func:`baud_divisor`).
    fifo_depth : int
        Bytes the echo path can hold.

    Attributes
    ----------
    rx : In(1)
        Line from the host.
    tx : Out(1)
        Line to the host.
    framing_error, overrun : Out(1)
        Sticky flags of the receiver (see :class:`UartRx`).
    """

    def __init__(self, *, divisor, fifo_depth=16):
        self._divisor = _check_divisor(divisor)
        if isinstance(fifo_depth, bool) or not isinstance(fifo_depth, int) or fifo_depth < 1:
            raise ValueError(f"UART echo FIFO depth must be a positive integer, "
                             f"not {fifo_depth!r}")
        self._fifo_depth = fifo_depth
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "framing_error": Out(1),
            "overrun": Out(1),
        })

    @property
    def divisor(self):
        return self._divisor

    @property
    def fifo_depth(self):
        return self._fifo_depth

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart = uart = Uart(divisor=self._divisor)
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=DATA_BITS, depth=self._fifo_depth)
        wiring.connect(m, uart.o, fifo.w_stream)
        wiring.connect(m, fifo.r_stream, uart.i)
        m.d.comb += [
            uart.rx.eq(self.rx),
            self.tx.eq(uart.tx),
            self.framing_error.eq(uart.framing_error),
            self.overrun.eq(uart.overrun),
        ]
        return m


class UartEcho(Elaboratable):
    """Board top: :class:`UartEchoCore` on the platform's UART pins.

    LED 0 lights on a framing error, LED 1 on an overrun.

    Parameters
    ----------
    baud : int
        Bit rate; the divisor comes from the platform's default clock (:func:`baud_divisor`).
    fifo_depth : int
        Bytes the echo path can hold.
    """

    def __init__(self, *, baud=115200, fifo_depth=16):
        if isinstance(baud, bool) or not isinstance(baud, int) or baud < 1:
            raise ValueError(f"UART echo baud rate must be a positive integer, not {baud!r}")
        if isinstance(fifo_depth, bool) or not isinstance(fifo_depth, int) or fifo_depth < 1:
            raise ValueError(f"UART echo FIFO depth must be a positive integer, "
                             f"not {fifo_depth!r}")
        self.baud, self.fifo_depth = baud, fifo_depth

    def elaborate(self, platform):
        if platform is None:
            raise TypeError("UartEcho is a board top: build it for a platform "
                            "(imcgen.fpga.build), it requests the UART pins from it")
        m = Module()
        divisor = baud_divisor(platform.default_clk_frequency, self.baud)
        m.submodules.echo = echo = UartEchoCore(divisor=divisor, fifo_depth=self.fifo_depth)

        pins = platform.request("uart", 0, dir="-")  # the ULX3S has rts and dtr too
        m.submodules.rx_buffer = rx_buffer = io.Buffer("i", pins.rx)
        m.submodules.tx_buffer = tx_buffer = io.Buffer("o", pins.tx)
        m.d.comb += [echo.rx.eq(rx_buffer.i), tx_buffer.o.eq(echo.tx)]
        for n, flag in enumerate((echo.framing_error, echo.overrun)):
            led = io.Buffer("o", platform.request("led", n, dir="-"))
            m.submodules[f"led{n}_buffer"] = led
            m.d.comb += led.o.eq(flag)
        return m
