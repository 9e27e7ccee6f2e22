"""Weight mapper: signed weight rows in, cell-level writes out, one column group per cycle.

Differential: |w| split over the G+ (w > 0) or G- (w < 0) column of each slice. Offset (ISAAC):
u = w + 2^(weight_bits-1), which in two's complement is w with its sign bit inverted. Slice k of
the stored magnitude goes to the column ``config.column(j, k, p)``. A row of ``column_groups``
words is written in as many cycles; the next row is taken on the last one.

With a programmable device a row flagged ``program`` is not written: its levels go out whole on
``program_row`` to the write-verify FSM, which programs every cell by pulses (array mode).

A host drives this port directly (an FPGA link), so a row that cannot be stored is taken and
dropped, never written anywhere: a row index at or beyond ``rows * tiles`` (the index field is
wider than that unless it is a power of two), or, with the differential mapping, a weight of
``-2^(weight_bits-1)`` whose magnitude needs one bit more than the pair stores. ``dropped``
pulses for one cycle with the reason.
"""

from amaranth import Module, Signal
from amaranth.hdl import Cat, Mux, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from imcgen.hdl.analog import CellPortSignature
from imcgen.hdl.common import Block, index_shape

__all__ = ["WeightMapper", "weight_row_layout", "drop_layout"]


def weight_row_layout(config):
    fields = {
        "row": index_shape(config.input_rows),  # global row: tile = row // rows
        "weights": data.ArrayLayout(signed(config.weight_bits), config.outputs),
    }
    if config.programmable:
        fields["program"] = unsigned(1)  # write-verify every cell (array mode), not load
    return data.StructLayout(fields)


def drop_layout(config):
    """Why a weight row was dropped (one-cycle pulses)."""
    return data.StructLayout({"row": 1, "weight": 1})


class WeightMapper(Block):
    """Maps weight rows to cell levels and writes them through the cell port.

    Parameters
    ----------
    config : MacroConfig
        Uses ``weight_bits``, ``weight_mapping``, ``cell_bits``, the column map and ``tiles``.

    Attributes
    ----------
    i : In(stream.Signature(weight_row_layout))
        One weight row per transfer.
    cell : Out(CellPortSignature)
        Cell writes, for the tile in ``tile``.
    tile : Out(index_shape(tiles))
        Tile of the row being written.
    busy : Out(1)
        A row is being written.
    dropped : Out(drop_layout)
        A row was taken and dropped on this edge: its index is out of range (``row``) or a
        weight is the differential mapping's excluded value (``weight``).
    program_row : Out(stream.Signature(array_row_layout))
        Programmable devices: the levels of a row flagged ``program``.
    """

    def __init__(self, *, config):
        members = {
            "i": In(stream.Signature(weight_row_layout(config))),
            "cell": Out(CellPortSignature(config)),
            "tile": Out(index_shape(config.tiles)),
            "busy": Out(1),
            "dropped": Out(drop_layout(config)),
        }
        if config.programmable:
            from imcgen.hdl.write_verify import array_row_layout

            members["program_row"] = Out(stream.Signature(array_row_layout(config)))
        super().__init__(config, members)

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        groups, lanes, s = cfg.column_groups, cfg.adcs, cfg.cell_bits

        weights = Signal(data.ArrayLayout(signed(cfg.weight_bits), cfg.outputs))
        group = Signal(index_shape(groups))
        program_row = Signal(index_shape(cfg.input_rows))

        # Stored magnitude of every (output, polarity), then the level of every physical column.
        magnitude_width = cfg.slices * s  # top slice zero-padded
        stored = {(j, p): Signal(magnitude_width, name=f"stored{j}_{p}")
                  for j in range(cfg.outputs) for p in range(cfg.polarities)}
        for j in range(cfg.outputs):
            w = weights[j]
            if cfg.weight_mapping == "differential":
                m.d.comb += [
                    stored[j, 0].eq(Mux(w > 0, w, 0)),
                    stored[j, 1].eq(Mux(w < 0, -w, 0)),
                ]
            else:
                m.d.comb += stored[j, 0].eq(w.as_unsigned() ^ (1 << (cfg.weight_bits - 1)))
        levels = [Signal(s, name=f"level{c}") for c in range(cfg.physical_columns)]
        for c, (j, k, p) in enumerate(cfg.column_map):
            m.d.comb += levels[c].eq(stored[j, p][k * s:(k + 1) * s])

        # The cell port comes from registers, a cycle after the group is formed: the write
        # reaches every row memory of every tile, and its fan-out is the whole path.
        row, tile = Signal.like(self.cell.row), Signal.like(self.tile)
        with m.Switch(group):
            for g in range(groups):
                with m.Case(g):
                    for a in range(lanes):
                        c = g * lanes + a  # lanes past the last column store level 0
                        m.d.sync += self.cell.data[a].eq(levels[c] if c < cfg.physical_columns
                                                         else 0)

        final = group == groups - 1
        payload = self.i.payload
        bad_row = Signal()
        bad_weight = Signal()
        if (1 << len(payload.row)) > cfg.input_rows:
            m.d.comb += bad_row.eq(payload.row >= cfg.input_rows)
        if cfg.weight_mapping == "differential":
            excluded = -(1 << (cfg.weight_bits - 1))
            m.d.comb += bad_weight.eq(Cat(payload.weights[j] == excluded
                                          for j in range(cfg.outputs)).any())
        take = self.i.valid & self.i.ready
        writing = Signal()  # a loaded row is being written, one group per cycle
        m.d.sync += [self.cell.we.eq(writing), self.cell.group.eq(group),
                     self.cell.row.eq(row), self.tile.eq(tile)]
        m.d.comb += [
            self.dropped.row.eq(take & bad_row),
            self.dropped.weight.eq(take & bad_weight),
        ]
        good = take & ~bad_row & ~bad_weight
        if cfg.programmable:  # array mode: the row's levels go to the write-verify FSM whole
            forwarding = self.program_row.valid
            m.d.comb += [
                self.i.ready.eq((~writing | final) & ~forwarding),
                self.busy.eq(writing | self.cell.we | forwarding),
                self.program_row.payload.row.eq(program_row),
            ]
            for c in range(cfg.physical_columns):
                m.d.comb += self.program_row.payload.levels[c].eq(levels[c])
            with m.If(self.program_row.ready):
                m.d.sync += forwarding.eq(0)
            with m.If(good & self.i.payload.program):
                m.d.sync += [forwarding.eq(1), program_row.eq(payload.row)]
            good = good & ~self.i.payload.program
        else:
            m.d.comb += [self.i.ready.eq(~writing | final), self.busy.eq(writing | self.cell.we)]
        # The row registers load whenever a row may be taken, offered or not; whether a write
        # starts (`good`: offered, taken and valid) decides only `writing`'s next value, so
        # the offer's handshake reaches no enable.
        with m.If(self.i.ready):
            m.d.sync += [weights.eq(payload.weights), group.eq(0), writing.eq(good)]
            for t in range(cfg.tiles):  # row -> (tile, local row) without a divider
                with m.If((payload.row >= t * cfg.rows) & (payload.row < (t + 1) * cfg.rows)):
                    m.d.sync += [tile.eq(t), row.eq(payload.row - t * cfg.rows)]
        with m.Elif(writing):  # not the final group (that one makes i.ready)
            m.d.sync += group.eq(group + 1)
        return m
