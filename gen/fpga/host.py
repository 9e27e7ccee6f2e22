"""Host driver of a board running the macro: the protocol of docs/board.md over pyserial.

::

    from imcgen import load_config
    from imcgen.fpga.host import Board

    cfg = load_config("small")
    with Board("/dev/ttyUSB0", cfg) as macro:   # checks the board runs this configuration
        macro.load_weights(W)
        y, cycles = macro.mvm(x)
        Y, cycles = macro.mvm_batch(X)           # a batch run on chip, results read back
        macro.runs                               # each run's vectors and on-chip cycles

The same class drives the simulated board of ``imcgen board --sim`` through a pseudo-terminal.
Requests are pipelined up to the board's receive FIFO (``INFO.rx_fifo_depth``), responses
matched by their sequence byte; ``mvm_batch`` stores the vectors in the board's batch memory,
runs them back to back at the macro's clock and reads the results back (BATCH_WRITE,
BATCH_RUN, BATCH_READ), so the on-chip rate is measured by the board's own cycle counter;
the port does XON/XOFF, so a burst beyond that (another host program's) is paced by the board
instead of overrunning it. An error response raises :class:`BoardError` naming the command and
the reason; a missing one raises :class:`LinkTimeout`.
"""

import time
from dataclasses import dataclass

import numpy as np

from imcgen.fpga.protocol import (
    ERROR,
    OK_BIT,
    PROTOCOL_VERSION,
    Codec,
    Command,
    FrameReader,
    ProtocolError,
    config_digest,
    encode_frame,
    parse_response,
)

__all__ = ["Board", "BoardError", "LinkTimeout", "ConfigMismatch", "open_serial", "Run"]


@dataclass(frozen=True)
class Run:
    """One batch run on the board: ``vectors`` run back to back in ``cycles`` of the macro's
    clock, counted on chip (BATCH_RUN), at ``macro_hz`` (INFO; 0 when unknown)."""

    vectors: int
    cycles: int
    macro_hz: int

    @property
    def mvm_per_s(self):
        """MVMs per second on chip (None without a known clock)."""
        return self.vectors * self.macro_hz / self.cycles if self.macro_hz else None


class BoardError(RuntimeError):
    """The board refused a request, or answered something the protocol does not allow."""


class LinkTimeout(BoardError):
    """No (complete) response within the timeout."""


class ConfigMismatch(BoardError):
    """The board was built for another configuration (or protocol version)."""


def open_serial(port, baud, timeout):
    """A pyserial port, raw 8N1 with XON/XOFF flow control (docs/board.md section 1): the
    operating system (or the USB-UART) stops sending on the board's XOFF."""
    import serial

    return serial.Serial(port, baudrate=baud, bytesize=8, parity="N", stopbits=1,
                         xonxoff=True, timeout=timeout, write_timeout=timeout)


class Board:
    """The macro on a board, over a serial port.

    Parameters
    ----------
    port : str or None
        Serial device (``/dev/ttyUSB0``, ``/dev/pts/3``...), or None with ``link``.
    config : MacroConfig
        The configuration the board was built from (checked against its INFO).
    baud : int
        Bit rate of the board's UART.
    timeout : float
        Seconds to wait for each response.
    link : file-like with read/write, optional
        An open serial port (anything with ``read(n)``, ``write(b)`` and ``in_waiting``).
    check : bool
        Read INFO and refuse a board built for another configuration (:class:`ConfigMismatch`).
    """

    def __init__(self, port, config, *, baud=115200, timeout=2.0, link=None, check=True):
        self.config = config
        self.codec = Codec(config)
        self.timeout = timeout
        self.link = link if link is not None else open_serial(port, baud, timeout)
        self.port = port
        self.reader = FrameReader()
        self.pending = []
        self.seq = 0
        self.window = 64  # bytes in flight until INFO tells the FIFO depth
        self.info = None
        self.runs = []    # the batch runs of the last mvm_batch
        self.line_bytes = [0, 0]  # bytes written to and read from the link
        try:
            self.link.reset_input_buffer()
        except AttributeError:
            pass
        if check:
            self.info = self.check_info()

    # -- context ----------------------------------------------------------------------------

    def close(self):
        self.link.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- transport --------------------------------------------------------------------------

    def _frame(self, command, payload):
        seq, self.seq = self.seq, (self.seq + 1) & 0xFF
        return seq, encode_frame(command, seq, payload)

    def _response(self, deadline):
        while not self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LinkTimeout(f"no response from the board within {self.timeout:g} s "
                                  f"({self.reader.pending} bytes of a frame received)")
            self.link.timeout = min(left, 0.2)
            data = self.link.read(max(1, getattr(self.link, "in_waiting", 0) or 1))
            self.line_bytes[1] += len(data or b"")
            if data:
                self.pending.extend(self.reader.feed(data))
        try:
            return parse_response(self.pending.pop(0))
        except ProtocolError as error:
            raise BoardError(str(error)) from None

    def calls(self, requests):
        """Send ``[(command, payload)]`` pipelined; return their responses, in order.

        At most ``rx_fifo_depth`` request bytes are in flight (unanswered), so the board's
        receive FIFO cannot overflow. An error response raises :class:`BoardError`.
        """
        requests = [(Command(c), bytes(p)) for c, p in requests]
        responses, flight = [], []  # flight: (seq, command, frame length)
        sent, in_flight = 0, 0
        while len(responses) < len(requests):
            while sent < len(requests):
                command, payload = requests[sent]
                seq, frame = self._frame(command, payload)
                if flight and in_flight + len(frame) > self.window:
                    self.seq = (self.seq - 1) & 0xFF
                    break
                self.link.write(frame)
                self.line_bytes[0] += len(frame)
                flight.append((seq, command, len(frame)))
                in_flight += len(frame)
                sent += 1
            response = self._response(time.monotonic() + self.timeout)
            seq, command, length = flight.pop(0)
            in_flight -= length
            if response.code == ERROR:
                error = response.error
                self._drain(len(flight))
                raise BoardError(f"the board refused {command.name} (seq {seq}): "
                                 f"{error.name if error else response.payload.hex()}")
            if (response.code, response.seq) != (command | OK_BIT, seq):
                self._drain(len(flight))
                raise BoardError(f"response 0x{response.code:02x} seq {response.seq} to "
                                 f"{command.name} seq {seq}: out of step")
            responses.append(response.payload)
        return responses

    def _drain(self, count):
        """Read (and drop) the responses of ``count`` requests still in flight, so that the
        next call starts in step with the board."""
        try:
            for _ in range(count):
                self._response(time.monotonic() + self.timeout)
        except BoardError:  # silence or garbage: nothing more to wait for
            self.pending.clear()

    def call(self, command, payload=b""):
        return self.calls([(command, payload)])[0]

    # -- commands ---------------------------------------------------------------------------

    def check_info(self):
        """INFO, checked against this host's configuration and protocol version."""
        info = self.codec.one(Command.INFO, self.call(Command.INFO))
        if info["version"] != PROTOCOL_VERSION:
            raise ConfigMismatch(f"the board speaks protocol version {info['version']}, this "
                                 f"host {PROTOCOL_VERSION}")
        if info["config_digest"] != config_digest(self.config):
            raise ConfigMismatch(f"the board runs another configuration (digest "
                                 f"0x{info['config_digest']:08x}, this one "
                                 f"0x{config_digest(self.config):08x}): build it with "
                                 f"imcgen fpga and the same --preset/--config/--set")
        self.window = max(16, info["rx_fifo_depth"])
        if info["batch_depth"] != self.codec.batch_depth:
            self.codec = Codec(self.config, batch_depth=info["batch_depth"])
        return info

    @property
    def baud(self):
        """The board's bit rate from INFO (its clock over its UART divisor), or None."""
        if not self.info or not self.info["clk_hz"]:
            return None
        return self.info["clk_hz"] / (self.info["divisor"] + self.info["divisor_frac"] / 16)

    def status(self):
        """The macro's sticky flags and the link's counters (a dict)."""
        return self.codec.one(Command.STATUS, self.call(Command.STATUS))

    def clear(self):
        """Clear the macro's sticky flags and the link's counters."""
        self.call(Command.CLEAR)

    def load_weights(self, W, program=False):
        """Load (or, ``program``, write-verify) every row of ``W``; returns the program
        results ``(N, 6)``: row, column, code, reads, pulses, status (empty when loading)."""
        from imcgen.core.checks import check_weights

        W = check_weights(self.config, W)
        payloads = self.calls([(Command.WEIGHTS, self.codec.weights(r, w, program))
                               for r, w in enumerate(W)])
        rows = [r for p in payloads for r in self.codec.program_results(Command.WEIGHTS, p)]
        return np.array(rows, dtype=np.int64).reshape(-1, 6)

    def mvm(self, x):
        """``(y, cycles)`` of one input vector."""
        Y, cycles = self.mvm_batch(np.asarray(x)[None, :])
        return Y[0], int(cycles[0])

    def mvm_batch(self, X, on_chip=True):
        """``(Y, cycles)`` of every row of ``X``.

        With a batch memory on the board (and ``on_chip``), each ``batch_depth`` vectors are
        written into it, run back to back at the macro's clock and read back; :attr:`runs`
        holds each run's on-chip cycle count (:class:`Run`). Otherwise every vector is an MVM
        request, pipelined.
        """
        from imcgen.core.checks import check_inputs

        X = check_inputs(self.config, X)
        codec, depth = self.codec, self.codec.batch_depth
        self.runs = []
        if not (on_chip and depth):
            payloads = self.calls([(Command.MVM, codec.vector(x)) for x in X])
            results = [codec.result(p) for p in payloads]
        else:
            results = []
            for start in range(0, len(X), depth):
                chunk = X[start:start + depth]
                n = len(chunk)
                requests = [(Command.BATCH_WRITE, codec.batch_write(k, x))
                            for k, x in enumerate(chunk)]
                requests.append((Command.BATCH_RUN, codec.batch_run(n)))
                requests += [(Command.BATCH_READ, codec.batch_read(k, min(255, n - k)))
                             for k in range(0, n, 255)]
                payloads = self.calls(requests)
                run = codec.one(Command.BATCH_RUN, payloads[n])
                got = [r for p in payloads[n + 1:] for r in codec.results(Command.BATCH_READ, p)]
                if run["vectors"] != n or len(got) != n:
                    raise BoardError(f"a batch run of {n} vectors answered {run['vectors']} "
                                     f"run and {len(got)} results")
                self.runs.append(Run(n, run["cycles"], (self.info or {}).get("macro_hz", 0)))
                results += got
        Y = np.array([y for y, _ in results], dtype=np.int64).reshape(-1, self.config.outputs)
        return Y, np.array([c for _, c in results], dtype=np.int64)

    def program(self, requests):
        """Write-verify single cells ``[(global row, physical column, target)]``; returns one
        result row per cell that exists (row, column, code, reads, pulses, status)."""
        self._needs(Command.PROGRAM, "a programmable device (device.kind rram or pcm)")
        payloads = self.calls([(Command.PROGRAM, self.codec.program(*r)) for r in requests])
        rows = [r for p in payloads for r in self.codec.program_results(Command.PROGRAM, p)]
        return np.array(rows, dtype=np.int64).reshape(-1, 6)

    def trng_enable(self, on=True):
        self._needs(Command.TRNG_ENABLE, "a TRNG")
        self.call(Command.TRNG_ENABLE, bytes([int(bool(on))]))

    def trng_clear(self):
        self._needs(Command.TRNG_CLEAR, "a TRNG")
        self.call(Command.TRNG_CLEAR)

    def trng_status(self):
        self._needs(Command.TRNG_STATUS, "a TRNG")
        return self.codec.one(Command.TRNG_STATUS, self.call(Command.TRNG_STATUS))

    def trng_read(self, count):
        """Up to ``count`` random bytes (fewer if the TRNG stops delivering: alarm, disabled)."""
        self._needs(Command.TRNG_READ, "a TRNG")
        out = bytearray()
        while len(out) < count:
            chunk = min(255, count - len(out))
            got = self.call(Command.TRNG_READ, bytes([chunk]))
            out += got
            if len(got) < chunk:
                break
        return bytes(out)

    def _needs(self, command, what):
        if command not in self.codec.supported:
            raise BoardError(f"{command.name} needs {what}; this configuration has none")

