"""Adder network: the sum of the tiles' partial sums (architecture section 6)."""

import numpy as np

__all__ = ["add_tiles"]


def add_tiles(psums):
    """Sum over tiles (a binary tree in hardware; integer addition makes the order irrelevant).

    Parameters
    ----------
    psums : ndarray of int, shape (V, tiles, outputs)

    Returns
    -------
    ndarray of int64, shape (V, outputs)
    """
    psums = np.asarray(psums, dtype=np.int64)
    sums = psums[:, 0].copy()
    for t in range(1, psums.shape[1]):  # elementwise: a reduction over the short tile axis
        sums += psums[:, t]             # is several times slower
    return sums
