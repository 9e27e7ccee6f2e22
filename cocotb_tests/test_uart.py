# amaranth: UnusedElaboratable=no
"""UART: the RTL against cocotbext-uart (an independent UART model) and exact line patterns.

One design, :class:`imcgen.hdl.uart.Uart` (receiver and transmitter side by side, not looped),
per divisor. The cocotb tests read the divisor from ``IMCGEN_UART_DIVISOR``. Line patterns
driven by hand change ``rx`` at falling clock edges, so a level held for ``n`` cycles is seen
by exactly ``n`` rising edges.
"""

import os
import random
from fractions import Fraction
from itertools import pairwise

import cocotb
import pytest
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge, Timer, with_timeout
from cocotbext.uart import UartSink, UartSource

from imcgen.core.config import MacroConfig
from imcgen.hdl.uart import (
    INTEGER_BAUD_ERROR,
    MAX_BAUD_ERROR,
    MIN_DIVISOR,
    Uart,
    UartEchoCore,
    UartRx,
    UartTx,
    baud_divisor,
)
from imcgen.sim.runner import run_block
from imcgen.sim.tb.streams import (
    CLOCK_NS,
    StreamSink,
    StreamSource,
    reset_dut,
    seed_from_env,
    start_clock,
)

DIVISORS = {"div16": 16, "div7": 7}  # even and odd: mid-bit is divisor // 2 cycles in
#: A fractional divisor (3 Mbaud from 25 MHz): bits of 8 or 9 cycles, averaging 8.3125.
FRACTIONAL = Fraction(133, 16)

# -- parameters (no simulator) ----------------------------------------------------------------


def test_baud_divisor_rounds_to_nearest():
    assert baud_divisor(25_000_000, 115200) == 217  # 115207 baud, 0.006 % off
    assert baud_divisor(12_000_000, 115200) == 104  # 115385 baud, 0.16 % off
    assert baud_divisor(100_000_000, 1_000_000) == 100


def test_baud_divisor_takes_sixteenths_when_the_integer_is_off():
    # 25/3 = 8.33: the integer 8 would give 3.125 Mbaud (4.2 % off); 133/16 gives 3.0075
    # Mbaud (0.25 %), what the ULX3S's FT231X runs at 3 Mbaud.
    assert baud_divisor(25_000_000, 3_000_000) == Fraction(133, 16)
    assert baud_divisor(25_000_000, 2_000_000) == Fraction(25, 2)
    assert baud_divisor(25_000_000, 1_000_000) == 25
    assert baud_divisor(12_000_000, 3_000_000) == 4  # the iCEBreaker's FT2232H: exact
    # The integer is kept up to 0.5 % off (no accumulator), a sixteenth taken beyond.
    assert INTEGER_BAUD_ERROR == 0.005 and MAX_BAUD_ERROR == 0.02
    assert baud_divisor(12_000_000, 12_000_000 / 10.04) == 10
    assert baud_divisor(12_000_000, 12_000_000 / 10.06) == Fraction(161, 16)


def test_baud_divisor_refuses_too_fast_and_non_positive():
    with pytest.raises(ValueError) as error:
        baud_divisor(12_000_000, 4_000_000)
    assert str(error.value) == ("Baud rate 4000000 is too fast for a 1.2e+07 Hz clock: "
                                "3.00 cycles per bit, at least 4 needed")
    with pytest.raises(ValueError) as error:
        baud_divisor(12_000_000, 0)
    assert str(error.value) == "UART baud rate must be a positive number, not 0"
    with pytest.raises(ValueError) as error:
        baud_divisor("12e6", 9600)
    assert str(error.value) == "UART clock frequency must be a positive number, not '12e6'"


@pytest.mark.parametrize("cls", [UartRx, UartTx, Uart])
@pytest.mark.parametrize("divisor", [MIN_DIVISOR - 1, 0, 16.0, True, None, Fraction(63, 16),
                                     Fraction(81, 20)])
def test_bad_divisor_is_refused(cls, divisor):
    with pytest.raises(ValueError) as error:
        cls(divisor=divisor)
    assert str(error.value) == (f"UART divisor must be at least 4 clock cycles per bit, an "
                                f"integer or a Fraction in 1/16 steps, not {divisor!r}")


@pytest.mark.parametrize("depth", [0, 1.5, True])
def test_bad_echo_fifo_depth_is_refused(depth):
    with pytest.raises(ValueError) as error:
        UartEchoCore(divisor=16, fifo_depth=depth)
    assert str(error.value) == f"UART echo FIFO depth must be a positive integer, not {depth!r}"


@pytest.mark.parametrize("counter_bits", [0, -1, 2.5, False])
def test_bad_counter_width_is_refused(counter_bits):
    with pytest.raises(ValueError) as error:
        UartRx(divisor=16, counter_bits=counter_bits)
    assert str(error.value) == (f"UART error counter width must be a positive integer, "
                                f"not {counter_bits!r}")


def test_parameters_are_read_only_properties():
    uart = Uart(divisor=MIN_DIVISOR, counter_bits=3)
    assert (uart.divisor, uart.counter_bits) == (4, 3)
    assert len(uart.overruns) == 3 and len(uart.framing_errors) == 3
    with pytest.raises(AttributeError):
        uart.divisor = 5


# -- simulation --------------------------------------------------------------------------------


# Two designs share this module: cocotb's COCOTB_TEST_FILTER picks the tests of each.
@pytest.mark.parametrize("name", DIVISORS)
def test_uart(name, tmp_path, seed):
    divisor = DIVISORS[name]
    run_block(Uart(divisor=divisor), "uart", "test_uart", tmp_path, config=MacroConfig(),
              seed=seed, env={"IMCGEN_UART_DIVISOR": str(divisor),
                              "COCOTB_TEST_FILTER": r"\.(?!echo_)\w+$"})


def test_uart_fractional_divisor(tmp_path, seed):
    # The host's bits are 83 ns against the board's 83.125 on average (0.15 % off): random
    # bytes both ways under stalls, none lost or changed.
    run_block(Uart(divisor=FRACTIONAL), "uart_frac", "test_uart", tmp_path,
              config=MacroConfig(), seed=seed,
              env={"IMCGEN_UART_DIVISOR": str(FRACTIONAL),
                   "COCOTB_TEST_FILTER": r"\.random_bytes_both_ways_under_stalls$"})


def test_uart_echo(tmp_path, seed):
    divisor = DIVISORS["div16"]
    run_block(UartEchoCore(divisor=divisor, fifo_depth=8), "uart_echo", "test_uart", tmp_path,
              config=MacroConfig(), seed=seed,
              env={"IMCGEN_UART_DIVISOR": str(divisor), "COCOTB_TEST_FILTER": r"\.echo_\w+$"})


def _divisor():
    divisor = Fraction(os.environ["IMCGEN_UART_DIVISOR"])
    return int(divisor) if divisor.denominator == 1 else divisor


def _baud(bit_ns):
    """Baud rate for cocotbext-uart, which times a bit as ``int(1e9 / baud)`` ns."""
    baud = 1e9 / (bit_ns + 0.5)
    assert int(1e9 / baud) == bit_ns
    return baud


def _frame_ns():
    return 10 * _divisor() * CLOCK_NS


def _cycle():
    from cocotb.simtime import get_sim_time

    return int(get_sim_time("ns") // CLOCK_NS)


async def _start(dut):
    """Clock, idle inputs, reset; returns the seeded RNG."""
    await start_clock(dut)
    dut.rx.value = 1
    dut.clear.value = 0
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    await reset_dut(dut)
    return random.Random(seed_from_env())


def _frame(byte, stop=1):
    """``(level, cycles)`` pieces of one 8N1 frame at the design's divisor."""
    d = _divisor()
    return [(0, d)] + [((byte >> k) & 1, d) for k in range(8)] + [(stop, d)]


async def _drive(dut, pieces):
    """Drive ``rx`` from a falling edge: each ``(level, cycles)`` for exactly ``cycles`` edges."""
    await FallingEdge(dut.clk)
    for level, cycles in pieces:
        dut.rx.value = level
        await ClockCycles(dut.clk, cycles, rising=False)


async def _read(dut, *names):
    await ReadOnly()
    values = tuple(int(getattr(dut, name).value) for name in names)
    await RisingEdge(dut.clk)  # back to a writable phase
    return values


async def _line_bytes(sink, count, timeout_ns):
    async def collect():
        got = bytearray()
        while len(got) < count:
            got += await sink.read()
        return bytes(got)

    return await with_timeout(collect(), timeout_ns, "ns")


@cocotb.test()
async def random_bytes_both_ways_under_stalls(dut):
    rng = await _start(dut)
    bit_ns, count = round(_divisor() * CLOCK_NS), 48
    host = UartSource(dut.rx, baud=_baud(bit_ns))
    line = UartSink(dut.tx, baud=_baud(bit_ns))
    received = StreamSink(dut, "o", rng, stall=0.6)
    to_send = StreamSource(dut, "i", rng, idle=0.3)
    host_bytes = bytes(rng.randrange(256) for _ in range(count))
    device_bytes = bytes(rng.randrange(256) for _ in range(count))

    async def send_with_gaps():
        for byte in device_bytes:
            if rng.random() < 0.2:  # the line idles between some frames
                await ClockCycles(dut.clk, rng.randint(1, int(25 * _divisor())))
            await to_send.send(byte)

    async def host_with_gaps():
        for byte in host_bytes:
            if rng.random() < 0.2:
                await Timer(rng.randint(1, 3 * bit_ns), "ns")
            await host.write([byte])
            await host.wait()

    cocotb.start_soon(send_with_gaps())
    cocotb.start_soon(host_with_gaps())
    timeout = int(4 * count * _frame_ns())
    got_line = await _line_bytes(line, count, timeout)
    await with_timeout(received.wait(count), timeout, "ns")
    assert bytes(p for _, p in received.items) == host_bytes, f"seed {seed_from_env()}"
    assert got_line == device_bytes, f"seed {seed_from_env()}"
    errors = await _read(dut, "framing_errors", "overruns", "framing_error", "overrun")
    assert errors == (0, 0, 0, 0)


@cocotb.test()
async def back_to_back_frames_are_exactly_ten_bits_apart(dut):
    rng = await _start(dut)
    d, count = _divisor(), 6
    host = UartSource(dut.rx, baud=_baud(d * CLOCK_NS))
    received = StreamSink(dut, "o")
    to_send = StreamSource(dut, "i")
    host_bytes = bytes([0x00, 0xFF, 0x55, 0xAA] + [rng.randrange(256) for _ in range(count - 4)])
    device_bytes = bytes([0x00, 0xFF, 0xA5, 0x01] + [rng.randrange(256) for _ in range(count - 4)])

    # Sample tx every cycle from before the first frame: the exact line pattern.
    await FallingEdge(dut.clk)
    await host.write(host_bytes)  # the model sends its queue without gaps
    cocotb.start_soon(to_send.send_all(device_bytes))
    levels = []
    while len(levels) < 4 + count * 10 * d:
        await RisingEdge(dut.clk)
        await ReadOnly()
        level = int(dut.tx.value)
        if levels or level == 0:
            levels.append(level)
    expected = []
    for byte in device_bytes:
        for level, cycles in _frame(byte):
            expected += [level] * cycles
    assert levels == expected + [1] * 4

    await with_timeout(received.wait(count), 2 * count * _frame_ns(), "ns")
    assert bytes(p for _, p in received.items) == host_bytes
    arrivals = [cycle for cycle, _ in received.items]
    assert [b - a for a, b in pairwise(arrivals)] == [10 * d] * (count - 1)


@cocotb.test()
async def host_three_percent_off_is_still_read(dut):
    rng = await _start(dut)
    d = _divisor()
    skew = max(1, round(0.03 * d * CLOCK_NS))  # ns per bit: about 3 %
    received = StreamSink(dut, "o", rng, stall=0.3)
    expected = b""
    for bit_ns in (d * CLOCK_NS - skew, d * CLOCK_NS + skew):
        host = UartSource(dut.rx, baud=_baud(bit_ns))
        data = bytes(rng.randrange(256) for _ in range(24))
        await host.write(data)  # back to back: the skew adds up over a whole frame
        await host.wait()
        expected += data
        await Timer(2 * bit_ns, "ns")
    await with_timeout(received.wait(len(expected)), 100 * _frame_ns(), "ns")
    assert bytes(p for _, p in received.items) == expected
    assert await _read(dut, "framing_errors", "overruns") == (0, 0)


@cocotb.test()
async def low_stop_bit_is_a_framing_error_and_drops_the_byte(dut):
    await _start(dut)
    d = _divisor()
    received = StreamSink(dut, "o")
    await _drive(dut, _frame(0x3C, stop=0) + [(0, 2 * d), (1, 2 * d)])
    assert await _read(dut, "framing_error", "framing_errors", "overruns") == (1, 1, 0)
    assert received.items == []

    # A break (line low for three frames) is one framing error, and the link recovers.
    await _drive(dut, [(0, 30 * d), (1, 2 * d)] + _frame(0xC3) + [(1, d)])
    assert [p for _, p in received.items] == [0xC3]
    assert await _read(dut, "framing_error", "framing_errors") == (1, 2)

    dut.clear.value = 1
    await RisingEdge(dut.clk)
    dut.clear.value = 0
    assert await _read(dut, "framing_error", "framing_errors") == (0, 0)


@cocotb.test()
async def glitch_shorter_than_half_a_bit_starts_no_byte(dut):
    await _start(dut)
    d = _divisor()
    received = StreamSink(dut, "o")
    # Every low pulse shorter than half a bit, and one of exactly divisor // 2 cycles (the
    # mid-bit sample sees the line high again).
    for cycles in range(1, d // 2 + 1):
        await _drive(dut, [(0, cycles), (1, 11 * d)])
    assert received.items == []
    assert await _read(dut, "framing_errors", "overruns") == (0, 0)

    # One cycle longer and it is a start bit: with the line high after it, the frame reads
    # 0xFF with a good stop bit.
    await _drive(dut, [(0, d // 2 + 1), (1, 11 * d)])
    assert [p for _, p in received.items] == [0xFF]
    await _drive(dut, _frame(0x81) + [(1, d)])
    assert [p for _, p in received.items] == [0xFF, 0x81]
    assert await _read(dut, "framing_errors", "overruns") == (0, 0)


@cocotb.test()
async def overrun_keeps_the_waiting_byte_and_counts_the_dropped_ones(dut):
    rng = await _start(dut)
    d = _divisor()
    host = UartSource(dut.rx, baud=_baud(d * CLOCK_NS))
    data = bytes(rng.randrange(256) for _ in range(3))
    await host.write(data)  # nobody takes them: o.ready stays low
    await host.wait()
    await ClockCycles(dut.clk, d)
    assert await _read(dut, "o__valid", "o__payload", "overruns", "overrun") == (1, data[0], 2, 1)
    dut.o__ready.value = 1  # the waiting byte is the first one, unchanged
    assert await _read(dut, "o__valid", "o__payload") == (1, data[0])
    dut.o__ready.value = 0
    assert await _read(dut, "o__valid", "overruns") == (0, 2)
    dut.clear.value = 1
    await RisingEdge(dut.clk)
    dut.clear.value = 0
    assert await _read(dut, "overrun", "overruns") == (0, 0)


@cocotb.test()
async def byte_taken_in_the_cycle_the_next_completes_is_no_overrun(dut):
    # Frames from the model arrive exactly 10 * divisor cycles apart (checked above). The
    # first byte shows o.valid in cycle k; the second completes in cycle k - 1 + 10 * divisor.
    rng = await _start(dut)
    d = _divisor()
    for late, expect_overruns in ((0, 0), (1, 1)):
        host = UartSource(dut.rx, baud=_baud(d * CLOCK_NS))
        data = bytes(rng.randrange(256) for _ in range(2))
        await FallingEdge(dut.clk)
        await host.write(data)
        while not (await _read(dut, "o__valid"))[0]:
            pass
        first = _cycle() - 1  # _read returned one edge after the cycle it sampled
        take = first - 1 + 10 * d + late
        await ClockCycles(dut.clk, take - _cycle())
        dut.o__ready.value = 1  # high during cycle `take` only
        await RisingEdge(dut.clk)
        dut.o__ready.value = 0
        valid, payload, overruns = await _read(dut, "o__valid", "o__payload", "overruns")
        if expect_overruns:
            assert (valid, overruns) == (0, 1)  # the first was taken, the second lost
        else:
            assert (valid, payload, overruns) == (1, data[1], 0)
            dut.o__ready.value = 1
            await RisingEdge(dut.clk)
            dut.o__ready.value = 0
        await host.wait()
        await ClockCycles(dut.clk, 2 * d)
        dut.clear.value = 1
        await RisingEdge(dut.clk)
        dut.clear.value = 0


# -- the echo core (board top logic) -----------------------------------------------------------


@cocotb.test()
async def echo_returns_every_byte_of_a_fast_host(dut):
    # The host is 3 % fast and never pauses: the echo falls behind by 1/32 of a frame per
    # byte, 6 bytes after 200, which the FIFO (8 bytes here) absorbs; 2 bytes would overrun.
    await start_clock(dut)
    dut.rx.value = 1
    await reset_dut(dut)
    rng = random.Random(seed_from_env())
    bit_ns = _divisor() * CLOCK_NS
    fast = bit_ns - round(0.03 * bit_ns)
    host, line = UartSource(dut.rx, baud=_baud(fast)), UartSink(dut.tx, baud=_baud(bit_ns))
    data = bytes(rng.randrange(256) for _ in range(200))
    await host.write(data)
    assert await _line_bytes(line, len(data), 2 * len(data) * _frame_ns()) == data
    assert await _read(dut, "framing_error", "overrun") == (0, 0)
