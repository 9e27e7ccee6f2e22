"""The board top's host end in cocotb: frames over the UART pins, and the pseudo-terminal bridge.

:class:`UartLink` speaks the protocol (:mod:`imcgen.link.protocol`) on ``rx``/``tx`` through
cocotbext-uart, an independent UART model: the cocotb tests of the board top use it.

:func:`pty_bridge` (the cocotb test ``board_pty``) makes the simulated board a serial port: it
opens a pseudo-terminal, writes the name of its slave end (``/dev/pts/N``) to the file named by
``IMCGEN_PTY_FILE``, and from then on sends every byte a program writes there into ``rx`` and
every byte the board sends on ``tx`` back to the program, until the file named by
``IMCGEN_PTY_STOP`` appears. The host driver (:mod:`imcgen.fpga.host`) then runs unchanged against
the simulation: ``imcgen board --sim`` does all of this (:mod:`imcgen.fpga.board_sim`).
"""

import logging
import os
import select
import tty
from collections import deque
from pathlib import Path

import cocotb

from imcgen.link.protocol import XOFF, XON, FrameReader, encode_frame, parse_response
from imcgen.sim.tb.streams import CLOCK_NS, start_clock

__all__ = ["uart_baud", "UartLink", "pty_bridge", "IDLE_POLLS", "MACRO_CLOCK_NS",
           "start_clocks", "reset_domains"]

#: Polls without a byte on the line before the bridge starts pacing itself by wall time.
IDLE_POLLS = 500
#: The macro domain's clock period in simulation: unrelated to the link's (CLOCK_NS).
MACRO_CLOCK_NS = 7.3


async def start_clocks(dut, macro_ns=MACRO_CLOCK_NS):
    """The link's clock (``clk``, :data:`CLOCK_NS`) and the macro's (``macro_clk``)."""
    from cocotb.clock import Clock

    await start_clock(dut)
    cocotb.start_soon(Clock(dut.macro_clk, macro_ns, unit="ns").start())


async def reset_domains(dut, link=True, macro=True, cycles=3):
    """Hold the chosen domains' resets for ``cycles`` of their own clocks (both at once when
    both are chosen)."""
    from cocotb.triggers import ClockCycles, RisingEdge

    async def hold(clk, rst):
        await RisingEdge(clk)
        rst.value = 1
        await ClockCycles(clk, cycles)
        rst.value = 0
        await RisingEdge(clk)

    holds = [cocotb.start_soon(hold(clk, rst)) for chosen, clk, rst in
             ((link, dut.clk, dut.rst), (macro, dut.macro_clk, dut.macro_rst)) if chosen]
    for task in holds:
        await task


def uart_baud(divisor):
    """Baud rate for cocotbext-uart, which times a bit as ``int(1e9 / baud)`` ns: exactly
    ``divisor`` clock periods."""
    bit_ns = divisor * CLOCK_NS
    baud = 1e9 / (bit_ns + 0.5)
    assert int(1e9 / baud) == bit_ns
    return baud


class UartLink:
    """Frames to the board's ``rx``, responses from its ``tx`` (cocotbext-uart models), with
    the XON/XOFF flow control of a USB-UART doing it in hardware.

    Bytes to send wait in :attr:`pending`; a pump hands them to the UART model one at a time,
    at most one queued behind the byte on the line, and hands none while the board has said
    ``XOFF`` (so it stops within two bytes). A monitor reads every byte from ``tx``: ``XON``
    and ``XOFF`` steer the pump, the rest is :attr:`received` (what a host program reads).

    Parameters
    ----------
    dut : cocotb handle with ``rx`` and ``tx``
    divisor : int
        Clock cycles per bit of the board's UART.
    """

    def __init__(self, dut, divisor):
        from cocotb.queue import Queue
        from cocotb.triggers import Event
        from cocotbext.uart import UartSink, UartSource

        self.dut, self.divisor = dut, divisor
        self.source = UartSource(dut.rx, baud=uart_baud(divisor))
        self.source.queue = Queue(maxsize=1)  # one byte behind the line: XOFF stops us fast
        self.sink = UartSink(dut.tx, baud=uart_baud(divisor))
        for model in (self.source, self.sink):  # not a log line per byte
            model.log.setLevel(logging.WARNING)
        self.reader = FrameReader()
        self.frames = deque()
        self.seq = 0
        self.pending = deque()   # bytes to send
        self.received = bytearray()  # bytes from the board, flow control taken out
        self.flow = []            # the flow-control bytes the board sent, in order
        self.stopped = False      # the board said XOFF
        self._wake_pump, self._arrived = Event(), Event()
        cocotb.start_soon(self._pump())
        cocotb.start_soon(self._monitor())

    async def _pump(self):
        while True:
            if not self.pending or self.stopped:
                self._wake_pump.clear()
                await self._wake_pump.wait()
                continue
            await self.source.write(bytes([self.pending.popleft()]))

    async def _monitor(self):
        while True:
            for byte in await self.sink.read():
                if byte in (XON, XOFF):
                    self.flow.append(byte)
                    self.stopped = byte == XOFF
                    if not self.stopped:
                        self._wake_pump.set()
                else:
                    self.received.append(byte)
            self._arrived.set()

    @property
    def byte_ns(self):
        """One frame of 10 bits on the line."""
        return 10 * self.divisor * CLOCK_NS

    async def send(self, data):
        """Queue raw line bytes (returns at once; they go out back to back, paced by the
        board's XON/XOFF)."""
        self.pending.extend(bytes(data))
        self._wake_pump.set()

    @property
    def idle(self):
        """Nothing waits to be sent and nothing is on the line."""
        return not self.pending and self.source.idle()

    async def sent(self):
        """Until every queued byte has left."""
        from cocotb.triggers import Timer

        while self.pending:
            await Timer(self.byte_ns, "ns")
        await self.source.wait()

    def take(self):
        """The bytes received so far (flow control taken out), and forget them."""
        data = bytes(self.received)
        self.received.clear()
        return data

    def forget(self):
        """Drop whatever was received and any partial frame (after a reset of the board)."""
        self.take()
        self.reader = FrameReader()
        self.frames.clear()

    def frame(self, command, payload=b""):
        """``(seq, frame)``: a request frame with the next sequence byte."""
        seq, self.seq = self.seq, (self.seq + 1) & 0xFF
        return seq, encode_frame(command, seq, payload)

    async def next_frame(self, timeout_ns):
        """The next whole frame from ``tx`` (raises ``SimTimeoutError`` after ``timeout_ns``)."""
        from cocotb.triggers import with_timeout

        async def collect():
            while not self.frames:
                self.frames.extend(self.reader.feed(self.take()))
                if not self.frames:
                    self._arrived.clear()
                    await self._arrived.wait()
            return self.frames.popleft()

        return await with_timeout(collect(), timeout_ns, "ns")

    async def response(self, timeout_ns=None):
        """The next response, checked (CRC, escapes) by
        :func:`imcgen.link.protocol.parse_response`."""
        return parse_response(await self.next_frame(timeout_ns or 400 * self.byte_ns))

    async def call(self, command, payload=b"", timeout_ns=None):
        """Send one request and return its response (whose ``seq`` must match)."""
        seq, frame = self.frame(command, payload)
        await self.send(frame)
        response = await self.response(timeout_ns)
        assert response.seq == seq, (response, seq)
        return response

    async def silence(self, byte_times=3):
        """Assert that nothing but flow control arrives on ``tx`` for ``byte_times`` frames."""
        from cocotb.triggers import Timer

        await Timer(byte_times * self.byte_ns, "ns")
        assert not self.received and not self.frames and self.reader.pending == 0, \
            f"unexpected bytes from the board: {bytes(self.received).hex()}"


async def pty_bridge(dut, divisor, name_file, stop_file):
    """Relay a pseudo-terminal to the board's UART until ``stop_file`` exists.

    Polls every two bit times of simulation while bytes move. After a long silence (no byte
    either way for :data:`IDLE_POLLS` polls) it waits up to a millisecond of wall time for
    the host at each poll and advances 32 bit times, so an idle board neither spins a core
    nor crawls through a long computation.
    """
    from cocotb.triggers import Timer

    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no line editing, no CR/LF translation: a byte pipe
    os.set_blocking(master, False)
    await start_clocks(dut)
    dut.rx.value = 1
    link = UartLink(dut, divisor)
    await reset_domains(dut)
    Path(name_file).write_text(os.ttyname(slave))
    bit_ns = divisor * CLOCK_NS
    quiet = 0
    try:
        while not Path(stop_file).exists():
            try:
                data = os.read(master, 4096)
            except (BlockingIOError, OSError):  # EIO: no program has the slave open now
                data = b""
            if data:
                await link.send(data)
            out = link.take()
            while out:
                try:
                    out = out[os.write(master, out):]
                except BlockingIOError:
                    select.select([], [master], [], 0.01)
            if data or out or not link.idle or link.sink.active:
                quiet = 0
            else:
                quiet += 1
            if quiet > IDLE_POLLS:
                select.select([master], [], [], 0.001)
                await Timer(32 * bit_ns, "ns")
            else:
                await Timer(2 * bit_ns, "ns")
    finally:
        os.close(master)
        os.close(slave)


@cocotb.test()
async def board_pty(dut):
    """Serve the board top on a pseudo-terminal (``imcgen board --sim``)."""
    await pty_bridge(dut, int(os.environ["IMCGEN_UART_DIVISOR"]), os.environ["IMCGEN_PTY_FILE"],
                     os.environ["IMCGEN_PTY_STOP"])
