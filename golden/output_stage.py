"""Output stage: requantization (``[requant]``: bias, scale, rounding) or shift, then ReLU,
then saturation, in that order (architecture section 6)."""

import numpy as np

from imcgen.core.errors import ImcError

__all__ = ["apply", "round_shift", "requant_params", "IDENTITY"]

#: The requantization a macro starts with (nothing loaded): bias 0, scale 1.
IDENTITY = "identity"


def round_shift(p, shift, rounding):
    """``p / 2^shift`` rounded as ``rounding`` says (:data:`imcgen.core.config.ROUNDINGS`), in
    integers: the same adds and one arithmetic shift as the RTL."""
    p = np.asarray(p, dtype=np.int64)
    if not shift:
        return p
    one, half = np.int64(1) << shift, np.int64(1) << (shift - 1)
    neg = p < 0
    if rounding == "floor":
        return p >> shift
    if rounding == "ceil":
        return (p + one - 1) >> shift
    if rounding == "zero":
        return (p + np.where(neg, one - 1, 0)) >> shift
    if rounding == "half_up":
        return (p + half) >> shift
    if rounding == "half_away":
        return (p + half - neg) >> shift
    if rounding == "half_even":  # a tie goes up only when the floor is odd
        q = p >> shift
        rest = p & (one - 1)
        return q + ((rest > half) | ((rest == half) & (q & 1 == 1)))
    raise ValueError(rounding)


def requant_params(cfg, requant):
    """``(bias, scale)`` as int64 arrays of shape ``(outputs,)``, checked against their widths;
    ``None`` or :data:`IDENTITY` gives 0 and 1 (what the macro holds until loaded)."""
    n = cfg.outputs
    if requant is None or (isinstance(requant, str) and requant == IDENTITY):
        return np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64)
    try:
        bias, scale = requant
    except (TypeError, ValueError):
        raise ImcError("requant", type(requant).__name__, "must be (bias, scale), two arrays "
                                                          f"of {n} integers") from None
    out = []
    for name, value, lo, hi in (
            ("requant.bias", bias, -(1 << (cfg.bias_bits - 1)), (1 << (cfg.bias_bits - 1)) - 1),
            ("requant.scale", scale, 0, (1 << cfg.requant.scale_bits) - 1)):
        arr = np.asarray(value)
        if arr.shape != (n,):
            raise ImcError(f"{name}.shape", arr.shape, f"must be ({n},): one per output")
        if arr.dtype.kind not in "iub" or arr.size and (arr.min() < lo or arr.max() > hi):
            bad = arr.dtype.name if arr.dtype.kind not in "iub" else \
                int(arr.min() if arr.min() < lo else arr.max())
            raise ImcError(name, bad, f"must be integers in {lo}..{hi}")
        out.append(arr.astype(np.int64))
    return tuple(out)


def apply(cfg, sums, requant=None):
    """Outputs from the adder network's sums.

    Parameters
    ----------
    cfg : MacroConfig
    sums : array_like of int, shape (..., outputs)
    requant : (bias, scale), optional
        ``[requant] enabled``: each output's bias and scale (:func:`requant_params`; default
        0 and 1).

    Returns
    -------
    ndarray of int64, same shape as ``sums``
        Without ``[requant]``: ``sums >> out_shift`` (floor); with it,
        ``round((sums + bias) * scale / 2^out_shift)`` in ``requant.rounding``; then
        ``max(., 0)`` if ``out_relu``, then clamped to ``out_bits`` signed bits if
        ``out_bits > 0``.
    """
    y = np.asarray(sums, dtype=np.int64)
    if cfg.requant.enabled:
        bias, scale = requant_params(cfg, requant)
        y = round_shift((y + bias) * scale, cfg.out_shift, cfg.requant.rounding)
    elif cfg.out_shift:
        y = y >> cfg.out_shift
    if cfg.out_relu:
        y = np.maximum(y, 0)
    if cfg.out_bits:
        y = np.clip(y, -(1 << (cfg.out_bits - 1)), (1 << (cfg.out_bits - 1)) - 1)
    return y
