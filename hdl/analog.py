"""The analog boundary: what the digital periphery of one tile sees of its crossbar.

Declared once here and used by the synthesizable stub (``crossbar_stub``), by the periphery
blocks that drive it (SAR-ADC controller, weight mapper, write-verify FSM), by the top level
when ``crossbar = "external"`` exposes it as ports, and by the cocotb-side crossbar model.
Members are composed per configured feature:

- ``read`` (always): row enables, sample strobe, the sample-and-hold buffer under conversion,
  column-group select, one DAC code per ADC, the comparator results; ``verify`` selects the
  verify reference (programmable devices).
- ``tread`` (``transposed``): the row side's read port for transposed reads (docs/architecture.md
  section 13): column enables of one part, sample strobe, row-group select, one DAC code per
  row-side ADC, their comparator results.
- ``cell`` (always): the ideal weight port, the levels of one row in one column group.
- ``prog`` (programmable devices): one programming pulse at a time to one cell.
- ``entropy`` (tile 0, with the TRNG): the stochastic-switching devices' write and reset
  pulses, the write-voltage code, and one comparator per device.

Semantics (docs/architecture.md section 8, docs/write_verify.md section 1): every signal the
periphery drives comes from a register, so a model may read the boundary after a clock edge and
answer ``cmp`` before the next one.
"""

from amaranth.hdl import unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from imcgen.core.codes import Direction
from imcgen.hdl.common import index_shape

__all__ = ["ReadPortSignature", "TransposedReadPortSignature", "CellPortSignature",
           "ProgPortSignature", "EntropySignature", "AnalogSignature", "dac_layout",
           "levels_layout"]


def dac_layout(config):
    return data.ArrayLayout(unsigned(config.adc_bits), config.adcs)


def levels_layout(config):
    return data.ArrayLayout(unsigned(config.cell_bits), config.adcs)


class ReadPortSignature(wiring.Signature):
    """Read side, driven by the SAR-ADC controller.

    ``row_en``, ``sample``, ``bank``, ``col_sel`` and ``dac`` (and ``verify``) from registers;
    ``cmp[a]`` answers, combinationally, whether lane ``a`` of the held column group reaches
    ``dac[a]``. The sample-and-hold has two buffers: the comparators read buffer ``bank``, an
    edge with ``sample`` high fills the other one (so the next read can be sampled while the
    current one converts).
    """

    def __init__(self, config):
        members = {
            "row_en": Out(config.rows),
            "sample": Out(1),
            "bank": Out(1),
            # Parked on the last group between conversions (section 8 of the architecture).
            "col_sel": Out(index_shape(config.column_groups), init=config.column_groups - 1),
            "dac": Out(dac_layout(config)),
            "cmp": In(config.adcs),
        }
        if config.programmable:
            members["verify"] = Out(1)  # sampled with `sample`: the verify reference
        super().__init__(members)


class TransposedReadPortSignature(wiring.Signature):
    """Row side, driven by the row side's SAR-ADC controller (``transposed``).

    ``col_en`` (one bit per output) and ``part`` (slice ``part // polarities``, polarity
    ``part % polarities``) name the driven physical columns; an edge with ``sample`` high holds
    them. ``cmp[a]`` answers, combinationally, whether row ``row_sel * adcs + a`` of the held
    read reaches ``dac[a]``: the sum of that row's states in the driven columns, rounded to
    levels as a compute read. Everything but ``cmp`` comes from registers; ``bank`` flips as a
    conversion starts, as on the column side (one buffer: no overlap).
    """

    def __init__(self, config):
        super().__init__({
            "col_en": Out(config.outputs),
            "part": Out(index_shape(config.parts)),
            "sample": Out(1),
            "bank": Out(1),
            "row_sel": Out(index_shape(config.row_groups), init=config.row_groups - 1),
            "dac": Out(dac_layout(config)),
            "cmp": In(config.adcs),
        })


class CellPortSignature(wiring.Signature):
    """Ideal weight port: the levels of one row in one column group, stored on the edge."""

    def __init__(self, config):
        super().__init__({
            "we": Out(1),
            "row": Out(index_shape(config.rows)),
            "group": Out(index_shape(config.column_groups)),
            "data": Out(levels_layout(config)),
        })


class ProgPortSignature(wiring.Signature):
    """One programming pulse: ``pulse`` is high for the pulse's duration, with the cell
    (``row``, ``group``, ``lane``), the direction and the amplitude code held; the cell's state
    changes on the first edge at which ``pulse`` is low again."""

    def __init__(self, config):
        super().__init__({
            "pulse": Out(1),
            "row": Out(index_shape(config.rows)),
            "group": Out(index_shape(config.column_groups)),
            "lane": Out(index_shape(config.adcs)),
            "direction": Out(Direction),
            "amp": Out(config.write_verify.amp_bits),
        })


class EntropySignature(wiring.Signature):
    """The TRNG's entropy devices (docs/trng.md section 1): ``pulse`` is high for a write
    pulse to every device at once, at write-voltage code ``voltage``; each device switches
    after its stochastic delay and its comparator (``switched``) goes high and stays high
    until ``reset`` (the reset pulse) clears the device."""

    def __init__(self, config):
        super().__init__({
            "pulse": Out(1),
            "reset": Out(1),
            "voltage": Out(range(4)),
            "switched": In(config.trng.sources),
        })


class AnalogSignature(wiring.Signature):
    """The whole boundary of one tile, periphery side (``.flip()`` for the crossbar).

    ``entropy`` adds the TRNG's devices (tile 0 of a configuration with ``trng.enabled``).
    """

    def __init__(self, config, entropy=False):
        members = {
            "read": Out(ReadPortSignature(config)),
            "cell": Out(CellPortSignature(config)),
        }
        if config.transposed:
            members["tread"] = Out(TransposedReadPortSignature(config))
        if config.programmable:
            members["prog"] = Out(ProgPortSignature(config))
        if entropy:
            members["entropy"] = Out(EntropySignature(config))
        super().__init__(members)
