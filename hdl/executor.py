"""The board link's executor: frame tokens in, the macro's streams driven, response bytes out.

It collects a frame (command, sequence byte, payload into a buffer) while the CRC processor
checks it, and only when the closing ``END`` arrives with a good CRC, a known command and its
exact length does it touch the macro. Anything else is answered with an error response; the
macro and the link state stay as they were. One command runs at a time.

Commands reach the macro's streams: ``WEIGHTS`` offers the payload on ``w``, ``MVM`` on ``i``
and answers with the result taken from ``o``, the batch commands (with a batch memory,
``batch_depth`` > 0) store vectors in block RAM, run them through ``i`` back to back at the
macro's clock with ``o`` always ready, counting the cycles on chip, and read back the
results, ``PROGRAM`` (programmable devices) offers a request on ``p``; ``WEIGHTS`` and
``PROGRAM`` then answer with every result on ``r`` until the macro is idle (none for a
loaded row or a dropped request). The TRNG commands exist only when the macro has
the TRNG ports (``t``, ``trng_ctl``, ``trng_status``).

The payload layouts of every command are here (:func:`request_layouts`,
:func:`response_layouts`), and the host's codec reads them (:mod:`imcgen.fpga.protocol`).
"""

from amaranth import Module, Signal
from amaranth.hdl import Cat, Const, Mux, Shape, Value, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from imcgen.core.config import MacroConfig
from imcgen.hdl.common import check_int, one_hot
from imcgen.hdl.macro_top import MacroTop, result_layout
from imcgen.hdl.macro_top import status_layout as macro_status_layout
from imcgen.hdl.slip import CRC, Token, raw_layout, token_layout
from imcgen.hdl.uart import DATA_BITS
from imcgen.link.protocol import (
    ERROR,
    OK_BIT,
    PROTOCOL_VERSION,
    Command,
    LinkError,
    config_digest,
    nbytes,
)

__all__ = ["RX_FIFO_DEPTH", "BATCH_DEPTH", "info_layout", "status_layout", "error_layout",
           "run_layout", "request_layouts", "layouts_macro", "response_layouts", "has_trng",
           "supported", "Executor"]

#: Bytes the receive FIFO holds: what a host may send while a command runs.
RX_FIFO_DEPTH = 512
#: Vectors (and results) the batch memories of a board top hold by default.
BATCH_DEPTH = 256
#: Width of the on-chip cycle counter of a batch run (BATCH_RUN's answer).
RUN_CYCLE_BITS = 32


def info_layout():
    """INFO response: what the host checks before it talks to the macro."""
    return data.StructLayout({
        "version": 8,             # PROTOCOL_VERSION
        "programmable": 1,        # PROGRAM exists
        "trng": 1,                # the TRNG commands exist
        "divisor_frac": 4,        # sixteenths of a cycle in the UART's divisor
        "reserved": 2,
        "config_digest": 32,      # imcgen.link.protocol.config_digest of the macro's configuration
        "rx_fifo_depth": 16,      # bytes a host may have in flight
        "divisor": 16,            # link clock cycles per bit (whole part)
        "clk_hz": 32,             # the link's (board) clock (0 when unknown)
        "macro_hz": 32,           # the macro's clock (0 when unknown)
        "batch_depth": 16,        # vectors a batch holds (0: no batch commands)
    })


def _index_bits(depth):
    return max(1, (depth - 1).bit_length())


def run_layout(batch_depth):
    """BATCH_RUN response: the vectors run and the macro clock cycles from the run's start to
    its last result taken (:func:`imcgen.core.timing.batch_cycles`)."""
    return data.StructLayout({"vectors": _index_bits(batch_depth) + 1,
                              "cycles": RUN_CYCLE_BITS})


def status_layout(config):
    """STATUS response: the macro's sticky flags and the link's counters (CLEAR zeroes all)."""
    return data.StructLayout({
        "macro": macro_status_layout(config),
        "commands": 16,        # commands executed before this STATUS (wrapping)
        "bad_frames": 16,      # error responses sent (saturating)
        "framing_errors": 8,   # UART bytes with a low stop bit (saturating)
        "overruns": 8,         # UART bytes dropped because the RX FIFO was full (saturating)
    })


def error_layout():
    """Error response: why (a :class:`imcgen.link.protocol.LinkError`) and the command refused
    (0 when the frame was too short to hold one)."""
    return data.StructLayout({"error": 8, "command": 8})


def layouts_macro(config):
    """A :class:`MacroTop` whose ports only lend their layouts (it is never elaborated)."""
    macro = MacroTop(config=config)
    macro._MustUse__silence = True  # no UnusedElaboratable warning for it
    return macro


def has_trng(macro):
    """The macro has the TRNG ports the TRNG commands drive."""
    return all(hasattr(macro, name) for name in ("t", "trng_ctl", "trng_status"))


def request_layouts(config, macro=None, batch_depth=BATCH_DEPTH):
    """Command -> payload layout of the commands that have a payload (others have none)."""
    macro = macro or layouts_macro(config)
    layouts = {
        Command.WEIGHTS: macro.w.payload.shape(),
        Command.MVM: macro.i.payload.shape(),
        Command.TRNG_READ: unsigned(8),
        Command.TRNG_ENABLE: unsigned(8),
    }
    if config.programmable:
        layouts[Command.PROGRAM] = macro.p.payload.shape()
    if batch_depth:
        index = _index_bits(batch_depth)
        layouts[Command.BATCH_WRITE] = data.StructLayout({
            "index": index, "vector": macro.i.payload.shape()})
        layouts[Command.BATCH_RUN] = data.StructLayout({"last": index})
        layouts[Command.BATCH_READ] = data.StructLayout({"start": index, "count": 8})
    return layouts


def response_layouts(config, macro=None, batch_depth=BATCH_DEPTH):
    """Command -> layout of one item of its response (a response holds 0, 1 or more)."""
    macro = macro or layouts_macro(config)
    layouts = {
        Command.INFO: info_layout(),
        Command.STATUS: status_layout(config),
        Command.MVM: result_layout(config),
        Command.TRNG_READ: unsigned(8),
    }
    if config.programmable:
        layouts[Command.WEIGHTS] = layouts[Command.PROGRAM] = macro.r.payload.shape()
    if has_trng(macro):
        layouts[Command.TRNG_STATUS] = macro.trng_status.shape()
    if batch_depth:
        layouts[Command.BATCH_RUN] = run_layout(batch_depth)
        layouts[Command.BATCH_READ] = result_layout(config)
    return layouts


def supported(config, macro, batch_depth=BATCH_DEPTH):
    """Commands this build answers (the others are known but UNSUPPORTED)."""
    out = {Command.INFO, Command.STATUS, Command.CLEAR, Command.WEIGHTS, Command.MVM}
    if batch_depth:
        out |= {Command.BATCH_WRITE, Command.BATCH_RUN, Command.BATCH_READ}
    if config.programmable:
        out.add(Command.PROGRAM)
    if has_trng(macro):
        out |= {Command.TRNG_READ, Command.TRNG_STATUS, Command.TRNG_CLEAR,
                Command.TRNG_ENABLE}
    return out


class _Job(enum.Enum, shape=3):
    """What the response of the running command holds."""

    FIXED = 0     # a word captured when the command ran (INFO, STATUS, errors) or nothing
    RESULT = 1    # one result from the macro's o stream
    RESULTS = 2   # program results from r until the macro is idle
    IDLE = 3      # nothing, once the macro is idle
    TRNG = 4      # up to `items` bytes from t, each awaited at most the timeout
    STORED = 5    # `items` results from the batch's result memory


class Executor(wiring.Component):
    """Runs the link's commands: frame tokens in, the macro's streams driven, response bytes
    out (docs/board.md). Checks each frame (length, CRC, command, support) as its tokens
    arrive, then answers it: INFO and STATUS from registers, WEIGHTS, MVM and PROGRAM offered
    to the macro and answered with its results, the TRNG commands through its byte stream.

    Parameters
    ----------
    config : MacroConfig
    timeout_cycles : int
        The longest wait for each TRNG byte.
    rx_fifo_depth, divisor, clk_hz : int
        What INFO reports of the link (bytes a host may have in flight, cycles per bit, an
        int or a :class:`fractions.Fraction` in sixteenths, the link's clock).
    macro_hz : int
        What INFO reports of the clock this executor and the macro run on (0: unknown).
    batch_depth : int
        Vectors the batch memories hold, a power of two (0: no batch commands).

    Attributes
    ----------
    i : In(stream.Signature(token_layout))
        Frame tokens (:class:`SlipDecoder`).
    o : Out(stream.Signature(raw_layout))
        Response bytes and frame ends (:class:`SlipEncoder`).
    macro : Out(the macro's signature, flipped)
        Drives a :class:`MacroTop` of ``config`` (``wiring.connect`` to it).
    framing_errors, overruns : In(8)
        The UART's counters, for STATUS.
    clear : Out(1)
        A CLEAR command: zero the UART's counters (the macro's flags clear through ``macro``).
    bad_frames : Out(16)
        Error responses sent since the last CLEAR (saturating).
    first : In(1)
        The token on ``i`` opens a frame (the board top tags it). Arriving while a frame is
        only partly received (a reset of the line's side cut it), it drops that frame first.
    """

    def __init__(self, *, config, timeout_cycles, rx_fifo_depth=RX_FIFO_DEPTH, divisor=0,
                 clk_hz=0, macro_hz=0, batch_depth=BATCH_DEPTH):
        if not isinstance(config, MacroConfig):
            raise TypeError(f"config must be an imcgen.core.config.MacroConfig, not {config!r}")
        self._config = config
        self._timeout = check_int("link timeout", timeout_cycles, 1)
        self._depth = check_int("RX FIFO depth", rx_fifo_depth, 2, 0xFFFF)
        from fractions import Fraction

        if not isinstance(divisor, Fraction) or (divisor * 16).denominator != 1:
            divisor = check_int("UART divisor", divisor, 0, 0xFFFF)
        self._divisor = Fraction(divisor)
        self._clk_hz = check_int("clock frequency", clk_hz, 0, 2**32 - 1)
        self._macro_hz = check_int("macro clock frequency", macro_hz, 0, 2**32 - 1)
        self._batch = check_int("batch depth", batch_depth, 0, 1 << 15)
        if self._batch & (self._batch - 1):
            raise ValueError(f"batch depth must be 0 or a power of two, not {batch_depth!r}")
        super().__init__({
            "i": In(stream.Signature(token_layout)),
            "o": Out(stream.Signature(raw_layout)),
            "macro": Out(layouts_macro(config).signature.flip()),
            "framing_errors": In(8),
            "overruns": In(8),
            "clear": Out(1),
            "bad_frames": Out(16),
            "first": In(1),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        macro = self.macro
        m.submodules.rx_crc = check = CRC(data_width=DATA_BITS).create()
        tok, tx = self.i, self.o

        depth = self._batch
        requests = request_layouts(cfg, macro, depth)
        responses = response_layouts(cfg, macro, depth)
        known = supported(cfg, macro, depth)
        trng = has_trng(macro)

        size = nbytes
        lengths = {c: size(requests[c]) if c in requests else 0 for c in Command}
        buffer_bytes = max(1, *(size(layout) for layout in requests.values()))
        max_frame = 4 + max(lengths.values())

        # -- the frame being received ---------------------------------------------------
        command = Signal(8)
        seq = Signal(8)
        count = Signal(range(max_frame + 2))  # frame bytes, saturating past the longest
        buffer = Signal(8 * buffer_bytes)     # payload bytes, little-endian
        # Where the next data byte goes, one-hot: command, sequence, payload bytes 0, 1, ...
        slot = Signal(2 + buffer_bytes, init=1)
        # The command decoded as it arrives, so the frame's end only reads flags.
        is_command = {c: Signal(name=f"is_{c.name.lower()}") for c in Command}
        is_known = Signal()
        is_supported = Signal()
        frame_bytes = Signal.like(count)      # the command's exact frame length
        # The frame's checks, registered when its END arrives (CHECK), the first that fails
        # (VERDICT), acted on (DISPATCH): a cycle each, from registers.
        short, crc_bad, length_bad = Signal(), Signal(), Signal()
        padding_bad = Signal()  # a payload bit above the command's layout is set
        verdict = Signal(8)   # the LinkError of a refused frame (VERDICT, or its token)
        refusing = Signal()

        # Bits above a command's layout in its last payload byte must be zero: a host that sets
        # one meant another value than the one the layout reads (a row beyond the field).
        padding_set = Signal()
        for c, layout in requests.items():
            width = Shape.cast(layout).width
            if 8 * size(layout) > width:
                with m.If(is_command[c] & buffer[width:8 * size(layout)].any()):
                    m.d.comb += padding_set.eq(1)

        # -- the response ----------------------------------------------------------------
        info = info_layout().const({
            "version": PROTOCOL_VERSION, "programmable": int(cfg.programmable),
            "trng": int(trng), "config_digest": config_digest(cfg),
            "rx_fifo_depth": self._depth, "divisor": int(self._divisor),
            "divisor_frac": int(self._divisor * 16) % 16, "clk_hz": self._clk_hz,
            "macro_hz": self._macro_hz, "batch_depth": depth,
        }).as_value()
        info_bytes = size(info_layout())
        from_info = Signal()     # the FIXED word is INFO: its bytes come from a constant table
        status = Signal(status_layout(cfg))
        # The shift register holds the other FIXED words (INFO, the longest, would double it).
        fixed_bits = max(status.shape().size, error_layout().size,
                         Shape.cast(responses.get(Command.TRNG_STATUS, 1)).width,
                         Shape.cast(responses.get(Command.BATCH_RUN, 1)).width)
        code = Signal(8)         # response code
        job = Signal(_Job)
        word_bytes = Signal(range(max(info_bytes, (fixed_bits + 7) // 8) + 1))
        word_empty = Signal()    # word_bytes == 0
        items = Signal(8)        # items left (FIXED, RESULT, TRNG)
        items_zero = Signal()    # items == 0
        index = Signal(range(max(8, (fixed_bits + 7) // 8, *(size(v) for v in
                                                             responses.values())) + 1))
        timer = Signal(range(self._timeout + 1))
        timer_zero = Signal(init=1)  # timer == 0

        # -- counters (STATUS) -------------------------------------------------------------
        commands = Signal(16)
        bad_frames = Signal(16)
        clear = Signal()
        # The command count moves a cycle after DISPATCH, from a register of its own (CLEAR's
        # zeroing then wins), so its enable is a LUT of registers. (bad_frames the same way,
        # with a saturation flag, made Yosys 0.70's ABC9 reintegration fail an assertion on
        # ECP5.)
        counted = Signal()
        m.d.comb += [
            status.macro.eq(macro.status),
            status.commands.eq(commands),
            status.bad_frames.eq(bad_frames),
            status.framing_errors.eq(self.framing_errors),
            status.overruns.eq(self.overruns),
            macro.clear.eq(clear),
            self.clear.eq(clear),
            self.bad_frames.eq(bad_frames),
        ]

        trng_enable = Signal()
        trng_clear = Signal()
        if trng:
            ctl = macro.trng_ctl
            m.d.comb += [ctl.enable.eq(trng_enable), ctl.clear.eq(trng_clear)]

        # The payload, as each stream wants it (the buffer holds it from the frame's end on).
        payload = buffer
        offer_w, offer_i, offer_p = Signal(), Signal(), Signal()
        # A batch run offers its vectors from the same buffer (``feed_valid``).
        feed_valid = Signal()
        m.d.comb += [macro.w.payload.eq(payload[:macro.w.payload.shape().size]),
                     macro.i.payload.eq(payload[:macro.i.payload.shape().size]),
                     macro.w.valid.eq(offer_w), macro.i.valid.eq(offer_i | feed_valid)]
        if cfg.programmable:
            m.d.comb += [macro.p.payload.eq(payload[:macro.p.payload.shape().size]),
                         macro.p.valid.eq(offer_p)]

        streams = [(offer_w, macro.w), (offer_i, macro.i)]
        if cfg.programmable:
            streams.append((offer_p, macro.p))
        for valid, port in streams:
            with m.If(port.ready):
                m.d.sync += valid.eq(0)

        # The item being sent and its length in bytes.
        def padded(value, width):
            value = Value.cast(value)
            return Cat(value, Const(0, 8 * size(width) - len(value)))

        sources = {_Job.RESULT: (padded(macro.o.payload, result_layout(cfg)),
                                 size(result_layout(cfg)), macro.o.valid)}
        if cfg.programmable:
            r_layout = macro.r.payload.shape()
            sources[_Job.RESULTS] = (padded(macro.r.payload, r_layout), size(r_layout),
                                     macro.r.valid)
        if trng:
            sources[_Job.TRNG] = (Value.cast(macro.t.payload), 1, macro.t.valid)
        if depth:
            m.submodules.batch_vectors = vectors = Memory(
                shape=macro.i.payload.shape().size, depth=depth, init=[])
            m.submodules.batch_results = results = Memory(
                shape=result_layout(cfg).size, depth=depth, init=[])
            # The result memory's read port, registered once more (an ECP5 block RAM's output
            # comes late in the cycle; on the UP5K, whose logic cells are scarce, its read is
            # not on the critical path): its address moves as an item is taken, three cycles
            # or more before the next is (two bytes at least, each a cycle and its shift).
            stored = results.read_port()
            stored_data = stored.data
            if getattr(platform, "family", None) != "iCE40":
                stored_data = Signal.like(stored.data)
                m.d.sync += stored_data.eq(stored.data)
            sources[_Job.STORED] = (padded(stored_data, result_layout(cfg)),
                                    size(result_layout(cfg)), Const(1))
        # An item goes out from a shift register, a byte per handshake; its stream is taken
        # as it is loaded, so no byte multiplexer and no ready path reach the macro's FIFO.
        # The FIXED job's word is loaded into it when the command runs.
        item_bits = max(8 * ((fixed_bits + 7) // 8),
                        *(len(value) for value, _, _ in sources.values()))
        shifter = Signal(item_bits)
        word_value = Signal(item_bits)  # the word a response loads (its state's, else 0)
        job_fixed = Signal()            # job == FIXED, a register of its own
        sent = Signal()                 # BYTES: the byte went out, the shift is due
        item_bytes = Signal.like(index)
        item_valid = Signal()
        item_value = Signal(item_bits)
        with m.Switch(job):
            for kind, (value, length, valid) in sources.items():
                with m.Case(kind):
                    m.d.comb += [item_value.eq(value), item_bytes.eq(length),
                                 item_valid.eq(valid)]

        # Ready for the job's stream, a register per stream: set as the executor enters ITEM
        # with an item to take, cleared as it leaves, so the macro's FIFO logic starts at a
        # register instead of the state and job decode.
        pulls = {kind: Signal(name=f"pull_{kind.name.lower()}") for kind in
                 (_Job.RESULT, _Job.RESULTS, _Job.TRNG)}
        running = Signal()  # a batch run: the macro's results go into the result memory
        m.d.comb += macro.o.ready.eq(pulls[_Job.RESULT] | running)
        if cfg.programmable:
            m.d.comb += macro.r.ready.eq(pulls[_Job.RESULTS])
        if trng:
            m.d.comb += macro.t.ready.eq(pulls[_Job.TRNG])

        def stop_pulling():
            m.d.sync += [pull.eq(0) for pull in pulls.values()]

        def enter_item(items_left_zero):
            """Go to ITEM; pull there unless the job takes no stream or nothing is left."""
            m.d.sync += [pulls[_Job.RESULT].eq((job == _Job.RESULT) & ~items_left_zero),
                         pulls[_Job.RESULTS].eq(job == _Job.RESULTS),
                         pulls[_Job.TRNG].eq((job == _Job.TRNG) & ~items_left_zero)]
            m.next = "ITEM"

        def respond(response_code, kind, value=None, value_bytes=0, count_items=1):
            load_response(response_code, kind, value, value_bytes, count_items)
            m.next = "HEADER"

        def load_response(response_code, kind, value=None, value_bytes=0, count_items=1):
            fixed = kind is _Job.FIXED if isinstance(kind, _Job) else kind == _Job.FIXED
            m.d.sync += [code.eq(response_code), job.eq(kind), job_fixed.eq(fixed),
                         items.eq(count_items), items_zero.eq(count_items == 0), index.eq(0),
                         word_empty.eq(value_bytes == 0), from_info.eq(value is info)]
            if value is info:  # its first byte; BYTES loads each next one from the table
                m.d.comb += word_value.eq(info[:8])
                m.d.sync += word_bytes.eq(value_bytes)
            elif value is not None:
                m.d.comb += word_value.eq(value)
                m.d.sync += word_bytes.eq(value_bytes)
            else:
                m.d.sync += word_bytes.eq(0)

        # The response of an offered command, kept while the macro has not taken it yet.
        offer_code, offer_job = Signal(8), Signal(_Job)

        def offer(valid, response_code, kind):
            m.d.sync += [valid.eq(1), offer_code.eq(response_code), offer_job.eq(kind)]
            m.next = "OFFER"

        refused = Signal(error_layout())
        m.d.comb += [refused.command.eq(command), refused.error.eq(verdict)]

        def refuse():  # the frame, with the verdict's error
            m.d.sync += bad_frames.eq(Mux(bad_frames == 0xFFFF, bad_frames, bad_frames + 1))
            respond(ERROR, _Job.FIXED, refused, size(error_layout()))

        # The macro's busy flag a cycle late, from a register (a count compared in the macro):
        # a WEIGHTS or PROGRAM response waits for it several cycles after the offer is taken.
        busy = Signal()
        m.d.sync += busy.eq(macro.busy)

        # -- the batch memories -------------------------------------------------------------
        # A run reads its vectors ahead into a register stage (``fetched``: the read port's
        # data) and the buffer (``feed_valid``), so one is offered whenever the macro may take
        # it: the run's cycles are the macro's own (imcgen.core.timing.batch_cycles).
        if depth:
            ib = _index_bits(depth)
            vector_bits = macro.i.payload.shape().size
            writer, feeder = vectors.write_port(), vectors.read_port()
            collector = results.write_port()
            run_last, feed, got, read_at = (Signal(ib, name=n) for n in
                                            ("run_last", "feed", "got", "read_at"))
            feeding, fetched = Signal(), Signal()
            run_cycles = Signal(RUN_CYCLE_BITS)
            m.d.comb += [writer.addr.eq(buffer[:ib]),
                         writer.data.eq(buffer[ib:ib + vector_bits]),
                         feeder.addr.eq(feed), feeder.en.eq(0),
                         collector.addr.eq(got), collector.data.eq(macro.o.payload),
                         stored.addr.eq(read_at)]

        # INFO's next byte, looked up by the bytes left a cycle before BYTES shifts it in:
        # `index` changes only on a shift, and shifts are two cycles apart at least (`sent`),
        # so the register always holds the byte for the current `index` when one is due.
        info_next = Signal(8)
        with m.Switch(index):
            for left in range(2, info_bytes + 1):
                with m.Case(left):
                    k = info_bytes - left + 1
                    m.d.sync += info_next.eq(info[8 * k:8 * k + 8])
            with m.Default():
                m.d.sync += info_next.eq(0)

        # -- the executor --------------------------------------------------------------------
        # CLEAR and TRNG_CLEAR act a cycle after DISPATCH, from a register (their counters'
        # logic starts there); the command's own count is then cleared with the rest.
        m.d.sync += [clear.eq(0), trng_clear.eq(0), counted.eq(0)]
        with m.If(counted):
            m.d.sync += commands.eq(commands + 1)
        # A payload byte goes into the buffer a cycle after its token is taken, from registers
        # (the byte and its slot), so the buffer's enables are a LUT of registers, not the
        # token's decode. The buffer is read from CHECK on, after the frame's END token, which
        # comes a UART byte after the last data token.
        taken_byte = Signal(8)
        taken_slots = Signal(buffer_bytes)
        m.d.sync += taken_slots.eq(0)
        for k in range(buffer_bytes):
            with m.If(taken_slots[k]):
                m.d.sync += buffer.word_select(k, 8).eq(taken_byte)
        with m.FSM(init="RECEIVE", name="link") as link_fsm:
            with m.State("RECEIVE"):
                # A frame opening while another is partly in: drop that one, then take it.
                stale = self.first & ~slot[0]
                m.d.comb += tok.ready.eq(~stale)
                with m.If(tok.valid & stale):
                    m.d.sync += [count.eq(0), command.eq(0), seq.eq(0), slot.eq(1)]
                with m.Elif(tok.valid):
                    with m.Switch(tok.payload.kind):
                        with m.Case(Token.DATA):
                            byte = tok.payload.data
                            m.d.comb += [check.valid.eq(1), check.data.eq(byte),
                                         check.start.eq(slot[0])]
                            m.d.sync += slot.eq(slot << 1)
                            with m.If(slot[0]):
                                m.d.sync += [command.eq(byte), frame_bytes.eq(max_frame + 1)]
                                for c, flag in is_command.items():
                                    m.d.sync += flag.eq(byte == c.value)
                                    with m.If(byte == c.value):
                                        m.d.sync += frame_bytes.eq(4 + lengths[c])
                            with m.If(slot[1]):
                                m.d.sync += seq.eq(byte)
                            m.d.sync += [taken_byte.eq(byte), taken_slots.eq(slot[2:])]
                            with m.If(count != max_frame + 1):
                                m.d.sync += count.eq(count + 1)
                        with m.Case(Token.END):
                            m.next = "CHECK"
                        # A broken frame is refused from DISPATCH, like a failed check: the
                        # response logic starts at registers, not at the token.
                        with m.Case(Token.BAD_END):
                            m.d.sync += [verdict.eq(LinkError.ESCAPE.value), refusing.eq(1)]
                            m.next = "DISPATCH"
                        with m.Case(Token.TIMEOUT):
                            m.d.sync += [verdict.eq(LinkError.TIMEOUT.value), refusing.eq(1)]
                            m.next = "DISPATCH"
            with m.State("CHECK"):  # the whole frame is in, its CRC processed
                m.d.sync += [short.eq(count < 4), crc_bad.eq(~check.match_detected),
                             length_bad.eq(count != frame_bytes),
                             padding_bad.eq(padding_set),
                             is_known.eq(Cat(is_command.values()).any()),
                             is_supported.eq(Cat(is_command[c] for c in known).any())]
                m.next = "VERDICT"
            with m.State("VERDICT"):  # the first check that fails, if any
                m.d.sync += verdict.eq(0)
                with m.If(short):
                    m.d.sync += verdict.eq(LinkError.SHORT.value)
                with m.Elif(crc_bad):
                    m.d.sync += verdict.eq(LinkError.CRC.value)
                with m.Elif(~is_known):
                    m.d.sync += verdict.eq(LinkError.COMMAND.value)
                with m.Elif(~is_supported):
                    m.d.sync += verdict.eq(LinkError.UNSUPPORTED.value)
                with m.Elif(length_bad):
                    m.d.sync += verdict.eq(LinkError.LENGTH.value)
                with m.Elif(padding_bad):
                    m.d.sync += verdict.eq(LinkError.PADDING.value)
                m.d.sync += refusing.eq(short | crc_bad | ~is_known | ~is_supported | length_bad
                                        | padding_bad)
                m.next = "DISPATCH"
            with m.State("DISPATCH"):
                # The response's registers load here whatever the command (a refusal's values
                # unless the command's own follow), so their enables are the state alone; a
                # command that answers later (an offer, a batch run) loads them again then.
                load_response(ERROR, _Job.FIXED, refused, size(error_layout()))
                with m.If(refusing):
                    refuse()
                with m.Else():
                    m.d.sync += counted.eq(1)
                    ok = command | OK_BIT
                    with m.If(is_command[Command.INFO]):
                        respond(ok, _Job.FIXED, info, size(info_layout()))
                    with m.If(is_command[Command.STATUS]):
                        respond(ok, _Job.FIXED, status, size(status_layout(cfg)))
                    with m.If(is_command[Command.CLEAR]):
                        m.d.sync += clear.eq(1)
                        respond(ok, _Job.FIXED, count_items=0)
                    # The offers' valid bits are registers: the macro's accept logic starts
                    # at them.
                    with m.If(is_command[Command.WEIGHTS]):
                        offer(offer_w, ok, _Job.RESULTS if cfg.programmable else _Job.IDLE)
                    with m.If(is_command[Command.MVM]):
                        offer(offer_i, ok, _Job.RESULT)
                    if cfg.programmable:
                        with m.If(is_command[Command.PROGRAM]):
                            offer(offer_p, ok, _Job.RESULTS)
                    if depth:
                        with m.If(is_command[Command.BATCH_WRITE]):
                            m.d.comb += writer.en.eq(1)
                            respond(ok, _Job.FIXED, count_items=0)
                        with m.If(is_command[Command.BATCH_RUN]):
                            m.d.sync += [run_last.eq(buffer[:ib]), feed.eq(0), feeding.eq(1),
                                         fetched.eq(0), got.eq(0), run_cycles.eq(1),
                                         running.eq(1)]
                            m.next = "RUN"
                        with m.If(is_command[Command.BATCH_READ]):
                            m.d.sync += read_at.eq(buffer[:ib])
                            respond(ok, _Job.STORED, count_items=buffer[ib:ib + 8])
                    if trng:
                        with m.If(is_command[Command.TRNG_READ]):
                            m.d.sync += [timer.eq(self._timeout), timer_zero.eq(0)]
                            respond(ok, _Job.TRNG, count_items=buffer[:8])
                        with m.If(is_command[Command.TRNG_STATUS]):
                            layout = responses[Command.TRNG_STATUS]
                            respond(ok, _Job.FIXED, macro.trng_status, size(layout))
                        with m.If(is_command[Command.TRNG_CLEAR]):
                            m.d.sync += trng_clear.eq(1)
                            respond(ok, _Job.FIXED, count_items=0)
                        with m.If(is_command[Command.TRNG_ENABLE]):
                            m.d.sync += trng_enable.eq(buffer[0])
                            respond(ok, _Job.FIXED, count_items=0)
            if depth:
                with m.State("RUN"):  # vectors 0..run_last through the macro, back to back
                    m.d.sync += run_cycles.eq(run_cycles + 1)
                    # The buffer reloads the cycle after the macro takes its vector: its enable
                    # is a register, not the macro's accept logic (the macro takes vectors at
                    # least two cycles apart, so the pace stays the macro's).
                    load = ~feed_valid  # the buffer is empty this cycle
                    read = feeding & (~fetched | load)  # so is the read port's data after it
                    m.d.comb += feeder.en.eq(read)
                    with m.If(feed_valid & macro.i.ready):
                        m.d.sync += feed_valid.eq(0)
                    with m.If(load & fetched):
                        m.d.sync += [feed_valid.eq(1), buffer[:vector_bits].eq(feeder.data)]
                    with m.If(read):
                        m.d.sync += [fetched.eq(1), feed.eq(feed + 1),
                                     feeding.eq(feed != run_last)]
                    with m.Elif(load):
                        m.d.sync += fetched.eq(0)
                    m.d.comb += collector.en.eq(macro.o.valid)
                    with m.If(macro.o.valid):
                        m.d.sync += got.eq(got + 1)
                        with m.If(got == run_last):
                            m.d.sync += running.eq(0)
                            # run_cycles counts this cycle too: the edges from the start.
                            word = Cat((run_last + 1)[:ib + 1], run_cycles)
                            respond(command | OK_BIT, _Job.FIXED, word,
                                    size(run_layout(depth)))
            with m.State("OFFER"):  # the payload is offered to the macro until it takes it
                # A taken offer clears its own valid bit (below); the state follows those
                # registers, so the macro's accept logic ends at them.
                with m.If(~(offer_w | offer_i | offer_p)):
                    m.next = "OFFERED"
            with m.State("OFFERED"):  # a cycle later: the response starts from registers
                respond(offer_code, offer_job)
            with m.State("HEADER"):  # response code
                m.d.comb += [tx.valid.eq(1), tx.payload.data.eq(code)]
                with m.If(tx.ready):
                    m.next = "SEQ"
            with m.State("SEQ"):
                m.d.comb += [tx.valid.eq(1), tx.payload.data.eq(seq)]
                with m.If(tx.ready):
                    enter_item(items_zero)
            with m.State("ITEM"):  # the next item, or the end of the response
                # `index` loads the item's length (or the word's) every cycle, used once the
                # item is taken (the shift register likewise, below): their enables are then
                # the state, not the stream's valid.
                with m.If(job_fixed):
                    m.d.sync += index.eq(word_bytes)
                with m.Else():
                    m.d.sync += index.eq(item_bytes)
                bounded = (job == _Job.FIXED) | (job == _Job.RESULT) | (job == _Job.TRNG) | \
                    (job == _Job.STORED)
                drained = ((job == _Job.RESULTS) | (job == _Job.IDLE)) & ~busy
                with m.If(job == _Job.TRNG):
                    with m.If(item_valid):
                        m.d.sync += [timer.eq(self._timeout), timer_zero.eq(0)]
                    with m.Elif(~timer_zero):
                        m.d.sync += [timer.eq(timer - 1), timer_zero.eq(timer == 1)]
                with m.If(bounded & items_zero):
                    m.next = "CLOSE"
                with m.Elif(job == _Job.FIXED):  # its word is in the shift register
                    with m.If(word_empty):
                        m.next = "CLOSE"
                    with m.Else():
                        m.next = "BYTES"
                with m.Else():
                    # The job's pull is set here: the stream's item is taken when its valid is
                    # set.
                    with m.If(item_valid):
                        stop_pulling()
                        if depth:
                            with m.If(job == _Job.STORED):
                                m.d.sync += read_at.eq(read_at + 1)
                        m.next = "BYTES"
                    with m.Elif(drained | ((job == _Job.TRNG) & timer_zero)):
                        stop_pulling()
                        m.next = "CLOSE"
            with m.State("BYTES"):
                # The byte going out is the shift register's low byte, a register (the
                # encoder classes it as it arrives); INFO's next byte comes from a constant
                # table by the bytes left (`info_next`), the other words' by shifting.
                # A byte taken shifts on the next cycle, from a register (the encoder takes
                # at most every other cycle): the shift register's enable is not the
                # encoder's ready.
                m.d.comb += [tx.valid.eq(~sent), tx.payload.data.eq(shifter[:8])]
                m.d.sync += sent.eq(~sent & tx.ready)
                with m.If(sent):  # index: the item's bytes left
                    m.d.sync += index.eq(index - 1)
                    with m.If(index == 1):
                        m.d.sync += [items.eq(items - 1), items_zero.eq(items == 1)]
                        enter_item(items == 1)
            with m.State("CLOSE"):
                m.d.comb += [tx.valid.eq(1), tx.payload.end.eq(1)]
                with m.If(tx.ready):
                    m.d.sync += [count.eq(0), command.eq(0), seq.eq(0), slot.eq(1)]
                    m.next = "RECEIVE"
        one_hot(link_fsm)

        # The shift register loads: a response's word where one is loaded (DISPATCH, the end of
        # a batch run; every cycle there, used only when the state moves on), a stream's item
        # every cycle of ITEM unless the word is FIXED, the next byte after one went out (`sent`
        # is set in BYTES only). Its enable is a LUT of registers.
        word_states = link_fsm.ongoing("DISPATCH")
        if depth:
            word_states |= link_fsm.ongoing("RUN")
        in_item = link_fsm.ongoing("ITEM")
        with m.If(sent):
            m.d.sync += shifter.eq(Mux(from_info, info_next, shifter >> 8))
        with m.Elif(in_item & ~job_fixed):
            m.d.sync += shifter.eq(item_value)
        with m.Elif(word_states):
            m.d.sync += shifter.eq(word_value)
        with m.If(clear):  # CLEAR's own count is zeroed with the rest
            m.d.sync += [commands.eq(0), bad_frames.eq(0)]
        return m
