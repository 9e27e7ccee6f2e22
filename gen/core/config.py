"""One configuration object for the whole macro.

Hardware (``imcgen.hdl``), golden model (``imcgen.golden``), Verilog generation and the
testbenches all read every width and count from :class:`MacroConfig`; nothing re-derives one by
hand. The MVM keys are flat so they read the same in TOML files and in ``--set key=value``;
later feature groups are TOML tables (``[write_verify]``), addressed in ``--set`` by dotted keys
(``write_verify.tolerance=2``).

Configurations are cache and sweep keys: two compare equal exactly when every later
``replace`` gives equal results (``rows_per_read = 0`` stays "automatic" and is not equal to
the count it resolves to).
"""

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from functools import cached_property

from imcgen.core import timing
from imcgen.core.errors import ImcError

__all__ = ["Field", "MacroConfig", "PRESETS", "TABLES", "load_config", "parse_set",
           "signed_bits"]


def signed_bits(lo, hi):
    """Fewest two's-complement bits holding every integer in ``lo..hi``."""
    n = 1
    while not (-(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1):
        n += 1
    return n


@dataclass(frozen=True)
class Field:
    """One configuration key: its type, what is allowed and a one-line description."""

    type: type
    doc: str
    choices: tuple = None
    limits: tuple = None  # (lo, hi), inclusive

    def allowed(self):
        if self.type is bool:
            return "must be true or false"
        if self.choices is not None:
            return "must be one of " + ", ".join(map(repr, self.choices))
        kind = "an integer" if self.type is int else "a number"
        if self.limits is not None:
            return f"must be {kind} in {self.limits[0]}..{self.limits[1]}"
        return f"must be {kind}"

    def check(self, key, value):
        """``value`` if it has this field's type and range, else :class:`ImcError`."""
        if self.type is bool:
            ok = isinstance(value, bool)
        elif self.type is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.type is float:
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
                  and math.isfinite(value))
            value = float(value) if ok else value
        else:
            ok = isinstance(value, str)
        if ok and self.choices is not None:  # an allowed set, of text or of numbers
            ok = value in self.choices
        if ok and self.limits is not None:
            ok = self.limits[0] <= value <= self.limits[1]
        if not ok:
            raise ImcError(key, value, self.allowed())
        return value

    def parse(self, key, text):
        """The value of ``--set key=text`` (checked later, with the whole configuration)."""
        text = text.strip()
        if self.type is bool:
            lowered = text.lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ImcError(key, text, "must be true or false")
        if self.type in (int, float):
            try:
                return int(text, 0)
            except ValueError:
                pass
            if self.type is float:
                try:
                    return float(text)
                except ValueError:
                    pass
            raise ImcError(key, text, self.allowed())
        return text.strip("'\"")


def key(default, doc, *, choices=None, limits=None):
    """Declare a configuration key: a dataclass field whose default, description, allowed set
    and limits live in one place (the type is the annotation). The key's :class:`Field` is
    derived from it (:func:`fields_of`)."""
    return dataclasses.field(default=default,
                             metadata={"key": (doc, choices, limits)})


def fields_of(cls):
    """``{name: Field}`` of the keys a dataclass declares with :func:`key`, in order."""
    out = {}
    for f in dataclasses.fields(cls):
        if "key" in f.metadata:
            doc, choices, limits = f.metadata["key"]
            out[f.name] = Field(f.type, doc, choices=choices, limits=limits)
    return out


def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value) if isinstance(value, float) else str(value)



# Feature tables: TOML table name -> frozen dataclass with a ``FIELDS`` dict of Field, checked
# by ``check(macro_config)``. Registered by the features that add them (see table()).
TABLES = {}


def table(name):
    """Class decorator registering a configuration table ``[name]``."""

    def register(cls):
        cls.FIELDS = fields_of(cls)
        cls.TABLE = name
        TABLES[name] = cls
        return cls

    return register


class Table:
    """Base of configuration tables: field checks, dict and TOML conversion."""

    FIELDS = {}
    TABLE = ""

    def __post_init__(self):
        for key, spec in self.FIELDS.items():
            object.__setattr__(self, key, spec.check(f"{self.TABLE}.{key}", getattr(self, key)))

    def check(self, cfg):
        """Checks that need the whole configuration; raise :class:`ImcError`."""

    def derived(self, cfg):
        """Derived values of this table, for ``config show`` and the manifest."""
        return {}

    def to_dict(self):
        return {key: getattr(self, key) for key in self.FIELDS}

    @classmethod
    def from_dict(cls, values, where=None):
        where = where or cls.TABLE
        if not isinstance(values, dict):
            raise ImcError(where, values, f"must be a table of keys ({', '.join(cls.FIELDS)})")
        unknown = [k for k in values if k not in cls.FIELDS]
        if unknown:
            raise ImcError(f"{where}.{unknown[0]}", values[unknown[0]],
                           "unknown key; allowed: " + ", ".join(cls.FIELDS))
        return cls(**values)


# The accumulators of the golden model are int64; configurations needing more are refused.
MAX_ACCUMULATOR_BITS = 62


@dataclass(frozen=True)
class MacroConfig:
    """Resolved, validated configuration of one macro.

    Construct through :func:`load_config` (presets, TOML, overrides) or directly with keywords;
    either way the values are checked and ``rows_per_read = 0`` resolves to the largest count
    that never saturates the ADC (``rows_per_read_auto`` remembers that it was automatic).
    Feature tables are keyword arguments too: ``MacroConfig(write_verify={"tolerance": 2})``.
    """

    rows: int = key(32, "rows per tile (word lines of one crossbar array)", limits=(1, 1024))
    tiles: int = key(2, "row tiles: arrays whose partial sums the adder network adds",
                     limits=(1, 16))
    outputs: int = key(10, "logical output columns (one per weight column)", limits=(1, 1024))
    input_bits: int = key(5, "bits per input element, applied bit-serially", limits=(1, 32))
    input_signed: bool = key(False, "two's complement inputs (MSB plane weighs -2^(input_bits-1))")
    weight_bits: int = key(5, "bits per signed weight", limits=(1, 32))
    cell_bits: int = key(2, "bits stored per cell (2^cell_bits conductance levels)", limits=(1, 8))
    weight_mapping: str = key("differential", "signed weights as a G+/G- pair or ISAAC offset",
                              choices=("differential", "offset"))
    adc_bits: int = key(5, "SAR ADC resolution", limits=(1, 16))
    adcs: int = key(8, "ADCs per tile, shared by the physical columns through a mux")
    rows_per_read: int = key(0, "max active rows per read; 0 = largest that never saturates")
    schedule: str = key("zero_skip",
                        "row scheduling: consecutive groups or only rows whose bit is 1",
                        choices=("dense", "zero_skip"))
    out_shift: int = key(0, "arithmetic right shift of each output (0 = off)", limits=(0, 62))
    out_relu: bool = key(False, "clamp negative outputs to 0")
    out_bits: int = key(0, "saturate outputs to this many signed bits (0 = full precision)")
    crossbar: str = key("stub",
                        "synthesizable crossbar stub inside, or the analog boundary as ports",
                        choices=("stub", "external"))
    # Off by default: +31 % LUTs on ECP5 (default preset) for a few % more throughput (docs).
    adc_overlap: bool = key(False, "ADCs never idle: sample the next read while the last one "
                            "converts, start the next vector while the last one drains")
    # Part of equality and hashing: an automatic count re-resolves on replace, a given one not.
    rows_per_read_auto: bool = dataclasses.field(default=False, init=False)
    # Feature tables by name (see TABLES): always complete, in TABLES order.
    tables: tuple = ()

    def __post_init__(self):
        for name, spec in _FIELDS.items():
            if name not in ("adcs", "rows_per_read", "out_bits"):
                spec.check(name, getattr(self, name))
            elif isinstance(getattr(self, name), bool) or \
                    not isinstance(getattr(self, name), int):
                raise ImcError(name, getattr(self, name), "must be an integer")
        # Tables first: the widths depend on them (the physical analog model's codes).
        object.__setattr__(self, "tables", self._resolve_tables(self.tables))
        if self.weight_mapping == "differential" and self.weight_bits < 2:
            raise ImcError("weight_bits", self.weight_bits,
                           "the differential mapping needs at least 2 bits (sign and magnitude); "
                           "use weight_mapping = 'offset' for 1-bit weights")
        if not 1 <= self.adcs <= self.physical_columns:
            raise ImcError("adcs", self.adcs,
                           f"must be an integer in 1..{self.physical_columns} (physical columns)")
        auto = self.rows_per_read == 0
        object.__setattr__(self, "rows_per_read_auto", auto)
        if auto:
            widest = max(self.slice_bits)
            if (1 << widest) - 1 > self.adc_max:
                raise ImcError(
                    "rows_per_read", 0,
                    f"automatic (never saturates) is impossible: one row of {widest}-bit cells "
                    f"reaches {(1 << widest) - 1} > {self.adc_max} (adc_bits = {self.adc_bits}); "
                    f"raise adc_bits to at least {widest}, or give rows_per_read in "
                    f"1..{self.rows} to accept clipped reads")
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
        if self.out_shift and self.out_shift >= self.sum_bits - 1:
            raise ImcError("out_shift", self.out_shift,
                           f"shifts out every magnitude bit of the {self.sum_bits}-bit sums "
                           f"(every output would be 0 or -1); allowed: 0..{self.sum_bits - 2}")
        for tab in self.tables:
            tab.check(self)

    @staticmethod
    def _resolve_tables(given):
        """``tables`` as a tuple with one instance per registered table, in TABLES order."""
        if isinstance(given, dict):
            given = given.items()
        by_name = {}
        for item in given:
            name, value = (item.TABLE, item) if isinstance(item, Table) else item
            if name not in TABLES:
                raise ImcError(name, value, "unknown table; allowed: " + ", ".join(TABLES))
            cls = TABLES[name]
            by_name[name] = value if isinstance(value, cls) else cls.from_dict(value)
        return tuple(by_name.get(name) or cls() for name, cls in TABLES.items())

    def __getattr__(self, name):
        # Tables read as attributes: cfg.write_verify.tolerance.
        if name in TABLES:
            for tab in self.tables:
                if tab.TABLE == name:
                    return tab
        raise AttributeError(name)

    # -- conversions ------------------------------------------------------------------------

    def to_dict(self, resolved=False):
        """Key -> value, tables as nested dicts; loads back with :meth:`from_dict`.

        ``rows_per_read`` reads 0 when automatic, unless ``resolved``.
        """
        values = {name: getattr(self, name) for name in _FIELDS}
        if not resolved and self.rows_per_read_auto:
            values["rows_per_read"] = 0
        for tab in self.tables:
            values[tab.TABLE] = tab.to_dict()
        return values

    @classmethod
    def from_dict(cls, values):
        """Inverse of :meth:`to_dict` (flat keys and table dicts)."""
        values = dict(values)
        tables = {name: values.pop(name) for name in list(values) if name in TABLES}
        return cls(**values, tables=tables)

    def replace(self, **changes):
        """A new validated configuration with some keys changed.

        Flat keys by name; table keys dotted (``**{"write_verify.tolerance": 2}``) or a whole
        table as a dict (``write_verify={"tolerance": 2}``, merged into the current one).
        """
        values = self.to_dict()
        for key, value in changes.items():
            name, dot, sub = key.partition(".")
            if name in TABLES:
                merged = dict(values[name])
                merged.update({sub: value} if dot else dict(value))
                values[name] = merged
            elif dot or key not in _FIELDS:
                raise ImcError(key, value, "unknown key; allowed: " + ", ".join(allowed_keys()))
            else:
                values[key] = value
        return MacroConfig.from_dict(values)

    def to_toml(self, title=None):
        lines = [f"# {title}"] if title else []
        for name, spec in _FIELDS.items():
            value = getattr(self, name)
            doc = spec.doc
            if name == "rows_per_read" and self.rows_per_read_auto:
                value, doc = 0, f"{doc} (resolves to {self.rows_per_read})"
            lines.append(f"{name} = {_toml_value(value)}".ljust(32) + f"# {doc}")
        lines.append("")
        lines.append("# derived (read-only)")
        for name, value in self.derived().items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            lines.append(f"# {name} = {text}")
        for tab in self.tables:
            lines += ["", f"[{tab.TABLE}]"]
            for key, spec in tab.FIELDS.items():
                lines.append(f"{key} = {_toml_value(getattr(tab, key))}".ljust(32)
                             + f"# {spec.doc}")
            for key, value in tab.derived(self).items():
                lines.append(f"# {key} = {value}")
        return "\n".join(lines) + "\n"

    def warnings(self):
        """One line per combination that is allowed but probably not meant."""
        out = []
        if self.reads_may_clip:
            top = (1 << max(self.slice_bits)) - 1
            out.append(f"rows_per_read = {self.rows_per_read}: a read of {self.rows_per_read} "
                       f"rows can reach {self.rows_per_read * top} > {self.adc_max} (adc_bits "
                       f"= {self.adc_bits}), so reads may clip (the golden model reproduces it); "
                       f"{self.safe_rows_per_read} or fewer never clip")
        return out

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

    # -- device states (write-verify) -------------------------------------------------------

    @property
    def programmable(self):
        """Cells are programmed by pulses (``device.kind`` rram or pcm), not loaded."""
        return self.device.programmable

    @property
    def state_frac(self):
        """State bits below one level: ``device.frac_bits``, or 0 for ideal cells."""
        return self.device.frac_bits if self.programmable else 0

    @property
    def state_bits(self):
        return self.cell_bits + self.state_frac

    @property
    def state_max(self):
        return (1 << self.state_bits) - 1

    @cached_property
    def verify_targets(self):
        """Verify code of each level's exact state: round(L * 2^f * adc_max / state_max).

        The verify reference spans the cell's whole state range over the ADC codes, so a verify
        read of state s gives ``floor((2 s adc_max + state_max) / (2 state_max))``.
        """
        return tuple((2 * (level << self.state_frac) * self.adc_max + self.state_max)
                     // (2 * self.state_max) for level in range(self.cell_max + 1))

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
    def overlap(self):
        """``adc_overlap`` in effect: it needs at least two compare cycles per read (the next
        read's sample is taken one cycle before the current read's last compare)."""
        return self.adc_overlap and self.column_groups * self.adc_bits >= 2

    @property
    def sum_stages(self):
        """Register stages of the crossbar stub's column sums (docs/architecture.md section 11):
        two (partial sums, then totals) when every group lasts at least two compare cycles and
        reads do not overlap, so a group's sums can be formed while the one before converts;
        else one."""
        return 2 if self.adc_bits >= 2 and not self.overlap else 1

    @property
    def stub_registers_why(self):
        """Why the stub cannot keep its cells in block RAM (``None`` when it can)."""
        if self.crossbar != "stub":
            return "crossbar = 'external' (no stub)"
        if self.programmable:
            return "programmable devices read and update a pulsed cell in one cycle"
        if self.column_groups > 1 and self.adc_bits <= self.sum_stages:
            return (f"the SAR dwells {self.adc_bits} cycle(s) on a column group; a read a cycle "
                    f"late ahead of {self.sum_stages} sum stage(s) needs {self.sum_stages + 1}")
        return None

    @property
    def stub_block_ram(self):
        """The crossbar stub keeps its cells in block RAM (``stub.cells``, where it can)."""
        return self.stub.cells == "block_ram" and self.stub_registers_why is None

    @property
    def groups_per_plane(self):
        """Reads per plane and tile of the dense schedule (and the zero-skip worst case)."""
        return math.ceil(self.rows / self.rows_per_read)

    @property
    def conversion_cycles(self):
        """Cycles of one compute read (:func:`imcgen.core.timing.read_cycles`)."""
        return timing.read_cycles(self)

    @property
    def max_cycles(self):
        """Cycles of the slowest possible vector (:func:`imcgen.core.timing.max_vector_cycles`)."""
        return timing.max_vector_cycles(self)

    @property
    def cycle_bits(self):
        return self.max_cycles.bit_length()

    # -- value ranges and widths (interval arithmetic, exact bounds) ------------------------

    def _read_max(self, k):
        """Largest ADC code of slice k in one read. Any code for the physical analog model:
        read noise, comparator offset and a calibrated range reach codes no level sum does."""
        if self.analog.physical:
            return self.adc_max
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
        plane_max = [self.groups_per_plane * self._read_max(k) if self.analog.physical else
                     min(self.rows * ((1 << b) - 1), self.groups_per_plane * self._read_max(k))
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


# -- feature tables --------------------------------------------------------------------------

# Standard deviation of the Irwin-Hall sum of four uniform bytes (the programming noise draw):
# sqrt(4 * (256^2 - 1) / 12).
#: The flat keys, in the order of ``config show`` (declared on :class:`MacroConfig`).
_FIELDS = fields_of(MacroConfig)


IRWIN_HALL_SD = math.sqrt(4 * (256**2 - 1) / 12)
NOISE_SHIFT = 12  # noise = (z * noise_code) >> NOISE_SHIFT, rounded
GAIN_SHIFT = 8    # pulse gains are Q1.8 codes: 256 = 1.0


@table("device")
@dataclass(frozen=True)
class DeviceConfig(Table):
    """The memory device behind each cell and how a programming pulse moves it.

    ``ideal`` cells hold their level exactly (weights are loaded, not programmed). ``rram`` and
    ``pcm`` cells hold a conductance state in fixed point, ``frac_bits`` finer than a level, and
    are programmed by pulses (``[write_verify]``): docs/write_verify.md.
    """

    kind: str = key("ideal", "ideal (levels loaded exactly), rram (bipolar, gradual both ways) "
                    "or pcm (gradual SET up, abrupt RESET)",
                    choices=("ideal", "rram", "pcm"))
    seed: int = key(1, "device instance: stuck cells and programming noise draw from it",
                    limits=(0, 2**32 - 1))
    frac_bits: int = key(4, "state bits below one level (state = level << frac_bits "
                         "when exact)",
                         limits=(1, 8))
    stuck_fraction: float = key(0.0, "fraction of cells stuck at minimum or maximum "
                                "(they ignore pulses and writes)",
                                limits=(0.0, 1.0))
    stuck_on_share: float = key(0.5, "share of the stuck cells stuck at maximum (on)",
                                limits=(0.0, 1.0))
    set_gain: float = key(0.25, "SET step at full amplitude, as a fraction of the distance "
                          "to the maximum state",
                          limits=(0.0, 1.0))
    reset_gain: float = key(0.5, "rram RESET step at full amplitude, as a fraction of the "
                            "distance to the minimum state",
                            limits=(0.0, 1.0))
    noise: float = key(0.5, "cycle-to-cycle noise of one pulse, standard deviation in "
                       "state LSBs",
                       limits=(0.0, 64.0))
    pcm_reset_state: int = key(0, "pcm: state a RESET returns the cell to (before noise)",
                               limits=(0, 2**16 - 1))
    wear_bits: int = key(16, "bits of each cell's pulse counter (the noise draw's 'when'; "
                         "wraps around)",
                         limits=(4, 32))
    rng_rounds: int = key(20, "Threefry-2x32 rounds of the noise generator",
                          choices=(8, 12, 16, 20, 24, 28, 32))
    rng_rounds_per_cycle: int = key(4, "rounds the hardware generator runs per clock",
                                    choices=(1, 2, 4))

    @property
    def programmable(self):
        return self.kind != "ideal"

    @property
    def stuck_threshold(self):
        """A cell is stuck when the low 32 bits of its stuck draw are below this."""
        return round(self.stuck_fraction * 2**32)

    @property
    def stuck_on_threshold(self):
        """A stuck cell is stuck on when the high 32 bits of its draw are below this."""
        return round(self.stuck_on_share * 2**32)

    @property
    def set_gain_code(self):
        return round(self.set_gain * (1 << GAIN_SHIFT))

    @property
    def reset_gain_code(self):
        return round(self.reset_gain * (1 << GAIN_SHIFT))

    @property
    def noise_code(self):
        """noise = round(z * noise_code / 2^NOISE_SHIFT), z the centred Irwin-Hall sum."""
        return round(self.noise * (1 << NOISE_SHIFT) / IRWIN_HALL_SD)

    @property
    def rng_latency(self):
        """Cycles the hardware generator takes (``imcgen.hdl.rng.Threefry2x32.latency``)."""
        return self.rng_rounds // self.rng_rounds_per_cycle

    def check(self, cfg):
        if self.programmable and self.pcm_reset_state > cfg.state_max:
            raise ImcError("device.pcm_reset_state", self.pcm_reset_state,
                           f"must be a state in 0..{cfg.state_max}")

    def derived(self, cfg):
        if not self.programmable:
            return {}
        return {"state_bits": cfg.state_bits, "state_max": cfg.state_max,
                "set_gain_code": self.set_gain_code, "reset_gain_code": self.reset_gain_code,
                "noise_code": self.noise_code, "rng_latency": self.rng_latency}


@table("write_verify")
@dataclass(frozen=True)
class WriteVerifyConfig(Table):
    """Program-and-verify of each cell (``device.kind`` rram or pcm): docs/write_verify.md."""

    tolerance: int = key(1, "verify codes a cell may sit from its target", limits=(0, 255))
    amp_bits: int = key(4, "bits of the pulse amplitude code", limits=(1, 8))
    amp_start: int = key(1, "amplitude of the first pulse in a direction", limits=(1, 255))
    amp_step: int = key(1, "amplitude added by each further pulse in the same direction "
                        "(incremental step pulse programming)",
                        limits=(0, 255))
    amp_max: int = key(15, "largest amplitude code", limits=(1, 255))
    max_pulses: int = key(64, "pulses per cell before giving up", limits=(1, 1023))
    stuck_pulses: int = key(3, "pulses at amp_max that leave the verify code unchanged at a "
                            "rail (0 or adc_max), in a row, before a cell is reported "
                            "stuck",
                            limits=(1, 64))
    pulse_cycles: int = key(8, "clock cycles one pulse lasts", limits=(1, 1024))

    def check(self, cfg):
        top = (1 << self.amp_bits) - 1
        if self.amp_max > top:
            raise ImcError("write_verify.amp_max", self.amp_max,
                           f"must be an amplitude code in 1..{top} (amp_bits = {self.amp_bits})")
        if self.amp_start > self.amp_max:
            raise ImcError("write_verify.amp_start", self.amp_start,
                           f"must be in 1..{self.amp_max} (amp_max)")
        if not cfg.device.programmable:
            return
        if cfg.adc_max < cfg.cell_max:
            raise ImcError("adc_bits", cfg.adc_bits,
                           f"write-verify needs at least one verify code per level: adc_bits "
                           f">= cell_bits = {cfg.cell_bits}")
        spacing = min(b - a for a, b in zip(cfg.verify_targets, cfg.verify_targets[1:],
                                            strict=False)) if cfg.cell_max else cfg.adc_max + 1
        if spacing < 1:  # rounding put two levels on one code
            raise ImcError("adc_bits", cfg.adc_bits,
                           f"two levels of the {cfg.cell_bits}-bit cells share a verify code "
                           f"(the state range spans {cfg.state_max + 1} states); raise adc_bits "
                           f"to at least {cfg.cell_bits + 1}")
        if 2 * self.tolerance + 1 > spacing:
            raise ImcError("write_verify.tolerance", self.tolerance,
                           f"a band of +/-{self.tolerance} codes overlaps the next level "
                           f"({spacing} codes apart); allowed: 0..{(spacing - 1) // 2}")
        need = cfg.device.rng_latency + 1
        if self.pulse_cycles < need:
            raise ImcError("write_verify.pulse_cycles", self.pulse_cycles,
                           f"must be at least {need}: the device draws its noise during the "
                           f"pulse ({cfg.device.rng_rounds} Threefry rounds at "
                           f"{cfg.device.rng_rounds_per_cycle} per cycle)")

    def derived(self, cfg):
        if not cfg.device.programmable:
            return {}
        return {"verify_targets": list(cfg.verify_targets), "count_bits": self.count_bits}

    @property
    def count_bits(self):
        """Width of the reads and pulses counters of a result."""
        return (self.max_pulses + 1).bit_length()


G_BITS = 16            # analog model: conductances in units of g_max / 2^16
IR_BITS = 16           # IR-drop row weights in Q0.16


@table("analog")
@dataclass(frozen=True)
class AnalogConfig(Table):
    """Device physics in the compute reads (docs/analog.md): conductances, programming error,
    read noise, drift, stuck cells, off-state leakage, IR drop, comparator offset and noise.

    ``device = "none"`` keeps the digital model (levels summed exactly). The physical models
    run in the golden model and in the Python crossbar (``crossbar = "external"``), identical
    bit for bit; the synthesizable stub stays digital.
    """

    device: str = key("none", "none (digital levels), ideal (exact conductances), pcm (the "
                      "aihwkit PCM statistics) or rram (Yan et al. 2019, RRAM review)",
                      choices=("none", "ideal", "pcm", "rram"))
    seed: int = key(11, "analog noise instance (programming error, drift, read and "
                    "comparator noise)",
                    limits=(0, 2**32 - 1))
    g_max_us: float = key(25.0, "maximum conductance in microsiemens", limits=(0.01, 1e4))
    g_min_us: float = key(0.25, "minimum conductance (off-state leakage) in microsiemens",
                          limits=(0.0, 1e4))
    prog_noise: float = key(1.0, "scale of the device's programming error (1 = the model)",
                            limits=(0.0, 100.0))
    read_noise: float = key(1.0, "scale of the device's read noise (1 = the model)",
                            limits=(0.0, 100.0))
    drift: float = key(1.0, "scale of the device's drift exponents (1 = the model)",
                       limits=(0.0, 100.0))
    time: float = key(20.0, "seconds since programming at which the reads happen (drift)",
                      limits=(0.0, 1e12))
    ir_drop: float = key(0.0, "first-order IR drop: current lost at the farthest row for a "
                         "full-scale line current",
                         limits=(0.0, 0.9))
    comparator_offset: float = key(0.0, "comparator offset in ADC LSBs", limits=(-8.0, 8.0))
    comparator_noise: float = key(0.0, "comparator noise (standard deviation) in ADC LSBs",
                                  limits=(0.0, 8.0))
    adc_range: str = key("ideal", "ideal (one level step per code) or calibrated (full scale from "
                         "the programmed array's largest read)",
                         choices=("ideal", "calibrated"))
    drift_compensation: bool = key(False, "scale the ADC reference by a (noisy) reference read "
                                   "of the array's total conductance")
    v_read: float = key(0.2, "read voltage across a cell in volts (currents in amperes)",
                        limits=(0.001, 5.0))

    @property
    def physical(self):
        return self.device != "none"

    def check(self, cfg):
        if self.physical and self.g_min_us >= self.g_max_us:
            raise ImcError("analog.g_min_us", self.g_min_us,
                           f"must be below analog.g_max_us = {self.g_max_us}")

    def derived(self, cfg):
        if not self.physical:
            return {}
        g_min = 0.0 if self.device == "ideal" else self.g_min_us
        return {"on_off_ratio": round(self.g_max_us / g_min, 3) if g_min else "infinite",
                "level_current_ua": round((self.g_max_us - g_min) / cfg.cell_max * self.v_read,
                                          6),
                "read_max_ua": round(cfg.rows_per_read * self.g_max_us * self.v_read, 6)}


TRNG_TABLE_BITS = 8    # the delay table has 2^8 + 1 quantiles per voltage code
TRNG_FRAC_BITS = 8     # interpolation between quantiles, from the draw
TRNG_DELAY_FRAC = 4    # table entries in 1/16 clock periods
TRNG_DELAY_CAP = 1023  # clock periods: "never switches" for any pulse (pulse_cycles <= 255)
TRNG_VOLTAGES = 4      # write-voltage codes 0..3


@table("trng")
@dataclass(frozen=True)
class TrngConfig(Table):
    """True random number generator from stochastic switching delays: docs/trng.md."""

    enabled: bool = key(False, "build the TRNG (entropy sources in the crossbar, the TRNG block "
                        "and its byte stream)")
    sources: int = key(8, "entropy devices pulsed in parallel, a bit each per round",
                       limits=(1, 16))
    seed: int = key(1, "entropy devices of the stub: the switching delays draw from it",
                    limits=(0, 2**32 - 1))
    pulse_cycles: int = key(12, "write pulse length in clock periods", limits=(1, 255))
    reset_cycles: int = key(2, "reset pulse length in clock periods", limits=(1, 64))
    voltage: int = key(2, "write-voltage code (a higher code switches faster)",
                       limits=(0, TRNG_VOLTAGES - 1))
    delay_median: float = key(20.0, "median switching delay at voltage code 0, in clock "
                              "periods",
                              limits=(0.5, 1000.0))
    voltage_speedup: float = key(2.0, "median delay divides by this per voltage code",
                                 limits=(1.0, 10.0))
    delay_sigma: float = key(0.5, "spread of the log-normal delay (sigma of its log)",
                             limits=(0.01, 2.0))
    fault: str = key("none", "injected fault: none, stuck_never (never switches), stuck_always "
                     "(switches at once), biased (spread well below a clock period)",
                     choices=("none", "stuck_never", "stuck_always", "biased"))
    debias: bool = key(False, "von Neumann debiasing of each source's bits")
    min_entropy: float = key(0.5, "claimed min-entropy per raw bit, in (0, 1] (sets the "
                             "health-test cutoffs)",
                             limits=(0.0, 1.0))
    false_alarm: float = key(2.0**-20, "false-alarm probability of each health test, in (0, 1)",
                             limits=(0.0, 1.0))
    apt_window: int = key(1024, "adaptive proportion test window (SP 800-90B: 1024 for binary "
                          "sources)",
                          choices=(512, 1024))

    def check(self, cfg):
        if self.min_entropy <= 0:
            raise ImcError("trng.min_entropy", self.min_entropy, "must be a number in (0, 1]")
        if not 0 < self.false_alarm < 1:
            raise ImcError("trng.false_alarm", self.false_alarm, "must be a number in (0, 1)")
        if self.enabled:
            need = timing.trng_draw_cycles(cfg)
            if self.round_cycles < need:
                raise ImcError("trng.pulse_cycles", self.pulse_cycles,
                               f"a round (pulse + reset + 2 = {self.round_cycles} cycles) must "
                               f"cover the {need} cycles the stub takes to draw the next delays "
                               f"of {self.sources} sources: allowed "
                               f"{need - self.reset_cycles - 2}..255")

    @property
    def draws(self):
        """Counter-based draws per round: one 64-bit draw serves four sources."""
        return -(-self.sources // 4)

    @property
    def rct_cutoff(self):
        """SP 800-90B 4.4.1: C = 1 + ceil(-log2(alpha) / H)."""
        return 1 + math.ceil(-math.log2(self.false_alarm) / self.min_entropy)

    @cached_property
    def apt_cutoff(self):
        """SP 800-90B 4.4.2: C = 1 + CRITBINOM(W, 2^-H, 1 - alpha), the smallest k whose
        binomial CDF reaches 1 - alpha, computed exactly (rational arithmetic)."""
        return 1 + _critbinom(self.apt_window, 2.0 ** -self.min_entropy, 1 - self.false_alarm)

    def delay_median_at(self, voltage):
        return self.delay_median / self.voltage_speedup ** voltage

    @cached_property
    def delay_table(self):
        """Per voltage code, the switching delay's quantiles at i / 2^8 (i = 0..256), in 1/16
        clock periods: the piecewise-linear inverse CDF the stub and the golden model both
        interpolate. Log-normal with median ``delay_median_at(v)`` and log-spread
        ``delay_sigma``; the faults replace it (docs/trng.md section 2)."""
        from statistics import NormalDist

        scale, cap = 1 << TRNG_DELAY_FRAC, TRNG_DELAY_CAP << TRNG_DELAY_FRAC
        steps = 1 << TRNG_TABLE_BITS
        edge = 2.0 ** -(TRNG_TABLE_BITS + 8)  # the end quantiles, clipped off 0 and 1
        tables = []
        for voltage in range(TRNG_VOLTAGES):
            median, sigma = self.delay_median_at(voltage), self.delay_sigma
            if self.fault == "biased":  # a spread of 0.38 periods around the middle of one
                median = math.floor(median) + 0.5  # period: the count's parity is ~81 % one way
                sigma = 0.38 / median
            row = []
            for i in range(steps + 1):
                p = min(max(i / steps, edge), 1 - edge)
                delay = median * math.exp(sigma * NormalDist().inv_cdf(p))
                row.append(min(cap, round(delay * scale)))
            if self.fault == "stuck_always":
                row = [0] * (steps + 1)
            elif self.fault == "stuck_never":
                row = [cap] * (steps + 1)
            tables.append(tuple(row))
        return tuple(tables)

    @property
    def round_cycles(self):
        """Clock cycles of one TRNG round (imcgen.core.timing.trng_round_cycles)."""
        return timing.trng_round_cycles(self)

    def derived(self, cfg):
        if not self.enabled:
            return {}
        return {"rct_cutoff": self.rct_cutoff, "apt_cutoff": self.apt_cutoff,
                "round_cycles": self.round_cycles,
                "median_delay_cycles": round(self.delay_median_at(self.voltage), 3)}


@table("stub")
@dataclass(frozen=True)
class StubConfig(Table):
    """How the synthesizable crossbar stub stores its cells (docs/architecture.md section 11).

    ``registers``: a memory per row read combinationally, which synthesis maps to LUT RAM or
    flip-flops. ``block_ram``: one block RAM word per column group holding every row, read a
    cycle late (the stub addresses the next group while the SAR dwells on one), which frees a
    logic cell per cell bit on parts without LUT RAM (iCE40). A preference: the stub keeps
    registers where block RAM cannot work, and ``config show`` says which it uses
    (``block_ram_in_use``, :attr:`MacroConfig.stub_block_ram`).
    """

    cells: str = key("registers", "cell storage of the crossbar stub: registers (LUT RAM or "
                     "flip-flops) or block_ram where it can (one word per column group)",
                     choices=("registers", "block_ram"))

    def derived(self, cfg):
        if self.cells != "block_ram":
            return {}
        return {"block_ram_in_use": cfg.stub_block_ram,
                **({} if cfg.stub_block_ram else {"registers_because": cfg.stub_registers_why})}


def _critbinom(n, p, target):
    """Smallest k with P(Binomial(n, p) <= k) >= target (Excel's CRITBINOM), i.e. the
    smallest k whose upper tail P(X > k) is at most 1 - target; the tail is summed in log
    space from the top, small terms first (double precision resolves tails far below 2^-40)."""
    alpha = 1.0 - target
    logp, logq = math.log(p), math.log1p(-p)

    def log_pmf(k):
        return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                + k * logp + (n - k) * logq)

    tail = 0.0  # P(X > k), built from k = n - 1 downwards
    for k in range(n - 1, -1, -1):
        tail += math.exp(log_pmf(k + 1))
        if tail > alpha:
            return k + 1
    return 0


# -- presets -------------------------------------------------------------------------------

PRESETS = {
    # Sized for `imcgen demo`: 64 digit pixels (0..16, 5-bit unsigned) over two 32-row tiles,
    # 10 classes, 5-bit weights over 2-bit cells, 5-bit SAR ADCs (10 rows per read).
    "default": {},
    # ISAAC (as the IEEE Design & Test tutorial, 2021, and Yan et al. 2019 describe it): 128x128
    # array, 2-bit cells, 16-bit weights over 8 cells with the offset encoding, 16-bit bit-serial
    # inputs, one 8-bit ADC shared by all 128 columns.
    "isaac": dict(rows=128, tiles=1, outputs=16, input_bits=16, input_signed=True,
                  weight_bits=16, cell_bits=2, weight_mapping="offset", adc_bits=8, adcs=1,
                  schedule="dense"),
    # Chang-group RRAM macro (Chen ISSCC'18 / Xue ISSCC'19, cited by Sebastian et al.
    # 2020 and Yan et al. 2019): 2-bit serial
    # inputs, SLC (1-bit) cells, 3-bit weights, 3-bit sense-amp readout, 7 rows per read.
    "chang": dict(rows=64, tiles=2, outputs=16, input_bits=2, input_signed=False,
                  weight_bits=3, cell_bits=1, weight_mapping="differential", adc_bits=3,
                  adcs=16, schedule="zero_skip"),
    # Sized for the iCEBreaker (iCE40 UP5K, 5280 logic cells) with the UART board top: two
    # 8-row tiles, 4 outputs, 4-bit inputs and weights over 2-bit cells, four 4-bit ADCs.
    # Its cells live in block RAM: the UP5K has no LUT RAM, and 512 cell bits in flip-flops
    # take a tenth of its logic cells (docs/architecture.md section 11).
    "small": dict(rows=8, tiles=2, outputs=4, input_bits=4, weight_bits=4, cell_bits=2,
                  adc_bits=4, adcs=4, stub={"cells": "block_ram"}),
}


def allowed_keys():
    """Every key ``--set`` takes: the flat ones, then ``table.key`` for each table."""
    return list(_FIELDS) + [f"{name}.{key}" for name, cls in TABLES.items()
                            for key in cls.FIELDS]


def _field(key):
    name, dot, sub = key.partition(".")
    if not dot and name in _FIELDS:
        return _FIELDS[name]
    if dot and name in TABLES and sub in TABLES[name].FIELDS:
        return TABLES[name].FIELDS[sub]
    return None


def parse_set(items):
    """``["rows=64", "table.key=2"]`` -> ``{"rows": 64, "table.key": 2}``."""
    values = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep:
            raise ImcError("--set", item, "must look like key=value")
        spec = _field(key)
        if spec is None:
            raise ImcError("--set", key, "unknown key; allowed: " + ", ".join(allowed_keys()))
        values[key] = spec.parse(key, text)
    return values


def _from_toml(data, where):
    """Flat values and dotted table values of a parsed TOML document."""
    values = {}
    for key, value in data.items():
        if key in TABLES:
            if not isinstance(value, dict):
                raise ImcError(f"{where}: {key}", value,
                               f"must be a table [{key}] of keys "
                               f"({', '.join(TABLES[key].FIELDS)})")
            for sub, item in value.items():
                if sub not in TABLES[key].FIELDS:
                    raise ImcError(f"{where}: {key}.{sub}", item,
                                   "unknown key; allowed: " + ", ".join(TABLES[key].FIELDS))
                values[f"{key}.{sub}"] = TABLES[key].FIELDS[sub].check(f"{key}.{sub}", item)
        elif key in _FIELDS:
            spec = _FIELDS[key]
            if spec.type is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise ImcError(f"{where}: {key}", value, "must be an integer")
            values[key] = value
        else:
            raise ImcError(f"{where}: {key}", value,
                           "unknown key; allowed: preset, " + ", ".join(list(_FIELDS) + [
                               f"[{name}]" for name in TABLES]))
    return values


def load_config(preset=None, config_file=None, overrides=None):
    """Resolve a configuration: preset, then TOML file, then ``--set`` overrides.

    A TOML file may name its base with ``preset = "isaac"``; otherwise it starts from
    ``default``. ``overrides`` is a dict (flat or dotted keys) or a list of ``key=value``
    strings.
    """
    from imcgen.core.checks import read_config_text

    if preset is not None and config_file is not None:
        raise ImcError("--preset", preset, "give either --preset or --config, not both")
    values = {}
    base = preset if preset is not None else "default"
    if config_file is not None:
        name = str(config_file)
        try:
            data = tomllib.loads(read_config_text(config_file))
        except tomllib.TOMLDecodeError as err:
            raise ImcError("--config", name, f"not valid TOML ({err})") from None
        base = data.pop("preset", "default")
        if not isinstance(base, str):
            raise ImcError(f"{name}: preset", base,
                           "must be a string naming one of " + ", ".join(PRESETS))
        values = _from_toml(data, name)
    if base not in PRESETS:
        raise ImcError("preset", base, "must be one of " + ", ".join(PRESETS))
    if isinstance(overrides, dict):
        values.update(overrides)
    elif overrides:
        values.update(parse_set(overrides))
    return MacroConfig.from_dict(PRESETS[base]).replace(**values)

