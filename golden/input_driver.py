"""Input driver: input vectors to bit planes and plane weights (architecture section 3)."""

import numpy as np

__all__ = ["bit_planes", "plane_counts", "plane_popcounts", "plane_weights", "plane_stream"]


def bit_planes(cfg, X):
    """Bit ``b`` of each input's ``input_bits``-bit two's-complement pattern.

    Parameters
    ----------
    cfg : MacroConfig
    X : array_like of int, shape (V, rows * tiles)

    Returns
    -------
    ndarray of int64 in {0, 1}, shape (V, input_bits, tiles, rows)
    """
    x = np.asarray(X, dtype=np.int64)
    x = x.reshape(x.shape[0], cfg.tiles, cfg.rows)
    b = np.arange(cfg.input_bits, dtype=np.int64)
    # int64 >> is arithmetic, so negative inputs yield their two's-complement bits.
    return (x[:, np.newaxis, :, :] >> b[:, np.newaxis, np.newaxis]) & 1


def plane_counts(cfg, X):
    """Active rows of each bit plane of each tile: a list over the planes (bit 0 first) of
    ``(V, tiles)`` unsigned arrays, equal to ``bit_planes(cfg, X).sum(axis=-1)`` plane by plane
    (test_golden checks it).

    Fast without building the planes. Each input's B-bit two's-complement pattern is spread by
    one multiplication so that bit ``j`` lands alone at bit ``j * f`` (``p * sum_j 2^(j(f-1))``
    puts copy ``j`` of ``p`` at ``j(f-1)``, non-overlapping for ``f > B``, and a mask keeps
    bit ``j`` of copy ``j``); ``f`` is wide enough for ``rows`` ones, so one sum over the rows
    counts every plane in its own field, carry-free. Planes go in chunks that fit 32 or 64
    bits. A few passes over ``X`` in all, where a plane-by-plane count takes ``2 * B``.
    """
    x = np.asarray(X)
    V, B = x.shape[0], cfg.input_bits
    field = cfg.rows.bit_length()  # a field holds a count up to rows
    out = []
    start = 0
    while start < B:
        chunk = B - start  # the largest chunk whose fields fit a word, at least one bit
        while chunk > 1 and chunk * max(field, chunk + 1) > 64:
            chunk -= 1
        f = max(field, chunk + 1)
        wide = np.uint32 if chunk * f <= 32 and start + chunk <= 32 else np.uint64
        # The bits start..start+chunk of the two's-complement pattern (the cast wraps
        # negative values modulo the word), spread and masked in place: one new array.
        spread = x.astype(wide)
        if start:
            spread >>= wide(start)
        if cfg.input_signed or start + chunk < B:  # checked unsigned inputs have B bits
            spread &= wide((1 << chunk) - 1)
        spread *= wide(sum(1 << (j * (f - 1)) for j in range(chunk)))
        spread &= wide(sum(1 << (j * f) for j in range(chunk)))
        sums = np.einsum("vtr->vt", spread.reshape(V, cfg.tiles, cfg.rows))
        for j in range(chunk):
            out.append((sums >> wide(j * f)) & wide((1 << f) - 1))
        start += chunk
    return out


def plane_popcounts(cfg, X):
    """:func:`plane_counts` as one array ``(V, input_bits, tiles)``."""
    return np.stack(plane_counts(cfg, X), axis=1).astype(np.int64)


def plane_weights(cfg):
    """Weight of each plane: ``2^b``, or ``-2^(input_bits-1)`` for the MSB of signed inputs.

    Returns
    -------
    ndarray of int64, shape (input_bits,)
    """
    weights = np.left_shift(np.int64(1), np.arange(cfg.input_bits, dtype=np.int64))
    if cfg.input_signed:
        weights[-1] = -weights[-1]
    return weights


def plane_stream(cfg, vector):
    """The planes the driver of one tile emits for one vector, in order (block-level view).

    Parameters
    ----------
    cfg : MacroConfig
    vector : sequence of int, length ``rows``
        One tile's inputs.

    Returns
    -------
    list of dict with ``bits`` (int, bit r = row r), ``index``, ``neg`` and ``last``
        Planes LSB first. ``zero_skip`` leaves out all-zero planes; if every plane is zero it
        emits plane 0 alone, empty, so that the vector still closes.
    """
    pattern = [int(x) & ((1 << cfg.input_bits) - 1) for x in vector]
    planes = [sum(((x >> b) & 1) << r for r, x in enumerate(pattern))
              for b in range(cfg.input_bits)]
    order = list(range(cfg.input_bits))
    if cfg.schedule == "zero_skip":
        order = [b for b in order if planes[b]] or [0]
    top = cfg.input_bits - 1
    return [dict(bits=planes[b], index=b, neg=int(cfg.input_signed and b == top),
                 last=int(n == len(order) - 1)) for n, b in enumerate(order)]
