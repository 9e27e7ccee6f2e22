"""Input driver: input vectors to bit planes and plane weights (architecture section 3)."""

import numpy as np

__all__ = ["bit_planes", "plane_weights", "plane_stream"]


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
