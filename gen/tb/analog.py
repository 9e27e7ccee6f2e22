"""The Python crossbar behind one tile's analog boundary (``crossbar = "external"``).

An adapter only: it reads the boundary's signals each cycle and asks the shared NumPy
crossbar model (:mod:`imcgen.golden.crossbar_stub`, the one the golden model uses, batched)
for the sampled column values and the comparator answers, so no column arithmetic lives here.
The boundary's semantics are docs/architecture.md section 8.
"""

import numpy as np
from amaranth.hdl import unsigned
from amaranth.lib import data

from ..golden import crossbar_stub
from .streams import cycle_now, decode

__all__ = ["CrossbarModel"]


class CrossbarModel:
    """Python crossbar behind one tile's analog boundary.

    Reads the boundary after each rising edge (the periphery drives it from registers), answers
    ``cmp`` at the falling edge, then applies the cell writes and the sample the coming edge
    makes. ``read_prefix`` names the read ports (``xbar__0__read__``); ``cell_prefix`` the cell
    write port, or None when the cells are set directly in :attr:`cells`.

    With ``record`` set, ``samples`` collects the cycle of every sample strobe and ``trials``
    every ``(cycle, group, dac)``, for tests of the SAR timing and search order.
    """

    def __init__(self, dut, cfg, read_prefix, cell_prefix=None):
        self.cfg, self.clk = cfg, dut.clk
        read = ("row_en", "sample", "col_sel", "dac", "cmp")
        self.sig = {name: getattr(dut, read_prefix + name) for name in read}
        if cell_prefix is not None:
            for name in ("we", "row", "group", "data"):
                self.sig["cell_" + name] = getattr(dut, cell_prefix + name)
        self.dac_layout = data.ArrayLayout(unsigned(cfg.adc_bits), cfg.adcs)
        self.cell_layout = data.ArrayLayout(unsigned(cfg.cell_bits), cfg.adcs)
        columns = cfg.adcs * cfg.column_groups  # lanes past the last column read as 0
        self.cells = np.zeros((cfg.rows, columns), dtype=np.int64)
        self.held = np.zeros(columns, dtype=np.int64)
        self.samples, self.trials = [], []
        self.record = False
        self.sig["cmp"].value = 0

    async def run(self):
        from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

        cfg, sig, lanes = self.cfg, self.sig, self.cfg.adcs
        has_cells = "cell_we" in sig
        while True:
            await RisingEdge(self.clk)
            await ReadOnly()
            group = int(sig["col_sel"].value)
            dac = np.array(decode(self.dac_layout, sig["dac"].value), dtype=np.int64)
            held = self.held[group * lanes:(group + 1) * lanes]
            cmp = int(np.dot(crossbar_stub.compare(cfg, held, dac), 1 << np.arange(lanes)))
            sample = int(sig["sample"].value)
            if sample:
                enables = int(sig["row_en"].value)
            write = has_cells and int(sig["cell_we"].value)
            if write:
                row, cgroup = int(sig["cell_row"].value), int(sig["cell_group"].value)
                levels = decode(self.cell_layout, sig["cell_data"].value)
            if self.record:
                cycle = cycle_now()
                if sample:
                    self.samples.append(cycle)
                self.trials.append((cycle, group, tuple(int(d) for d in dac)))
            await FallingEdge(self.clk)
            sig["cmp"].value = cmp
            # Effects of the coming edge, after cmp was answered from the state before it.
            if write:
                self.cells[row, cgroup * lanes:(cgroup + 1) * lanes] = levels
            if sample:
                self.held = crossbar_stub.held_values(self.cells, enables)
