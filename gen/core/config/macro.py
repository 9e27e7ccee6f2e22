"""The flat MVM keys and the whole configuration, :class:`MacroConfig` (see the package)."""

import dataclasses
import math
from dataclasses import dataclass
from functools import cached_property

from imcgen.core import timing
from imcgen.core.config.schema import (
    TABLES,
    Table,
    _toml_value,
    fields_of,
    key,
    listing,
    signed_bits,
)
from imcgen.core.errors import ImcError

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
    # Off by default: the backward path adds drivers, SARs, sums (docs/architecture.md sec. 13).
    transposed: bool = key(False, "transposed reads too (backward pass x = W y): a vector "
                           "flagged backward drives the columns and the rows are sensed")
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
        scaled = self.product_bits if self.requant.enabled else self.sum_bits
        if self.out_shift and self.out_shift >= scaled - 1:
            what = "products (sum + bias) * scale" if self.requant.enabled else "sums"
            raise ImcError("out_shift", self.out_shift,
                           f"shifts out every magnitude bit of the {scaled}-bit {what} "
                           f"(every output would be 0 or -1); allowed: 0..{scaled - 2}")
        if self.transposed:
            self._check_transposed()
        for tab in self.tables:
            tab.check(self)

    def _check_transposed(self):
        if self.back_bits > MAX_ACCUMULATOR_BITS:
            raise ImcError("transposed", True,
                           f"backward sums need {self.back_bits} bits; at most "
                           f"{MAX_ACCUMULATOR_BITS} are supported")

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

    def hardware_dict(self):
        """:meth:`to_dict` without the tables no RTL depends on (``[cost]``): the identity of
        a build and of a board (:func:`imcgen.link.protocol.config_digest`)."""
        values = self.to_dict()
        for tab in self.tables:
            if not tab.HARDWARE:
                del values[tab.TABLE]
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
        for dotted, value in changes.items():
            name, dot, sub = dotted.partition(".")
            if name in TABLES:
                merged = dict(values[name])
                merged.update({sub: value} if dot else dict(value))
                values[name] = merged
            elif dot or dotted not in _FIELDS:
                raise ImcError(dotted, value, "unknown key; allowed: " + listing(allowed_keys()))
            else:
                values[dotted] = value
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
            for name, spec in tab.FIELDS.items():
                lines.append(f"{name} = {_toml_value(getattr(tab, name))}".ljust(32)
                             + f"# {spec.doc}")
            for name, value in tab.derived(self).items():
                lines.append(f"# {name} = {value}")
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
        for tab in self.tables:
            out += tab.warnings(self)
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
            **({"row_groups": self.row_groups, "parts": self.parts,
                "back_groups_per_plane": self.back_groups_per_plane,
                "back_bits": self.back_bits} if self.transposed else {}),
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
        return self._over_planes(*self.plane_range)

    def _over_planes(self, lo_p, hi_p):
        """Range of a sum of plane values in ``lo_p..hi_p``, each weighted by its plane."""
        lo = hi = 0
        for b in range(self.input_bits):
            w = 1 << b
            if self.input_signed and b == self.input_bits - 1:
                w = -w
            lo += min(w * lo_p, w * hi_p)
            hi += max(w * lo_p, w * hi_p)
        return lo, hi

    # -- transposed reads (docs/architecture.md section 13) --------------------------------
    # A backward vector y (``outputs`` elements, the inputs' format) drives the columns: each
    # read drives the columns of one part (slice k, polarity p) of at most ``back_per_read``
    # outputs whose plane bit is 1, and every row of every tile is sensed through the tile's
    # row-side ADCs (``adcs`` of them, shared by the rows in ``row_groups``). Tiles hold
    # different rows, so their results are concatenated: x = W y, ``rows * tiles`` elements.

    @property
    def back_per_read(self):
        """Columns of one part driven per backward read: ``rows_per_read`` (the same bound
        keeps a read unclipped: each driven line adds one cell of one slice), at most
        ``outputs``."""
        return min(self.rows_per_read, self.outputs)

    @property
    def back_groups_per_plane(self):
        """Column chunks per plane of a backward vector (dense; zero_skip's worst case)."""
        return math.ceil(self.outputs / self.back_per_read)

    @property
    def parts(self):
        """Reads per column chunk of a backward vector: one per (slice, polarity)."""
        return self.slices * self.polarities

    @property
    def row_groups(self):
        """Rows each row-side ADC converts per backward read (its mux depth)."""
        return math.ceil(self.rows / self.adcs)

    @cached_property
    def back_range(self):
        """Range of one element of a backward result (one row's sum over planes and reads)."""
        reads = [self.adc_max if self.analog.physical else
                 min(self.adc_max, self.back_per_read * ((1 << b) - 1)) for b in self.slice_bits]
        plane_max = [min(self.outputs * ((1 << b) - 1), self.back_groups_per_plane * r)
                     for b, r in zip(self.slice_bits, reads, strict=True)]
        return self._over_planes(*self._combine(plane_max, self.outputs))

    @property
    def back_bits(self):
        """Signed width of a backward result element (full precision: no output stage)."""
        return signed_bits(*self.back_range)

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
    def bias_bits(self):
        """Signed width of a requantization bias: the sums' (a bias beyond them is no use)."""
        return self.sum_bits

    @property
    def product_bits(self):
        """Signed width of ``(sum + bias) * scale``, exact (``[requant]``)."""
        return self.sum_bits + 1 + self.requant.scale_bits

    @property
    def out_range(self):
        lo, hi = self.sum_range
        if self.requant.enabled:  # (sum + bias) * scale, the bias in the sums' own range
            top = (1 << self.requant.scale_bits) - 1
            bias = 1 << (self.bias_bits - 1)
            lo, hi = (lo - bias) * top, (hi + bias - 1) * top
            lo, hi = lo >> self.out_shift, -(-hi >> self.out_shift)  # any rounding stays inside
        else:
            lo, hi = lo >> self.out_shift, hi >> self.out_shift
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


#: The flat keys, in the order of ``config show`` (declared on :class:`MacroConfig`).
_FIELDS = fields_of(MacroConfig)


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
