"""Transposed reads: the backward pass ``x = W y`` through the same cells (docs/architecture.md
section 13).

A backward vector ``y`` has one element per output, in the inputs' format, applied bit-serially
to the columns. Per plane, the column scheduler forms chunks of at most ``back_per_read``
outputs (``dense``: consecutive ones; ``zero_skip``: those whose bit is 1), and each chunk is
read once per part (slice ``k``, polarity ``p``): the part's physical columns of the chunk are
driven and every row is sensed and converted. Row ``r``'s value is

    sum over planes b (weight w_b) and chunks c of
        sum_k 2^(k*cell_bits) (Q+_rk - Q-_rk)              (differential)
        sum_k 2^(k*cell_bits) Q_rk - 2^(Bw-1) * |c|          (offset, ISAAC's correction)

with ``Q`` the row's ADC code in that read: exactly ``sum_j y_j W[r, j]`` when no read clips.
Tiles hold different rows: their results are concatenated.
"""

from dataclasses import dataclass

import numpy as np

from imcgen.core import timing
from imcgen.core.checks import check_back_inputs, check_weights
from imcgen.golden import device, row_scheduler, sar_adc, weight_mapper
from imcgen.golden.blas import matmul_exact, product
from imcgen.golden.input_driver import plane_stream, plane_weights

__all__ = ["BackResult", "bit_planes", "read_groups", "reads_per_plane", "reads", "cycles",
           "commands", "run"]

_CHUNK_ELEMENTS = 20_000_000


@dataclass(frozen=True)
class BackResult:
    """Result of :func:`run` for ``V`` backward vectors.

    Attributes
    ----------
    x : ndarray of int64, shape (V, rows * tiles)
    reads : ndarray of int64, shape (V,)
        Backward reads per vector (every tile issues the same ones), parts counted.
    clipped : ndarray of bool, shape (V,)
    cycles : ndarray of int64, shape (V,)
    """

    x: np.ndarray
    reads: np.ndarray
    clipped: np.ndarray
    cycles: np.ndarray


def bit_planes(cfg, Y):
    """Bit ``b`` of every element: (V, input_bits, outputs) in {0, 1}."""
    y = np.asarray(Y, dtype=np.int64)
    b = np.arange(cfg.input_bits, dtype=np.int64)
    return (y[:, np.newaxis, :] >> b[:, np.newaxis]) & 1


def read_groups(cfg, planes):
    """Chunk of each column in its plane: (V, input_bits, outputs), -1 for inactive ones."""
    return row_scheduler.read_groups(cfg, planes, cfg.back_per_read)


def reads_per_plane(cfg, planes):
    """Column chunks per vector and plane (each read once per part): (V, input_bits)."""
    return row_scheduler.reads_per_plane(cfg, planes, cfg.back_per_read)


def reads(cfg, Y):
    """Backward reads per vector, parts counted: (V,)."""
    return reads_per_plane(cfg, bit_planes(cfg, Y)).sum(axis=1) * cfg.parts


def cycles(cfg, reads):
    """Cycles per backward vector (:func:`imcgen.core.timing.back_vector_cycles`)."""
    return timing.back_vector_cycles(cfg, reads)


def commands(cfg, vector):
    """The read commands of one backward vector, in order (block-level view, the part
    sequencer's output): dicts with ``cols`` (mask over outputs), ``part``, ``count``,
    ``plane``, ``neg``, ``last`` and ``skip``: each of the column scheduler's commands once
    per part, ``last`` on the last part, a skip token once."""
    out = []
    for c in row_scheduler.read_commands(cfg, plane_stream(cfg, vector), cfg.outputs,
                                         cfg.back_per_read):
        cols = c.pop("rows")
        for part in range(1 if c["skip"] else cfg.parts):
            out.append(dict(c, cols=cols, part=part,
                            last=int(c["last"] and (c["skip"] or part == cfg.parts - 1))))
    return out


def _full_scale(cfg):
    return (cfg.adc_max << cfg.state_frac) + ((1 << cfg.state_frac) >> 1) - \
        (1 if cfg.state_frac else 0)


def run(cfg, W, Y, states=None, force_reads=False, read_start=None):
    """Backward results ``x = W y`` of the macro for a batch of backward vectors.

    Parameters
    ----------
    cfg : MacroConfig
        With ``transposed = true``.
    W : array_like of int, shape (rows * tiles, outputs)
        Weights as loaded (None with ``states``).
    Y : array_like of int, shape (V, outputs)
        Backward vectors in ``cfg.input_min .. cfg.input_max``.
    states : ndarray of int, shape (tiles, rows, physical_columns), optional
        Cell states to read instead of loading ``W``.
    force_reads : bool
        Evaluate read by read even where the reads are exact (tests).
    read_start : array_like of int, shape (V,), optional
        Physical analog model only: each vector's first transposed-read index (every tile's:
        they read in lockstep), the key of its read and comparator noise. Default: the reads
        of the vectors before it, counted from 0.

    Returns
    -------
    BackResult
    """
    from imcgen.golden import analog
    from imcgen.golden.macro_top import exact_reads

    Y = check_back_inputs(cfg, Y)
    V = len(Y)
    planes = bit_planes(cfg, Y)
    per_plane = reads_per_plane(cfg, planes)
    n_reads = per_plane.sum(axis=1) * cfg.parts
    if states is None and exact_reads(cfg) and not force_reads:
        W = check_weights(cfg, W)
        bound = max(abs(cfg.input_min), abs(cfg.input_max)) * \
            max(abs(cfg.weight_min), abs(cfg.weight_max)) * cfg.outputs
        x = product(Y, W.T, bound)
        return BackResult(x=x, reads=n_reads, clipped=np.zeros(V, dtype=bool),
                          cycles=cycles(cfg, n_reads))
    if states is None:
        states = device.load_levels(cfg, device.initial_states(cfg),
                                    weight_mapper.cell_levels(cfg, check_weights(cfg, W)))
    states = np.asarray(states, dtype=np.int64)
    physical = cfg.analog.physical
    arr = analog.prepare(cfg, states) if physical else None
    if physical:
        read_start = np.cumsum(n_reads) - n_reads if read_start is None else \
            np.asarray(read_start, dtype=np.int64).reshape(V)
    index = weight_mapper.column_index(cfg)  # (outputs, slices, polarities)
    groups = read_groups(cfg, planes)
    G, P = cfg.back_groups_per_plane, cfg.parts
    # Issued reads (zero_skip: a plane's chunks with a driven column; dense: all), numbered
    # per vector in the order the part sequencer sends them: plane, chunk, part.
    issued = np.broadcast_to((np.arange(G) < per_plane[..., np.newaxis])[..., np.newaxis],
                             (V, cfg.input_bits, G, P))
    ordinal = (np.cumsum(issued.reshape(V, -1), axis=1) - 1).reshape(issued.shape)
    weights = plane_weights(cfg)
    x = np.zeros((V, cfg.tiles, cfg.rows), dtype=np.int64)
    clipped = np.zeros(V, dtype=bool)
    full = _full_scale(cfg)
    rows = np.arange(cfg.rows)
    chunk = max(1, _CHUNK_ELEMENTS // (cfg.input_bits * G * max(cfg.outputs, cfg.input_rows)))
    for start in range(0, max(V, 1), chunk):
        part_v = slice(start, start + chunk)
        # Column enables of every chunk read: (v, bits, G, outputs).
        enable = (groups[part_v][:, :, np.newaxis, :] ==
                  np.arange(G)[:, np.newaxis]).astype(np.int64)
        count = enable.sum(axis=-1)  # driven columns per chunk
        flat = enable.reshape(-1, cfg.outputs)
        total = np.zeros((flat.shape[0], cfg.tiles, cfg.rows), dtype=np.int64)
        over = np.zeros(flat.shape[0], dtype=bool)
        for part in range(P):
            k, p = divmod(part, cfg.polarities)
            sign = -1 if p == 1 else 1
            live = issued[part_v][..., part].reshape(-1)
            if physical:
                driven = np.zeros((flat.shape[0], cfg.physical_columns), dtype=np.int64)
                driven[:, index[:, k, p]] = flat
                read = (read_start[part_v][:, np.newaxis, np.newaxis] +
                        ordinal[part_v][..., part]).reshape(-1)
            for t in range(cfg.tiles):
                if physical:
                    current, var = analog.row_currents(arr, driven[live], t)
                    held = analog.held(cfg, arr, current, var, t, rows,
                                       read[live][:, np.newaxis], transposed=True)
                    code = np.zeros((flat.shape[0], cfg.rows), dtype=np.int64)
                    code[live] = sar_adc.convert_physical(cfg, arr, held, t, rows,
                                                          read[live][:, np.newaxis],
                                                          transposed=True)
                    top = (2 * cfg.adc_max + 1) * arr.lsb
                    over[live] |= (2 * (held + arr.offset) >= top).any(axis=-1)
                else:
                    cells = states[t][:, index[:, k, p]]  # (rows, outputs)
                    bound = int(cells.sum(axis=1).max()) if cells.size else 0
                    held = matmul_exact(flat, cells.T, bound)  # (reads, rows)
                    over |= (held > full).any(axis=-1) & live
                    code = sar_adc.convert(cfg, held)
                total[:, t] += sign * (code << (k * cfg.cell_bits))
        total = total.reshape(*enable.shape[:3], cfg.tiles, cfg.rows)
        if cfg.weight_offset:
            total -= cfg.weight_offset * count[..., np.newaxis, np.newaxis]
        # Reads not issued (zero_skip) drive nothing and read 0; dense reads of empty chunks
        # read what they read (0, or noise with the physical model): summing every chunk is
        # exact.
        x[part_v] = np.einsum("vbgtr,b->vtr", total, weights)
        clipped[part_v] = over.reshape(enable.shape[:3]).any(axis=(1, 2))
    return BackResult(x=x.reshape(V, cfg.input_rows), reads=n_reads, clipped=clipped,
                      cycles=cycles(cfg, n_reads))
