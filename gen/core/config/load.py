"""Resolving a configuration: presets, a TOML file and ``--set`` overrides."""

import tomllib

from imcgen.core.config.macro import _FIELDS, MacroConfig, _field, allowed_keys
from imcgen.core.config.presets import PRESETS
from imcgen.core.config.schema import TABLES, listing
from imcgen.core.errors import ImcError


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
            raise ImcError("--set", key, "unknown key; allowed: " + listing(allowed_keys()))
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
                                   "unknown key; allowed: " + listing(TABLES[key].FIELDS))
                values[f"{key}.{sub}"] = TABLES[key].FIELDS[sub].check(f"{key}.{sub}", item)
        elif key in _FIELDS:
            spec = _FIELDS[key]
            if spec.type is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise ImcError(f"{where}: {key}", value, "must be an integer")
            values[key] = value
        else:
            raise ImcError(f"{where}: {key}", value,
                           "unknown key; allowed: preset, " + listing(list(_FIELDS) + [
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
