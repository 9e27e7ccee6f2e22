"""The configuration schema: a key is declared once, as a dataclass field made by :func:`key`
(default, description, allowed set, limits; the type is the annotation); :class:`Field`, the
checks and the TOML forms are derived from it. Tables (``[device]``...) register with
:func:`table`."""

import dataclasses
import math
from dataclasses import dataclass

from imcgen.core.errors import ImcError


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
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            try:  # an integer too large for a float is refused like an infinity
                ok = ok and math.isfinite(float(value))
            except OverflowError:
                ok = False
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


def listing(names, shown=10):
    """``names`` for a one-line message: the first few, then how many more and where to see
    them all (``imcgen config keys``)."""
    names = list(names)
    if len(names) <= shown:
        return ", ".join(names)
    return ", ".join(names[:shown]) + f", ... ({len(names) - shown} more: imcgen config keys)"


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
    HARDWARE = True  # the RTL depends on it (configuration digest, build identities)

    def __post_init__(self):
        for key, spec in self.FIELDS.items():
            object.__setattr__(self, key, spec.check(f"{self.TABLE}.{key}", getattr(self, key)))

    def check(self, cfg):
        """Checks that need the whole configuration; raise :class:`ImcError`."""

    def warnings(self, cfg):
        """One line per setting of this table that is allowed but defeats its purpose."""
        return []

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
                           "unknown key; allowed: " + listing(cls.FIELDS))
        return cls(**values)


# The accumulators of the golden model are int64; configurations needing more are refused.
