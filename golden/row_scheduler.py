"""Row scheduler: which read of a plane activates each row (architecture section 4)."""

import numpy as np

from imcgen.golden.input_driver import bit_planes

__all__ = ["active_rows", "read_commands", "read_groups", "reads_per_plane", "reads_per_tile"]


def read_groups(cfg, planes, per_read=None):
    """Index of the read (within its plane and tile) that activates each row.

    Parameters
    ----------
    cfg : MacroConfig
    planes : ndarray of int, shape (V, input_bits, tiles, rows)
        Bit planes from :func:`imcgen.golden.input_driver.bit_planes` (any driven lines on the
        last axis: the outputs of transposed reads, with ``per_read = back_per_read``).
    per_read : int, optional
        Lines per read (default ``rows_per_read``).

    Returns
    -------
    ndarray of int64, shape (V, input_bits, tiles, rows)
        ``dense``: ``r // rows_per_read``; ``zero_skip``: ``rank // rows_per_read`` with ``rank``
        the row's rank among the active rows of its plane and tile. -1 for inactive rows.
    """
    planes = np.asarray(planes, dtype=np.int64)
    if cfg.schedule == "dense":
        position = np.arange(planes.shape[-1], dtype=np.int64)
    else:
        position = np.cumsum(planes, axis=-1) - 1
    return np.where(planes == 1, position // (per_read or cfg.rows_per_read), -1)


def reads_per_plane(cfg, planes, per_read=None):
    """Reads issued per vector, plane and tile (lines and ``per_read`` as :func:`read_groups`).

    Returns
    -------
    ndarray of int64, shape (V, input_bits, tiles)
        ``dense``: ``groups_per_plane`` always (all-zero groups are read too);
        ``zero_skip``: ``ceil(popcount / rows_per_read)``.
    """
    planes = np.asarray(planes, dtype=np.int64)
    per_read = per_read or cfg.rows_per_read
    if cfg.schedule == "dense":
        return np.full(planes.shape[:-1], -(-planes.shape[-1] // per_read), dtype=np.int64)
    return -(-planes.sum(axis=-1) // per_read)


def reads_per_tile(cfg, X):
    """Reads issued per vector and tile, all planes together.

    Returns
    -------
    ndarray of int64, shape (V, tiles)
    """
    return reads_per_plane(cfg, bit_planes(cfg, X)).sum(axis=1)


def active_rows(cfg, groups):
    """Number of rows each read activates (the popcount of its row mask).

    Parameters
    ----------
    groups : ndarray of int, shape (V, input_bits, tiles, rows)
        From :func:`read_groups`.

    Returns
    -------
    ndarray of int64, shape (V, input_bits, tiles, groups_per_plane)
    """
    groups = np.asarray(groups, dtype=np.int64)
    G = cfg.groups_per_plane
    # One bincount over (vector, plane, tile, read) flattened: no (..., G, rows) one-hot needed.
    lead = np.arange(np.prod(groups.shape[:-1], dtype=np.int64)).reshape(groups.shape[:-1])
    flat = lead[..., np.newaxis] * G + groups
    counts = np.bincount(flat[groups >= 0], minlength=lead.size * G)
    return counts.astype(np.int64).reshape(*groups.shape[:-1], G)


def read_commands(cfg, planes, lines=None, per_read=None):
    """The read commands the scheduler of one tile issues for a sequence of planes.

    Parameters
    ----------
    cfg : MacroConfig
    planes : list of dict
        As :func:`imcgen.golden.input_driver.plane_stream` returns them.
    lines, per_read : int, optional
        Driven lines and lines per read (default ``rows`` and ``rows_per_read``; the outputs
        and ``back_per_read`` for transposed reads).

    Returns
    -------
    list of dict with ``rows`` (int mask), ``count``, ``plane``, ``neg``, ``last``, ``skip``
        ``dense``: every group of ``rows_per_read`` consecutive rows, masked by the plane.
        ``zero_skip``: the next ``rows_per_read`` rows whose bit is 1; a plane with none issues
        nothing, unless it is the vector's last, which then issues one ``skip`` command.
    """
    N, lines = per_read or cfg.rows_per_read, lines or cfg.rows
    out = []
    for plane in planes:
        if cfg.schedule == "dense":
            masks = [plane["bits"] & (((1 << N) - 1) << (g * N))
                     for g in range(-(-lines // N))]
        else:
            active = [r for r in range(lines) if (plane["bits"] >> r) & 1]
            masks = [sum(1 << r for r in active[q:q + N]) for q in range(0, len(active), N)]
        tags = dict(plane=plane["index"], neg=plane["neg"])
        for n, mask in enumerate(masks):
            last = int(plane["last"] and n == len(masks) - 1)
            out.append(dict(rows=mask, count=bin(mask).count("1"), last=last, skip=0, **tags))
        if not masks and plane["last"]:
            out.append(dict(rows=0, count=0, last=1, skip=1, **tags))
    return out
