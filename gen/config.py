"""One configuration object for the whole macro.

Hardware (``imcgen.hdl``), golden model (``imcgen.golden``), Verilog generation and the
testbenches all read every width and count from :class:`MacroConfig`; nothing re-derives one by
hand. Keys are flat so they read the same in TOML files and in ``--set key=value``.
"""

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .errors import ImcError

__all__ = ["MacroConfig", "PRESETS", "load_config", "parse_set", "signed_bits"]


def signed_bits(lo, hi):
    """Fewest two's-complement bits holding every integer in ``lo..hi``."""
    n = 1
    while not (-(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1):
        n += 1
    return n


# Key -> (type, allowed choices or None, one-line description). Order is the order of `show`.
_FIELDS = {
    "rows": (int, None, "rows per tile (word lines of one crossbar array)"),
    "tiles": (int, None, "row tiles: arrays whose partial sums the adder network adds"),
    "outputs": (int, None, "logical output columns (one per weight column)"),
    "input_bits": (int, None, "bits per input element, applied bit-serially"),
    "input_signed": (bool, None, "two's complement inputs (MSB plane weighs -2^(input_bits-1))"),
    "weight_bits": (int, None, "bits per signed weight"),
    "cell_bits": (int, None, "bits stored per cell (2^cell_bits conductance levels)"),
    "weight_mapping": (str, ("differential", "offset"),
                       "signed weights as a G+/G- pair or ISAAC offset"),
    "adc_bits": (int, None, "SAR ADC resolution"),
    "adcs": (int, None, "ADCs per tile, shared by the physical columns through a mux"),
    "rows_per_read": (int, None, "max active rows per read; 0 = largest that never saturates"),
    "schedule": (str, ("dense", "zero_skip"),
                 "row scheduling: consecutive groups or only rows whose bit is 1"),
    "out_shift": (int, None, "arithmetic right shift of each output (0 = off)"),
    "out_relu": (bool, None, "clamp negative outputs to 0"),
    "out_bits": (int, None, "saturate outputs to this many signed bits (0 = full precision)"),
    "crossbar": (str, ("stub", "external"),
                 "synthesizable crossbar stub inside, or the analog boundary as ports"),
}

_LIMITS = {
    "rows": (1, 1024),
    "tiles": (1, 16),
    "outputs": (1, 1024),
    "input_bits": (1, 32),
    "weight_bits": (1, 32),
    "cell_bits": (1, 8),
    "adc_bits": (1, 16),
    "out_shift": (0, 62),
}

# The accumulators of the golden model are int64; configurations needing more are refused.
MAX_ACCUMULATOR_BITS = 62


@dataclass(frozen=True)
class MacroConfig:
    """Resolved, validated configuration of one macro.

    Construct through :func:`load_config` (presets, TOML, overrides) or directly with keywords;
    either way the values are checked and ``rows_per_read = 0`` resolves to the largest count
    that never saturates the ADC.
    """

    rows: int = 32
    tiles: int = 2
    outputs: int = 10
    input_bits: int = 5
    input_signed: bool = False
    weight_bits: int = 5
    cell_bits: int = 2
    weight_mapping: str = "differential"
    adc_bits: int = 5
    adcs: int = 8
    rows_per_read: int = 0
    schedule: str = "zero_skip"
    out_shift: int = 0
    out_relu: bool = False
    out_bits: int = 0
    crossbar: str = "stub"

    def __post_init__(self):
        for name, (typ, choices, _) in _FIELDS.items():
            value = getattr(self, name)
            if typ is bool:
                if not isinstance(value, bool):
                    raise ImcError(name, value, "must be true or false")
            elif typ is int:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ImcError(name, value, "must be an integer")
            elif not isinstance(value, str) or value not in choices:
                raise ImcError(name, value, "must be one of " + ", ".join(map(repr, choices)))
        for name, (lo, hi) in _LIMITS.items():
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise ImcError(name, value, f"must be an integer in {lo}..{hi}")
        if self.weight_mapping == "differential" and self.weight_bits < 2:
            raise ImcError("weight_bits", self.weight_bits,
                           "the differential mapping needs at least 2 bits (sign and magnitude); "
                           "use weight_mapping = 'offset' for 1-bit weights")
        if not 1 <= self.adcs <= self.physical_columns:
            raise ImcError("adcs", self.adcs,
                           f"must be an integer in 1..{self.physical_columns} (physical columns)")
        # Remember "auto" so that replace(rows=...) re-resolves it instead of keeping a stale count.
        object.__setattr__(self, "_auto_rows_per_read", self.rows_per_read == 0)
        if self.rows_per_read == 0:
            object.__setattr__(self, "rows_per_read", self.safe_rows_per_read)
        elif not 1 <= self.rows_per_read <= self.rows:
            raise ImcError("rows_per_read", self.rows_per_read,
                           f"must be 0 (auto) or an integer in 1..{self.rows} (rows)")
        if self.out_bits != 0 and not 2 <= self.out_bits <= 64:
            raise ImcError("out_bits", self.out_bits, "must be 0 (off) or an integer in 2..64")
        if self.sum_bits > MAX_ACCUMULATOR_BITS:
            raise ImcError("weight_bits", self.weight_bits,
                           f"with input_bits = {self.input_bits}, rows = {self.rows} and tiles = "
                           f"{self.tiles} the accumulator needs {self.sum_bits} bits; at most "
                           f"{MAX_ACCUMULATOR_BITS} are supported")

    # -- conversions ------------------------------------------------------------------------

    def to_dict(self, resolved=True):
        """Key -> value; with ``resolved=False`` an automatic ``rows_per_read`` reads 0."""
        values = {name: getattr(self, name) for name in _FIELDS}
        if not resolved and self._auto_rows_per_read:
            values["rows_per_read"] = 0
        return values

    def replace(self, **changes):
        """A new validated configuration with some keys changed."""
        values = self.to_dict(resolved=False)
        values.update(changes)
        return MacroConfig(**values)

    def to_toml(self, title=None):
        lines = [f"# {title}"] if title else []
        for name, (_, _, doc) in _FIELDS.items():
            value = getattr(self, name)
            text = ("true" if value else "false") if isinstance(value, bool) else (
                f'"{value}"' if isinstance(value, str) else str(value))
            lines.append(f"{name} = {text}".ljust(32) + f"# {doc}")
        lines.append("")
        lines.append("# derived (read-only)")
        for name, value in self.derived().items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            lines.append(f"# {name} = {text}")
        return "\n".join(lines) + "\n"

    def derived(self):
        """Derived counts and widths, as reported by ``config show`` and the manifest."""
        return {
            "magnitude_bits": self.magnitude_bits,
            "slices": self.slices,
            "physical_columns": self.physical_columns,
            "column_groups": self.column_groups,
            "safe_rows_per_read": self.safe_rows_per_read,
            "reads_may_clip": self.reads_may_clip,
            "weight_range": [self.weight_min, self.weight_max],
            "input_range": [self.input_min, self.input_max],
            "psum_bits": self.psum_bits,
            "sum_bits": self.sum_bits,
            "out_width": self.out_width,
            "cycle_bits": self.cycle_bits,
        }

    # -- weights and cells ------------------------------------------------------------------

    @property
    def magnitude_bits(self):
        """Bits of the value stored across a weight's cells (|w| or w + offset)."""
        return self.weight_bits - 1 if self.weight_mapping == "differential" else self.weight_bits

    @property
    def slices(self):
        """Cells (columns of equal significance) per weight and polarity."""
        return math.ceil(self.magnitude_bits / self.cell_bits)

    @property
    def slice_bits(self):
        """Bits held by each slice, least significant first (the top slice may be narrower)."""
        return tuple(min(self.cell_bits, self.magnitude_bits - k * self.cell_bits)
                     for k in range(self.slices))

    @property
    def polarities(self):
        """Columns per slice: G+ and G- for differential, one for offset."""
        return 2 if self.weight_mapping == "differential" else 1

    @property
    def physical_columns(self):
        return self.outputs * self.slices * self.polarities

    def column(self, output, slice_, polarity):
        """Physical column of ``(output, slice, polarity)``: output-major, then slice, then +/-."""
        return (output * self.slices + slice_) * self.polarities + polarity

    @cached_property
    def column_map(self):
        """``(output, slice, polarity)`` of every physical column, in column order."""
        return tuple((j, k, p) for j in range(self.outputs) for k in range(self.slices)
                     for p in range(self.polarities))

    @property
    def column_groups(self):
        """Columns each ADC converts per read (mux depth); group g holds columns g*adcs.."""
        return math.ceil(self.physical_columns / self.adcs)

    @property
    def cell_max(self):
        return (1 << self.cell_bits) - 1

    @property
    def weight_offset(self):
        """Offset added to every weight by the offset mapping (0 for differential)."""
        return 1 << (self.weight_bits - 1) if self.weight_mapping == "offset" else 0

    @property
    def weight_min(self):
        # The differential pair stores |w| in magnitude_bits: the most negative value is excluded.
        if self.weight_mapping == "differential":
            return -((1 << (self.weight_bits - 1)) - 1)
        return -(1 << (self.weight_bits - 1))

    @property
    def weight_max(self):
        return (1 << (self.weight_bits - 1)) - 1

    # -- inputs -----------------------------------------------------------------------------

    @property
    def input_rows(self):
        """Length of an input vector: rows of all tiles."""
        return self.rows * self.tiles

    @property
    def input_min(self):
        return -(1 << (self.input_bits - 1)) if self.input_signed else 0

    @property
    def input_max(self):
        return (1 << (self.input_bits - 1)) - 1 if self.input_signed else (1 << self.input_bits) - 1

    # -- ADC and schedule -------------------------------------------------------------------

    @property
    def adc_max(self):
        return (1 << self.adc_bits) - 1

    @property
    def safe_rows_per_read(self):
        """Largest row count whose read can never saturate: rows * (2^s - 1) <= adc_max.

        ``s`` is the widest slice; at least 1 (which may still clip if adc_bits < cell_bits).
        """
        level = (1 << max(self.slice_bits)) - 1
        return max(1, min(self.rows, self.adc_max // level))

    @property
    def reads_may_clip(self):
        return self.rows_per_read * ((1 << max(self.slice_bits)) - 1) > self.adc_max

    @property
    def groups_per_plane(self):
        """Reads per plane and tile of the dense schedule (and the zero-skip worst case)."""
        return math.ceil(self.rows / self.rows_per_read)

    @property
    def conversion_cycles(self):
        """Cycles of one read: one sample cycle, then one compare per bit for every group."""
        return 1 + self.column_groups * self.adc_bits

    @property
    def max_cycles(self):
        """Upper bound of cycles per vector, used only to size the cycle counter."""
        reads = self.input_bits * self.groups_per_plane
        return reads * self.conversion_cycles + 64

    @property
    def cycle_bits(self):
        return self.max_cycles.bit_length()

    # -- value ranges and widths (interval arithmetic, exact bounds) ------------------------

    def _read_max(self, k):
        """Largest ADC code of slice k in one read."""
        return min(self.adc_max, self.rows_per_read * ((1 << self.slice_bits[k]) - 1))

    def _combine(self, per_slice_max, offset_rows):
        """Range of sum_k 2^(k*cell_bits) (Q+ - Q-), or of sum_k 2^(k*cell_bits) Q - offset*pc."""
        top = sum(m << (k * self.cell_bits) for k, m in enumerate(per_slice_max))
        if self.weight_mapping == "differential":
            return -top, top
        return -self.weight_offset * offset_rows, top

    @cached_property
    def read_range(self):
        """Range of one read's value for one output, after slices and offset correction."""
        return self._combine([self._read_max(k) for k in range(self.slices)],
                             min(self.rows_per_read, self.rows))

    @cached_property
    def plane_range(self):
        """Range of one plane's value (all its reads) for one output of one tile."""
        plane_max = [min(self.rows * ((1 << b) - 1), self.groups_per_plane * self._read_max(k))
                     for k, b in enumerate(self.slice_bits)]
        return self._combine(plane_max, self.rows)

    @cached_property
    def psum_range(self):
        """Range of a tile's partial sum: planes weighted by 2^b, the signed MSB by -2^b."""
        lo_p, hi_p = self.plane_range
        lo = hi = 0
        for b in range(self.input_bits):
            w = 1 << b
            if self.input_signed and b == self.input_bits - 1:
                w = -w
            lo += min(w * lo_p, w * hi_p)
            hi += max(w * lo_p, w * hi_p)
        return lo, hi

    @property
    def sum_range(self):
        lo, hi = self.psum_range
        return self.tiles * lo, self.tiles * hi

    @property
    def read_bits(self):
        return signed_bits(*self.read_range)

    @property
    def psum_bits(self):
        return signed_bits(*self.psum_range)

    @property
    def sum_bits(self):
        return signed_bits(*self.sum_range)

    @property
    def out_range(self):
        lo, hi = (v >> self.out_shift for v in self.sum_range)
        if self.out_relu:
            lo, hi = max(lo, 0), max(hi, 0)
        if self.out_bits:
            lo = min(max(lo, -(1 << (self.out_bits - 1))), (1 << (self.out_bits - 1)) - 1)
            hi = min(max(hi, -(1 << (self.out_bits - 1))), (1 << (self.out_bits - 1)) - 1)
        return lo, hi

    @property
    def out_width(self):
        """Signed width of each output element."""
        return self.out_bits if self.out_bits else signed_bits(*self.out_range)


# -- presets -------------------------------------------------------------------------------

PRESETS = {
    # Sized for `imcgen demo`: 64 digit pixels (0..16, 5-bit unsigned) over two 32-row tiles,
    # 10 classes, 5-bit weights over 2-bit cells, 5-bit SAR ADCs (10 rows per read).
    "default": {},
    # ISAAC (seeds 001, 004): 128x128 array, 2-bit cells, 16-bit weights over 8 cells with the
    # offset encoding, 16-bit bit-serial inputs, one 8-bit ADC shared by all 128 columns.
    "isaac": dict(rows=128, tiles=1, outputs=16, input_bits=16, input_signed=True,
                  weight_bits=16, cell_bits=2, weight_mapping="offset", adc_bits=8, adcs=1,
                  schedule="dense"),
    # Chang-group RRAM macro (Chen ISSCC'18 / Xue ISSCC'19, seeds 000, 004): 2-bit serial
    # inputs, SLC (1-bit) cells, 3-bit weights, 3-bit sense-amp readout, 7 rows per read.
    "chang": dict(rows=64, tiles=2, outputs=16, input_bits=2, input_signed=False,
                  weight_bits=3, cell_bits=1, weight_mapping="differential", adc_bits=3,
                  adcs=16, schedule="zero_skip"),
}


def _parse_value(key, text):
    typ, choices, _ = _FIELDS[key]
    text = text.strip()
    if typ is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ImcError(key, text, "must be true or false")
    if typ is int:
        try:
            return int(text, 0)
        except ValueError:
            raise ImcError(key, text, "must be an integer") from None
    return text.strip("'\"")


def parse_set(items):
    """``["rows=64", "schedule=dense"]`` -> ``{"rows": 64, "schedule": "dense"}``."""
    values = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep:
            raise ImcError("--set", item, "must look like key=value")
        if key not in _FIELDS:
            raise ImcError("--set", key, "unknown key; allowed: " + ", ".join(_FIELDS))
        values[key] = _parse_value(key, text)
    return values


def load_config(preset=None, config_file=None, overrides=None):
    """Resolve a configuration: preset, then TOML file, then ``--set`` overrides.

    A TOML file may name its base with ``preset = "isaac"``; otherwise it starts from
    ``default``. ``overrides`` is a dict or a list of ``key=value`` strings.
    """
    if preset is not None and config_file is not None:
        raise ImcError("--preset", preset, "give either --preset or --config, not both")
    values = {}
    base = preset or "default"
    if config_file is not None:
        path = Path(config_file)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ImcError("--config", str(path), "file not found") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise ImcError("--config", str(path), f"not valid TOML ({err})") from None
        base = data.pop("preset", "default")
        for key, value in data.items():
            if key not in _FIELDS:
                raise ImcError(f"{path.name}: {key}", value,
                               "unknown key; allowed: preset, " + ", ".join(_FIELDS))
            values[key] = value
    if base not in PRESETS:
        raise ImcError("preset", base, "must be one of " + ", ".join(PRESETS))
    if isinstance(overrides, dict):
        values.update(overrides)
    elif overrides:
        values.update(parse_set(overrides))
    return MacroConfig(**{**PRESETS[base], **values})


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(MacroConfig))
assert _FIELD_NAMES == tuple(_FIELDS), "MacroConfig fields and _FIELDS must list the same keys"
