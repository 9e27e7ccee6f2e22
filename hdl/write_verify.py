"""Write-verify FSM: programs cells by pulses until their verify read lands within tolerance.

Requests come one cell at a time (``i``: global row, physical column, target verify code) or a
whole weight row at a time (``rows``: the array mode; every physical column of the row, all
slices and both differential columns, in column order, targets from the levels). Per cell:

    READ   send a verify read of the cell to its tile's SAR-ADC controller (``verify``)
    WAIT   take the code (``code``)
    CHECK  within target +/- tolerance: OK; the last ``stuck_pulses`` pulses at ``amp_max``
           left the code unchanged at a rail (0 or adc_max): STUCK; ``max_pulses`` spent:
           GAVE_UP; else pulse
    PULSE  ``pulse_cycles`` cycles towards the target, amplitude ``amp_start`` for the first
           pulse in a direction, ``amp_step`` more (up to ``amp_max``) for each further one
           in the same direction (incremental step pulse programming); then READ
    DONE   offer the result (``o``); a stalled result stream holds the FSM here

The golden model (``golden/write_verify.py``) runs the same algorithm on the same device model;
``imcgen.core.timing`` states the cycles. A request for a row or column that does not exist is
taken, dropped (never applied to another cell) and flagged on ``dropped``.
"""

from amaranth import Module, Signal
from amaranth.hdl import Mux, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from imcgen.core.codes import Direction, Status
from imcgen.core.requirements import require
from imcgen.hdl.analog import ProgPortSignature
from imcgen.hdl.common import Block, index_shape, record_fsm

__all__ = ["WriteVerify", "request_layout", "array_row_layout", "result_layout",
           "verify_command_layout"]


def request_layout(config):
    return data.StructLayout({
        "row": index_shape(config.input_rows),         # global row: tile = row // rows
        "column": index_shape(config.physical_columns),
        "target": unsigned(config.adc_bits),           # verify code
    })


def array_row_layout(config):
    return data.StructLayout({
        "row": index_shape(config.input_rows),
        "levels": data.ArrayLayout(unsigned(config.cell_bits), config.physical_columns),
    })


def result_layout(config):
    count = config.write_verify.count_bits
    return data.StructLayout({
        "row": index_shape(config.input_rows),
        "column": index_shape(config.physical_columns),
        "code": unsigned(config.adc_bits),   # final verify read
        "reads": unsigned(count),            # verify reads, the first included
        "pulses": unsigned(count),
        "status": Status,
    })


def verify_command_layout(config):
    return data.StructLayout({
        "tile": index_shape(config.tiles),
        "row": index_shape(config.rows),
        "group": index_shape(config.column_groups),
        "lane": index_shape(config.adcs),
    })


class WriteVerify(Block):
    """The macro's write-verify FSM (one for all tiles: one cell at a time).

    Parameters
    ----------
    config : MacroConfig
        ``device.kind`` rram or pcm; the ``[write_verify]`` table.

    Attributes
    ----------
    i : In(stream.Signature(request_layout))
        Single-cell requests.
    rows : In(stream.Signature(array_row_layout))
        Array mode: a weight row's levels, every physical column programmed in turn.
    verify : Out(stream.Signature(verify_command_layout))
        Verify reads, for the tile in ``tile``.
    code : In(stream.Signature(unsigned(adc_bits)))
        Their codes.
    prog : Out(ProgPortSignature)
        Pulses, for the tile in ``prog_tile``.
    prog_tile : Out(index_shape(tiles))
    o : Out(stream.Signature(result_layout))
        One result per programmed cell.
    busy : Out(1)
        A request (or an array row) is in progress.
    dropped : Out(1)
        A request for a cell that does not exist was taken and dropped on this edge.
    """

    def __init__(self, *, config):
        require("programming", config)  # an ImcError, a ValueError
        super().__init__(config, {
            "i": In(stream.Signature(request_layout(config))),
            "rows": In(stream.Signature(array_row_layout(config))),
            "verify": Out(stream.Signature(verify_command_layout(config))),
            "code": In(stream.Signature(unsigned(config.adc_bits))),
            "prog": Out(ProgPortSignature(config)),
            "prog_tile": Out(index_shape(config.tiles)),
            "o": Out(stream.Signature(result_layout(config))),
            "busy": Out(1),
            "dropped": Out(1),
        })

    def elaborate(self, platform):
        cfg, wv = self.config, self.config.write_verify
        m = Module()
        lanes, columns = cfg.adcs, cfg.physical_columns

        row = Signal(index_shape(cfg.input_rows))     # global row of the cell
        column = Signal(index_shape(columns))
        target = Signal(cfg.adc_bits)
        tile = Signal(index_shape(cfg.tiles))
        local = Signal(index_shape(cfg.rows))
        group = Signal(index_shape(cfg.column_groups))
        lane = Signal(index_shape(lanes))
        array = Signal()                               # walking a whole row
        levels = Signal(data.ArrayLayout(unsigned(cfg.cell_bits), columns))
        code = Signal(cfg.adc_bits)
        reads = Signal(wv.count_bits)
        pulses = Signal(wv.count_bits)
        amp = Signal(wv.amp_bits)
        direction = Signal(Direction)
        still = Signal(range(wv.stuck_pulses + 1))     # pulses at amp_max that moved nothing
        timer = Signal(range(wv.pulse_cycles + 1))
        status = Signal(Status)

        # (tile, local row) of a global row and (group, lane) of a column, without dividers.
        def locate(global_row, col):
            for t in range(cfg.tiles):
                with m.If((global_row >= t * cfg.rows) & (global_row < (t + 1) * cfg.rows)):
                    m.d.sync += [tile.eq(t), local.eq(global_row - t * cfg.rows)]
            if isinstance(col, int):
                m.d.sync += [group.eq(col // lanes), lane.eq(col % lanes)]
                return
            with m.Switch(col):
                for c in range(columns):
                    with m.Case(c):
                        m.d.sync += [group.eq(c // lanes), lane.eq(c % lanes)]

        level_target = Signal(cfg.adc_bits)  # the target of the array walk's current column
        level = Signal(cfg.cell_bits)
        m.d.comb += level.eq(levels[column])
        with m.Switch(level):
            for value, code_ in enumerate(cfg.verify_targets):
                with m.Case(value):
                    m.d.comb += level_target.eq(code_)

        def begin(global_row, col, goal):
            m.d.sync += [row.eq(global_row), column.eq(col), target.eq(goal), reads.eq(0),
                         pulses.eq(0), still.eq(0)]
            locate(global_row, col)

        fits_row = (self.i.payload.row < cfg.input_rows) if \
            (1 << len(self.i.payload.row)) > cfg.input_rows else 1
        fits_column = (self.i.payload.column < columns) if \
            (1 << len(self.i.payload.column)) > columns else 1
        array_fits = (self.rows.payload.row < cfg.input_rows) if \
            (1 << len(self.rows.payload.row)) > cfg.input_rows else 1

        diff = Signal(range(-(1 << cfg.adc_bits), 1 << cfg.adc_bits))
        m.d.comb += diff.eq(code - target)
        within = (diff <= wv.tolerance) & (diff >= -wv.tolerance)
        goes_up = code < target
        next_amp = Signal(wv.amp_bits)
        again = (pulses != 0) & (direction == Mux(goes_up, Direction.SET, Direction.RESET))
        bumped = amp + wv.amp_step
        m.d.comb += next_amp.eq(Mux(again, Mux(bumped > wv.amp_max, wv.amp_max, bumped),
                                    wv.amp_start))

        m.d.comb += [
            self.verify.payload.tile.eq(tile),
            self.verify.payload.row.eq(local),
            self.verify.payload.group.eq(group),
            self.verify.payload.lane.eq(lane),
            self.prog_tile.eq(tile),
            self.prog.row.eq(local),
            self.prog.group.eq(group),
            self.prog.lane.eq(lane),
            self.prog.direction.eq(direction),
            self.prog.amp.eq(amp),
            self.o.payload.row.eq(row),
            self.o.payload.column.eq(column),
            self.o.payload.code.eq(code),
            self.o.payload.reads.eq(reads),
            self.o.payload.pulses.eq(pulses),
            self.o.payload.status.eq(status),
        ]

        with m.FSM(init="IDLE", name="wv") as fsm:
            with m.State("IDLE"):
                m.d.comb += self.rows.ready.eq(1)
                with m.If(self.rows.valid):  # array mode first: a whole row
                    with m.If(array_fits):
                        m.d.sync += [array.eq(1), levels.eq(self.rows.payload.levels)]
                        m.d.sync += [row.eq(self.rows.payload.row), column.eq(0)]
                        locate(self.rows.payload.row, 0)
                        m.next = "NEXT"
                    with m.Else():
                        m.d.comb += self.dropped.eq(1)
                with m.Else():
                    m.d.comb += self.i.ready.eq(1)
                    with m.If(self.i.valid):
                        with m.If(fits_row & fits_column):
                            m.d.sync += array.eq(0)
                            begin(self.i.payload.row, self.i.payload.column,
                                  self.i.payload.target)
                            m.next = "READ"
                        with m.Else():
                            m.d.comb += self.dropped.eq(1)
            with m.State("NEXT"):  # array mode: the column's target from its level
                m.d.sync += [target.eq(level_target), reads.eq(0), pulses.eq(0), still.eq(0)]
                m.next = "READ"
            with m.State("READ"):
                m.d.comb += self.verify.valid.eq(1)
                with m.If(self.verify.ready):
                    m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += self.code.ready.eq(1)
                with m.If(self.code.valid):
                    m.d.sync += [code.eq(self.code.payload), reads.eq(reads + 1)]
                    with m.If(pulses != 0):  # did the last pulse, at full amplitude, move it?
                        with m.If((amp == wv.amp_max) & (self.code.payload == code)):
                            m.d.sync += still.eq(still + 1)
                        with m.Else():
                            m.d.sync += still.eq(0)
                    m.next = "CHECK"
            with m.State("CHECK"):
                with m.If(within):
                    m.d.sync += status.eq(Status.OK)
                    m.next = "DONE"
                with m.Elif((still >= wv.stuck_pulses) & ((code == 0) | (code == cfg.adc_max))):
                    m.d.sync += status.eq(Status.STUCK)
                    m.next = "DONE"
                with m.Elif(pulses >= wv.max_pulses):
                    m.d.sync += status.eq(Status.GAVE_UP)
                    m.next = "DONE"
                with m.Else():
                    m.d.sync += [
                        direction.eq(Mux(goes_up, Direction.SET, Direction.RESET)),
                        amp.eq(next_amp), pulses.eq(pulses + 1), timer.eq(wv.pulse_cycles - 1),
                        self.prog.pulse.eq(1),
                    ]
                    m.next = "PULSE"
            with m.State("PULSE"):
                with m.If(timer == 0):
                    m.d.sync += self.prog.pulse.eq(0)
                    m.next = "READ"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("DONE"):
                m.d.comb += self.o.valid.eq(1)
                with m.If(self.o.ready):
                    with m.If(array & (column != columns - 1)):
                        m.d.sync += column.eq(column + 1)
                        locate(row, column + 1)
                        m.next = "NEXT"
                    with m.Else():
                        m.d.sync += array.eq(0)
                        m.next = "IDLE"
        record_fsm("wv", fsm)
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m
