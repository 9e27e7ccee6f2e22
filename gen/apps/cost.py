"""``imcgen cost``: energy, area, latency and throughput of a macro from its exact event counts.

The golden model counts what the macro does for every vector (:func:`imcgen.golden.macro_top.
events`: reads, row pulses, conducting cells, ADC conversions and compares, shift-and-adds,
additions, cycles) and what write-verify does for every cell (pulses, verify reads). This
module multiplies those counts by the per-event energies of the ``[cost]`` table and adds the
per-block areas and the leakage; nothing here estimates a count a second time. docs/cost.md
gives the model, its defaults and their sources.
"""

from dataclasses import dataclass, field

import numpy as np

from imcgen import golden

__all__ = ["CostReport", "cost", "area", "macro_ops", "format_report", "PAPERS"]

#: Energy efficiency the seeds report (TOPS/W), for the order-of-magnitude comparison.
PAPERS = {
    "Yao et al. 2020, 8 x 128x16 1T1R CNN (in Bao et al. 2022)": 11.0,
    "RRAM 55 nm 1 Mb CIFAR-10 (Sebastian et al. 2020, Table 1)": 21.9,
    "Li et al. DCT on 128x64 (in Bao et al. 2022)": 119.7,
}

ENERGY_BLOCKS = ("adc", "sample_hold", "drivers", "array", "shift_add", "adders", "leakage")
AREA_BLOCKS = ("adc", "array", "drivers", "sample_hold", "shift_add", "adders", "control")


def macro_ops(cfg):
    """Operations of one MVM: a multiply and an add per weight (``2 * inputs * outputs``)."""
    return 2 * cfg.input_rows * cfg.outputs


def area(cfg):
    """``{block: mm^2}`` of the macro (analog and mixed-signal blocks and the digital
    periphery, per docs/cost.md), from the ``[cost]`` table."""
    c = cfg.cost
    adcs = cfg.tiles * cfg.adcs
    um2 = {
        "adc": adcs * c.adc_area_mm2 * c.adc_scale(cfg.adc_bits) * 1e6,
        "array": cfg.tiles * cfg.rows * cfg.physical_columns * c.cell_area_um2,
        "drivers": cfg.tiles * cfg.rows * c.driver_area_um2,
        "sample_hold": cfg.tiles * cfg.physical_columns * c.sample_area_um2,
        "shift_add": adcs * c.shift_add_area_um2,
        "adders": cfg.tiles * cfg.outputs * c.adder_area_um2,
        "control": cfg.tiles * c.control_area_um2,
    }
    if cfg.transposed:  # the row side (docs/architecture.md section 13): its ADCs, a driver
        # per column, a sample-and-hold per row, its shift-and-adds and its control
        um2["adc"] *= 2
        um2["drivers"] += cfg.tiles * cfg.physical_columns * c.driver_area_um2
        um2["sample_hold"] += cfg.tiles * cfg.rows * c.sample_area_um2
        um2["shift_add"] *= 2
        um2["control"] *= 2
    return {block: value / 1e6 for block, value in um2.items()}


@dataclass
class CostReport:
    """Cost of a batch of MVMs (and optionally of programming the weights) on one macro.

    Energies are per MVM (averaged over the batch), in pJ; ``energy`` per block; areas in
    mm^2; ``cycles`` the mean latency and ``interval`` the mean cycles between results
    back to back; ``events`` the batch's exact totals.
    """

    config: object
    vectors: int
    events: dict
    energy: dict
    area: dict
    cycles: float
    interval: float
    programming: dict = field(default_factory=dict)
    fpga: dict = field(default_factory=dict)
    accuracy: dict = field(default_factory=dict)

    @property
    def energy_pj(self):
        return sum(self.energy.values())

    @property
    def area_mm2(self):
        return sum(self.area.values())

    @property
    def latency_ns(self):
        return self.cycles * 1e3 / self.config.cost.clock_mhz

    @property
    def mvm_per_s(self):
        return self.config.cost.clock_mhz * 1e6 / self.interval if self.interval else 0.0

    @property
    def tops_per_w(self):
        """Operations per pJ is tera-operations per joule: TOPS/W."""
        return macro_ops(self.config) / self.energy_pj if self.energy_pj else float("inf")

    @property
    def tops_per_mm2(self):
        return macro_ops(self.config) * self.mvm_per_s / 1e12 / self.area_mm2

    def as_row(self):
        """Flat figures, for a table of many configurations (``imcgen sweep``)."""
        row = {"energy_pj": self.energy_pj, "area_mm2": self.area_mm2,
               "latency_ns": self.latency_ns, "cycles": self.cycles,
               "mvm_per_s": self.mvm_per_s, "tops_per_w": self.tops_per_w,
               "tops_per_mm2": self.tops_per_mm2}
        row.update({f"energy_{k}_pj": v for k, v in self.energy.items()})
        row.update({f"area_{k}_mm2": v for k, v in self.area.items()})
        row.update({f"fpga_{k}": v for k, v in self.fpga.items()})
        row.update(self.accuracy)
        if self.programming:
            row["program_energy_pj"] = self.programming["energy_pj"]
        return row


def cost(cfg, X, W=None, program=False, fpga=True):
    """The :class:`CostReport` of the vectors ``X`` on ``cfg``.

    ``program``: also the energy of write-verify programming ``W`` (programmable devices):
    every pulse and every verify read the golden model's programming counts.
    ``fpga``: the board top's resources from the fitted model (``imcgen.fpga.resources``),
    beside the ASIC figures.
    """
    ev = golden.macro_top.events(cfg, X)
    totals = ev.total()
    V = max(len(ev.cycles), 1)
    c = cfg.cost
    blocks = area(cfg)
    mean = {name: count / V for name, count in totals.items()}
    energy = {
        "adc": mean["conversions"] * c.adc_energy_pj * c.adc_scale(cfg.adc_bits),
        "sample_hold": mean["conversions"] * c.sample_pj,
        "drivers": mean["row_pulses"] * c.row_pulse_pj,
        "array": mean["cell_reads"] * c.cell_read_fj * 1e-3,
        "shift_add": mean["shift_adds"] * c.shift_add_pj,
        "adders": mean["adds"] * c.add_pj,
    }
    # Leakage of the whole macro while a vector is in it: mW x ns = pJ.
    energy["leakage"] = c.leakage_mw_per_mm2 * sum(blocks.values()) * \
        mean["interval"] * 1e3 / c.clock_mhz
    report = CostReport(cfg, len(ev.cycles), totals, energy, blocks, mean["cycles"],
                        mean["interval"])
    if program and cfg.programmable:
        report.programming = program_cost(cfg, W)
    if fpga:
        from imcgen.fpga.resources import estimate

        report.fpga = {f"ecp5_{k}": v for k, v in estimate(cfg, "ecp5").items()
                       if k != "cells"}
    return report


def program_cost(cfg, W):
    """Energy of write-verify programming ``W``: the golden model's pulses and verify reads
    (a verify read: one row pulse, one conducting cell, one conversion)."""
    from imcgen.golden.programming import program_golden

    report = program_golden(cfg, W)
    c = cfg.cost
    pulses = int(np.asarray(report.pulses).sum())
    reads = int(np.asarray(report.reads).sum())
    pulse_pj = c.pcm_pulse_pj if cfg.device.kind == "pcm" else c.rram_pulse_pj
    read_pj = c.row_pulse_pj + c.cell_read_fj * 1e-3 + c.sample_pj + \
        c.adc_energy_pj * c.adc_scale(cfg.adc_bits)
    return {"cells": len(np.asarray(report.pulses)), "pulses": pulses, "verify_reads": reads,
            "energy_pj": pulses * pulse_pj + reads * read_pj}


def _si(value, unit):
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""),
                          (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p"),
                          (1e-15, "f"), (1e-18, "a")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def format_report(report, workload=""):
    """The report as text: totals, per-block shares, the papers' TOPS/W beside ours."""
    cfg, c = report.config, report.config.cost
    lines = [f"cost of {report.vectors} MVMs{f' ({workload})' if workload else ''}: "
             f"{cfg.input_rows}x{cfg.outputs} macro, {cfg.tiles} tile(s) of {cfg.rows} rows, "
             f"{cfg.adcs} ADC(s) of {cfg.adc_bits} bits per tile, {cfg.schedule}, clock "
             f"{c.clock_mhz:g} MHz"]
    ev = report.events
    V = max(report.vectors, 1)
    lines.append("events per MVM (exact, golden model): " + ", ".join(
        f"{name.replace('_', ' ')} {ev[name] / V:.4g}" for name in
        ("reads", "row_pulses", "cell_reads", "conversions", "compares", "shift_adds",
         "adds")))
    lines.append(f"energy per MVM: {_si(report.energy_pj * 1e-12, 'J')}   "
                 f"{report.tops_per_w:.3g} TOPS/W ({macro_ops(cfg)} operations per MVM)")
    for block in ENERGY_BLOCKS:
        value = report.energy[block]
        lines.append(f"  {block:<12} {_si(value * 1e-12, 'J'):>10}  "
                     f"{100 * value / report.energy_pj:5.1f} %")
    lines.append(f"area: {report.area_mm2:.4g} mm^2   {report.tops_per_mm2:.3g} TOPS/mm^2")
    for block in AREA_BLOCKS:
        value = report.area[block]
        lines.append(f"  {block:<12} {value:10.4g} mm^2  {100 * value / report.area_mm2:5.1f} %")
    lines.append(f"latency: {report.cycles:.1f} cycles = {_si(report.latency_ns * 1e-9, 's')}; "
                 f"back to back every {report.interval:.1f} cycles = "
                 f"{_si(report.mvm_per_s, 'MVM/s')}")
    if report.programming:
        p = report.programming
        lines.append(f"programming {p['cells']} cells: {p['pulses']} pulses, "
                     f"{p['verify_reads']} verify reads, {_si(p['energy_pj'] * 1e-12, 'J')}")
    if report.fpga:
        lines.append("FPGA board top (fitted resource model, ECP5): " + ", ".join(
            f"{k.removeprefix('ecp5_')} {v}" for k, v in report.fpga.items()))
    if report.accuracy:
        lines.append("accuracy: " + ", ".join(f"{k} {v:.4g}" for k, v in
                                              report.accuracy.items() if v is not None))
    lines.append("reported in the seeds: " + "; ".join(
        f"{name}: {value:g} TOPS/W" for name, value in PAPERS.items()))
    return "\n".join(lines)
