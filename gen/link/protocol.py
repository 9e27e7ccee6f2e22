"""The board link's protocol, host side: commands, SLIP framing, CRC-16, payload packing.

The board top (:mod:`imcgen.hdl.board_top`) answers it in hardware; the host driver
(:mod:`imcgen.fpga.host`) and the cocotb tests speak it through this module. docs/board.md is the
reference; in brief:

Frame
    ``END body END`` with SLIP byte stuffing (RFC 1055): inside ``body`` the byte ``END``
    (0xC0) is sent as ``ESC ESC_END`` (0xDB 0xDC) and ``ESC`` (0xDB) as ``ESC ESC_ESC``
    (0xDB 0xDD); protocol 2 also stuffs the flow-control bytes ``XON`` (0x11) as ``ESC ESC_XON``
    (0xDB 0xDE) and ``XOFF`` (0x13) as ``ESC ESC_XOFF`` (0xDB 0xDF). ``body`` =
    ``code, seq, payload..., crc_hi, crc_lo``: CRC-16/IBM-3740 (also
    known as CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no reflection, no
    final XOR; check value 0x29B1) over ``code, seq, payload``, most significant byte first.
    Empty frames (two ``END`` in a row) are ignored, so every frame may start with ``END``.
Flow control
    XON/XOFF both ways, outside the frames (a raw 0x11 or 0x13 on the line is never data): the
    board sends ``XOFF`` when its receive FIFO is nearly full and ``XON`` when it has drained
    (:func:`flow_levels`), and stops sending after the current byte on an ``XOFF`` from the
    host until an ``XON``. pyserial's ``xonxoff=True`` (or the USB-UART's own flow control)
    honours it on the host.
Request
    ``code`` is a :class:`Command`, ``seq`` any byte the host chooses (echoed back), the payload
    has the command's exact length (:meth:`imcgen.fpga.protocol.Codec.request_length`).
Response
    Exactly one per request, in order: ``code`` = the command with bit 7 set
    (:data:`OK_BIT`) and its payload, or :data:`ERROR` with an :data:`error payload
    <imcgen.hdl.board_top.error_layout>` (error code, offending command). A frame that is
    corrupted, malformed or truncated is answered with an error and never changes any state.

Payloads are layouts of the hardware (``imcgen.hdl``) packed little-endian into whole bytes:
bit ``n`` of the layout's value is bit ``n % 8`` of byte ``n // 8``; padding bits are 0.
The one codec (:mod:`imcgen.link.codec`) packs them with ``layout.const(...)`` and reads
them with ``layout.from_bits(...)``, so no field offset is written twice.
"""

import binascii
import json
import zlib
from dataclasses import dataclass
from enum import IntEnum

from imcgen.link.codec import nbytes, pack, unpack  # re-exported: payloads go through it

__all__ = [
    "PROTOCOL_VERSION", "END", "ESC", "ESC_END", "ESC_ESC", "XON", "XOFF", "ESC_XON",
    "ESC_XOFF", "STUFFED", "flow_levels", "OK_BIT", "ERROR",
    "Command", "LinkError", "crc16", "config_digest", "nbytes", "pack", "unpack",
    "escape", "encode_frame", "FrameReader", "Frame", "Response", "parse_response",
]

# 2: XON/XOFF flow control, 0x11 and 0x13 stuffed in frames. 3: the batch commands, the macro's
# own clock and a fractional UART divisor in INFO.
PROTOCOL_VERSION = 3

END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD
XON = 0x11   # DC1: resume sending
XOFF = 0x13  # DC3: stop sending after the current byte
ESC_XON = 0xDE
ESC_XOFF = 0xDF
#: The bytes a frame never holds raw, and the byte that follows ``ESC`` for each.
STUFFED = {END: ESC_END, ESC: ESC_ESC, XON: ESC_XON, XOFF: ESC_XOFF}

OK_BIT = 0x80  # response code of a command that succeeded: the command | OK_BIT
ERROR = 0xFF   # response code of an error response


class Command(IntEnum):
    """Request codes. The TRNG commands exist only in builds whose macro has a TRNG, the
    program command only with a programmable device; elsewhere they answer UNSUPPORTED."""

    INFO = 0x01         # -> info_layout: protocol version, features, config digest, clocking
    STATUS = 0x02       # -> status_layout: the macro's sticky flags and the link's counters
    CLEAR = 0x03        # clear the macro's flags and the link's counters -> nothing
    WEIGHTS = 0x10      # weight_row_layout -> program results (array mode), else nothing
    MVM = 0x11          # vector_layout -> result_layout (outputs and the cycle count)
    BATCH_WRITE = 0x12  # index, vector -> nothing: the vector into the batch memory
    BATCH_RUN = 0x13    # last index -> vectors and on-chip cycles of running 0..last back to back
    BATCH_READ = 0x14   # start, count -> count results of the last run (result_layout each)
    PROGRAM = 0x20      # write_verify.request_layout -> 0 or 1 program result
    TRNG_READ = 0x30    # count (1 byte) -> up to count random bytes
    TRNG_STATUS = 0x31  # -> the macro's trng_status
    TRNG_CLEAR = 0x32   # pulse trng_ctl.clear -> nothing
    TRNG_ENABLE = 0x33  # 1 byte, bit 0 -> trng_ctl.enable -> nothing


class LinkError(IntEnum):
    """First byte of an error response's payload: why the frame was refused."""

    CRC = 1          # the CRC does not match the frame
    SHORT = 2        # fewer than 4 bytes between the delimiters (code, seq, CRC)
    ESCAPE = 3       # ESC followed by something other than ESC_END or ESC_ESC
    COMMAND = 4      # unknown command code
    LENGTH = 5       # payload length differs from the command's
    TIMEOUT = 6      # the frame stopped arriving before its closing END (truncated)
    UNSUPPORTED = 7  # a known command this build does not have (no TRNG, ideal device)
    PADDING = 8      # a payload bit outside the command's layout is set (unused bits are 0)


# -- CRC and identity --------------------------------------------------------------------------


def crc16(data, value=0xFFFF):
    """CRC-16/IBM-3740 (CCITT-FALSE) of ``data``; ``binascii.crc_hqx`` computes exactly it."""
    return binascii.crc_hqx(bytes(data), value)


def config_digest(cfg):
    """32-bit identity of a configuration: CRC-32 of the canonical JSON of its hardware keys
    (every key but the ``[cost]`` table's, :meth:`MacroConfig.hardware_dict`).

    The board reports the digest of the configuration it was built for (INFO), so a host
    driving it with another configuration is refused instead of misreading every payload.
    """
    text = json.dumps(cfg.hardware_dict(), sort_keys=True, separators=(",", ":"))
    return zlib.crc32(text.encode())


# -- payloads ----------------------------------------------------------------------------------


# -- framing -----------------------------------------------------------------------------------


def flow_levels(depth):
    """``(xoff, xon)``: the receive FIFO levels (bytes) at which the board sends ``XOFF``
    (at or above) and, after it, ``XON`` (at or below).

    The ``depth // 8`` bytes above ``xoff`` are the host's reaction: the board's ``XOFF``
    waits for at most two bytes already leaving its UART, so a host that stops within
    ``depth // 8 - 3`` bytes of receiving it never overruns the FIFO (61 bytes for the
    512-byte FIFO; a USB-UART doing XON/XOFF in its own hardware stops within one or two).
    """
    return depth - depth // 8, depth // 4


_UNSTUFFED = {code: byte for byte, code in STUFFED.items()}


def escape(body):
    """SLIP byte stuffing of ``body`` (no delimiters): :data:`STUFFED` bytes as ``ESC`` and
    their code."""
    out = bytearray()
    for byte in body:
        if byte in STUFFED:
            out += bytes([ESC, STUFFED[byte]])
        else:
            out.append(byte)
    return bytes(out)


def encode_frame(code, seq, payload=b""):
    """A whole frame on the line: ``END escape(code seq payload crc) END``."""
    body = bytes([int(code) & 0xFF, int(seq) & 0xFF]) + bytes(payload)
    body += crc16(body).to_bytes(2, "big")
    return bytes([END]) + escape(body) + bytes([END])


@dataclass(frozen=True)
class Frame:
    """One frame between delimiters, unescaped; ``bad_escape`` if it held a bad escape."""

    body: bytes
    bad_escape: bool = False

    @property
    def crc_ok(self):
        return len(self.body) >= 4 and crc16(self.body[:-2]) == \
            int.from_bytes(self.body[-2:], "big")


class FrameReader:
    """Splits a byte stream into frames (the receiving half of the framing).

    Bytes before the first ``END`` are dropped (the stream may start mid-frame); empty frames
    are skipped; raw ``XON`` and ``XOFF`` (flow control, never data) are skipped wherever they
    come. :meth:`feed` returns the frames completed by the given bytes.
    """

    def __init__(self):
        self._body = bytearray()
        self._escaped = False
        self._bad = False
        self._synced = False

    def feed(self, data):
        frames = []
        for byte in bytes(data):
            if byte in (XON, XOFF):
                continue
            if not self._synced:
                self._synced = byte == END
                continue
            if byte == END:
                if self._body or self._bad or self._escaped:
                    frames.append(Frame(bytes(self._body), self._bad or self._escaped))
                self._body.clear()
                self._escaped = self._bad = False
            elif self._escaped:
                self._escaped = False
                if byte in _UNSTUFFED:
                    self._body.append(_UNSTUFFED[byte])
                else:
                    self._bad = True
            elif byte == ESC:
                self._escaped = True
            else:
                self._body.append(byte)
        return frames

    @property
    def pending(self):
        """Bytes of an unfinished frame."""
        return len(self._body)


@dataclass(frozen=True)
class Response:
    """A checked response: ``code`` (``command | OK_BIT`` or :data:`ERROR`), ``seq`` and the
    payload; for errors, ``error`` (a :class:`LinkError`) and ``command`` (the byte refused)."""

    code: int
    seq: int
    payload: bytes

    @property
    def ok(self):
        return self.code != ERROR

    @property
    def command(self):
        if self.ok:
            return Command(self.code & ~OK_BIT)
        return self.payload[1] if len(self.payload) > 1 else None

    @property
    def error(self):
        if self.ok:
            return None
        try:
            return LinkError(self.payload[0])
        except (IndexError, ValueError):
            return None


class ProtocolError(RuntimeError):
    """A response that breaks the protocol itself (bad CRC, bad escape, too short)."""


def parse_response(frame):
    """The :class:`Response` of a frame, or :class:`ProtocolError`."""
    if frame.bad_escape:
        raise ProtocolError(f"response with a bad escape: {frame.body.hex()}")
    if len(frame.body) < 4:
        raise ProtocolError(f"response of {len(frame.body)} bytes (at least 4): "
                            f"{frame.body.hex()}")
    if not frame.crc_ok:
        raise ProtocolError(f"response with a bad CRC: {frame.body.hex()}")
    code, seq = frame.body[0], frame.body[1]
    if code != ERROR:
        try:
            Command(code & ~OK_BIT)
        except ValueError:
            raise ProtocolError(f"response code 0x{code:02x} is no command") from None
        if not code & OK_BIT:
            raise ProtocolError(f"response code 0x{code:02x} lacks the OK bit")
    return Response(code, seq, frame.body[2:-2])
