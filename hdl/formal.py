"""Formal properties of the blocks: their stream contracts and their own contracts, as
harnesses for SymbiYosys (runner: :mod:`imcgen.sim.formal`; docs/formal.md).

A :class:`Harness` wraps one block. Every input of the block is left free (the solver picks it
each cycle), reset included; then

- every stream the block **produces** must hold ``valid`` and its payload until ``ready``
  (asserted; the cycle after a reset excepted, as the stream rules allow);
- every stream it **consumes** is assumed to follow the same rule (the environment may stall
  and offer at will, but keeps an offer until it is taken);
- every produced stream must be able to transfer (a cover: no block is dead from reset);
- a block's own contracts (:data:`CONTRACTS`) add assertions over its ports: the scheduler's
  reads enable at most ``rows_per_read`` rows, say how many, and (zero-skipping) none
  but skip tokens are empty; the SLIP encoder never sends XON or XOFF raw and follows
  every ESC with a stuffing code; the weight port writes no row outside the tile; the SAR's
  DAC walks the binary search and its codes are its comparator's answers, on time; the TRNG's
  repetition count test alarms exactly at its cutoff.

Properties are named: each assertion's source location is its name, so a failure reports it.
"""

from amaranth import Cat, Elaboratable, Module, Mux, ResetSignal, Signal, Value, signed
from amaranth.hdl import Assert, Assume, Cover
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In

__all__ = ["Harness", "streams", "free_inputs", "CONTRACTS"]


def _named(statement, name):
    """``statement`` (an Assert, Assume or Cover) reported under ``name`` by the tools."""
    statement.src_loc = (name, 0)
    return statement


def streams(dut):
    """``[(name, interface, produced)]`` for every stream port of ``dut`` (a component);
    ``produced``: the block drives ``valid`` and ``payload``."""
    out = []
    for name, member in dut.signature.members.items():
        if not member.is_signature:
            continue
        sig = member.signature
        flipped = isinstance(sig, wiring.FlippedSignature)
        base = sig.flip() if flipped else sig
        if isinstance(base, stream.Signature):
            value = getattr(dut, name)
            if member.dimensions:  # an array of streams: each element its own stream
                for n, element in enumerate(_elements(value)):
                    out.append((f"{name}[{n}]", element, not flipped))
            else:
                out.append((name, value, not flipped))
    return out


def _elements(value):
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _elements(item)
    else:
        yield value


def free_inputs(dut):
    """Every input signal of ``dut``: the harness leaves them to the solver."""
    return [Value.cast(value) for _, member, value in dut.signature.flatten(dut)
            if member.flow == In]


class Harness(Elaboratable):
    """One block under its stream properties and contracts.

    Parameters
    ----------
    name : str
        The block's name (:data:`imcgen.sim.formal.BLOCKS`).
    dut : wiring.Component
    contracts : sequence of callables ``(harness, module, dut, steady)``
        Add the block's own assertions; ``steady`` is 1 in cycles where the state follows
        from the last cycle (not the first, not just after a reset).
    config : MacroConfig or None
        The block's configuration, for the contracts.
    part : str
        ``"streams"``: the stream assertions only; ``"contracts"``: the contracts' only (the
        environment's assumptions are in both); ``"all"``. Apart, each proof's induction
        closes or fails on its own.
    """

    def __init__(self, name, dut, contracts=(), config=None, part="all"):
        self.name, self.dut, self.contracts = name, dut, tuple(contracts)
        self.config, self.part = config, part
        # A free input for contracts that let the solver choose (which item to track).
        self.pick = Signal(name="formal_pick")
        self.properties = []  # (kind, name): kind "assert", "assume" or "cover"

    @property
    def ports(self):
        return free_inputs(self.dut) + [self.pick]

    def check(self, m, test, name, kind="assert"):
        """Add a named assertion (or assumption, cover) in the combinational domain."""
        make = {"assert": Assert, "assume": Assume, "cover": Cover}[kind]
        m.d.comb += _named(make(test), f"{self.name}: {name}")
        self.properties.append((kind, name))

    def past(self, m, value):
        """``value`` one cycle ago (kept through resets), wherever it is asked for: the
        register lives in a module of its own, outside any ``If`` of the caller."""
        value = Value.cast(value)
        old = Signal(value.shape(), reset_less=True)
        self._pasts.d.sync += old.eq(value)
        return old

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        m.submodules.pasts = self._pasts = Module()
        primed = Signal(reset_less=True)  # a cycle has passed
        m.d.sync += primed.eq(1)
        steady = primed & ~self.past(m, ResetSignal("sync"))
        for name, port, produced in streams(dut):
            valid, ready = port.valid, port.ready
            payload = Value.cast(port.payload)
            was_offered = steady & self.past(m, valid) & ~self.past(m, ready)
            held = valid & (payload == self.past(m, payload))
            if produced and self.part != "contracts":
                with m.If(was_offered):
                    self.check(m, held, f"{name} holds valid and payload until ready")
                self.check(m, valid & ready, f"{name} transfers (cover)", "cover")
            else:
                with m.If(was_offered):
                    self.check(m, held, f"{name}: the environment holds its offer", "assume")
        for contract in self.contracts:
            if self.part == "streams":  # keep only the contract's assumptions
                contract(_AssumptionsOnly(self), m, dut, steady)
            else:
                contract(self, m, dut, steady)
        return m


class _AssumptionsOnly:
    """A harness view for a contract whose assertions are not wanted: its assumptions (the
    environment's rules) stay, its assertions and covers go."""

    def __init__(self, harness):
        self._h = harness

    def __getattr__(self, name):
        return getattr(self._h, name)

    def check(self, m, test, name, kind="assert"):
        if kind == "assume":
            self._h.check(m, test, name, kind)


# -- block contracts ---------------------------------------------------------------------------


def _taken(port):
    """A transfer: ``valid`` and ``ready``, outside a reset (a block discards what it takes
    in a reset cycle, so a harness must not count it)."""
    return port.valid & port.ready & ~ResetSignal("sync")


def scheduler_reads_are_well_formed(h, m, dut, steady):
    """Every read enables at most ``rows_per_read`` rows and says how many (``count``, the
    offset correction's operand); under zero-skipping, a read that is not a skip token
    enables at least one row, and only rows of the plane being read."""
    cfg = h.config
    cmd = dut.o.payload
    with m.If(_taken(dut.o)):
        h.check(m, _popcount(cmd.rows) <= cfg.rows_per_read, "at most rows_per_read rows")
        h.check(m, cmd.count == _popcount(cmd.rows), "count equals the rows enabled")
        if cfg.schedule == "zero_skip":
            h.check(m, cmd.skip | (cmd.rows != 0), "a read enables a row (zero_skip)")
            h.check(m, ~cmd.skip | (cmd.rows == 0), "a skip token enables none")


def planes_arrive_in_order(h, m, dut, steady):
    """Environment of the row scheduler (the input driver's contract): a vector's planes come
    with index 0, 1, ..., ``input_bits - 1``, ``last`` on the final one only, ``neg`` only on
    the MSB plane of signed inputs."""
    cfg = h.config
    plane = dut.i.payload
    expect = Signal(range(cfg.input_bits))
    with m.If(dut.i.valid):
        h.check(m, plane.index == expect, "planes come in index order", "assume")
        h.check(m, plane.last == (expect == cfg.input_bits - 1), "last on the last plane",
                "assume")
        h.check(m, plane.neg == (int(cfg.input_signed) & (expect == cfg.input_bits - 1)),
                "neg on the signed MSB plane", "assume")
    with m.If(_taken(dut.i)):
        m.d.sync += expect.eq(_wrap(expect, cfg.input_bits))


def scheduler_reads_cover_the_active_rows(h, m, dut, steady):
    """zero_skip: the reads of a plane enable exactly its active rows, each once; a skip
    token closes only a vector whose planes are all empty.

    The solver picks any one plane to track (the free input ``pick`` when it is taken). Reads
    carry their plane's index and a vector's last read is marked, so the reads of the tracked
    plane are those with its index in its vector (vectors counted at both ends). Each must
    enable only rows of that plane not enabled before; when its vector's reads end, every
    active row of the plane must have been enabled. A reset ends the tracking."""
    cfg = h.config
    if cfg.schedule != "zero_skip":
        return
    pick = h.pick  # a free input: the solver chooses the plane
    vec_in = Signal(4)   # vectors taken (planes with `last`), modulo 16
    vec_out = Signal(4)  # vectors closed by a read with `last`
    tracking = Signal()
    bits = Signal(cfg.rows)
    index = Signal(range(cfg.input_bits))
    vector = Signal(4)
    seen = Signal(cfg.rows)
    plane = dut.i.payload
    with m.If(_taken(dut.i)):
        m.d.sync += vec_in.eq(vec_in + plane.last)
        with m.If(pick & ~tracking):
            m.d.sync += [tracking.eq(1), bits.eq(plane.bits), index.eq(plane.index),
                         vector.eq(vec_in), seen.eq(0)]
    cmd = dut.o.payload
    taken = _taken(dut.o)
    with m.If(taken):
        m.d.sync += vec_out.eq(vec_out + cmd.last)
    ours = taken & tracking & (vec_out == vector) & (cmd.plane == index) & ~cmd.skip
    with m.If(ours):
        h.check(m, (cmd.rows & ~bits) == 0, "a read enables only active rows of its plane")
        h.check(m, (cmd.rows & seen) == 0, "no row is read twice")
        m.d.sync += seen.eq(seen | cmd.rows)
    # The tracked plane's reads are over when its vector's last read goes (or one of a later
    # plane of the vector): by then every active row was enabled.
    over = taken & tracking & (vec_out == vector) & (cmd.last | (cmd.plane > index))
    with m.If(over):
        h.check(m, (Mux(ours, seen | cmd.rows, seen)) == bits, "every active row is read")
    with m.If(taken & tracking & (vec_out == vector) & cmd.last):
        m.d.sync += tracking.eq(0)


def _popcount(value):
    value = Value.cast(value)
    total = 0
    for bit in value:
        total = total + bit
    return total


def weight_rows_stay_in_the_tile(h, m, dut, steady):
    """The weight mapper writes cells only for rows that exist: every write goes to the last
    row taken whose global index is below ``rows * tiles`` (a row beyond is taken and dropped,
    whatever index the host sends), inside the tile (column group below ``column_groups``)."""
    cfg = h.config
    cell = dut.cell
    payload = dut.i.payload
    storable = payload.row < cfg.input_rows
    if cfg.weight_mapping == "differential":  # -2^(B-1) has no magnitude in B-1 bits
        for j in range(cfg.outputs):
            storable = storable & (payload.weights[j] != -(1 << (cfg.weight_bits - 1)))
    good = Signal.like(Value.cast(payload.row), name="formal_good_row")  # last storable row
    with m.If(_taken(dut.i) & storable):
        m.d.sync += good.eq(payload.row)
    # Writes leave a register a cycle after the row's (tile, row) is registered.
    written = Signal(8, name="formal_written_row")
    was = Signal(8, name="formal_past_good_row")
    m.d.comb += [written.eq(dut.tile * cfg.rows + cell.row), was.eq(h.past(m, good))]
    with m.If(cell.we & steady):
        h.check(m, written == was, "no write for a row that does not exist")
    with m.If(cell.we):
        h.check(m, cell.row < cfg.rows, "no write outside the tile's rows")
        h.check(m, cell.group < cfg.column_groups, "no write outside the column groups")


def slip_encoder_stuffs_exactly(h, m, dut, steady):
    """No byte the protocol stuffs (XON, XOFF; END between the delimiters) leaves raw except
    as a delimiter, and every ESC is followed by one of the four codes."""
    from imcgen.link.protocol import ESC, STUFFED, XOFF, XON

    byte = dut.o.payload
    sent = _taken(dut.o)
    h.check(m, ~(sent & ((byte == XON) | (byte == XOFF))), "XON and XOFF never leave raw")
    after_esc = Signal()
    with m.If(sent):
        m.d.sync += after_esc.eq(byte == ESC)
    with m.If(sent & after_esc & steady):
        h.check(m, _any(byte == code for code in STUFFED.values()),
                "ESC is followed by a stuffing code")


def _any(tests):
    out = 0
    for test in tests:
        out = out | test
    return out


def conserves(into, out, capacity):
    """A contract: the vectors (items whose ``last`` is set, or every item where the payload
    has no ``last``) taken from stream ``into`` and sent on ``out`` balance: none leaves that
    did not enter (nothing duplicated), and at most ``capacity`` are inside at once (nothing
    stays forever while more arrive: dropping shows as a block that fills). A reset empties
    the block."""

    def contract(h, m, dut, steady):
        def count(port):
            payload = port.payload
            layout = payload.shape() if isinstance(payload, data.View) else None
            last = payload.last if isinstance(layout, data.StructLayout) and \
                "last" in layout.members else 1
            return _taken(port) & last

        ports = {name: port for name, port, _ in streams(dut)}
        inside = Signal(range(-1, capacity + 2))
        change = inside + count(ports[into]) - count(ports[out])
        m.d.sync += inside.eq(change)
        h.check(m, inside >= 0, f"no vector leaves {out} that did not enter {into}")
        h.check(m, inside <= capacity, f"at most {capacity} vectors inside")

    return contract


def slip_decoder_unstuffs_like_the_reference(h, m, dut, steady):
    """Every DATA token is the reference's next data byte: bytes before the first END are
    dropped, ``ESC`` and a stuffing code give the byte it stands for (every escape, every
    byte value), other bytes pass, and none is lost, doubled or reordered; frames do not time
    out within the proof's depth (the timeout is set far beyond it)."""
    from amaranth.lib.fifo import SyncFIFO

    from imcgen.hdl.slip import Token
    from imcgen.link.protocol import END, ESC, STUFFED

    m.submodules.expected = expected = SyncFIFO(width=8, depth=4)
    hunting = Signal(init=1)
    escaped = Signal()
    byte = dut.i.payload
    with m.If(_taken(dut.i)):
        with m.If(hunting):
            m.d.sync += hunting.eq(byte != END)
        with m.Elif(escaped):
            m.d.sync += escaped.eq(0)
            for data, code in STUFFED.items():
                with m.If(byte == code):
                    m.d.comb += [expected.w_en.eq(1), expected.w_data.eq(data)]
        with m.Elif(byte == ESC):
            m.d.sync += escaped.eq(1)
        with m.Elif(byte != END):
            m.d.comb += [expected.w_en.eq(1), expected.w_data.eq(byte)]
    with m.If(expected.w_en):
        h.check(m, expected.w_rdy, "at most four data bytes inside the decoder")
    token = dut.o.payload
    with m.If(_taken(dut.o) & (Value.cast(token.kind) == Token.DATA.value)):
        h.check(m, expected.r_rdy, "no data token without its byte")
        h.check(m, token.data == expected.r_data, "data tokens are the reference's bytes")
        m.d.comb += expected.r_en.eq(1)
    with m.If(_taken(dut.o) & (Value.cast(token.kind) == Token.TIMEOUT.value)):
        h.check(m, 0, "no timeout within the depth")


def codes_arrive_in_group_order(h, m, dut, steady):
    """Environment of the shift-and-add (the SAR controller's contract): a read's codes come
    in column-group order, ``last`` only on a read's last group, a skip token alone."""
    groups = h.config.column_groups
    group = Signal(range(groups))
    item = dut.i.payload
    with m.If(dut.i.valid):
        h.check(m, item.skip | (item.group == group), "codes come in group order", "assume")
        h.check(m, ~item.last | item.skip | (item.group == groups - 1),
                "last only on a read's last group", "assume")
        h.check(m, ~item.skip | (group == 0), "a skip token between reads", "assume")
    with m.If(_taken(dut.i) & ~item.skip):
        m.d.sync += group.eq(0 if groups == 1 else
                             (group + 1) % groups if groups & (groups - 1) == 0 else
                             _wrap(group, groups))


def sar_converts_by_binary_search(h, m, dut, steady):
    """The SAR controller's contract, seen at its analog port (``adc_bits`` >= 2): each lane's
    DAC code walks the binary search, one compare per cycle, MSB first, without a pause (the
    bit under test is the code's lowest set bit; the comparator's yes keeps it); the codes
    that leave are the outcomes of their conversion's compares, in order; and with ``o`` ready
    throughout, a group's codes leave ``adc_bits`` cycles after its first compare. The
    comparator is assumed to answer alike while what it sees (its DAC code, the group, the
    buffer) holds, as a held sample does."""
    cfg = h.config
    xbar, lanes, bits = dut.xbar, cfg.adcs, cfg.adc_bits
    assert bits >= 2, "the final compare is told from the first by its trial bit"
    dac = [Value.cast(xbar.dac[a]) for a in range(lanes)]
    cmp = Value.cast(xbar.cmp)
    sees = Cat(Value.cast(xbar.dac), xbar.col_sel, xbar.bank)
    old_cmp = h.past(m, cmp)
    with m.If(steady & (sees == h.past(m, sees))):
        h.check(m, cmp == old_cmp, "the comparator answers alike while its inputs hold",
                "assume")
    for a in range(lanes):
        old = h.past(m, dac[a])
        for k in range(1, bits):  # the bit under test in the last cycle: the search goes on
            t = 1 << k
            with m.If(steady & ((old & (2 * t - 1)) == t)):
                kept = Mux(old_cmp[a], old, old ^ t)
                h.check(m, dac[a] == (kept | (t >> 1)), "the DAC walks the binary search")
    # The outcome of a final compare (bit 0 under test): the bits kept and the comparator's.
    outcome = Cat(*[Cat(cmp[a], dac[a][1:]) for a in range(lanes)])
    from amaranth.lib.fifo import SyncFIFO

    m.submodules.outcomes = outcomes = SyncFIFO(width=lanes * bits, depth=4)
    final_begins = steady & ((h.past(m, dac[0]) & 3) == 2)  # the compare before had bit 1
    m.d.comb += [outcomes.w_en.eq(final_begins), outcomes.w_data.eq(outcome)]
    with m.If(final_begins):
        h.check(m, outcomes.w_rdy, "at most four conversions inside")
    codes = Value.cast(dut.o.payload.codes)
    with m.If(_taken(dut.o) & ~dut.o.payload.skip):
        h.check(m, outcomes.r_rdy, "no codes without their conversion")
        h.check(m, codes == outcomes.r_data, "codes are the outcomes of their compares")
        m.d.comb += outcomes.r_en.eq(1)
    # Timing: a first compare (the DAC at the MSB alone), then `o` ready and no reset for
    # adc_bits cycles: the codes are at `o` now.
    ready = dut.o.ready & ~ResetSignal("sync")
    track = Signal(bits)
    m.d.sync += track.eq(Cat(steady & (dac[0] == 1 << (bits - 1)) & ready,
                             track[:-1] & Mux(ready, (1 << (bits - 1)) - 1, 0)))
    with m.If(track[-1]):
        h.check(m, dut.o.valid & ~dut.o.payload.skip & (codes == h.past(m, outcome)),
                "a group's codes leave adc_bits cycles after its first compare")


def trng_rct_alarms_at_its_cutoff(h, m, dut, steady):
    """The repetition count test (SP 800-90B 4.4.1), against a reference fed from the entropy
    port: a round's raw sample per source is the parity of the cycles its comparator was high
    during the pulse (``pulse`` high); a round ends when its reset pulse does. The RCT alarm is
    up exactly from the round whose sample makes ``rct_cutoff`` equal ones in a row, for any
    source, until the host clears it (which restarts the test); the adaptive proportion test
    must not fire before its window fills. Run on a configuration whose cutoff is small."""
    trng = h.config.trng
    n, cutoff = trng.sources, trng.rct_cutoff
    ent = dut.entropy
    parity = Signal(n)
    with m.If(ent.pulse):
        m.d.sync += parity.eq(parity ^ ent.switched)
    ends = steady & h.past(m, ent.reset) & ~ent.reset  # the EVAL cycle
    started = Signal()
    last = Signal(n)
    runs = [Signal(range(cutoff + 1), name=f"formal_run{s}") for s in range(n)]
    alarm = Signal()
    fails = []
    for s in range(n):
        new = Mux(started & (parity[s] == last[s]), runs[s] + 1, 1)
        fails.append(new >= cutoff)
        with m.If(ends):
            m.d.sync += runs[s].eq(Mux(new >= cutoff, cutoff, new))
    clearing = alarm & dut.ctl.clear
    with m.If(ends):
        m.d.sync += [started.eq(1), last.eq(parity), parity.eq(0)]
        with m.If(_any(fails)):
            m.d.sync += alarm.eq(1)
    with m.If(clearing):
        m.d.sync += [alarm.eq(0), started.eq(0)]
    with m.If(steady):
        h.check(m, dut.status.rct_alarm == alarm, "the RCT alarms exactly at its cutoff")
        h.check(m, ~dut.status.apt_alarm, "no APT alarm before its window fills")


def _wrap(value, modulus):
    return Mux(value == modulus - 1, 0, value + 1)


def write_verify_stops_within_budget(h, m, dut, steady):
    """Every programmed cell ends OK, STUCK or GAVE_UP within the pulse budget: at most
    ``max_pulses`` pulses, one verify read more than its pulses, and a cell of the array."""
    cfg = h.config
    result = dut.o.payload
    with m.If(_taken(dut.o)):
        h.check(m, result.pulses <= cfg.write_verify.max_pulses, "at most max_pulses pulses")
        h.check(m, result.reads == result.pulses + 1, "one verify read per pulse, and a first")
        h.check(m, Value.cast(result.status) <= 2, "status is OK, STUCK or GAVE_UP")
        h.check(m, result.row < cfg.input_rows, "a result names a row of the array")
        h.check(m, result.column < cfg.physical_columns, "a result names a column of the array")


def macro_computes_the_product(h, m, dut, steady):
    """End to end, on a configuration whose reads never clip: every output vector is
    ``x @ W`` for the vectors taken, in order, with ``W`` the weight rows written before
    them (the environment writes weights only while no vector is inside, with a gap before
    the next one, and no reset while a row is being stored). Weights live in non-volatile
    cells: a reset keeps them; vectors inside are dropped."""
    from amaranth.lib.fifo import SyncFIFOBuffered

    cfg = h.config
    weights = [[Signal(signed(cfg.weight_bits), reset_less=True, name=f"w_{r}_{o}")
                for o in range(cfg.outputs)] for r in range(cfg.input_rows)]
    row = dut.w.payload
    with m.If(_taken(dut.w)):
        for r in range(cfg.input_rows):
            with m.If(row.row == r):
                m.d.sync += [weights[r][o].eq(row.weights[o]) for o in range(cfg.outputs)]
    inside = Signal(range(10))
    quiet = Signal(range(8))  # cycles since the last weight write (saturating)
    with m.If(_taken(dut.w)):
        m.d.sync += quiet.eq(0)
    with m.Elif(quiet != 7):
        m.d.sync += quiet.eq(quiet + 1)
    h.check(m, ~dut.w.valid | (inside == 0), "weights change only while no vector is inside",
            "assume")
    h.check(m, ~dut.i.valid | (quiet == 7), "a vector waits a few cycles after a weight row",
            "assume")
    # A reset while a row is being written may leave it half stored (the host writes it
    # again, docs/board.md): not this contract's case.
    h.check(m, ~ResetSignal("sync") | (quiet == 7), "no reset while a weight row is stored",
            "assume")
    low = -(1 << (cfg.weight_bits - 1)) + (1 if cfg.weight_mapping == "differential" else 0)
    with m.If(dut.w.valid):
        for o in range(cfg.outputs):
            h.check(m, row.weights[o] >= low, "weights the mapping can store", "assume")
    width = cfg.out_width
    expected = SyncFIFOBuffered(width=width * cfg.outputs, depth=8)
    m.submodules.expected = expected
    x = dut.i.payload
    product = []
    for o in range(cfg.outputs):
        total = 0
        for r in range(cfg.input_rows):
            total = total + x[r] * weights[r][o]
        product.append(total[:width] if hasattr(total, "shape") else total)
    m.d.comb += [expected.w_data.eq(Cat(*[Value.cast(p)[:width] for p in product])),
                 expected.w_en.eq(_taken(dut.i))]
    with m.If(_taken(dut.i)):
        h.check(m, expected.w_rdy, "at most eight vectors inside")
    taken = _taken(dut.o)
    m.d.sync += inside.eq(inside + _taken(dut.i) - taken)
    with m.If(taken):
        h.check(m, expected.r_rdy, "no output without its vector")
        h.check(m, Value.cast(dut.o.payload.y) == expected.r_data, "y equals x @ W")
        m.d.comb += expected.r_en.eq(1)


CONTRACTS = {
    "slip_encoder": [slip_encoder_stuffs_exactly],
    "weight_mapper": [weight_rows_stay_in_the_tile],
    "row_scheduler": [planes_arrive_in_order, scheduler_reads_are_well_formed,
                      scheduler_reads_cover_the_active_rows, conserves("i", "o", 4)],
    "pipe": [conserves("i", "o", 2)],
    "input_driver": [conserves("i", "o", 2)],
    "sar_adc": [conserves("i", "o", 3), sar_converts_by_binary_search],
    "sar_adc_overlap": [conserves("i", "o", 3)],
    "shift_add": [codes_arrive_in_group_order, conserves("i", "o", 4)],  # 3 stages + spare
    "output_stage": [conserves("i", "o", 1)],
    "output_stage_requant": [conserves("i", "o", 1)],
    "adder_network": [conserves("i[0]", "o", 2), conserves("i[1]", "o", 2)],
    "slip_decoder": [slip_decoder_unstuffs_like_the_reference],
    "write_verify": [write_verify_stops_within_budget],
    "macro_top": [macro_computes_the_product],
    "trng": [trng_rct_alarms_at_its_cutoff],
}
