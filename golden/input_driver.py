"""Input driver: input vectors to bit planes and plane weights (architecture section 3)."""

import numpy as np

__all__ = ["bit_planes", "plane_weights"]


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
