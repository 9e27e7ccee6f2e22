"""Reference of the link's XON/XOFF flow control (:mod:`imcgen.hdl.flow`), from docs/board.md.

Receive side: a raw ``XON`` or ``XOFF`` from the host is flow control, never data (frames
stuff both): ``XOFF`` stops the board's sending after the current byte, ``XON`` resumes it;
every other byte goes on to the receive FIFO, in order.

Send side: the board sends ``XOFF`` when its receive FIFO holds ``xoff`` bytes or more and
``XON`` after it when the FIFO is down to ``xon`` or fewer (:func:`imcgen.link.protocol.
flow_levels`); after a reset it sends one ``XON`` (a host stopped before the reset resumes).
So the two alternate from a reset, ``XON`` first, and neither waits for a host ``XON``.
"""

from imcgen.link.protocol import XOFF, XON

__all__ = ["split", "flow_bytes_alternate"]


def split(line, paused=False):
    """``(data, paused)``: the bytes of ``line`` that reach the receive FIFO, and whether the
    board's sending is stopped after it (``paused``: stopped before it)."""
    data = bytearray()
    for byte in bytes(line):
        if byte == XON:
            paused = False
        elif byte == XOFF:
            paused = True
        else:
            data.append(byte)
    return bytes(data), paused


def flow_bytes_alternate(sent):
    """Whether the flow-control bytes the board sent since a reset (``sent``, in order)
    alternate ``XON``, ``XOFF``, ``XON``, ... as the rule says."""
    return all(byte == (XON if n % 2 == 0 else XOFF) for n, byte in enumerate(sent))
