"""Crossbar stub: the column values one read samples (architecture section 5)."""

import numpy as np

__all__ = ["column_values", "held_values", "compare"]

# Bound on the elements of the (vectors, planes, tiles, reads, rows) row-enable intermediate.
_CHUNK_ELEMENTS = 20_000_000


def column_values(cfg, levels, planes, groups):
    """Sum of the levels of the rows each read activates, for every physical column.

    Parameters
    ----------
    cfg : MacroConfig
    levels : ndarray of int, shape (tiles, rows, physical_columns)
        From :func:`imcgen.golden.weight_mapper.cell_levels`.
    planes : ndarray of int, shape (V, input_bits, tiles, rows)
        Row bits from :func:`imcgen.golden.input_driver.bit_planes`.
    groups : ndarray of int, shape (V, input_bits, tiles, rows)
        Read index of each row from :func:`imcgen.golden.row_scheduler.read_groups`.

    Returns
    -------
    ndarray of int64, shape (V, input_bits, tiles, groups_per_plane, physical_columns)
        Reads that are not issued activate no row and have value 0.
    """
    levels = np.asarray(levels, dtype=np.int64)
    planes = np.asarray(planes, dtype=np.int64)
    groups = np.asarray(groups, dtype=np.int64)
    V = groups.shape[0]
    G = cfg.groups_per_plane
    read = np.arange(G, dtype=np.int64)[:, np.newaxis]
    values = np.empty((V, cfg.input_bits, cfg.tiles, G, cfg.physical_columns), dtype=np.int64)
    per_vector = cfg.input_bits * cfg.tiles * G * max(cfg.rows, cfg.physical_columns)
    chunk = max(1, _CHUNK_ELEMENTS // per_vector)
    for start in range(0, V, chunk):
        part = slice(start, start + chunk)
        # Row enables of every read: (v, planes, tiles, reads, rows) in {0, 1}.
        enable = ((groups[part, ..., np.newaxis, :] == read)
                  & (planes[part, ..., np.newaxis, :] == 1)).astype(np.int64)
        # Batched over (v, planes, tiles); levels broadcasts over v and planes.
        values[part] = enable @ levels
    return values


def held_values(levels, rows):
    """Column values one sample holds (block-level view of a single tile and read).

    Parameters
    ----------
    levels : ndarray of int, shape (rows, columns)
        Cell levels of one tile.
    rows : int
        Row enables at the sample, bit r = row r.

    Returns
    -------
    ndarray of int64, shape (columns,)
    """
    levels = np.asarray(levels, dtype=np.int64)
    active = (rows >> np.arange(levels.shape[0], dtype=object)) & 1
    return active.astype(np.int64) @ levels


def compare(cfg, held, dac):
    """Comparator answers: ``held >= dac`` per ADC lane (architecture section 8).

    Parameters
    ----------
    cfg : MacroConfig
    held : array_like of int
        Held column values.
    dac : array_like of int
        DAC codes, same shape.

    Returns
    -------
    ndarray of bool
    """
    return np.asarray(held, dtype=np.int64) >= np.asarray(dac, dtype=np.int64)
