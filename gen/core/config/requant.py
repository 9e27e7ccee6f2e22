"""``[requant]``: per-output bias and fixed-point scale in the output stage (docs/workloads.md,
section 1; docs/architecture.md, section 6).

With ``enabled``, each output is ``sat(relu(round((sum + bias[j]) * scale[j] / 2^out_shift)))``:
the bias is added at the accumulator's full precision, the product is exact, and one rounding
(``rounding``) takes it to the output; ReLU and saturation to ``out_bits`` follow as without
requantization. ``bias`` and ``scale`` are loaded at run time (the macro's ``q`` port) and keep
their values through resets, as the weights do; until loaded they are 0 and 1.
"""

from dataclasses import dataclass

from imcgen.core.config.schema import Table, key, table
from imcgen.core.errors import ImcError

#: Rounding modes, each with the ``fixedpoint`` package's name for it (its oracle in the tests).
ROUNDINGS = {
    "floor": "down",           # toward -inf (an arithmetic shift)
    "ceil": "up",              # toward +inf
    "zero": "in",              # toward zero (truncation of the magnitude)
    "half_up": "nearest",      # to nearest, ties toward +inf
    "half_away": "out",        # to nearest, ties away from zero
    "half_even": "convergent",  # to nearest, ties to even (convergent)
}

#: Widest exact product (``sum_bits + 1 + scale_bits``): the golden model's int64.
MAX_PRODUCT_BITS = 63


@table("requant")
@dataclass(frozen=True)
class RequantConfig(Table):
    """Per-output bias and fixed-point scale (folded batch norm, layer requantization)."""

    enabled: bool = key(False, "per-output bias and fixed-point scale in the output stage "
                        "(loaded through the q port)")
    scale_bits: int = key(8, "unsigned bits of each output's scale; the scale is "
                          "scale / 2^out_shift", limits=(1, 24))
    rounding: str = key("half_even", "rounding of (sum + bias) * scale / 2^out_shift: "
                        + ", ".join(ROUNDINGS), choices=tuple(ROUNDINGS))

    def check(self, cfg):
        if not self.enabled:
            return
        if cfg.product_bits > MAX_PRODUCT_BITS:
            raise ImcError("requant.scale_bits", self.scale_bits,
                           f"(sum + bias) * scale needs {cfg.product_bits} bits with "
                           f"{cfg.sum_bits}-bit sums; at most {MAX_PRODUCT_BITS}: allowed "
                           f"1..{MAX_PRODUCT_BITS - cfg.sum_bits - 1}")

    def derived(self, cfg):
        if not self.enabled:
            return {}
        return {"bias_bits": cfg.bias_bits, "product_bits": cfg.product_bits}
