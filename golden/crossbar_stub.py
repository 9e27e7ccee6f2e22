"""Crossbar: the column values a read samples and the comparators' answers.

The one crossbar model: the golden model uses it batched over vectors and reads, the cocotb-side
crossbar (``imcgen.sim.tb.analog``) one read at a time (architecture sections 5 and 8,
docs/write_verify.md section 1). Cells hold states (``golden.device``); for ideal devices a
state is the level itself.
"""

import numpy as np

from imcgen.golden.blas import matmul_exact

__all__ = ["column_values", "read_enables", "tile_products", "held_values", "held_row_values",
           "compare"]

# Bound on the elements of the (vectors, planes, tiles, reads, rows) row-enable intermediate.
_CHUNK_ELEMENTS = 20_000_000


def read_enables(cfg, planes, groups):
    """Row enables of every read: (V, input_bits, tiles, groups_per_plane, rows) in {0, 1}.

    Reads that are not issued activate no row.
    """
    planes = np.asarray(planes, dtype=np.int64)
    groups = np.asarray(groups, dtype=np.int64)
    read = np.arange(cfg.groups_per_plane, dtype=np.int64)[:, np.newaxis]
    return ((groups[..., np.newaxis, :] == read)
            & (planes[..., np.newaxis, :] == 1)).astype(np.int64)


def tile_products(enable, matrix):
    """Row enables against each tile's matrix: ``enable`` (..., tiles, reads, rows) in {0, 1},
    ``matrix`` (tiles, rows, columns) of non-negative integers -> int64 (..., tiles, reads,
    columns).

    One BLAS product per tile over every read of the batch (a broadcast matmul would loop over
    small products), exact (:func:`imcgen.golden.blas.matmul_exact`): an enable is 0 or 1, so
    no partial sum exceeds the column's total.
    """
    enable = np.asarray(enable)
    matrix = np.asarray(matrix, dtype=np.int64)
    tiles, rows, columns = matrix.shape
    lead, reads = enable.shape[:-3], enable.shape[-2]
    bound = int(matrix.sum(axis=1).max()) if matrix.size else 0  # enables are 0 or 1
    flat = np.moveaxis(enable, -3, 0).reshape(tiles, -1, rows)
    out = np.empty((tiles, flat.shape[1], columns), dtype=np.int64)
    for t in range(tiles):
        out[t] = matmul_exact(flat[t], matrix[t], bound)
    return np.moveaxis(out.reshape(tiles, *lead, reads, columns), 0, -3)


def column_values(cfg, states, planes, groups):
    """Sum of the states of the rows each read activates, for every physical column.

    Parameters
    ----------
    cfg : MacroConfig
    states : ndarray of int, shape (tiles, rows, physical_columns)
        Cell states (:mod:`imcgen.golden.device`; the levels themselves for ideal devices).
    planes : ndarray of int, shape (V, input_bits, tiles, rows)
        Row bits from :func:`imcgen.golden.input_driver.bit_planes`.
    groups : ndarray of int, shape (V, input_bits, tiles, rows)
        Read index of each row from :func:`imcgen.golden.row_scheduler.read_groups`.

    Returns
    -------
    ndarray of int64, shape (V, input_bits, tiles, groups_per_plane, physical_columns)
        Reads that are not issued activate no row and have value 0.
    """
    states = np.asarray(states, dtype=np.int64)
    planes = np.asarray(planes, dtype=np.int64)
    groups = np.asarray(groups, dtype=np.int64)
    V = groups.shape[0]
    G = cfg.groups_per_plane
    values = np.empty((V, cfg.input_bits, cfg.tiles, G, cfg.physical_columns), dtype=np.int64)
    per_vector = cfg.input_bits * cfg.tiles * G * max(cfg.rows, cfg.physical_columns)
    chunk = max(1, _CHUNK_ELEMENTS // per_vector)
    for start in range(0, V, chunk):
        part = slice(start, start + chunk)
        enable = read_enables(cfg, planes[part], groups[part])
        values[part] = tile_products(enable, states)
    return values


def held_values(states, rows):
    """Column values one sample holds (one tile, one read: the cocotb-side crossbar's view).

    Parameters
    ----------
    states : ndarray of int, shape (rows, columns)
        Cell states of one tile.
    rows : int
        Row enables at the sample, bit r = row r.

    Returns
    -------
    ndarray of int64, shape (columns,)
    """
    states = np.asarray(states, dtype=np.int64)
    active = (rows >> np.arange(states.shape[0], dtype=object)) & 1
    return active.astype(np.int64) @ states


def held_row_values(cfg, states, cols, part):
    """Row values one transposed sample holds (one tile: docs/architecture.md section 13).

    Parameters
    ----------
    states : ndarray of int, shape (rows, columns)
        Cell states of one tile (physical columns first).
    cols : int
        Driven outputs, bit j = output j.
    part : int
        Slice ``part // polarities`` and polarity ``part % polarities`` of the driven columns.

    Returns
    -------
    ndarray of int64, shape (rows,)
    """
    states = np.asarray(states, dtype=np.int64)
    k, p = divmod(int(part), cfg.polarities)
    columns = [cfg.column(j, k, p) for j in range(cfg.outputs)]
    active = (cols >> np.arange(cfg.outputs, dtype=object)) & 1
    return states[:, columns] @ active.astype(np.int64)


def compare(cfg, held, dac, verify=False):
    """Comparator answers per ADC lane for held column values and DAC codes.

    Compute reads round the held sum of states to levels: ``held >= dac - 1/2`` levels, i.e.
    ``2 held + 2^f >= dac 2^(f+1)`` (``held >= dac`` for ideal devices). Verify reads hold one
    cell and scale its state range 0..S onto the codes: ``2 held adc_max + S >= 2 dac S``.

    Parameters
    ----------
    cfg : MacroConfig
    held : array_like of int
        Held column values (sums of states).
    dac : array_like of int
        DAC codes, broadcastable to ``held``.
    verify : bool or array_like of bool
        Verify reference instead of the compute one.

    Returns
    -------
    ndarray of bool
    """
    held = np.asarray(held, dtype=np.int64)
    dac = np.asarray(dac, dtype=np.int64)
    frac = cfg.state_frac
    compute = 2 * held + (1 << frac) >= dac << (frac + 1)
    if not cfg.programmable:
        return compute
    check = 2 * held * cfg.adc_max + cfg.state_max >= 2 * dac * cfg.state_max
    return np.where(verify, check, compute)
