"""The Python crossbar behind one tile's analog boundary (``crossbar = "external"``).

An adapter only: it reads the boundary's signals each cycle and asks the shared NumPy models
(:mod:`imcgen.golden.crossbar_stub` for the sampled column values and the comparators,
:mod:`imcgen.golden.device` for stuck cells and programming pulses, the ones the golden model
uses batched) for every answer, so no column or device arithmetic lives here. The boundary's
semantics are docs/architecture.md section 8 and docs/write_verify.md section 1.
"""

import numpy as np

from imcgen.core.draws import cell_where
from imcgen.golden import crossbar_stub, device
from imcgen.hdl.analog import dac_layout, levels_layout
from imcgen.sim.tb.streams import cycle_now, decode

__all__ = ["CrossbarModel", "AnalogShared", "EntropyModel"]


class AnalogShared:
    """The physical analog model's view of the whole array, shared by the tiles' models: the
    cell states of every tile (the tiles' ``states`` are views into it) and the prepared
    array (:func:`imcgen.golden.analog.prepare`), recomputed after any write or pulse, over the
    same (tiles, rows, physical_columns) array as the golden model, so every number agrees."""

    def __init__(self, cfg):
        self.cfg = cfg
        columns = cfg.adcs * cfg.column_groups
        self.states = np.zeros((cfg.tiles, cfg.rows, columns), dtype=np.int64)
        self.states[:, :, :cfg.physical_columns] = device.initial_states(cfg)
        self.dirty = True
        self._array = None

    @property
    def array(self):
        if self.dirty:
            from imcgen.golden import analog

            pc = self.cfg.physical_columns
            self._array = analog.prepare(self.cfg,
                                         np.ascontiguousarray(self.states[:, :, :pc]))
            self.dirty = False
        return self._array


class CrossbarModel:
    """Python crossbar behind one tile's analog boundary.

    Reads the boundary after each rising edge (the periphery drives it from registers), answers
    ``cmp`` at the falling edge, then applies the cell writes, pulses and the sample the coming
    edge makes. ``prefix`` names the tile's boundary (``xbar__0__``); a block test of the SAR
    alone gives its read port's prefix as ``read_prefix`` and sets :attr:`states` directly
    (``cells=False``: no cell or programming port).

    Attributes
    ----------
    states : ndarray of int, shape (rows, columns)
        Cell states (levels for ideal devices); lanes past the last column read as 0.
    wear : ndarray of int, shape (rows, physical_columns)
        Pulses each cell has taken.
    samples, trials : list
        With ``record`` set: the cycle of every sample strobe, and every
        ``(cycle, group, dac)``, for tests of the SAR timing and search order.
    """

    def __init__(self, dut, cfg, prefix, tile=0, cells=True, read_prefix=None, shared=None):
        self.cfg, self.dut, self.clk = cfg, dut, dut.clk
        self.tile = tile
        self.shared = shared  # AnalogShared: the physical analog model answers compute reads
        self.compute_reads = 0  # compute samples so far (never reset): the read-noise key
        self.compute_samples = []  # the cycle of each
        read = read_prefix if read_prefix is not None else prefix + "read__"
        names = ["row_en", "sample", "bank", "col_sel", "dac", "cmp"] + \
            (["verify"] if cfg.programmable else [])
        self.sig = {f"read__{name}": getattr(dut, read + name) for name in names}
        names = []
        if cells:
            names += ["cell__we", "cell__row", "cell__group", "cell__data"]
        if cfg.programmable and cells:
            names += ["prog__pulse", "prog__row", "prog__group", "prog__lane",
                      "prog__direction", "prog__amp"]
        self.sig.update({name: getattr(dut, prefix + name) for name in names})
        # Transposed reads (docs/architecture.md section 13): the row side's port.
        self.transposed = cfg.transposed and cells
        if self.transposed:
            self.sig.update({f"tread__{name}": getattr(dut, f"{prefix}tread__{name}") for name in
                             ("col_en", "part", "sample", "row_sel", "dac", "cmp")})
            self.sig["tread__cmp"].value = 0
            self.held_rows = np.zeros(cfg.row_groups * cfg.adcs, dtype=np.int64)
            self.held_row_current = None  # physical model: the held rows' currents
            self.back_reads = 0  # transposed samples so far (never reset): their noise key
            self.back_index = 0
            self.back_samples = []  # the cycle of each
        self.dac_layout, self.cell_layout = dac_layout(cfg), levels_layout(cfg)
        columns = cfg.adcs * cfg.column_groups
        pc = cfg.physical_columns
        if shared is not None:
            self.states = shared.states[tile]
        else:
            self.states = np.zeros((cfg.rows, columns), dtype=np.int64)
            self.states[:, :pc] = device.initial_states(cfg)[tile]
        self.stuck = np.zeros((cfg.rows, columns), dtype=bool)
        self.stuck[:, :pc] = device.stuck_map(cfg)[0][tile]
        self.wear = np.zeros((cfg.rows, pc), dtype=np.int64)
        # The two sample-and-hold buffers: the comparators read buffer `bank`, a sample fills
        # the other. Per buffer: column values, verify flag, physical currents, read index.
        self.held = [np.zeros(columns, dtype=np.int64) for _ in range(2)]
        self.held_verify = [False, False]
        self.held_current = [None, None]
        self.read_index = [0, 0]
        self.pulse_q = 0  # the stub's registered copy of `pulse` (reset clears it)
        self.pulsed = None  # (row, column, direction, amp) latched as a pulse starts
        self.samples, self.trials = [], []
        self.record = False
        self.sig["read__cmp"].value = 0

    def _apply_pulse(self):
        row, column, set_, amp = self.pulsed
        if self.stuck[row, column]:
            return
        where = cell_where(self.cfg, self.tile, row, column)
        self.states[row, column] = device.apply_pulse(
            self.cfg, self.states[row, column], set_, amp, where, self.wear[row, column])
        self.wear[row, column] = (self.wear[row, column] + 1) & \
            ((1 << self.cfg.device.wear_bits) - 1)
        if self.shared is not None:
            self.shared.dirty = True

    def _answers(self, bank, group, dac):
        """Comparator answers of the lanes of ``group`` of buffer ``bank`` against ``dac``."""
        cfg, lanes = self.cfg, self.cfg.adcs
        if self.shared is None or self.held_verify[bank]:
            held = self.held[bank][group * lanes:(group + 1) * lanes]
            return crossbar_stub.compare(cfg, held, dac, self.held_verify[bank])
        from imcgen.golden import analog

        arr = self.shared.array
        answers = np.zeros(lanes, dtype=bool)
        for a in range(lanes):
            column = group * lanes + a
            if column < cfg.physical_columns and dac[a]:
                answers[a] = analog.compare(cfg, arr, self.held_current[bank][column], dac[a],
                                            self.tile, column, self.read_index[bank],
                                            analog.bit_under_test(dac[a]))
        return answers

    def _sample_physical(self, bank, enables):
        """A compute read of the physical model into buffer ``bank``: the held currents of
        every column."""
        from imcgen.golden import analog

        arr = self.shared.array
        active = np.array([(enables >> r) & 1 for r in range(self.cfg.rows)], dtype=np.int64)
        current, var = analog.read_currents(arr, active, tile=self.tile)
        columns = np.arange(self.cfg.physical_columns)
        self.read_index[bank] = self.compute_reads
        self.held_current[bank] = analog.held(self.cfg, arr, current, var, self.tile, columns,
                                              self.compute_reads)
        self.compute_reads += 1

    def _row_answers(self, group, dac):
        """Row-side comparator answers of the lanes of row ``group`` against ``dac``."""
        cfg, lanes = self.cfg, self.cfg.adcs
        if self.shared is None:
            held = self.held_rows[group * lanes:(group + 1) * lanes]
            return crossbar_stub.compare(cfg, held, dac)
        from imcgen.golden import analog

        arr = self.shared.array
        answers = np.zeros(lanes, dtype=bool)
        for a in range(lanes):
            row = group * lanes + a
            if row < cfg.rows and dac[a] and self.held_row_current is not None:
                answers[a] = analog.compare(cfg, arr, self.held_row_current[row], dac[a],
                                            self.tile, row, self.back_index,
                                            analog.bit_under_test(dac[a]), transposed=True)
        return answers

    def _sample_rows_physical(self, cols, part):
        """A transposed read of the physical model: the held currents of every row."""
        from imcgen.golden import analog

        cfg = self.cfg
        k, p = divmod(part, cfg.polarities)
        driven = np.zeros(cfg.physical_columns, dtype=np.int64)
        for j in range(cfg.outputs):
            driven[cfg.column(j, k, p)] = (cols >> j) & 1
        arr = self.shared.array
        current, var = analog.row_currents(arr, driven, self.tile)
        self.back_index = self.back_reads
        self.held_row_current = analog.held(cfg, arr, current, var, self.tile,
                                            np.arange(cfg.rows), self.back_reads,
                                            transposed=True)
        self.back_reads += 1

    async def run(self):
        from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

        cfg, sig, lanes = self.cfg, self.sig, self.cfg.adcs
        has_cells, programmable = "cell__we" in sig, "prog__pulse" in sig
        while True:
            await RisingEdge(self.clk)
            await ReadOnly()
            group = int(sig["read__col_sel"].value)
            bank = int(sig["read__bank"].value)
            dac = np.array(decode(self.dac_layout, sig["read__dac"].value), dtype=np.int64)
            answers = self._answers(bank, group, dac)
            cmp = int(np.dot(answers, 1 << np.arange(lanes)))
            sample = int(sig["read__sample"].value)
            if sample:
                enables = int(sig["read__row_en"].value)
                verify = bool(int(sig["read__verify"].value)) if cfg.programmable else False
            write = has_cells and int(sig["cell__we"].value)
            if write:
                row, cgroup = int(sig["cell__row"].value), int(sig["cell__group"].value)
                levels = np.array(decode(self.cell_layout, sig["cell__data"].value))
            end = start = False
            if programmable:
                pulse = int(sig["prog__pulse"].value)
                end, start = self.pulse_q and not pulse, pulse and not self.pulse_q
                if start:
                    latched = (int(sig["prog__row"].value),
                               int(sig["prog__group"].value) * lanes +
                               int(sig["prog__lane"].value),
                               bool(int(sig["prog__direction"].value)),
                               int(sig["prog__amp"].value))
                self.pulse_q = 0 if int(self.dut.rst.value) else pulse
            if self.transposed:
                rgroup = int(sig["tread__row_sel"].value)
                tdac = np.array(decode(self.dac_layout, sig["tread__dac"].value), dtype=np.int64)
                tcmp = int(np.dot(self._row_answers(rgroup, tdac), 1 << np.arange(lanes)))
                tsample = int(sig["tread__sample"].value)
                if tsample:
                    tcols, tpart = int(sig["tread__col_en"].value), int(sig["tread__part"].value)
                    self.back_samples.append(cycle_now())
            if sample and not verify:
                self.compute_samples.append(cycle_now())
            if self.record:
                cycle = cycle_now()
                if sample:
                    self.samples.append(cycle)
                self.trials.append((cycle, group, tuple(int(d) for d in dac)))
            await FallingEdge(self.clk)
            sig["read__cmp"].value = cmp
            if self.transposed:
                sig["tread__cmp"].value = tcmp
                if tsample:  # holds the driven columns' sums of every row (from the states
                    # before this edge's writes, as the stub's sample)
                    self.held_rows[:cfg.rows] = crossbar_stub.held_row_values(
                        cfg, self.states[:, :cfg.physical_columns], tcols, tpart)
                    if self.shared is not None:
                        self._sample_rows_physical(tcols, tpart)
            # Effects of the coming edge, after cmp was answered from the state before it.
            if end:
                self._apply_pulse()
            if start:
                self.pulsed = latched
            if write:
                cols = slice(cgroup * lanes, (cgroup + 1) * lanes)
                loaded = levels.astype(np.int64) << cfg.state_frac
                self.states[row, cols] = np.where(self.stuck[row, cols], self.states[row, cols],
                                                  loaded)
                if self.shared is not None:
                    self.shared.dirty = True
            if sample:  # into the buffer the comparators do not read
                self.held[1 - bank] = crossbar_stub.held_values(self.states, enables)
                self.held_verify[1 - bank] = verify
                if self.shared is not None and not verify:
                    self._sample_physical(1 - bank, enables)


class EntropyModel:
    """The TRNG's entropy devices behind an ``EntropySignature`` (``prefix``, e.g.
    ``entropy__``), answering ``switched`` from the shared golden delays
    (:func:`imcgen.golden.trng.delays`) with the stub's semantics: a pulse takes the delays of
    the next event (the event number survives reset), each device's comparator rises once the
    pulse has lasted its delay and stays high until the reset pulse."""

    def __init__(self, dut, cfg, prefix="entropy__"):
        self.cfg, self.dut = cfg, dut
        self.sig = {name: getattr(dut, prefix + name) for name in
                    ("pulse", "reset", "switched")}
        self.event = 0
        self.pulse_q = 0
        self.elapsed = 0
        self.latched = np.zeros(cfg.trng.sources, dtype=bool)
        self.live = np.zeros(cfg.trng.sources, dtype=np.int64)
        self.starts = []  # the cycle of every pulse start
        self.sig["switched"].value = 0

    async def run(self):
        from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

        from imcgen.golden import trng

        sources = self.cfg.trng.sources
        while True:
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            pulse, reset = int(self.sig["pulse"].value), int(self.sig["reset"].value)
            in_reset = int(self.dut.rst.value)
            start = pulse and not self.pulse_q
            if start:
                self.live = trng.delays(self.cfg, [self.event])[0]
                self.event += 1
                self.starts.append(cycle_now())
            now = 0 if start else self.elapsed
            fired = np.zeros(sources, dtype=bool) if not pulse else now >= self.live
            switched = self.latched | fired
            await FallingEdge(self.dut.clk)
            self.sig["switched"].value = int(np.dot(switched, 1 << np.arange(sources)))
            # The registers after the coming edge (a reset clears all but the event number).
            if in_reset:
                self.pulse_q, self.elapsed = 0, 0
                self.latched[:] = False
            else:
                self.pulse_q = pulse
                if pulse:
                    self.elapsed = now + 1
                self.latched = np.zeros(sources, dtype=bool) if reset else switched
