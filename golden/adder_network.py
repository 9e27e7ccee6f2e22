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
    return np.asarray(psums, dtype=np.int64).sum(axis=1)
