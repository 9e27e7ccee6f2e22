"""Weight mapper: signed weights to the levels of the crossbar cells (architecture section 2)."""

import numpy as np

__all__ = ["cell_levels", "column_index"]


def column_index(cfg):
    """Physical column of every ``(output, slice, polarity)``.

    Returns
    -------
    ndarray of int64, shape (outputs, slices, polarities)
        ``index[j, k, p] == cfg.column(j, k, p)``.
    """
    index = np.empty((cfg.outputs, cfg.slices, cfg.polarities), dtype=np.int64)
    for c, jkp in enumerate(cfg.column_map):
        index[jkp] = c
    return index


def cell_levels(cfg, W):
    """Level stored in every cell.

    Parameters
    ----------
    cfg : MacroConfig
    W : array_like of int, shape (rows * tiles, outputs)
        Weights, already checked against ``cfg.weight_min .. cfg.weight_max``.

    Returns
    -------
    ndarray of int64, shape (tiles, rows, physical_columns)
        Level of the cell at (tile, local row, physical column).
    """
    w = np.asarray(W, dtype=np.int64).reshape(cfg.tiles, cfg.rows, cfg.outputs)
    if cfg.weight_mapping == "differential":
        # Polarity 0 = G+ holds max(w, 0), polarity 1 = G- holds max(-w, 0).
        magnitude = np.stack([np.maximum(w, 0), np.maximum(-w, 0)], axis=-1)
    else:
        # ISAAC offset: w + 2^(Bw-1) is never negative, one column per slice.
        magnitude = (w + cfg.weight_offset)[..., np.newaxis]
    levels = np.zeros((cfg.tiles, cfg.rows, cfg.physical_columns), dtype=np.int64)
    index = column_index(cfg)
    for k, bits in enumerate(cfg.slice_bits):
        levels[:, :, index[:, k, :]] = (magnitude >> (k * cfg.cell_bits)) & ((1 << bits) - 1)
    return levels
