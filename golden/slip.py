"""Reference of the hardware SLIP framing (:mod:`imcgen.hdl.slip`): the tokens the decoder
passes on for a line, and the line the encoder sends for a response.

Written from RFC 1055 and docs/board.md, independent of the hardware: bytes before the first
``END`` are dropped (the line may start mid-frame), empty frames are skipped, ``ESC ESC_END``
is a data ``END``, ``ESC ESC_ESC`` a data ``ESC``, ``ESC ESC_XON`` a data ``XON`` and
``ESC ESC_XOFF`` a data ``XOFF``; an escape followed by anything else marks the frame bad (its
end is ``BAD_END``), and so does a frame that ends inside an escape. Raw ``XON``/``XOFF`` are
flow control and never reach the decoder (:mod:`imcgen.golden.flow` takes them off the line).
"""

from imcgen.link.protocol import (
    END,
    ESC,
    ESC_END,
    ESC_ESC,
    ESC_XOFF,
    ESC_XON,
    XOFF,
    XON,
    crc16,
    escape,
)

__all__ = ["DATA", "FRAME_END", "BAD_END", "TIMEOUT", "tokens", "frame"]

# Token kinds, as the hardware's Token enum numbers them (docs/board.md).
DATA, FRAME_END, BAD_END, TIMEOUT = 0, 1, 2, 3


_DATA_OF = {ESC_END: END, ESC_ESC: ESC, ESC_XON: XON, ESC_XOFF: XOFF}  # docs/board.md section 1


def tokens(line):
    """``[(kind, data)]`` the decoder emits for the bytes ``line`` (no timeout inside);
    ``data`` is 0 for the end tokens."""
    out = []
    hunting, escaped, started, bad = True, False, False, False
    for byte in line:
        if hunting:
            hunting = byte != END
            continue
        if escaped:
            escaped = False
            if byte in _DATA_OF:
                out.append((DATA, _DATA_OF[byte]))
            elif byte == END:  # the frame ends inside the escape
                out.append((BAD_END, 0))
                started = bad = False
            else:
                bad = True
            continue
        if byte == END:
            if started:
                out.append((BAD_END if bad else FRAME_END, 0))
            started = bad = False
        elif byte == ESC:
            escaped, started = True, True
        else:
            out.append((DATA, byte))
            started = True
    return out


def frame(body):
    """The line the encoder sends for the response bytes ``body``: ``END``, then ``body`` and
    its CRC-16 (most significant byte first) stuffed, then ``END``."""
    body = bytes(body)
    return bytes([END]) + escape(body + crc16(body).to_bytes(2, "big")) + bytes([END])
