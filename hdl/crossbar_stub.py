"""Behavioural, synthesizable crossbar stub behind the analog boundary (``hdl/analog.py``).

It answers exactly what docs/architecture.md section 8 and docs/write_verify.md section 1
specify, so a Python crossbar model on the same ports (``crossbar = "external"``, backed by the
shared NumPy model in ``golden/``) is a drop-in replacement.

Storage: one memory per row, a word per column group holding the state of each ADC lane's cell,
with one write port and one combinational read port, so synthesis maps it to LUT RAM or block
RAM instead of one port per cell bit. The stub sums the states of the held rows in the group
the comparators read next, into registers, one or two cycles ahead (docs/architecture.md
section 11); the comparators compare those registers with the DAC codes. Each of the two
sample-and-hold buffers keeps an active-row set (and whether the read is a verify read): the
same as holding the column values, because states cannot change during a conversion, and far
smaller than one register per column.

Ideal devices hold levels. Programmable devices (``device.kind`` rram or pcm) hold states
``frac_bits`` finer than a level and take programming pulses: the noise of each pulse comes from
the shared counter-based generator (``hdl/rng.py``), keyed by the cell and its pulse count
(kept per cell in a wear memory); stuck cells, drawn from the device seed at elaboration time,
start at their rail and ignore pulses and writes.
"""

from amaranth import Module, Signal
from amaranth.hdl import Cat, Mux, signed, unsigned
from amaranth.lib import data
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from imcgen.core.codes import Direction
from imcgen.core.config import GAIN_SHIFT, NOISE_SHIFT
from imcgen.core.draws import What, cell_where_bits
from imcgen.hdl.analog import AnalogSignature
from imcgen.hdl.common import Block, adder_tree, index_shape, record_fsm
from imcgen.hdl.rng import Threefry2x32, threefry2x32_reference

__all__ = ["CrossbarStub", "stuck_cells"]


def stuck_cells(config, tile):
    """``{(row, column): on}`` of the tile's stuck cells, drawn at elaboration time."""
    dev = config.device
    if not config.programmable or dev.stuck_threshold == 0:
        return {}
    tile_bits, row_bits, column_bits = cell_where_bits(config)
    out = {}
    for row in range(config.rows):
        for column in range(config.physical_columns):
            where = (tile << (row_bits + column_bits)) | (row << column_bits) | column
            low, high = threefry2x32_reference(dev.seed, int(What.STUCK), where, 0,
                                               rounds=dev.rng_rounds)
            if low < dev.stuck_threshold:
                out[row, column] = high < dev.stuck_on_threshold
    return out


class CrossbarStub(Block):
    """One tile's crossbar: cell states, column sums of the held rows, comparators, pulses.

    Parameters
    ----------
    config : MacroConfig
    tile : int
        Which tile this is (it addresses the tile's cells in the random draws).

    Attributes
    ----------
    xbar : In(AnalogSignature)
        The analog boundary, driven by the periphery.
    """

    def __init__(self, *, config, tile=0):
        if not isinstance(tile, int) or not 0 <= tile < config.tiles:
            raise ValueError(f"tile must be an integer in 0..{config.tiles - 1}, not {tile!r}")
        self._tile = tile
        entropy = config.trng.enabled and tile == 0
        super().__init__(config, {"xbar": In(AnalogSignature(config, entropy=entropy))})

    @property
    def tile(self):
        return self._tile

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        rows, lanes, groups = cfg.rows, cfg.adcs, cfg.column_groups
        read, cell = self.xbar.read, self.xbar.cell
        frac, top = cfg.state_frac, cfg.state_max
        programmable = cfg.programmable
        stuck = stuck_cells(cfg, self.tile)
        block_ram = cfg.stub_block_ram  # where it can (gen/core/config/stub.py)
        word = data.ArrayLayout(unsigned(cfg.state_bits), lanes)

        def column_of(group, lane):
            return group * lanes + lane

        # -- storage ---------------------------------------------------------------------
        # Address: the group after the selected one; during the edge that ends a pulse, the
        # pulsed cell's group (no conversion runs then).
        addr = Signal(index_shape(groups))
        if block_ram:
            # One block RAM word per column group holding every row's cells, read a cycle
            # late: the group after `col_sel` is addressed while `col_sel` dwells on its own
            # (docs/architecture.md section 8), so the word is out before the sums need it.
            mem = Memory(shape=data.ArrayLayout(word, rows), depth=groups, init=[],
                         attrs={"ram_style": "block"})
            m.submodules.cells = mem
            read_port = mem.read_port()
            write_port = mem.write_port(granularity=1)  # per row
            m.d.comb += [read_port.addr.eq(addr), write_port.addr.eq(cell.group),
                         write_port.en.eq(Cat(cell.we & (cell.row == r) for r in range(rows)))]
            for r in range(rows):
                for a in range(lanes):
                    m.d.comb += write_port.data[r][a].eq(cell.data[a] << frac)
            words = [read_port.data[r] for r in range(rows)]
            memories = None
        else:
            # One memory per row, read combinationally (LUT RAM or flip-flops).
            memories = []
            for r in range(rows):
                init = [[top if stuck.get((r, column_of(g, a))) else 0 for a in range(lanes)]
                        for g in range(groups)]
                mem = Memory(shape=word, depth=groups, init=init)
                m.submodules[f"row{r}"] = mem
                port = mem.write_port(granularity=1 if programmable else None)  # per lane
                memories.append((mem.read_port(domain="comb"), port))
                m.d.comb += memories[r][0].addr.eq(addr)
            words = [memories[r][0].data for r in range(rows)]

        # Stuck cells of every (row, group), as a ROM: writes and pulses leave them alone.
        healthy = Signal(lanes)  # lanes of the written or pulsed word that may change
        if stuck:
            gbits = index_shape(groups).width
            rom = Memory(shape=unsigned(lanes), depth=rows << gbits,
                         init=[sum(1 << a for a in range(lanes)
                                   if (r, column_of(g, a)) in stuck) if g < groups else 0
                               for r in range(rows) for g in range(1 << gbits)])
            m.submodules.stuck = rom
            stuck_port = rom.read_port(domain="comb")
            m.d.comb += healthy.eq(~stuck_port.data)
        else:
            m.d.comb += healthy.eq(-1)

        # -- ideal weight port -------------------------------------------------------------
        for r in range(rows if memories else 0):
            port = memories[r][1]
            m.d.comb += port.addr.eq(cell.group)
            for a in range(lanes):
                m.d.comb += port.data[a].eq(cell.data[a] << frac)
            enable = cell.we & (cell.row == r)
            m.d.comb += port.en.eq(Cat(enable & healthy[a] for a in range(lanes))
                                   if programmable else enable)
        if stuck:
            m.d.comb += stuck_port.addr.eq(Cat(cell.group, cell.row))

        # -- sample-and-hold and comparators ----------------------------------------------
        # With ADC overlap, two buffers: a sample fills buffer ~bank while the comparators read
        # buffer bank. Without it the SAR flips bank on the very edge it samples, so one
        # buffer answers the same (and costs no second row set and no multiplexer).
        count = 2 if cfg.overlap else 1
        buffers = [Signal(rows, name=f"held{b}") for b in range(count)]  # rows of each sample
        verifies = [Signal(name=f"held_verify{b}") for b in range(count)]
        for b in range(count):
            with m.If(read.sample & ((read.bank != b) if count == 2 else 1)):
                m.d.sync += buffers[b].eq(read.row_en)
                if programmable:
                    m.d.sync += verifies[b].eq(read.verify)
        held = Mux(read.bank, buffers[1], buffers[0]) if count == 2 else buffers[0]
        held_verify = Mux(read.bank, verifies[1], verifies[0]) if count == 2 else verifies[0]

        # Column sums, registered: the comparators read a register, never the cell memories
        # through an adder tree (docs/architecture.md section 11). The stub sums ahead the
        # group after `col_sel` (wrapping), the one the comparators read next (section 8): of
        # the next read, from `row_en`, on the last group (where `col_sel` rests between
        # conversions) or with a verify read taken (`col_sel` then shows the group before
        # its own); else of the current read. With `sum_stages` 2 this takes two cycles
        # (partial sums over chunks of rows, then their total), which the SAR leaves room for. A
        # tag names the (group, buffer after the next flip) of the sums; `current` keeps the
        # sums in use while the SAR stays on a group. Every conversion starts with a sample, so
        # stale sums (a pulse's cycle, a weight load, a read not taken) never match its tag.
        value_width = (rows * top).bit_length()
        gwidth = index_shape(groups).width
        next_group = Signal(gwidth)  # the group after col_sel: one LUT level to the memories
        next_rows = Signal(rows)
        next_bank = Signal()
        first = (read.col_sel == groups - 1) | (read.verify if programmable else 0)
        if block_ram:
            # The cells come a cycle after `col_sel` moves; so may the choice of rows, from
            # a register (`col_sel` rests on the last group from reset). Sums formed in the
            # cycle between mix two groups, under a tag no comparison reads: the dwell that
            # the configuration demands covers it (docs/architecture.md section 11).
            first_q = Signal(init=1)
            m.d.sync += first_q.eq(first)
            first = first_q
        m.d.comb += [
            next_group.eq(Mux(read.col_sel == groups - 1, 0, read.col_sel + 1)),
            # The next read (its rows, the buffer it will be sampled into), or this one's.
            next_rows.eq(Mux(first, read.row_en, held)),
            next_bank.eq(Mux(first, ~read.bank, read.bank)),
            addr.eq(next_group),
        ]

        def masked(a, lo, hi):
            return [Mux(next_rows[r], words[r][a], 0) for r in range(lo, hi)]

        ahead = [Signal(value_width, name=f"ahead{a}") for a in range(lanes)]
        ahead_tag = Signal(gwidth + 1)
        if cfg.sum_stages == 1:
            m.d.sync += ahead_tag.eq(Cat(next_group, next_bank))
            for a in range(lanes):
                m.d.sync += ahead[a].eq(adder_tree(masked(a, 0, rows)))
        else:
            # Chunks of about sqrt(rows) (rounded down): the first stage also holds the row
            # selection and the memory read, so it gets the smaller share of the adder levels.
            span = 1 << (rows - 1).bit_length() // 2
            chunks = [(lo, min(lo + span, rows)) for lo in range(0, rows, span)]
            partial_tag = Signal(gwidth + 1)
            m.d.sync += [partial_tag.eq(Cat(next_group, next_bank)), ahead_tag.eq(partial_tag)]
            for a in range(lanes):
                partials = [Signal(((hi - lo) * top).bit_length(), name=f"partial{a}_{c}")
                            for c, (lo, hi) in enumerate(chunks)]
                for part, (lo, hi) in zip(partials, chunks, strict=True):
                    m.d.sync += part.eq(adder_tree(masked(a, lo, hi)))
                m.d.sync += ahead[a].eq(adder_tree(partials))

        use_ahead = ahead_tag == Cat(read.col_sel, read.bank)
        current = [Signal(value_width, name=f"current{a}") for a in range(lanes)]
        column = [Signal(value_width, name=f"column{a}") for a in range(lanes)]  # in use
        for a in range(lanes):
            m.d.comb += column[a].eq(Mux(use_ahead, ahead[a], current[a]))
            m.d.sync += current[a].eq(column[a])

        def compare(value, dac):
            if frac == 0 and not programmable:
                return value >= dac
            # Compute reads round the state sum to levels (threshold half a level below the
            # code); verify reads scale one cell's state range onto the codes.
            compute = (value << 1) + (1 << frac) >= (dac << (frac + 1))
            verify = (value * (2 * cfg.adc_max)) + top >= dac * (2 * top)
            return Mux(held_verify, verify, compute)

        # Both sums compared, the tag choosing between the answers: the tag comparison runs
        # beside the comparators' carry chains instead of in front of them.
        for a in range(lanes):
            m.d.comb += read.cmp[a].eq(Mux(use_ahead, compare(ahead[a], read.dac[a]),
                                           compare(current[a], read.dac[a])))

        if programmable:
            self._pulses(m, memories, addr, healthy, stuck_port if stuck else None)
        if cfg.transposed:
            self._transposed_reads(m, memories, None if memories else write_port, stuck)
        if cfg.trng.enabled and self.tile == 0:
            self._entropy(m)
        return m

    def _transposed_reads(self, m, memories, block_write, stuck):
        """Transposed reads (docs/architecture.md section 13): the sum of a row's states in
        the driven columns of one part, for the row each row-side ADC lane converts.

        A row's sum needs every column group of the row at once, which the memories (one word
        per column group) cannot give: a copy of the cells in flip-flops follows every write
        into them (loads and pulses alike; no reset, as the cells), and the sums are formed
        from it a cycle ahead, into registers.
        """
        cfg = self.config
        tread = self.xbar.tread
        lanes, rows, frac = cfg.adcs, cfg.rows, cfg.state_frac
        cells = [[Signal(cfg.state_bits, name=f"cell{r}_{c}", reset_less=True,
                         init=cfg.state_max if stuck.get((r, c)) else 0)
                  for c in range(cfg.physical_columns)] for r in range(rows)]
        for r in range(rows):
            for c in range(cfg.physical_columns):
                g, a = divmod(c, lanes)
                if block_write is not None:
                    enable, addr, value = block_write.en[r], block_write.addr, \
                        block_write.data[r][a]
                else:
                    port = memories[r][1]
                    enable = port.en[a] if len(port.en) > 1 else port.en
                    addr, value = port.addr, port.data[a]
                with m.If(enable & (addr == g)):
                    m.d.sync += cells[r][c].eq(value)

        held_cols = Signal(cfg.outputs)
        held_part = Signal(index_shape(cfg.parts))
        with m.If(tread.sample):
            m.d.sync += [held_cols.eq(tread.col_en), held_part.eq(tread.part)]
        # Row sums registered a cycle ahead, as the column side's (section 11, one stage): of
        # the row group after `row_sel` (wrapping), of the next read (from `col_en`, `part`)
        # while `row_sel` rests on the last group between conversions, else of the held one;
        # a tag (group, buffer after the next flip) says whether the sums in the register
        # are the group under conversion, `current` keeps them while the SAR dwells there.
        groups = cfg.row_groups
        gwidth = index_shape(groups).width
        first = tread.row_sel == groups - 1
        next_group = Signal(gwidth)
        next_cols = Signal(cfg.outputs)
        next_part = Signal.like(held_part)
        m.d.comb += [next_group.eq(Mux(first, 0, tread.row_sel + 1)),
                     next_cols.eq(Mux(first, tread.col_en, held_cols)),
                     next_part.eq(Mux(first, tread.part, held_part))]
        ahead_tag = Signal(gwidth + 1)
        m.d.sync += ahead_tag.eq(Cat(next_group, Mux(first, ~tread.bank, tread.bank)))
        use_ahead = ahead_tag == Cat(tread.row_sel, tread.bank)
        width = (cfg.outputs * cfg.state_max).bit_length()

        def compare(value, dac):
            if frac == 0 and not cfg.programmable:
                return value >= dac
            return (value << 1) + (1 << frac) >= (dac << (frac + 1))  # rounded to levels

        for a in range(lanes):
            selected = [Signal(cfg.state_bits, name=f"tcell{a}_{j}") for j in range(cfg.outputs)]
            with m.Switch(Cat(next_group, next_part)):
                for g in range(groups):
                    r = g * lanes + a
                    if r >= rows:
                        continue
                    for part in range(cfg.parts):
                        k, p = divmod(part, cfg.polarities)
                        with m.Case(g | (part << gwidth)):
                            m.d.comb += [selected[j].eq(cells[r][cfg.column(j, k, p)])
                                         for j in range(cfg.outputs)]
            ahead = Signal(width, name=f"row_ahead{a}")
            current = Signal(width, name=f"row_current{a}")
            m.d.sync += [
                ahead.eq(adder_tree([Mux(next_cols[j], selected[j], 0)
                                     for j in range(cfg.outputs)])),
                current.eq(Mux(use_ahead, ahead, current)),
            ]
            m.d.comb += tread.cmp[a].eq(Mux(use_ahead, compare(ahead, tread.dac[a]),
                                            compare(current, tread.dac[a])))

    def _entropy(self, m):
        """The TRNG's stochastic-switching devices (docs/trng.md section 2).

        Each round's delays are drawn ahead: when a pulse starts, the delays drawn for its event
        go live and the draw for the next event begins (one Threefry draw per four devices,
        then one table lookup per device, interpolating the delay distribution's quantiles).
        The event number survives reset, so a reset never replays a round's delays.
        """
        from imcgen.core.config import TRNG_DELAY_FRAC, TRNG_FRAC_BITS, TRNG_TABLE_BITS

        cfg, trng = self.config, self.config.trng
        dev = cfg.device
        port = self.xbar.entropy
        sources, steps = trng.sources, 1 << TRNG_TABLE_BITS

        event = Signal(32, reset_less=True)  # the next pulse's event number
        armed = Signal()                     # `ahead` holds the delays of `event`
        delay_width = (trng.delay_table[0][-1] >> TRNG_DELAY_FRAC).bit_length() + 1
        ahead = [Signal(delay_width, name=f"ahead{s}") for s in range(sources)]
        live = [Signal(delay_width, name=f"delay{s}") for s in range(sources)]
        pulse_q = Signal()
        elapsed = Signal(8)  # pulse cycles so far (pulse_cycles <= 255)
        latched = Signal(sources)  # devices that switched, until the reset pulse
        m.d.sync += pulse_q.eq(port.pulse)
        start = port.pulse & ~pulse_q

        # Quantile pairs (T[i], T[i + 1]) of every voltage code, one ROM word each.
        top = max(max(row) for row in trng.delay_table)
        width = top.bit_length()
        rom = Memory(shape=unsigned(2 * width), depth=4 * steps,
                     init=[row[i] | (row[i + 1] << width)
                           for row in trng.delay_table for i in range(steps)])
        m.submodules.delay_table = rom
        lookup = rom.read_port(domain="comb")

        cores = []
        for g in range(trng.draws):
            core = Threefry2x32(rounds=dev.rng_rounds, rounds_per_cycle=dev.rng_rounds_per_cycle)
            m.submodules[f"entropy_rng{g}"] = core
            cores.append(core)
        draws = [Signal(64, name=f"draw{g}") for g in range(trng.draws)]
        source = Signal(range(max(sources, 2)))

        def field(s):
            return draws[s // 4][16 * (s % 4):16 * (s % 4) + 16]

        def on_start():  # a pulse takes the delays drawn ahead; draw the next event's
            with m.If(start):
                m.d.sync += [event.eq(event + 1), armed.eq(0)]
                m.next = "DRAW"

        with m.FSM(init="DRAW", name="entropy") as fsm:
            with m.State("DRAW"):  # start the draws of `event`
                for g, core in enumerate(cores):
                    m.d.comb += [core.i.valid.eq(1), core.i.payload.key0.eq(trng.seed),
                                 core.i.payload.key1.eq(int(What.TRNG)),
                                 core.i.payload.ctr0.eq(g), core.i.payload.ctr1.eq(event)]
                with m.If(cores[0].i.ready):
                    m.next = "WAIT"
                on_start()
            with m.State("WAIT"):
                with m.If(cores[0].o.valid):
                    for g, core in enumerate(cores):
                        m.d.comb += core.o.ready.eq(1)
                        m.d.sync += draws[g].eq(Cat(core.o.payload.x0, core.o.payload.x1))
                    m.d.sync += source.eq(0)
                    m.next = "LOOKUP"
                on_start()
            with m.State("LOOKUP"):  # one device per cycle
                bits = Signal(16)
                with m.Switch(source):
                    for s in range(sources):
                        with m.Case(s):
                            m.d.comb += bits.eq(field(s))
                idx, frac = bits[:TRNG_TABLE_BITS], bits[TRNG_TABLE_BITS:]
                m.d.comb += lookup.addr.eq(Cat(idx, port.voltage))
                lo, hi = lookup.data[:width], lookup.data[width:]
                d16 = lo + (((hi - lo) * frac) >> TRNG_FRAC_BITS)
                with m.Switch(source):
                    for s in range(sources):
                        with m.Case(s):
                            m.d.sync += ahead[s].eq(d16 >> TRNG_DELAY_FRAC)
                m.d.sync += source.eq(source + 1)
                with m.If(source == sources - 1):
                    m.d.sync += armed.eq(1)
                    m.next = "ARMED"
                on_start()
            with m.State("ARMED"):
                on_start()
        record_fsm("entropy", fsm)

        now = Signal(8)
        m.d.comb += now.eq(Mux(start, 0, elapsed))
        with m.If(port.pulse):
            m.d.sync += elapsed.eq(now + 1)
        with m.If(start):
            m.d.sync += [live[s].eq(ahead[s]) for s in range(sources)]
        fired = Cat(port.pulse & (now >= Mux(start, ahead[s], live[s])) for s in range(sources))
        m.d.comb += port.switched.eq(latched | fired)
        with m.If(port.reset):
            m.d.sync += latched.eq(0)
        with m.Else():
            m.d.sync += latched.eq(latched | fired)

    def _pulses(self, m, memories, addr, healthy, stuck_port):
        """Programming pulses: noise drawn while the pulse lasts, state updated as it ends."""
        cfg, dev, wv = self.config, self.config.device, self.config.write_verify
        prog = self.xbar.prog
        lanes, groups, top = cfg.adcs, cfg.column_groups, cfg.state_max
        gbits = index_shape(groups).width

        m.submodules.rng = rng = Threefry2x32(rounds=dev.rng_rounds,
                                              rounds_per_cycle=dev.rng_rounds_per_cycle)
        wear = Memory(shape=data.ArrayLayout(unsigned(dev.wear_bits), lanes),
                      depth=cfg.rows << gbits, init=[])
        m.submodules.wear = wear
        wear_read = wear.read_port(domain="comb")
        wear_write = wear.write_port(granularity=1)  # per lane

        pulse_q = Signal()
        m.d.sync += pulse_q.eq(prog.pulse)
        start = prog.pulse & ~pulse_q
        end = pulse_q & ~prog.pulse
        # The pulse's cell, direction and amplitude, latched as it starts.
        row = Signal.like(prog.row)
        group = Signal.like(prog.group)
        lane = Signal.like(prog.lane)
        direction = Signal(Direction)
        amp = Signal.like(prog.amp)
        with m.If(start):
            m.d.sync += [row.eq(prog.row), group.eq(prog.group), lane.eq(prog.lane),
                         direction.eq(prog.direction), amp.eq(prog.amp)]
        cell_row = Mux(start, prog.row, row)
        cell_group = Mux(start, prog.group, group)
        cell_lane = Mux(start, prog.lane, lane)
        m.d.comb += wear_read.addr.eq(Cat(cell_group, cell_row))
        count = Signal(dev.wear_bits)
        with m.Switch(cell_lane):
            for a in range(lanes):
                with m.Case(a):
                    m.d.comb += count.eq(wear_read.data[a])

        _, row_bits, column_bits = cell_where_bits(cfg)
        column = Signal(column_bits)
        m.d.comb += column.eq(cell_group * lanes + cell_lane)
        where = (self.tile << (row_bits + column_bits)) | (cell_row << column_bits) | column
        m.d.comb += [
            rng.i.valid.eq(start),
            rng.i.payload.key0.eq(dev.seed),
            rng.i.payload.key1.eq(int(What.PULSE)),
            rng.i.payload.ctr0.eq(where),
            rng.i.payload.ctr1.eq(count),
            rng.o.ready.eq(end),
        ]

        # Noise: the Irwin-Hall sum of the draw's four low bytes, centred and scaled.
        bits = rng.o.payload.x0
        z = Signal(signed(12))
        m.d.comb += z.eq(bits[0:8] + bits[8:16] + bits[16:24] + bits[24:32] - 510)
        noise = Signal(signed(32))
        m.d.comb += noise.eq((z * dev.noise_code + (1 << (NOISE_SHIFT - 1))) >> NOISE_SHIFT)

        # The pulsed row's word (the read ports follow `addr`, which is the pulse's group now).
        row_word = Signal(data.ArrayLayout(unsigned(cfg.state_bits), lanes))
        with m.Switch(row):
            for r, (port, _) in enumerate(memories):
                with m.Case(r):
                    m.d.comb += row_word.eq(port.data)
        state = Signal(cfg.state_bits)
        m.d.comb += state.eq(row_word[lane])
        shift = wv.amp_bits + GAIN_SHIFT
        up = Signal(signed(cfg.state_bits + 2))
        down = Signal(signed(cfg.state_bits + 2))
        m.d.comb += [
            up.eq((amp * dev.set_gain_code * (top - state)) >> shift),
            down.eq((amp * dev.reset_gain_code * state) >> shift),
        ]
        moved = Signal(signed(34))
        if dev.kind == "rram":
            m.d.comb += moved.eq(Mux(direction == Direction.SET, state + up + noise,
                                     state - down + noise))
        else:  # pcm: gradual SET (only upward), abrupt RESET
            rise = up + noise
            m.d.comb += moved.eq(Mux(direction == Direction.SET,
                                     state + Mux(rise > 0, rise, 0), dev.pcm_reset_state + noise))
        new = Signal(cfg.state_bits)
        m.d.comb += new.eq(Mux(moved < 0, 0, Mux(moved > top, top, moved)))

        with m.If(end):
            m.d.comb += addr.eq(group)
        ok = healthy.bit_select(lane, 1)
        if stuck_port is not None:
            with m.If(end):
                m.d.comb += stuck_port.addr.eq(Cat(group, row))
        for r, (_, port) in enumerate(memories):
            with m.If(end & (row == r)):
                m.d.comb += [port.addr.eq(group), port.en.eq(Cat(ok & (lane == a)
                                                                 for a in range(lanes)))]
                for a in range(lanes):
                    m.d.comb += port.data[a].eq(new)
        m.d.comb += [wear_write.addr.eq(Cat(group, row))]
        for a in range(lanes):
            m.d.comb += wear_write.data[a].eq(count + 1)
        m.d.comb += wear_write.en.eq(Cat(end & ok & (lane == a) for a in range(lanes)))
