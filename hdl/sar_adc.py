"""SAR-ADC controller: read commands in, ADC codes out, one column group at a time.

Per read: one SAMPLE cycle (row enables applied, the crossbar samples every column), then for
each column group the ``adcs`` ADCs run a binary search in parallel, MSB first, one compare per
bit (trial = code | bit; keep the bit when the comparator says column >= trial). The papers
give no SAR algorithm; this is the textbook one.

With ``adc_overlap`` (docs/architecture.md section 7) the crossbar has two sample-and-hold
buffers: the next command is taken in the penultimate compare cycle and sampled, into the
buffer the comparators do not read, during the last one, so the ADCs never idle:
``column_groups * adc_bits`` cycles per read. A vector's first command waits for ``go`` (every
tile at its ``boundary``), so the tiles launch it on the same edge (``launch``). Without
overlap the next command is taken in the last compare cycle (the penultimate one with two-stage
sums, below) and consecutive reads leave the ADCs idle for their sample cycle:
``1 + column_groups * adc_bits`` cycles per read.

With two-stage column sums in the stub (``sum_stages``, docs/architecture.md section 11), a
read's rows are applied a cycle before its sample: the next read is taken in the penultimate
compare cycle and sampled in the last, at no cost; a read taken between conversions (a
vector's first, a verify read) spends one presample cycle first.

Everything this block drives across the analog boundary comes from registers, never from
``cmp`` combinationally, so a crossbar model may read the boundary after a clock edge and answer
before the next one.

Programmable devices add a verify command port (``vi``: one cell, tile-local row, column group
and lane) arbitrated with the compute commands (compute first; a command is only ever taken
between conversions) and a tagged verify result (``vo``): the same ADCs convert the verify
reads, one column group with the verify reference, ``1 + adc_bits`` cycles each.
"""

from amaranth import Module, Signal
from amaranth.hdl import Cat, Const, Mux, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from imcgen.hdl.analog import ReadPortSignature, TransposedReadPortSignature
from imcgen.hdl.common import Block, Pipe, index_shape, record_fsm
from imcgen.hdl.row_scheduler import back_read_layout, read_layout

__all__ = ["SarAdcController", "code_layout", "verify_layout"]


def verify_layout(config):
    """A verify read: one cell of the tile."""
    return data.StructLayout({
        "row": index_shape(config.rows),
        "group": index_shape(config.column_groups),
        "lane": index_shape(config.adcs),
    })


def code_layout(config, transposed=False):
    """Codes of one group (columns, or rows of a transposed read, which adds its ``part``)."""
    groups = config.row_groups if transposed else config.column_groups
    extra = {"part": index_shape(config.parts)} if transposed else {}
    return data.StructLayout({
        **extra,
        "codes": data.ArrayLayout(unsigned(config.adc_bits), config.adcs),
        "group": index_shape(groups),  # columns (rows) group*adcs + lane
        "count": unsigned(config.rows_per_read.bit_length()),
        "plane": index_shape(config.input_bits),
        "neg": unsigned(1),
        "last": unsigned(1),  # last group of the vector's last read
        "skip": unsigned(1),  # no codes: closes a vector that needed no read
    })


class SarAdcController(Block):
    """One tile's SAR-ADC controller driving ``adcs`` shared ADCs.

    Parameters
    ----------
    config : MacroConfig
        Uses ``rows``, ``adcs``, ``adc_bits``, ``column_groups``, ``rows_per_read``, ``input_bits``.
    transposed : bool
        The row side's controller of transposed reads (docs/architecture.md section 13): its
        commands drive columns (``col_en``, ``part``) and its groups are the ``row_groups``;
        no overlap, one sum stage (the stub sums a row group a cycle ahead), no verify reads.

    Attributes
    ----------
    i : In(stream.Signature(read_layout))
        Read commands from the row scheduler.
    o : Out(stream.Signature(code_layout))
        Codes of one column group per transfer, with the read's tags.
    xbar : Out(ReadPortSignature)
        Read side of the analog boundary.
    vi : In(stream.Signature(verify_layout))
        Verify reads (programmable devices only).
    vo : Out(stream.Signature(unsigned(adc_bits)))
        The verify code of each verify read.
    boundary : Out(1)
        Between vectors: the next command taken would be a vector's first.
    go : In(1)
        A vector's first command may be taken (every tile is at its boundary).
    launch : Out(1)
        A vector's first command is taken on this edge.
    """

    def __init__(self, *, config, transposed=False):
        self._transposed = transposed
        self._command = back_read_layout(config) if transposed else read_layout(config)
        members = {
            "i": In(stream.Signature(self._command)),
            "o": Out(stream.Signature(code_layout(config, transposed))),
            "xbar": Out(TransposedReadPortSignature(config) if transposed
                        else ReadPortSignature(config)),
            "boundary": Out(1),
            "go": In(1, init=1),
            "launch": Out(1),
        }
        if config.programmable and not transposed:
            members["vi"] = In(stream.Signature(verify_layout(config)))
            members["vo"] = Out(stream.Signature(unsigned(config.adc_bits)))
        super().__init__(config, members)

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        transposed = self._transposed
        groups = cfg.row_groups if transposed else cfg.column_groups
        lanes, msb = cfg.adcs, 1 << (cfg.adc_bits - 1)
        overlap = cfg.overlap and not transposed
        programmable = cfg.programmable and not transposed
        xbar = self.xbar
        sel = xbar.row_sel if transposed else xbar.col_sel  # the group converting

        command = Signal(self._command)  # the read converting (its tags go out with codes)
        queued = Signal(self._command)   # the next read, taken before the last compare
        is_queued = Signal()
        between = Signal(init=1)  # the last command taken closed a vector (or none yet)
        code = Signal(data.ArrayLayout(unsigned(cfg.adc_bits), lanes))  # bits decided so far
        trial = Signal(cfg.adc_bits)  # one-hot: the bit under test
        result = Signal(data.ArrayLayout(unsigned(cfg.adc_bits), lanes))

        for a in range(lanes):
            # Keep the bit under test when the column is at least the trial code.
            m.d.comb += result[a].eq(code[a] | Mux(xbar.cmp[a], trial, 0))

        # The codes of the last compare (trial = 1): the bits decided so far, from the code
        # register, and the comparator's answer as the LSB; no logic but the comparator's.
        final = Signal.like(result)
        for a in range(lanes):
            m.d.comb += final[a].eq(Cat(xbar.cmp[a], code[a][1:]))

        # The next compare's code so far, trial bit and DAC code (`code | trial`, a register:
        # the comparators' carry chains start at one) load where the FSM calls `search`: a
        # new search (code 0) or the next bit (the code and the bit under test, kept if the
        # comparator says so). Both outcomes are formed from registers and the comparator
        # picks one in the last LUT, so its answer (the end of the carry chain, late in the
        # cycle) meets one LUT level before these registers, not the FSM's branches too.
        load, advance = Signal(), Signal()  # load this edge; the next bit (not a new search)
        next_trial = Signal.like(trial)
        m.d.comb += next_trial.eq(Mux(advance, trial >> 1, msb))
        kept = Mux(advance, code.as_value() | trial.replicate(lanes), 0)  # if the bit is kept
        dropped = Mux(advance, code.as_value(), 0)
        with m.If(load):
            m.d.sync += trial.eq(next_trial)
            for a in range(lanes):
                bits = slice(a * cfg.adc_bits, (a + 1) * cfg.adc_bits)
                m.d.sync += [
                    code[a].eq(Mux(xbar.cmp[a], kept[bits], dropped[bits])),
                    xbar.dac[a].eq(Mux(xbar.cmp[a], kept[bits], dropped[bits]) | next_trial),
                ]

        def search():
            """Load the next compare: the next bit of this search in CONVERT before the last
            bit (`advance` says so from the state alone, below), else a new search."""
            m.d.comb += load.eq(1)
        m.d.sync += xbar.sample.eq(0)  # a one-cycle strobe unless set again below

        # The output register is a register slice (hdl/common.py Pipe): its ready is a
        # register, so the stall decision reads one bit, and no ready path from behind `o`
        # (the shift-and-add's hold, the adder network's join) reaches the compare logic.
        m.submodules.out = out = Pipe(code_layout(cfg, transposed))
        # A skip token's codes are zeroed behind the slice, where the shift-and-add's own
        # skip multiplexer absorbs it, not between the comparators and the slice.
        m.d.comb += [self.o.valid.eq(out.o.valid), out.o.ready.eq(self.o.ready),
                     self.o.payload.eq(out.o.payload),
                     self.o.payload.codes.eq(Mux(out.o.payload.skip, 0, out.o.payload.codes))]
        out_free = out.i.ready
        verifying = Signal()  # the conversion under way is a verify read
        cell = Signal(verify_layout(cfg)) if programmable else None
        if programmable:
            with m.If(self.vo.valid & self.vo.ready):
                m.d.sync += self.vo.valid.eq(0)

        # A vector's first command waits for `go` (every tile at its boundary, so the tiles
        # launch the vector on the same edge); the others are taken as soon as they can be.
        may_take = self.i.valid & (~between | self.go)

        # The take windows as registers, formed with the next state, so the ready the SAR gives
        # the scheduler's register slice is one LUT of registers, and the FSM's take branches
        # test a window instead of decoding the trial bit, the group and the queue
        # (docs/architecture.md section 11). `win`: a command is taken if one is offered (IDLE,
        # the early take of an overlapped or two-stage read). If the output slice has room too:
        # `win_last` (SKIP, the last compare of a read with nothing queued) and `win_pen`
        # (overlap with 1-bit ADCs: the early take, in the last group but one).
        win = Signal(init=1)
        win_last = Signal()
        win_pen = Signal() if overlap and cfg.adc_bits == 1 else Const(0)
        # The ready does not wait on `i.valid` (a transfer needs both anyway): the register
        # slice in front then decides its stall from the windows alone.
        m.d.comb += self.i.ready.eq((~between | self.go) &
                                    (win | ((win_last | win_pen) & out_free)))

        def set_windows(now, last, pen=0):
            m.d.sync += [win.eq(now), win_last.eq(last)]
            if isinstance(win_pen, Signal):
                m.d.sync += win_pen.eq(pen)

        def goto(state):
            m.next = state
            set_windows(state == "IDLE", state == "SKIP")

        # The stub sums a column group over two cycles (presample); a row group in one.
        two = cfg.sum_stages == 2 and not transposed

        def sample(payload, strobe=True):
            """Apply a compute read's rows; with ``strobe``, sample it (the crossbar fills
            buffer ~bank on the next edge), else the presample cycle comes first."""
            if transposed:
                m.d.sync += [xbar.col_en.eq(payload.rows), xbar.part.eq(payload.part)]
            else:
                m.d.sync += xbar.row_en.eq(payload.rows)
            m.d.sync += between.eq(payload.last)
            if strobe:
                m.d.sync += xbar.sample.eq(1)
            if programmable:
                m.d.sync += xbar.verify.eq(0)
            m.d.comb += self.launch.eq(between)

        def take_command():
            with m.If(may_take):
                m.d.sync += [command.eq(self.i.payload), verifying.eq(0)]
                with m.If(self.i.payload.skip):
                    m.d.sync += between.eq(1)
                    m.d.comb += self.launch.eq(between)
                    # With overlap a skip token costs a read's sample cycle too, like a skip
                    # taken early (whose first cycle overlaps the last read's last compare).
                    # So does the presample cycle of two-stage sums.
                    goto("SKIP_HOLD" if overlap or two else "SKIP")
                with m.Else():
                    sample(self.i.payload, strobe=not two)
                    goto("PRESAMPLE" if two else "SAMPLE")
                # Between conversions the stub sums a read's first group (0) from `row_en`
                # while `col_sel` shows the last group (hdl/analog.py), which a skip token's
                # codes name too. Only a verify read leaves it elsewhere; without them it
                # rests there already.
                if programmable:
                    m.d.sync += xbar.col_sel.eq(groups - 1)
            if programmable:  # a verify read only when no compute read waits
                with m.Elif(~self.i.valid & self.vi.valid & ~self.vo.valid):
                    m.d.comb += self.vi.ready.eq(1)
                    m.d.sync += [
                        cell.eq(self.vi.payload), verifying.eq(1), xbar.verify.eq(1),
                        xbar.row_en.eq(1 << self.vi.payload.row), xbar.sample.eq(int(not two)),
                        # The group before the cell's (wrapping): the stub sums the one after.
                        xbar.col_sel.eq(Mux(self.vi.payload.group == 0, groups - 1,
                                            self.vi.payload.group - 1)),
                    ]
                    goto("PRESAMPLE" if two else "SAMPLE")
                with m.Else():
                    goto("IDLE")
            else:
                with m.Else():
                    goto("IDLE")

        def emit():
            """Offer the codes (the payload below)."""
            m.d.comb += out.i.valid.eq(1)

        def at_group(k):
            return sel == k if k >= 0 else 0

        last_group = at_group(groups - 1)
        # The group after `col_sel`, wrapping: a compute read's first group too, since
        # `col_sel` shows the last one until its conversion starts. Both moves of `col_sel`
        # then load the same value (no multiplexer behind the enable).
        next_col = Mux(last_group, 0, sel + 1)

        def convert_window(new_trial, last, before_last, queued_after):
            """The take windows of the compare after this edge: its trial bit, whether its
            group is the last or the one before, and whether a read is queued by then."""
            bits = Const(new_trial, cfg.adc_bits) if isinstance(new_trial, int) else new_trial
            free_of_reads = ~queued_after & ~verifying
            early = pen = 0
            if (overlap or two) and cfg.adc_bits >= 2:  # penultimate compare (advancing)
                early = last & bits[1] & free_of_reads
            if overlap and cfg.adc_bits == 1:  # penultimate: the last group's neighbour
                pen = before_last & free_of_reads
            set_windows(early, last & bits[0] & free_of_reads, pen)

        def start_conversion(group=None):
            """The held read (buffer ~bank, sampled on this edge) starts converting: at
            ``group``, or (a compute read) at the group after `col_sel`, its first."""
            m.d.sync += [xbar.bank.eq(~xbar.bank),
                         (xbar.col_en if transposed else xbar.row_en).eq(0),
                         sel.eq(next_col if group is None else group)]
            search()
            m.next = "CONVERT"
            # A compute read's first group is 0 (a verify read takes no command meanwhile).
            convert_window(msb, groups == 1, groups == 2, 0)

        boundary = Signal()
        m.d.comb += self.boundary.eq(boundary)

        with m.FSM(init="IDLE", name="sar") as fsm:
            with m.State("IDLE"):
                m.d.comb += boundary.eq(between)
                take_command()
            if overlap or two:
                with m.State("SKIP_HOLD"):
                    goto("SKIP")
            if two:
                with m.State("PRESAMPLE"):  # rows applied: the stub forms the partial sums
                    m.d.sync += xbar.sample.eq(1)
                    goto("SAMPLE")
            with m.State("SKIP"):
                with m.If(out_free):
                    m.d.comb += boundary.eq(1)
                    emit()  # a skip token: no codes, the last group
                    take_command()
            with m.State("SAMPLE"):  # the crossbar samples at the end of this cycle
                start_conversion(Mux(verifying, cell.group, 0) if programmable else None)
            with m.State("CONVERT"):
                # With overlap, sample the next read during the last compare cycle (the second
                # buffer). With two-stage sums, take it one cycle before the last compare and
                # apply its rows, so the stub sums its first group during that compare: no
                # presample.
                taking_early = Signal()
                if overlap or two:
                    # The penultimate compare, nothing queued, not a verify read (and with
                    # 1-bit ADCs, completing on this edge).
                    early = win | (win_pen & out_free)
                    if overlap:
                        m.d.comb += boundary.eq(early & command.last)
                    with m.If(early & may_take):
                        m.d.comb += taking_early.eq(1)
                        m.d.sync += [queued.eq(self.i.payload), is_queued.eq(1)]
                        with m.If(self.i.payload.skip):  # no read: a skip token follows
                            m.d.sync += between.eq(1)
                            m.d.comb += self.launch.eq(between)
                        with m.Else():
                            sample(self.i.payload, strobe=not two)
                queued_after = is_queued | taking_early
                with m.If(win_last & out_free):  # the last compare, nothing queued: take the next
                    emit()
                    take_command()
                with m.Elif(~trial[0]):
                    search()
                    convert_window(trial >> 1, last_group, at_group(groups - 2), queued_after)
                if programmable:
                    with m.Elif(verifying):  # one group; the addressed lane's code goes out
                        m.d.sync += [self.vo.valid.eq(1), self.vo.payload.eq(result[cell.lane])]
                        goto("IDLE")
                with m.Elif(out_free):  # group converted; no room for its codes stalls here
                    emit()
                    with m.If(~last_group):
                        m.d.sync += sel.eq(next_col)
                        search()
                        convert_window(msb, at_group(groups - 2), at_group(groups - 3),
                                       queued_after)
                    with m.Else():  # a read is queued (else the first branch took the next)
                        m.d.sync += [command.eq(queued), is_queued.eq(0)]
                        with m.If(queued.skip):
                            goto("SKIP")
                        if two:
                            with m.Else():  # sampled now, its first group summed already
                                m.d.sync += xbar.sample.eq(1)
                                goto("SAMPLE")
                        else:
                            with m.Else():
                                start_conversion()  # `col_sel` is on the last group
        record_fsm("sar", fsm)
        # Every compare in CONVERT but the last advances the search (the FSM's `~trial[0]`
        # branch); every other load starts one: two register bits, not the FSM's conditions.
        m.d.comb += advance.eq(fsm.ongoing("CONVERT") & ~trial[0])
        # The payload offered, whatever the state, so only `valid` waits on the FSM's
        # decisions: a group's codes, or in SKIP a skip token (its codes zeroed behind the
        # slice, above; `col_sel` rests on the last group there, as between conversions).
        skipping = fsm.ongoing("SKIP")
        m.d.comb += [
            out.i.payload.codes.eq(final),
            out.i.payload.group.eq(sel),
            out.i.payload.count.eq(command.count),
            out.i.payload.plane.eq(command.plane),
            out.i.payload.neg.eq(command.neg),
            out.i.payload.last.eq(command.last & last_group),
            out.i.payload.skip.eq(skipping),
        ]
        if transposed:
            m.d.comb += out.i.payload.part.eq(command.part)
        return m
