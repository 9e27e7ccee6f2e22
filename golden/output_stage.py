"""Output stage: shift, ReLU, saturation, in that order (architecture section 6)."""

import numpy as np

__all__ = ["apply"]


def apply(cfg, sums):
    """Outputs from the adder network's sums.

    Parameters
    ----------
    cfg : MacroConfig
    sums : array_like of int

    Returns
    -------
    ndarray of int64, same shape as ``sums``
        ``sums >> out_shift`` (floor), then ``max(., 0)`` if ``out_relu``, then clamped to
        ``out_bits`` signed bits if ``out_bits > 0``; ``sums`` itself (as int64) when the
        stage changes nothing.
    """
    y = np.asarray(sums, dtype=np.int64)
    if cfg.out_shift:
        y = y >> cfg.out_shift
    if cfg.out_relu:
        y = np.maximum(y, 0)
    if cfg.out_bits:
        y = np.clip(y, -(1 << (cfg.out_bits - 1)), (1 << (cfg.out_bits - 1)) - 1)
    return y
