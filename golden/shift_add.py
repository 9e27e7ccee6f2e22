"""Shift-and-add: slices and planes to a tile's partial sums (architecture section 6)."""

import numpy as np

from imcgen.golden.weight_mapper import column_index

__all__ = ["read_values", "tile_psums"]


def read_values(cfg, codes, active_counts):
    """Value of one read for every output, from the ADC codes of all physical columns.

    Parameters
    ----------
    cfg : MacroConfig
    codes : ndarray of int, shape (..., physical_columns)
        ADC codes of the read.
    active_counts : ndarray of int, shape (...)
        Rows the read activates; used by the offset mapping only.

    Returns
    -------
    ndarray of int64, shape (..., outputs)
        Differential: ``sum_k 2^(k*s) (Q+ - Q-)``; offset:
        ``sum_k 2^(k*s) Q - 2^(Bw-1) * active_counts``.
    """
    codes = np.asarray(codes, dtype=np.int64)
    q = codes[..., column_index(cfg)]  # (..., outputs, slices, polarities)
    significance = np.left_shift(np.int64(1), cfg.cell_bits * np.arange(cfg.slices,
                                                                          dtype=np.int64))
    if cfg.weight_mapping == "differential":
        value = ((q[..., 0] - q[..., 1]) * significance).sum(axis=-1)
    else:
        # ISAAC correction from the read's own popcount: exact even when the read clips.
        counts = np.asarray(active_counts, dtype=np.int64)
        value = (q[..., 0] * significance).sum(axis=-1) - cfg.weight_offset * counts[..., None]
    return value


def tile_psums(cfg, read_vals, plane_weights, issued):
    """Partial sum of each tile: plane weight times read value, over planes and issued reads.

    Parameters
    ----------
    cfg : MacroConfig
    read_vals : ndarray of int, shape (V, input_bits, tiles, groups_per_plane, outputs)
    plane_weights : ndarray of int, shape (input_bits,)
    issued : ndarray of bool, shape (V, input_bits, tiles, groups_per_plane)

    Returns
    -------
    ndarray of int64, shape (V, tiles, outputs)
    """
    read_vals = np.asarray(read_vals, dtype=np.int64)
    per_plane = np.where(np.asarray(issued)[..., np.newaxis], read_vals, 0).sum(axis=3)
    weights = np.asarray(plane_weights, dtype=np.int64)[:, np.newaxis, np.newaxis]
    return (per_plane * weights).sum(axis=1)
