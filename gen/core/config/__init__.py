"""One configuration object for the whole macro.

Hardware (``imcgen.hdl``), golden model (``imcgen.golden``), Verilog generation and the
testbenches all read every width and count from :class:`MacroConfig`; nothing re-derives one by
hand. The MVM keys are flat so they read the same in TOML files and in ``--set key=value``;
later feature groups are TOML tables (``[write_verify]``), addressed in ``--set`` by dotted keys
(``write_verify.tolerance=2``).

Every key is declared once, where its table is (:func:`key`: default, description, allowed set
and limits; :mod:`.schema`), one module per table: :mod:`.macro` (the flat keys),
:mod:`.device`, :mod:`.write_verify`, :mod:`.analog`, :mod:`.trng`, :mod:`.stub`,
:mod:`.requant`, :mod:`.cost` (not hardware: left out of
:meth:`MacroConfig.hardware_dict`); presets in :mod:`.presets`, loading in :mod:`.load`.

Configurations are cache and sweep keys: two compare equal exactly when every later
``replace`` gives equal results (``rows_per_read = 0`` stays "automatic" and is not equal to
the count it resolves to).
"""

# Tables register in this order (the order of ``config show`` and of ``MacroConfig.tables``).
from .schema import TABLES, Field, Table, fields_of, key, signed_bits, table  # noqa: I001
from .device import GAIN_SHIFT, IRWIN_HALL_SD, NOISE_SHIFT, DeviceConfig
from .write_verify import WriteVerifyConfig
from .analog import G_BITS, IR_BITS, AnalogConfig
from .trng import (TRNG_DELAY_CAP, TRNG_DELAY_FRAC, TRNG_FRAC_BITS, TRNG_TABLE_BITS,
                   TRNG_VOLTAGES, TrngConfig)
from .stub import StubConfig
from .cost import CostConfig
from .requant import ROUNDINGS, RequantConfig
from .macro import _FIELDS, MAX_ACCUMULATOR_BITS, MacroConfig
from .presets import PRESETS
from .macro import _field, allowed_keys
from .load import load_config, parse_set

__all__ = ["Field", "MacroConfig", "PRESETS", "TABLES", "load_config", "parse_set",
           "signed_bits", "key", "fields_of", "table", "Table", "allowed_keys",
           "DeviceConfig", "WriteVerifyConfig", "AnalogConfig", "TrngConfig", "StubConfig",
           "CostConfig", "RequantConfig", "ROUNDINGS",
           "MAX_ACCUMULATOR_BITS", "GAIN_SHIFT", "NOISE_SHIFT", "IRWIN_HALL_SD", "G_BITS",
           "IR_BITS", "TRNG_TABLE_BITS", "TRNG_FRAC_BITS", "TRNG_DELAY_FRAC", "TRNG_DELAY_CAP",
           "TRNG_VOLTAGES", "_FIELDS", "_field"]
