"""Macro top: the blocks composed into the macro's result for a batch of vectors."""

from dataclasses import dataclass

import numpy as np

from imcgen import timing
from imcgen.checks import check_inputs, check_weights
from imcgen.errors import ImcError

from . import (
    adder_network,
    crossbar_stub,
    device,
    input_driver,
    output_stage,
    row_scheduler,
    sar_adc,
    shift_add,
    weight_mapper,
)

__all__ = ["GoldenResult", "cycles", "run"]

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
        Partial sum of each tile.
    reads : ndarray of int64, shape (V, tiles)
        Reads issued per tile.
    clipped : ndarray of bool, shape (V,)
        Whether any issued read of the vector had a column value above ``adc_max``.
    cycles : ndarray of int64, shape (V,)
        Cycles per vector from :func:`cycles`.
    """

    y: np.ndarray
    sums: np.ndarray
    psums: np.ndarray
    reads: np.ndarray
    clipped: np.ndarray
    cycles: np.ndarray


def cycles(cfg, reads):
    """Cycles per vector from the reads issued per tile (:func:`imcgen.timing.vector_cycles`).

    Parameters
    ----------
    cfg : MacroConfig
    reads : ndarray of int, shape (V, tiles)

    Returns
    -------
    ndarray of int64, shape (V,)
    """
    return timing.vector_cycles(cfg, reads)


def _full_scale(cfg):
    """Largest held column value whose compute read is not clipped: ``adc_max`` levels plus
    less than half a level (``adc_max`` itself for ideal devices)."""
    return (cfg.adc_max << cfg.state_frac) + ((1 << cfg.state_frac) >> 1) - \
        (1 if cfg.state_frac else 0)


def run(cfg, W, X, states=None):
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

    Returns
    -------
    GoldenResult

    Raises
    ------
    ImcError
        If W or X has the wrong shape, a non-integer type or a value out of range.
    """
    X = check_inputs(cfg, X)
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
    psums, reads, clipped = [], [], []
    # max(V, 1): an empty batch still goes through once, so the results keep their shapes.
    for start in range(0, max(V, 1), chunk):
        planes = input_driver.bit_planes(cfg, X[start:start + chunk])
        groups = row_scheduler.read_groups(cfg, planes)
        per_plane = row_scheduler.reads_per_plane(cfg, planes)
        issued = np.arange(G) < per_plane[..., np.newaxis]
        values = crossbar_stub.column_values(cfg, states, planes, groups)
        codes = sar_adc.convert(cfg, values)
        read_vals = shift_add.read_values(cfg, codes, row_scheduler.active_rows(cfg, groups))
        psums.append(shift_add.tile_psums(cfg, read_vals, weights, issued))
        reads.append(per_plane.sum(axis=1))
        over = (values > _full_scale(cfg)) & issued[..., np.newaxis]
        clipped.append(over.any(axis=(1, 2, 3, 4)))
    psums = np.concatenate(psums)
    reads = np.concatenate(reads)
    sums = adder_network.add_tiles(psums)
    return GoldenResult(y=output_stage.apply(cfg, sums), sums=sums, psums=psums, reads=reads,
                        clipped=np.concatenate(clipped), cycles=cycles(cfg, reads))
