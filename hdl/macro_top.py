"""The macro: weights and input vectors in, output vectors (with their cycle counts) out.

Per tile: input driver -> row scheduler -> SAR-ADC controller (+ crossbar) -> shift-and-add.
Tiles run in parallel; the adder network joins their partial sums, the output stage
post-processes, and an output FIFO decouples the host.

The macro works on one vector at a time, so a vector's cycle count does not depend on when the
host offers it or drains the result: ``cycles`` counts the edges from the one that accepts the
vector to the one that writes its result into the FIFO, and the next vector is accepted on that
same edge. A vector is accepted only when the FIFO is sure to have room for its result, so a
stalled output never stalls the datapath. Cells are non-volatile, so a reset keeps the weights.

An explicit mode FSM (``mode``: IDLE, LOAD, PROGRAM, COMPUTE, BACKWARD) serialises the jobs: a
weight row loads (or, flagged ``program``, is write-verified cell by cell), a program request
write-verifies one cell, a vector computes. Between jobs the order of preference is weight rows,
then program requests, then vectors.

With ``transposed`` a vector flagged ``backward`` (``outputs`` elements) takes the backward path
instead (docs/architecture.md section 13): it drives the columns and every tile's rows are
sensed, and its result ``x`` (``rows * tiles`` sums) comes out flagged ``backward``, in order
with the forward ones. A backward vector enters only an idle macro (BACKWARD mode), so the
directions never overlap.

With ``crossbar = "external"`` the tiles' analog boundaries become the ``xbar`` ports and a model
outside (the cocotb testbench) plays the crossbar.
"""

from amaranth import Module, Signal
from amaranth.hdl import Cat, Mux, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from imcgen.core.timing import ACCEPT_TO_LAUNCH, BACK_ACCEPT_TO_LAUNCH
from imcgen.hdl.adder_network import AdderNetwork
from imcgen.hdl.analog import AnalogSignature, EntropySignature
from imcgen.hdl.common import Block, Pipe, record_fsm
from imcgen.hdl.crossbar_stub import CrossbarStub
from imcgen.hdl.input_driver import InputDriver, vector_layout
from imcgen.hdl.output_stage import OutputStage, output_layout, requant_layout
from imcgen.hdl.row_scheduler import RowScheduler
from imcgen.hdl.sar_adc import SarAdcController
from imcgen.hdl.shift_add import ShiftAdd
from imcgen.hdl.weight_mapper import WeightMapper, weight_row_layout

__all__ = ["MacroTop", "input_layout", "result_layout", "status_layout", "OUTPUT_FIFO_DEPTH"]

OUTPUT_FIFO_DEPTH = 4


def input_layout(config):
    """A vector on ``i``: ``rows * tiles`` inputs; with ``transposed``, ``x`` holds a forward
    vector or (``backward``) a backward one in its first ``outputs`` elements."""
    if not config.transposed:
        return vector_layout(config, config.input_rows)
    return data.StructLayout({
        "x": vector_layout(config, max(config.input_rows, config.outputs)),
        "backward": unsigned(1),
    })


def result_layout(config):
    """A result on ``o``: ``y`` and its cycles; with ``transposed``, a backward result is
    flagged ``backward`` and carries ``x`` (one full-precision sum per row of every tile)."""
    fields = {"y": output_layout(config)}
    if config.transposed:
        fields["x"] = data.ArrayLayout(signed(config.back_bits), config.input_rows)
        fields["backward"] = unsigned(1)
    return data.StructLayout({**fields, "cycles": unsigned(config.cycle_bits)})


def status_layout(config):
    """Sticky error flags the host reads on ``status``; ``clear`` resets them.

    ``bad_weight_row``: a weight row with an index at or beyond ``rows * tiles`` was dropped.
    ``bad_weight``: a weight row holding the differential mapping's excluded value was dropped.
    ``bad_request`` (programmable devices): a program request for a cell that does not exist
    was dropped.
    """
    fields = {"bad_weight_row": 1, "bad_weight": 1}
    if config.programmable:
        fields["bad_request"] = 1
    return data.StructLayout(fields)


class _FIFO(SyncFIFOBuffered):
    """The result and launch FIFOs: on iCE40, whose logic cells are scarce and which has no
    LUT RAM, the storage goes into a block RAM instead of flip-flops (Yosys ``ram_style``)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        if getattr(platform, "family", None) == "iCE40":
            m.submodules.storage.attrs["ram_style"] = "block"
        return m


class MacroTop(Block):
    """Top level of the macro periphery.

    Parameters
    ----------
    config : MacroConfig
        The whole configuration; ``crossbar`` selects the stub inside or the boundary as ports.

    Attributes
    ----------
    i : In(stream.Signature(input_layout))
        Input vectors, ``rows * tiles`` elements (with ``transposed``, flagged forward or
        backward: docs/architecture.md section 13).
    w : In(stream.Signature(weight_row_layout))
        Weight rows: row index, ``outputs`` signed weights (and, programmable devices, the
        ``program`` flag: write-verify every cell of the row instead of loading it).
    o : Out(stream.Signature(result_layout))
        Output vectors and the cycles each took.
    busy : Out(1)
        A vector, a weight row or a programming request is being processed.
    status : Out(status_layout)
        Sticky error flags (a dropped request is never applied anywhere).
    clear : In(1)
        Clears ``status`` on the edge it is high.
    q : In(stream.Signature(requant_layout))
        ``requant.enabled``: every output's bias and scale; taken only while no vector is
        inside or offered, so a vector's outputs use the parameters loaded before it.
    p : In(stream.Signature(write_verify.request_layout))
        Programmable devices: single-cell write-verify requests.
    r : Out(stream.Signature(write_verify.result_layout))
        Programmable devices: one result per programmed cell (array rows and requests).
    t : Out(stream.Signature(8))
        ``trng.enabled``: random bytes from the TRNG (docs/trng.md).
    trng_ctl : In(trng.control_layout)
        ``enable`` runs the TRNG; ``clear`` clears a health-test alarm.
    trng_status : Out(trng.status_layout)
        Alarm flags and counters (pulses, retries, bits, alarms).
    xbar : Out(AnalogSignature).array(tiles)
        Only with ``crossbar = "external"``: the analog boundary of each tile (and ``entropy``,
        tile 0's entropy devices, with the TRNG).
    """

    def __init__(self, *, config):
        members = {
            "i": In(stream.Signature(input_layout(config))),
            "w": In(stream.Signature(weight_row_layout(config))),
            "o": Out(stream.Signature(result_layout(config))),
            "busy": Out(1),
            "status": Out(status_layout(config)),
            "clear": In(1),
        }
        if config.requant.enabled:
            members["q"] = In(stream.Signature(requant_layout(config)))
        if config.programmable:
            from imcgen.hdl import write_verify

            members["p"] = In(stream.Signature(write_verify.request_layout(config)))
            members["r"] = Out(stream.Signature(write_verify.result_layout(config)))
        if config.trng.enabled:
            from imcgen.hdl import trng

            members["t"] = Out(stream.Signature(8))
            members["trng_ctl"] = In(trng.control_layout(config))
            members["trng_status"] = Out(trng.status_layout(config))
        if config.crossbar == "external":
            members["xbar"] = Out(AnalogSignature(config)).array(config.tiles)
            if config.trng.enabled:  # tile 0's entropy devices, answered from outside too
                members["entropy"] = Out(EntropySignature(config))
        super().__init__(config, members)

    def elaborate(self, platform):
        cfg = self.config
        m = Module()

        m.submodules.mapper = mapper = WeightMapper(config=cfg)
        m.submodules.adder = adder = AdderNetwork(config=cfg)
        m.submodules.output_stage = output = OutputStage(config=cfg)
        m.submodules.fifo = fifo = _FIFO(width=result_layout(cfg).size, depth=OUTPUT_FIFO_DEPTH)
        wv = None
        if cfg.programmable:
            from imcgen.hdl.write_verify import WriteVerify

            m.submodules.write_verify = wv = WriteVerify(config=cfg)
            wiring.connect(m, mapper.program_row, wv.rows)

        drivers, sars, boundaries = [], [], []
        for t in range(cfg.tiles):
            driver = InputDriver(config=cfg)
            scheduler = RowScheduler(config=cfg)
            sar = SarAdcController(config=cfg)
            shift_add = ShiftAdd(config=cfg)
            m.submodules[f"tile{t}_driver"] = driver
            m.submodules[f"tile{t}_scheduler"] = scheduler
            m.submodules[f"tile{t}_sar"] = sar
            m.submodules[f"tile{t}_shift_add"] = shift_add
            # A register slice between the driver and the scheduler (gen/core/timing.py counts its
            # cycle): it ends the ready path that runs from the SAR back through the
            # scheduler, and the plane multiplexer's path into the scheduler's chunk counts.
            m.submodules[f"tile{t}_plane_pipe"] = pipe = Pipe(driver.o.payload.shape())
            wiring.connect(m, driver.o, pipe.i)
            wiring.connect(m, pipe.o, scheduler.i)
            # The scheduler's and the SAR's output registers are register slices too (their
            # files): no ready path crosses a block boundary.
            wiring.connect(m, scheduler.o, sar.i)
            wiring.connect(m, sar.o, shift_add.i)
            wiring.connect(m, shift_add.o, adder.i[t])
            drivers.append(driver)
            sars.append(sar)

            if cfg.crossbar == "stub":
                m.submodules[f"tile{t}_crossbar"] = crossbar = CrossbarStub(config=cfg, tile=t)
                boundary = crossbar.xbar
            else:
                boundary = wiring.flipped(self.xbar[t])
            boundaries.append(boundary)
            wiring.connect(m, sar.xbar, boundary.read)
            m.d.comb += [
                boundary.cell.we.eq(mapper.cell.we & (mapper.tile == t)),
                boundary.cell.row.eq(mapper.cell.row),
                boundary.cell.group.eq(mapper.cell.group),
                boundary.cell.data.eq(mapper.cell.data),
            ]
        back = self._backward(m, boundaries) if cfg.transposed else None
        if wv is not None:
            self._program_paths(m, wv, sars, boundaries)
        if cfg.trng.enabled:
            from imcgen.hdl.trng import Trng

            m.submodules.trng = trng = Trng(config=cfg)
            entropy = boundaries[0].entropy if cfg.crossbar == "stub" else \
                wiring.flipped(self.entropy)
            wiring.connect(m, trng.entropy, entropy)
            wiring.connect(m, trng.o, wiring.flipped(self.t))
            m.d.comb += [trng.ctl.eq(self.trng_ctl), self.trng_status.eq(trng.status)]

        wiring.connect(m, adder.o, output.i)

        result = Signal(result_layout(cfg))  # the FIFO head, by field (y_j, cycles) in waves
        m.d.comb += result.eq(fifo.r_data)

        # Vectors inside (accepted, result not yet in the FIFO): one at a time without
        # overlap; with it, one may enter while others read or drain.
        inside = Signal(range(OUTPUT_FIFO_DEPTH + 1))
        computing = Signal()
        done = Signal()  # the oldest one's result goes into the FIFO on this edge
        m.d.comb += computing.eq(inside != 0)
        if cfg.requant.enabled:  # between vectors only (and never with one being accepted)
            m.d.comb += [output.q.valid.eq(self.q.valid & ~computing & ~self.i.valid),
                         output.q.payload.eq(self.q.payload),
                         self.q.ready.eq(~computing & ~self.i.valid)]
        if cfg.overlap:  # the tiles launch a vector together: each at its boundary
            go = Cat(sar.boundary & sar.i.valid for sar in sars).all()
            for sar in sars:
                m.d.comb += sar.go.eq(go)

        # Cycles: the free-running clock at each vector's launch (every tile takes its first
        # read command on that edge), queued in order; at the result, now - launch + the
        # accept-to-launch edges of an idle macro (gen/core/timing.py).
        now = Signal(cfg.cycle_bits)
        m.d.sync += now.eq(now + 1)
        m.submodules.launches = launches = _FIFO(width=cfg.cycle_bits, depth=OUTPUT_FIFO_DEPTH)
        count = Signal(cfg.cycle_bits)
        # Written a cycle late, from registers: the take that launches a vector sits at the end
        # of the SAR's ready logic (a result is always many cycles after its launch).
        launch, launch_now = Signal(), Signal.like(now)
        m.d.sync += [launch.eq(sars[0].launch | (back.launch if back else 0)), launch_now.eq(now)]
        back_done = back.done if back else 0
        m.d.comb += [
            launches.w_en.eq(launch),
            launches.w_data.eq(launch_now),
            launches.r_en.eq(done),
            count.eq(now - launches.r_data +
                     (Mux(back_done, BACK_ACCEPT_TO_LAUNCH, ACCEPT_TO_LAUNCH) if back
                      else ACCEPT_TO_LAUNCH)),
        ]
        entry = Signal(result_layout(cfg))
        m.d.comb += [entry.y.eq(output.o.payload), entry.cycles.eq(count)]
        if back:
            m.d.comb += [entry.x.eq(back.x), entry.backward.eq(back_done)]
        m.d.comb += [
            fifo.w_data.eq(entry),
            fifo.w_en.eq(done),
            # Always room (a vector is accepted only with a slot for its result): a constant
            # ready, so no ready path runs from the FIFO back through the datapath.
            output.o.ready.eq(1),
            done.eq(output.o.valid | back_done),
            self.o.valid.eq(fifo.r_rdy),
            self.o.payload.eq(result),
            fifo.r_en.eq(self.o.ready),
        ]

        # A new vector needs a FIFO slot for its result, besides one for each vector still
        # inside (whose result may be going in on this very edge).
        # Kept as the count of free slots (FIFO depth - results in it - vectors inside) less
        # one, so the accept path reads one register bit: its sign.
        free = Signal(range(-1, OUTPUT_FIFO_DEPTH), init=OUTPUT_FIFO_DEPTH - 1)
        room = ~free[-1]
        # A result leaves the FIFO: its slot is free again, counted a cycle late (the host's
        # ready decides `taken` late in the cycle; the accept path stays off it).
        taken = Signal()
        m.d.sync += taken.eq(self.o.valid & self.o.ready)
        # Without overlap a vector enters only into an idle macro or as the one before writes
        # its result, long after the drivers sent its last plane: they are always ready then,
        # and the accept path need not wait on their plane logic.
        tiles_ready = Cat(d.i.ready for d in drivers).all() if cfg.overlap else 1
        bits = cfg.input_bits
        accept = Signal()
        vector = self.i.payload.x.as_value() if back else self.i.payload.as_value()
        backward = self.i.payload.backward if back else 0
        for t, driver in enumerate(drivers):
            lo = t * cfg.rows * bits
            m.d.comb += [
                driver.i.valid.eq(accept & ~backward if back else accept),
                driver.i.payload.eq(vector[lo:lo + cfg.rows * bits]),
            ]
        if back:
            m.d.comb += [back.i.valid.eq(accept & backward),
                         back.i.payload.eq(vector[:cfg.outputs * bits])]
        with m.If(accept & ~taken):
            m.d.sync += free.eq(free - 1)
        with m.Elif(taken & ~accept):
            m.d.sync += free.eq(free + 1)
        with m.If(accept & ~done):
            m.d.sync += inside.eq(inside + 1)
        with m.Elif(done & ~accept):
            m.d.sync += inside.eq(inside - 1)

        program_offered = self.p.valid if wv is not None else 0
        programming = (wv.busy | mapper.busy) if wv is not None else mapper.busy

        def take_vector(allowed, backward_ok=True):
            # A backward vector only into an idle macro (no forward one reading or draining).
            ready = allowed & ~self.w.valid & ~program_offered & room & tiles_ready
            if back and not backward_ok:
                ready = ready & ~backward
            m.d.comb += [self.i.ready.eq(ready), accept.eq(self.i.valid & ready)]

        def take_weight_row():
            m.d.comb += [mapper.i.valid.eq(self.w.valid), self.w.ready.eq(mapper.i.ready)]

        with m.FSM(init="IDLE", name="mode") as fsm:
            with m.State("IDLE"):
                with m.If(self.w.valid):
                    take_weight_row()
                    with m.If(mapper.i.ready):
                        m.next = "LOAD"
                if wv is not None:
                    with m.Elif(self.p.valid):
                        m.d.comb += [wv.i.valid.eq(1), self.p.ready.eq(wv.i.ready)]
                        m.next = "PROGRAM"
                with m.Else():
                    take_vector(1)
                    with m.If(accept):
                        m.next = "COMPUTE"
                        if back:
                            with m.If(backward):
                                m.next = "BACKWARD"
            with m.State("LOAD"):  # a weight row is written (or handed to write-verify)
                if wv is not None:
                    with m.If(wv.busy | mapper.program_row.valid):
                        m.next = "PROGRAM"
                    with m.Elif(~mapper.busy):
                        m.next = "IDLE"
                else:
                    with m.If(~mapper.busy):
                        m.next = "IDLE"
            with m.State("PROGRAM"):  # write-verify of a cell or a whole row
                with m.If(~programming):
                    m.next = "IDLE"
            with m.State("COMPUTE"):  # vectors inside; the next enters as the last leaves,
                take_vector(1 if cfg.overlap else done, False)  # or, with overlap, when it fits
                with m.If(done & ~accept & (inside == 1)):
                    m.next = "IDLE"
            if back:
                with m.State("BACKWARD"):  # a backward vector inside, alone
                    with m.If(done):
                        m.next = "IDLE"
        record_fsm("mode", fsm)
        if wv is not None:
            m.d.comb += wv.i.payload.eq(self.p.payload)
            wiring.connect(m, wv.o, wiring.flipped(self.r))
        m.d.comb += [self.busy.eq(computing | programming), mapper.i.payload.eq(self.w.payload)]

        # Sticky status: a dropped request is flagged until the host clears it.
        with m.If(self.clear):
            m.d.sync += self.status.eq(0)
        with m.Else():
            with m.If(mapper.dropped.row):
                m.d.sync += self.status.bad_weight_row.eq(1)
            with m.If(mapper.dropped.weight):
                m.d.sync += self.status.bad_weight.eq(1)
            if wv is not None:
                with m.If(wv.dropped):
                    m.d.sync += self.status.bad_request.eq(1)
        return m

    def _backward(self, m, boundaries):
        """The backward path (docs/architecture.md section 13): one column path (driver,
        scheduler, part sequencer) for every tile, which all see the same vector, then per
        tile the row side's SAR-ADC controller on the boundary's ``tread`` and the backward
        sums."""
        from types import SimpleNamespace

        from imcgen.hdl.transpose import BackShiftAdd, ColumnPath

        cfg = self.config
        m.submodules.back_columns = columns = ColumnPath(config=cfg)
        sars, sums = [], []
        for t, boundary in enumerate(boundaries):
            sar = SarAdcController(config=cfg, transposed=True)
            shift_add = BackShiftAdd(config=cfg)
            m.submodules[f"tile{t}_back_sar"] = sar
            m.submodules[f"tile{t}_back_shift_add"] = shift_add
            wiring.connect(m, sar.xbar, boundary.tread)
            wiring.connect(m, sar.o, shift_add.i)
            # Broadcast: the tiles' controllers run in lockstep (same commands, same timing),
            # so each takes a command on the edge every other one does.
            m.d.comb += [sar.i.valid.eq(columns.o.valid), sar.i.payload.eq(columns.o.payload)]
            sars.append(sar)
            sums.append(shift_add)
        m.d.comb += columns.o.ready.eq(sars[0].i.ready)
        done = Signal()  # every tile's sums are out (together, in lockstep)
        m.d.comb += done.eq(Cat(s.o.valid for s in sums).all())
        for shift_add in sums:
            m.d.comb += shift_add.o.ready.eq(done)
        x = Cat(s.o.payload for s in sums)
        return SimpleNamespace(i=columns.i, launch=sars[0].launch, done=done, x=x)

    def _program_paths(self, m, wv, sars, boundaries):
        """Verify reads to the addressed tile's SAR, its code back, pulses to its crossbar."""
        for t, (sar, boundary) in enumerate(zip(sars, boundaries, strict=True)):
            here = wv.verify.payload.tile == t
            m.d.comb += [
                sar.vi.valid.eq(wv.verify.valid & here),
                sar.vi.payload.row.eq(wv.verify.payload.row),
                sar.vi.payload.group.eq(wv.verify.payload.group),
                sar.vi.payload.lane.eq(wv.verify.payload.lane),
                boundary.prog.pulse.eq(wv.prog.pulse & (wv.prog_tile == t)),
                boundary.prog.row.eq(wv.prog.row),
                boundary.prog.group.eq(wv.prog.group),
                boundary.prog.lane.eq(wv.prog.lane),
                boundary.prog.direction.eq(wv.prog.direction),
                boundary.prog.amp.eq(wv.prog.amp),
            ]
            with m.If(here):
                m.d.comb += [wv.verify.ready.eq(sar.vi.ready), wv.code.valid.eq(sar.vo.valid),
                             wv.code.payload.eq(sar.vo.payload), sar.vo.ready.eq(wv.code.ready)]
