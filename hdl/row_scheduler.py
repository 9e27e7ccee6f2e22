"""Row scheduler: bit planes in, reads (sets of at most ``rows_per_read`` active rows) out.

``dense`` is the baseline of the IEEE Design & Test tutorial on in-memory computing for machine
learning (2021): consecutive groups of ``rows_per_read`` rows, every group read whatever its
bits. ``zero_skip`` (the same tutorial, Fig. 11) forms each read from the next
``rows_per_read`` rows whose bit is 1, so sparse planes take fewer reads. Commands leave from an
output register, so the prefix counts end there instead of running on into the SAR
(gen/core/timing.py counts the cycle): the next command is formed while the current one
waits, one per cycle, and the next plane is taken as the current plane's last command is
registered, so the scheduler never leaves the ADCs waiting.
"""

from amaranth import Module, Signal
from amaranth.hdl import Cat, Const, Mux, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from imcgen.hdl.common import Block, Pipe, index_shape, popcount, prefix_sums
from imcgen.hdl.input_driver import plane_layout

__all__ = ["RowScheduler", "read_layout", "back_read_layout"]

CHUNK = 4  # zero_skip: rows per chunk, whose in-chunk counts are one LUT4 each (ECP5, iCE40)


def read_layout(config, lines=None):
    """A read command over ``lines`` driven lines (default: the tile's rows; the outputs for
    transposed reads, whose ``count`` fits the same field: ``back_per_read <= rows_per_read``)."""
    return data.StructLayout({
        "rows": unsigned(lines or config.rows),                # lines to drive
        "count": unsigned(config.rows_per_read.bit_length()),  # active lines (offset correction)
        "plane": index_shape(config.input_bits),
        "neg": unsigned(1),
        "last": unsigned(1),  # last read of the vector
        "skip": unsigned(1),  # no read: only closes a vector that needed none (zero_skip)
    })


def back_read_layout(config):
    """A transposed read: the columns of one part (slice and polarity) of a chunk of outputs
    (docs/architecture.md section 13), from the part sequencer (:mod:`imcgen.hdl.transpose`)."""
    fields = dict(read_layout(config, config.outputs).members)
    fields["part"] = index_shape(config.parts)
    return data.StructLayout(fields)


class RowScheduler(Block):
    """One tile's row scheduler.

    Parameters
    ----------
    config : MacroConfig
        Uses ``rows``, ``rows_per_read``, ``input_bits`` and ``schedule``.
    lines : int, optional
        Driven lines: the tile's rows, or the outputs (columns of transposed reads, at most
        ``back_per_read`` per read).

    Attributes
    ----------
    i : In(stream.Signature(plane_layout))
        Bit planes from the input driver.
    o : Out(stream.Signature(read_layout))
        Read commands for the SAR-ADC controller.
    """

    def __init__(self, *, config, lines=None):
        self._lines = lines or config.rows
        self._per_read = min(config.rows_per_read, self._lines)
        super().__init__(config, {
            "i": In(stream.Signature(plane_layout(config, self._lines))),
            "o": Out(stream.Signature(read_layout(config, self._lines))),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        rows, per_read = self._lines, self._per_read
        layout = read_layout(cfg, rows)

        # Two plane registers: `waiting` takes a plane from the input, `plane` is the one whose
        # reads are being formed. A plane moves on as the last read of the one before is
        # registered, its per-plane sums (zero_skip) computed on the way from `waiting`.
        waiting = Signal(plane_layout(cfg, rows))
        waiting_valid = Signal()
        plane = Signal(plane_layout(cfg, rows))
        active = Signal()  # `plane` holds a plane with reads left
        take = Signal(rows)  # rows of the read being formed
        final = Signal()  # it is the plane's last
        emit = Signal()  # there is a read (a zero plane mid-vector has none)
        empty = Signal()  # zero_skip: the plane has no row set
        silent = Signal()  # zero_skip: no read left to emit (empty, and not the vector's last)
        count = Signal(range(per_read + 1))  # rows in `take`
        # `load`: the edge a formed read goes into the output register (as the previous one
        # leaves, or into an empty register). `advance`: `waiting` moves into `plane`.
        load = Signal()
        advance = Signal()
        finish = active & final & (~emit | load)
        # The output register is a register slice (hdl/common.py Pipe): a read goes in when
        # its ready, a register, says there is room, so the hand-over logic starts at one
        # bit and no ready path from the SAR reaches it.
        m.submodules.out = out = Pipe(layout)
        wiring.connect(m, out.o, wiring.flipped(self.o))
        m.d.comb += [
            load.eq(out.i.ready),
            self.i.ready.eq(~waiting_valid | advance),
        ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [waiting.eq(self.i.payload), waiting_valid.eq(1)]
        with m.Elif(advance):
            m.d.sync += waiting_valid.eq(0)
        with m.If(advance):
            m.d.sync += [plane.eq(waiting), active.eq(1)]
        with m.Elif(finish):
            m.d.sync += active.eq(0)
        step = active & load & ~advance  # the loop moves to the plane's next read

        flags = None  # zero_skip's registered flags, as they will be (below)
        if cfg.schedule == "dense":
            groups = -(-rows // per_read)
            group = Signal(index_shape(groups))
            with m.Switch(group):
                for g in range(groups):
                    with m.Case(g):
                        lo, hi = g * per_read, min((g + 1) * per_read, rows)
                        window = Const(((1 << (hi - lo)) - 1) << lo, rows)
                        m.d.comb += take.eq(plane.bits & window)
            m.d.comb += [final.eq(group == groups - 1), emit.eq(1), count.eq(popcount(take))]
            with m.If(advance):
                m.d.sync += group.eq(0)
            with m.Elif(step):
                m.d.sync += group.eq(group + 1)
        else:
            flags = self._windows(m, waiting, plane, advance, step, take, final, empty, silent,
                                  count)
            m.d.comb += emit.eq(~silent)
        if flags is not None:
            # The hand-over as one LUT of registers: `hand` (~active, or a plane ending without
            # a read) and `hand_load` (active and final: it ends as its last read is loaded),
            # formed with the flags they read.
            (adv_final, adv_silent), (step_final, step_silent) = flags
            hand = Signal(init=1)
            hand_load = Signal()
            with m.If(advance):
                m.d.sync += [hand.eq(adv_silent), hand_load.eq(adv_final)]
            with m.Elif(finish):
                m.d.sync += [hand.eq(1), hand_load.eq(0)]
            with m.Elif(step):
                m.d.sync += [hand.eq(step_silent), hand_load.eq(step_final)]
            m.d.comb += advance.eq(waiting_valid & (hand | (hand_load & load)))
        else:
            m.d.comb += advance.eq(waiting_valid & (~active | finish))

        m.d.comb += [
            out.i.valid.eq(active & emit),
            out.i.payload.rows.eq(take),
            out.i.payload.count.eq(count),
            out.i.payload.plane.eq(plane.index),
            out.i.payload.neg.eq(plane.neg),
            out.i.payload.last.eq(plane.last & final),
            out.i.payload.skip.eq(empty),
        ]
        return m

    def _windows(self, m, waiting, plane, advance, step, take, final, empty, silent, count):
        """zero_skip: read k takes the set rows of rank kN+1 .. (k+1)N (rank: the row's place
        among the plane's set rows, N = ``rows_per_read``), without a prefix count per read.

        Rows go in chunks of four: a row's rank is its chunk's offset (set rows in the chunks
        before) plus its count h inside the chunk (a function of four bits: one LUT). Chunk
        totals are counted as a plane is taken, their prefix sums (the offsets) as it moves into
        `plane`; per read, each chunk keeps ``d = offset - kN`` and takes the rows with
        ``-d < h <= N - d``, a comparison of d with constants. A read then costs a subtraction
        per chunk and a few LUTs per row, however many rows the tile has.

        Returns the values the registered flags (final, silent) take after an advance and
        after a step, for the hand-over's own flags; ``None`` when they are not registered.
        """
        rows, per_read = self._lines, self._per_read
        chunks = [(lo, min(lo + CHUNK, rows)) for lo in range(0, rows, CHUNK)]
        width = rows.bit_length() + 2  # signed: offset - kN for any k <= rows

        totals = [Signal(range(hi - lo + 1), name=f"chunk{c}_total")
                  for c, (lo, hi) in enumerate(chunks)]
        with m.If(self.i.valid & self.i.ready):
            for c, (lo, hi) in enumerate(chunks):
                m.d.sync += totals[c].eq(popcount(self.i.payload.bits[lo:hi]))
        inclusive = prefix_sums(m, totals, rows.bit_length(), name="chunk_offset")

        distance = [Signal(signed(width), name=f"chunk{c}_d") for c in range(len(chunks))]
        left = Signal(range(rows + 1))  # set rows not yet read
        with m.If(advance):
            for c in range(len(chunks)):
                m.d.sync += distance[c].eq(inclusive[c - 1] if c else 0)
            m.d.sync += left.eq(inclusive[-1])
        with m.Elif(step):
            for c in range(len(chunks)):
                m.d.sync += distance[c].eq(distance[c] - per_read)
            m.d.sync += left.eq(left - per_read)
        # Up to four chunks (16 rows: the plane's total two adder levels from the chunk
        # totals) the flags are registered with `left`, so the hand-over (finish, advance,
        # i.ready) reads flags (the iCE40's small tiles); more chunks put the plane's total
        # deeper than comparing `left` where it is used, which their ECP5 budget allows.
        if len(chunks) <= 4:
            is_final = Signal()  # left <= N
            is_empty = Signal()  # left == 0
            is_silent = Signal()  # is_empty, not the vector's last plane (one register bit)
            # Their values after an advance and after a step (which leaves a plane with reads
            # left, left > N, or ends it).
            flags = ((inclusive[-1] <= per_read, (inclusive[-1] == 0) & ~waiting.last),
                     (left <= 2 * per_read, (left <= per_read) & ~plane.last))
            with m.If(advance):
                m.d.sync += [is_final.eq(flags[0][0]), is_empty.eq(inclusive[-1] == 0),
                             is_silent.eq(flags[0][1])]
            with m.Elif(step):
                m.d.sync += [is_final.eq(flags[1][0]), is_empty.eq(left <= per_read),
                             is_silent.eq(flags[1][1])]
        else:
            is_final, is_empty = left <= per_read, left == 0
            is_silent = is_empty & ~plane.last
            flags = None

        # within[h]: a row whose in-chunk count is h (>= 1 when it is set) is in this read, that
        # is -d < h <= N - d. Up to four chunks (as the flags above) registered with the
        # distances: at a step the new distance is d - N, so its window compares the current d
        # with constants shifted by N (no subtraction), and the read's rows start at
        # registers. More chunks would put the prefix sums and a comparison in one cycle.
        def window(d, shift, size):
            return Cat(0, *((d >= 1 - h + shift) & (d <= per_read - h + shift)
                            for h in range(1, size + 1)))

        if len(chunks) <= 4:
            windows = [Signal(hi - lo + 1, name=f"chunk{c}_window") for c, (lo, hi) in
                       enumerate(chunks)]
            with m.If(advance):
                for c, (lo, hi) in enumerate(chunks):
                    m.d.sync += windows[c].eq(window(inclusive[c - 1] if c else 0, 0, hi - lo))
            with m.Elif(step):
                for c, (lo, hi) in enumerate(chunks):
                    m.d.sync += windows[c].eq(window(distance[c], per_read, hi - lo))
        else:
            windows = [window(distance[c], 0, hi - lo) for c, (lo, hi) in enumerate(chunks)]

        bits = []
        for c, (lo, hi) in enumerate(chunks):
            within = windows[c]
            for r in range(lo, hi):
                here = Signal(range(r - lo + 2), name=f"row{r}_count")
                m.d.comb += here.eq(popcount(plane.bits[lo:r + 1]))
                bits.append(plane.bits[r] & within.bit_select(here, 1))
        m.d.comb += [
            take.eq(Cat(*bits)),
            final.eq(is_final),
            empty.eq(is_empty),
            silent.eq(is_silent),
            count.eq(Mux(final, left, per_read)),
        ]
        return flags
