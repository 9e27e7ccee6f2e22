"""Macro top: the blocks composed into the macro's result for a batch of vectors."""

from dataclasses import dataclass, field

import numpy as np

from imcgen.core import timing
from imcgen.core.checks import check_inputs, check_weights
from imcgen.core.errors import ImcError
from imcgen.golden import (
    adder_network,
    analog,
    crossbar_stub,
    device,
    input_driver,
    output_stage,
    row_scheduler,
    sar_adc,
    shift_add,
    weight_mapper,
)
from imcgen.golden.blas import product, tile_products

__all__ = ["GoldenResult", "Events", "cycles", "events", "exact_reads", "run"]

# Bound on the elements of any per-chunk intermediate (vectors, planes, tiles, reads, columns).
_CHUNK_ELEMENTS = 20_000_000


@dataclass(frozen=True)
class GoldenResult:
    """Result of :func:`run` for ``V`` vectors.

    Attributes
    ----------
    y : ndarray of int64, shape (V, outputs)
        Outputs after the output stage.
    sums : ndarray of int64, shape (V, outputs)
        Adder-network sums, before the output stage.
    psums : ndarray of int64, shape (V, tiles, outputs)
        Partial sum of each tile (computed when first read on the exact path, which needs
        only their total).
    reads : ndarray of int64, shape (V, tiles)
        Reads issued per tile.
    clipped : ndarray of bool, shape (V,)
        Whether any issued read of the vector had a column value above ``adc_max``.
    cycles : ndarray of int64, shape (V,)
        Cycles per vector from :func:`cycles`.
    """

    y: np.ndarray
    sums: np.ndarray
    tile_sums: object = field(repr=False)  # psums, or a function that computes them
    reads: np.ndarray = None
    clipped: np.ndarray = None
    cycles: np.ndarray = None

    @property
    def psums(self):
        if callable(self.tile_sums):
            object.__setattr__(self, "tile_sums", self.tile_sums())
        return self.tile_sums


@dataclass(frozen=True)
class Events:
    """What the macro does for each of ``V`` vectors, counted exactly (``int64``, shape
    ``(V,)`` unless noted): the basis of the cost model (:mod:`imcgen.apps.cost`).

    Attributes
    ----------
    reads : compute reads issued, over every tile (``run().reads`` summed).
    row_pulses : input-bit pulses on rows (a row whose bit is 1 in a plane: one pulse).
    cell_reads : cells conducting in a read (each pulsed row, every physical column).
    conversions : ADC conversions (every physical column of every read).
    compares : SAR comparator decisions (``adc_bits`` per conversion: the binary search).
    shift_adds : ADC codes shifted and added into a tile's partial sums (one per conversion).
    adds : additions of the adder network (``tiles - 1`` per output) and the output stage
        (one per output).
    cycles : the vector's cycles (``run().cycles``): its latency.
    interval : cycles from the result before it to its own in a stream offered back to back
        (:func:`imcgen.core.timing.stream_cycles`): the throughput.
    """

    reads: np.ndarray
    row_pulses: np.ndarray
    cell_reads: np.ndarray
    conversions: np.ndarray
    compares: np.ndarray
    shift_adds: np.ndarray
    adds: np.ndarray
    cycles: np.ndarray
    interval: np.ndarray

    def total(self):
        """``{event: count}`` summed over the vectors (Python ints)."""
        return {name: int(getattr(self, name).sum()) for name in self.__dataclass_fields__}


def events(cfg, X):
    """The :class:`Events` of every vector of ``X``: from the bit planes' popcounts and the
    schedule alone (the reads equal :func:`run`'s; test_golden checks it), one bit plane at a
    time, so memory stays at a few copies of ``X``."""
    X = check_inputs(cfg, X)
    V = X.shape[0]
    counts = input_driver.plane_counts(cfg, X)  # per plane, (V, tiles): rows pulsed
    pulses = sum(count.sum(axis=-1, dtype=np.int64) for count in counts)
    reads = _reads(cfg, counts)
    total = reads.sum(axis=-1)
    conversions = total * cfg.physical_columns
    return Events(reads=total, row_pulses=pulses, cell_reads=pulses * cfg.physical_columns,
                  conversions=conversions, compares=conversions * cfg.adc_bits,
                  shift_adds=conversions,
                  adds=np.full(V, cfg.tiles * cfg.outputs, dtype=np.int64),
                  cycles=cycles(cfg, reads), interval=timing.stream_cycles(cfg, reads))


def cycles(cfg, reads):
    """Cycles per vector from the reads issued per tile (:func:`imcgen.core.timing.vector_cycles`).

    Parameters
    ----------
    cfg : MacroConfig
    reads : ndarray of int, shape (V, tiles)

    Returns
    -------
    ndarray of int64, shape (V,)
    """
    return timing.vector_cycles(cfg, reads)


def _physical_reads(cfg, arr, planes, groups, issued, read_start):
    """Codes of every read through the analog model: currents, read noise and comparator noise
    keyed by each read's index (its tile's compute reads so far), and which reads clipped.
    Only issued reads are evaluated (the others' codes are never used: zero)."""
    enable = crossbar_stub.read_enables(cfg, planes, groups)  # (V, bits, tiles, G, rows)
    # Read index: issued reads are numbered in plane order, then group order, per tile.
    V, bits, tiles, G = issued.shape
    order = np.moveaxis(issued, 2, 1).reshape(V, tiles, bits * G)
    ordinal = np.cumsum(order, axis=-1) - 1
    ordinal = np.moveaxis(ordinal.reshape(V, tiles, bits, G), 1, 2)
    read = read_start[:, np.newaxis, :, np.newaxis] + ordinal
    column = np.arange(cfg.physical_columns)
    codes = np.zeros((V, bits, tiles, G, cfg.physical_columns), dtype=np.int64)
    over = np.zeros(codes.shape, dtype=bool)
    for t in range(tiles):
        sel = issued[:, :, t]
        index = read[:, :, t][sel][:, np.newaxis]
        current, var = analog.read_currents(arr, enable[:, :, t][sel], tile=t)
        held = analog.held(cfg, arr, current, var, t, column, index)
        codes[:, :, t][sel] = sar_adc.convert_physical(cfg, arr, held, t, column, index)
        over[:, :, t][sel] = 2 * (held + arr.offset) >= (2 * cfg.adc_max + 1) * arr.lsb
    return codes, over


def _full_scale(cfg):
    """Largest held column value whose compute read is not clipped: ``adc_max`` levels plus
    less than half a level (``adc_max`` itself for ideal devices)."""
    return (cfg.adc_max << cfg.state_frac) + ((1 << cfg.state_frac) >> 1) - \
        (1 if cfg.state_frac else 0)


def exact_reads(cfg):
    """Whether every read's ADC code is its exact column value, so that the macro computes the
    exact product ``X @ W``: digital reads of ideal cells loaded by level (no device physics, no
    write-verify states) that can never clip (``reads_may_clip`` false). Then each read
    returns its exact column sum, shift-and-add of exact sums is the exact dot product, and only
    the read counts (for the cycles) need the schedule."""
    return not cfg.analog.physical and not cfg.programmable and not cfg.reads_may_clip


def _reads(cfg, counts):
    """Reads per vector and tile, from the planes' popcounts (:func:`imcgen.golden.
    input_driver.plane_counts`: a ``(V, tiles)`` array per plane), through a table of
    ``ceil(count / rows_per_read)`` (a lookup is cheaper than a division)."""
    if cfg.schedule == "dense":
        return np.full((len(counts[0]), cfg.tiles), cfg.input_bits * cfg.groups_per_plane,
                       dtype=np.int64)
    per_plane = -(-np.arange(cfg.rows + 1) // cfg.rows_per_read)
    small = np.uint16 if cfg.input_bits * cfg.groups_per_plane < 1 << 16 else np.int64
    table = per_plane.astype(small)
    reads = np.zeros(counts[0].shape, dtype=small)
    for count in counts:
        reads += np.take(table, count)
    return reads.astype(np.int64)


def _run_exact(cfg, W, X, requant=None):
    """:func:`run` when :func:`exact_reads` holds: one BLAS product ``X @ W`` (the tiles'
    partial sums only if asked for), read counts from the planes' popcounts (equal to the
    read-by-read path: test_golden checks both)."""
    V = X.shape[0]
    bound = max(abs(cfg.input_min), abs(cfg.input_max)) * \
        max(abs(cfg.weight_min), abs(cfg.weight_max)) * cfg.rows
    sums = product(X, W, bound * cfg.tiles)
    if cfg.tiles == 1:
        psums = sums[:, np.newaxis, :]
    else:
        def psums():
            return tile_products(X, W, cfg.tiles, bound)
    if cfg.schedule == "dense":  # no count needed
        reads = np.full((V, cfg.tiles), cfg.input_bits * cfg.groups_per_plane, dtype=np.int64)
    else:
        reads = _reads(cfg, input_driver.plane_counts(cfg, X))
    return GoldenResult(y=output_stage.apply(cfg, sums, requant), sums=sums, tile_sums=psums,
                        reads=reads, clipped=np.zeros(V, dtype=bool), cycles=cycles(cfg, reads))


def run(cfg, W, X, states=None, read_start=None, force_reads=False, requant=None):
    """Outputs of the macro for a batch of input vectors.

    Parameters
    ----------
    cfg : MacroConfig
    W : array_like of int, shape (rows * tiles, outputs)
        Weights in ``cfg.weight_min .. cfg.weight_max``, loaded exactly through the weight port
        (stuck cells keep their state).
    X : array_like of int, shape (V, rows * tiles)
        Input vectors in ``cfg.input_min .. cfg.input_max``.
    states : ndarray of int, shape (tiles, rows, physical_columns), optional
        Cell states to compute with instead of loading ``W`` (e.g. after write-verify
        programming, :func:`imcgen.golden.write_verify.program`); ``W`` may then be None.
    read_start : ndarray of int, shape (V, tiles), optional
        Physical analog model only: each vector's first compute-read index per tile (the key of
        its read and comparator noise). Default: the reads of the vectors before it, counted
        from 0 (a run that a reset interrupted passes the indices its crossbar really used).
    force_reads : bool
        Evaluate read by read even where :func:`exact_reads` allows the exact product (tests).
    requant : (bias, scale), optional
        ``[requant] enabled``: each output's bias and scale, as loaded through the ``q`` port
        (default: nothing loaded, 0 and 1).

    Returns
    -------
    GoldenResult

    Raises
    ------
    ImcError
        If W or X has the wrong shape, a non-integer type or a value out of range.
    """
    X = check_inputs(cfg, X)
    if cfg.requant.enabled:  # checked before any work
        requant = output_stage.requant_params(cfg, requant)
    if states is None and exact_reads(cfg) and not force_reads:
        return _run_exact(cfg, check_weights(cfg, W), X, requant)
    if states is None:
        W = check_weights(cfg, W)
        states = device.load_levels(cfg, device.initial_states(cfg),
                                    weight_mapper.cell_levels(cfg, W))
    else:
        states = np.asarray(states, dtype=np.int64)
        want = (cfg.tiles, cfg.rows, cfg.physical_columns)
        if states.shape != want:
            raise ImcError("states.shape", states.shape, f"must be {want}")
    V = X.shape[0]
    G = cfg.groups_per_plane
    weights = input_driver.plane_weights(cfg)
    per_vector = cfg.input_bits * cfg.tiles * G * max(cfg.rows, cfg.physical_columns)
    chunk = max(1, _CHUNK_ELEMENTS // per_vector)
    physical = cfg.analog.physical
    if physical:
        arr = analog.prepare(cfg, states)
        if read_start is None:
            counts = row_scheduler.reads_per_tile(cfg, X)
            read_start = np.cumsum(counts, axis=0) - counts
        read_start = np.asarray(read_start, dtype=np.int64).reshape(V, cfg.tiles)
    psums, reads, clipped = [], [], []
    # max(V, 1): an empty batch still goes through once, so the results keep their shapes.
    for start in range(0, max(V, 1), chunk):
        planes = input_driver.bit_planes(cfg, X[start:start + chunk])
        groups = row_scheduler.read_groups(cfg, planes)
        per_plane = row_scheduler.reads_per_plane(cfg, planes)
        issued = np.arange(G) < per_plane[..., np.newaxis]
        if physical:
            codes, over = _physical_reads(cfg, arr, planes, groups, issued,
                                          read_start[start:start + chunk])
        else:
            values = crossbar_stub.column_values(cfg, states, planes, groups)
            codes = sar_adc.convert(cfg, values)
            over = (values > _full_scale(cfg)) & issued[..., np.newaxis]
        read_vals = shift_add.read_values(cfg, codes, row_scheduler.active_rows(cfg, groups))
        psums.append(shift_add.tile_psums(cfg, read_vals, weights, issued))
        reads.append(per_plane.sum(axis=1))
        clipped.append(over.any(axis=(1, 2, 3, 4)))
    psums = np.concatenate(psums)
    reads = np.concatenate(reads)
    sums = adder_network.add_tiles(psums)
    return GoldenResult(y=output_stage.apply(cfg, sums, requant), sums=sums, tile_sums=psums,
                        reads=reads, clipped=np.concatenate(clipped), cycles=cycles(cfg, reads))
