"""Validation of user arrays: one error naming the element, its value and what is allowed."""

import numpy as np

from .errors import ImcError

__all__ = ["check_weights", "check_inputs"]


def _check(name, array, shape, lo, hi, note=""):
    try:
        array = np.asarray(array)
    except (ValueError, TypeError) as err:
        raise ImcError(name, type(array).__name__, f"must be an integer array ({err})") from None
    want = "(V, " + str(shape[1]) + ")" if shape[0] is None else str(shape)
    if array.ndim != 2 or (shape[0] is not None and array.shape[0] != shape[0]) \
            or array.shape[1] != shape[1]:
        raise ImcError(f"{name}.shape", array.shape, f"must be {want}")
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise ImcError(f"{name}.dtype", str(array.dtype), "must be an integer type")
    bad = np.argwhere((array < lo) | (array > hi))
    if len(bad):
        r, c = (int(v) for v in bad[0])
        raise ImcError(f"{name}[{r}, {c}]", int(array[r, c]),
                       f"must be an integer in {lo}..{hi}{note} ({len(bad)} value(s) out of range)")
    return array.astype(np.int64)


def check_weights(cfg, weights):
    """Weights as int64 ``(rows*tiles, outputs)``, or :class:`ImcError`."""
    note = ""
    if cfg.weight_mapping == "differential":
        note = (f"; the differential mapping stores |w| in {cfg.weight_bits - 1} bits, "
                f"so {-(1 << (cfg.weight_bits - 1))} is excluded")
    return _check("weights", weights, (cfg.input_rows, cfg.outputs),
                  cfg.weight_min, cfg.weight_max, note)


def check_inputs(cfg, inputs):
    """Inputs as int64 ``(vectors, rows*tiles)``, or :class:`ImcError`."""
    kind = "signed" if cfg.input_signed else "unsigned"
    return _check("inputs", inputs, (None, cfg.input_rows), cfg.input_min, cfg.input_max,
                  f" ({cfg.input_bits}-bit {kind})")
