"""The one payload codec: values packed through Amaranth layouts, one at a time or in batches.

Every party that exchanges payloads with the RTL goes through here: the cocotb testbenches
(:mod:`imcgen.sim.tb.streams`), the fast engine's job files (:mod:`imcgen.sim.fast`) and the
host side of the board link (:mod:`imcgen.link.protocol`). One value is packed with
``layout.const(value)`` and read with ``layout.from_bits(word)``, so no field offset or width
is written twice; batches are packed from the offsets the layout itself gives, vectorised.

Bytes on the link are little-endian: bit ``n`` of a value is bit ``n % 8`` of byte ``n // 8``,
padding bits 0.
"""

from enum import Enum

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["encode", "decode", "nbytes", "pack", "unpack", "leaves", "words", "pack_rows",
           "unpack_rows", "row_int"]


def _width(layout):
    return Shape.cast(layout).width


def encode(layout, value):
    """The bits of ``value`` (nested dicts, lists and ints) in ``layout`` (a layout or shape)."""
    if isinstance(layout, data.Layout):
        return layout.const(value).as_bits()
    return int(value) & ((1 << _width(layout)) - 1)


def _plain(value):
    if isinstance(value, data.Const):
        layout = value.shape()
        if isinstance(layout, data.ArrayLayout):
            return [_plain(value[n]) for n in range(layout.length)]
        return {name: _plain(value[name]) for name, _ in layout}
    if isinstance(value, Enum):  # an enum-shaped field reads as its member: give its number
        return int(value.value)
    return int(value)


def decode(layout, word):
    """``word`` read through ``layout``: nested dicts (structs), lists (arrays) and ints."""
    if isinstance(layout, data.Layout):
        return _plain(layout.from_bits(int(word)))
    shape = Shape.cast(layout)
    word = int(word) & ((1 << shape.width) - 1)
    if shape.signed and word >> (shape.width - 1):
        word -= 1 << shape.width
    return word


def nbytes(layout):
    """Bytes a value of ``layout`` (a layout or shape) takes in a payload."""
    return (_width(layout) + 7) // 8


def pack(layout, value):
    """``value`` in ``layout``, as payload bytes."""
    return encode(layout, value).to_bytes(nbytes(layout), "little")


def unpack(layout, payload):
    """Payload bytes read through ``layout`` (see :func:`decode`)."""
    if len(payload) != nbytes(layout):
        raise ValueError(f"payload of {len(payload)} bytes for a {nbytes(layout)}-byte layout")
    return decode(layout, int.from_bytes(payload, "little"))


# -- batches ---------------------------------------------------------------------------------


def words(bits):
    """32-bit words holding ``bits`` bits (at least one)."""
    return max(1, (bits + 31) // 32)


def leaves(layout):
    """``(offset, width, signed)`` of every scalar field of a layout, in field order, at the
    offsets the layout itself gives (arrays and structs, nested)."""
    out = []

    def walk(shape, base):
        if isinstance(shape, data.Layout):
            for _, field in shape:
                walk(field.shape, base + field.offset)
        else:
            cast = Shape.cast(shape)
            out.append((base, cast.width, cast.signed))

    walk(layout, 0)
    return out


def _groups(layout):
    """Leaves grouped by (width, signed): ``[(width, signed, leaf indices, offsets)]``."""
    found = {}
    for n, (offset, width, signed) in enumerate(leaves(layout)):
        found.setdefault((width, signed), []).append((n, offset))
    return [(w, s, np.array([n for n, _ in items]), np.array([o for _, o in items]))
            for (w, s), items in found.items()]


def _chunks(count, per_item):
    step = max(1, 4_000_000 // max(1, per_item))
    return [(lo, min(count, lo + step)) for lo in range(0, count, step)]


def pack_rows(layout, values):
    """Words of ``values`` (int array ``(N, leaves)``) in ``layout``: uint32 ``(N, words)``,
    least significant word first, as :func:`encode` packs each row."""
    values = np.asarray(values, dtype=np.int64)
    count = len(values)
    n_words = words(_width(layout))
    out = np.zeros((count, n_words), dtype=np.uint32)
    groups = _groups(layout)
    if not count:
        return out
    for lo, hi in _chunks(count, n_words * 32 + values.shape[1] * 8):
        bits = np.zeros((hi - lo, n_words * 32), dtype=np.uint8)
        for width, _, index, offsets in groups:
            field = values[lo:hi, index].astype(np.uint64) & np.uint64((1 << width) - 1)
            shifts = np.arange(width, dtype=np.uint64)
            bits[:, (offsets[:, None] + np.arange(width)).ravel()] = \
                ((field[:, :, None] >> shifts) & np.uint64(1)).reshape(hi - lo, -1)
        out[lo:hi] = np.packbits(bits, axis=1, bitorder="little").view("<u4")
    return out


def unpack_rows(layout, rows):
    """Field values (int64 ``(N, leaves)``) of uint32 ``rows`` ``(N, words)`` in ``layout``,
    signed fields sign-extended, as :func:`decode` reads each row."""
    rows = np.ascontiguousarray(rows, dtype="<u4")
    count = len(rows)
    groups = _groups(layout)
    out = np.zeros((count, sum(len(g[2]) for g in groups)), dtype=np.int64)
    for lo, hi in _chunks(count, rows.shape[1] * 32 * 2):
        bits = np.unpackbits(rows[lo:hi].view(np.uint8), axis=1, bitorder="little")
        for width, signed, index, offsets in groups:
            if width > 63:
                raise ValueError(f"a {width}-bit field does not fit an int64")
            cols = offsets[:, None] + np.arange(width)
            field = (bits[:, cols].astype(np.int64) << np.arange(width)).sum(axis=-1)
            if signed:
                field -= ((field >> (width - 1)) & 1) << width
            out[lo:hi, index] = field
    return out


def row_int(row_words):
    """One row of :func:`pack_rows` as an int (for a check against :func:`encode`)."""
    return int.from_bytes(np.asarray(row_words, dtype="<u4").tobytes(), "little")
