"""Reference of the board link's executor (:mod:`imcgen.hdl.executor`): the answer the board
gives to each frame of a line, from the rules of docs/board.md alone.

Raw ``XON``/``XOFF`` are flow control (:mod:`imcgen.golden.flow`), off the line before the
framing, which is :mod:`imcgen.golden.slip`'s; then each closed frame is checked in the
documented order (SHORT, CRC, COMMAND, UNSUPPORTED, LENGTH, PADDING; ESCAPE for a frame with a
bad escape). What a configuration's build accepts (its commands and their payload widths in
bits) is passed in, so nothing here reads the hardware.
"""

from imcgen.golden import flow, slip
from imcgen.link.protocol import END, ERROR, OK_BIT, Command, LinkError, crc16

__all__ = ["answers"]


def answers(line, payload_bits, supported, hunting=False):
    """``[(code, seq, error, command, payload)]`` for each frame the board closes in
    ``line``: the response code (command | OK_BIT, or ERROR), the echoed sequence byte, the
    :class:`LinkError` (None when the command runs), the command byte (0 when the frame held
    none; an error response names it) and the request's payload bytes.

    ``payload_bits``: command -> payload width in bits, for the commands with a payload;
    ``supported``: the commands the build answers. ``hunting``: the board waits for a
    delimiter (after reset or a timeout); otherwise it is between frames.
    """
    known = {c.value for c in Command}
    out, body = [], bytearray()
    line, _ = flow.split(line)
    for kind, data in slip.tokens(line if hunting else bytes([END]) + line):
        if kind == slip.DATA:
            body.append(data)
            continue
        command = body[0] if body else 0
        seq = body[1] if len(body) > 1 else 0
        payload = bytes(body[2:-2])
        bits = payload_bits.get(command, 0)
        error = None
        if kind == slip.BAD_END:
            error = LinkError.ESCAPE
        elif len(body) < 4:
            error = LinkError.SHORT
        elif crc16(bytes(body[:-2])) != int.from_bytes(body[-2:], "big"):
            error = LinkError.CRC
        elif command not in known:
            error = LinkError.COMMAND
        elif command not in {int(c) for c in supported}:
            error = LinkError.UNSUPPORTED
        elif len(payload) != (bits + 7) // 8:
            error = LinkError.LENGTH
        elif int.from_bytes(payload, "little") >> bits:
            error = LinkError.PADDING
        out.append((ERROR if error else command | OK_BIT, seq, error, command, payload))
        body.clear()
    return out
