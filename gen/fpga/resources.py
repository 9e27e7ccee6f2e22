"""FPGA resources of a macro before any tool runs: a model fitted to Yosys, and device sizes.

``imcgen fpga`` refuses a configuration that cannot fit a board before synthesis starts
(:func:`check_fits`), then confirms with Yosys' numbers before place-and-route. The model is a
linear function of the structures that dominate the netlist, each counted from the
configuration (:func:`features`), with coefficients fitted by least squares to ``synth_ecp5``
/ ``synth_ice40`` of the board top over a spread of configurations
(``scripts/fit_resources.py``, which prints the table below and the fit's error). It only has
to tell "fits" from "cannot fit": the refusal margin (:data:`MARGIN`) covers its error, and
a configuration between the device's size and the margin goes to Yosys, whose counts decide
before place-and-route.

Structures: the crossbar stub's column adder trees (every tile, lane and row adds a state),
its cell storage (LUT RAM on ECP5, flip-flops and read multiplexers on iCE40, which has no
asynchronous-read RAM), the input drivers' vector registers, the row schedulers' prefix
counts, the shift-and-add accumulators, the sums and the output stage, the write-verify
machinery of programmable devices, and a constant for the link.
"""

import math
from dataclasses import dataclass

from imcgen.core.errors import ImcError

__all__ = ["Device", "DEVICES", "BOARD_DEVICES", "MARGIN", "COEFFICIENTS", "features",
           "estimate", "check_fits"]


@dataclass(frozen=True)
class Device:
    name: str
    family: str
    luts: int   # LUT4s (ECP5 TRELLIS_COMB) or logic cells (iCE40 ICESTORM_LC)
    ffs: int
    brams: int
    dsps: int


# Totals as nextpnr reports them (its --report utilisation "available").
DEVICES = {
    "LFE5U-12F": Device("LFE5U-12F", "ecp5", 24288, 24288, 56, 28),  # a 25F die, 12k enabled
    "LFE5U-25F": Device("LFE5U-25F", "ecp5", 24288, 24288, 56, 28),
    "LFE5U-45F": Device("LFE5U-45F", "ecp5", 43848, 43848, 108, 72),
    "LFE5U-85F": Device("LFE5U-85F", "ecp5", 83640, 83640, 208, 156),
    "iCE40UP5K": Device("iCE40UP5K", "ice40", 5280, 5280, 30, 8),
}

#: Board -> device, smallest first (the boards of imcgen.fpga.BOARDS).
BOARD_DEVICES = {"icebreaker": "iCE40UP5K", "ulx3s-25f": "LFE5U-25F", "ulx3s-45f": "LFE5U-45F",
                 "ulx3s-85f": "LFE5U-85F"}

#: A configuration is refused before synthesis only when the estimate exceeds the device by
#: more than this factor (the model's error); between 1 and MARGIN, synthesis decides.
MARGIN = 1.25


def features(cfg):
    """The structure counts the model weighs, for the board top of ``cfg``."""
    t, r, a, g = cfg.tiles, cfg.rows, cfg.adcs, cfg.column_groups
    return {
        "adders": t * a * r * cfg.state_bits,  # column trees: an adder input bit per state bit
        "cells": t * r * g * a * cfg.state_bits,  # stored bits (unused lanes of the last group)
        "vector": t * r * cfg.input_bits,     # input vector registers and plane select
        "schedule": t * r * max(1, cfg.rows_per_read.bit_length()),  # prefix counts
        "shift_add": t * cfg.outputs * (cfg.slices * cfg.adc_bits + cfg.psum_bits),
        "outputs": cfg.outputs * (cfg.sum_bits + cfg.out_width) + cfg.cycle_bits,
        "program": (1 + t) if cfg.programmable else 0,  # write-verify FSM, a generator per tile
        # Per cell of a programmable device: wear counters and the pulse datapath around them.
        "wear": t * r * g * a * cfg.device.wear_bits if cfg.programmable else 0,
        "link": 1,                            # UART, FIFO, framing, CRCs, executor
    }


# Non-negative least squares (scripts/fit_resources.py) over eleven ECP5 and eight iCE40
# configurations (the four presets where they fit, seven variants): in-sample error within
# 13 % (ECP5 LUTs; the smallest configuration, overestimated) and 1 % (iCE40); leave-one-out
# within 20 %, except the one programmable iCE40 sample (nothing else has its wear counters).
COEFFICIENTS = {
    "ecp5": {
        "luts": {"adders": 4.507, "cells": 0.0, "vector": 3.668, "schedule": 0.0,
                 "shift_add": 6.174, "outputs": 0.0, "program": 330.6, "wear": 0.4504,
                 "link": 1347.0},
        "ffs": {"adders": 0.1346, "cells": 0.0, "vector": 1.601, "schedule": 1.141,
                "shift_add": 2.953, "outputs": 0.0, "program": 52.47, "wear": 0.0,
                "link": 583.4},
    },
    "ice40": {
        "luts": {"adders": 0.5842, "cells": 1.138, "vector": 4.896, "schedule": 0.0,
                 "shift_add": 5.504, "outputs": 0.0, "program": 0.0, "wear": 1.513,
                 "link": 846.4},
        "ffs": {"adders": 0.1049, "cells": 0.97, "vector": 2.843, "schedule": 0.0,
                "shift_add": 2.64, "outputs": 2.896, "program": 0.0, "wear": 1.035,
                "link": 438.8},
    },
}


#: iCE40: share of the flip-flops nextpnr cannot pack with a LUT of their own, so that they
#: take a logic cell alone (cell storage, registers fed by other registers). From placed
#: board tops: ``small`` (8-row tiles) 2694 LUTs and 1834 FFs in 3979 cells (0.70), the same
#: with 16-row tiles 3685 LUTs and 2569 FFs in 5682 cells (0.78).
ICE40_UNPAIRED_FFS = 0.74


def estimate(cfg, family):
    """``{"luts", "ffs", "cells"}`` of the board top of ``cfg`` after synthesis, and the logic
    cells they need (iCE40: a LUT and a flip-flop share a cell when nextpnr can pack them;
    ECP5: the LUTs, flip-flops have their own slots)."""
    if family not in COEFFICIENTS:
        raise ValueError(f"unknown FPGA family {family!r}")
    f = features(cfg)
    out = {}
    for resource, weights in COEFFICIENTS[family].items():
        out[resource] = int(round(sum(weights[k] * v for k, v in f.items())))
    out["cells"] = out["luts"] + round(ICE40_UNPAIRED_FFS * out["ffs"]) if family == "ice40" \
        else out["luts"]
    return out


def check_fits(cfg, device, field, value):
    """Refuse (:class:`ImcError` naming ``field = value``, one line) a configuration the model
    says cannot fit ``device``; return the estimate otherwise."""
    est = estimate(cfg, device.family)
    need, have = est["cells"], device.luts
    if need > MARGIN * have:
        unit = "logic cells" if device.family == "ice40" else "LUTs"
        boards = [name for name, d in BOARD_DEVICES.items() if
                  estimate(cfg, DEVICES[d].family)["cells"] <= 0.9 * DEVICES[d].luts]
        hint = f"a board it fits ({boards[0]})" if boards else "no board here holds it"
        raise ImcError(field, value,
                       f"this configuration needs about {need} {unit} (estimate), the "
                       f"{device.name} has {have} ({math.ceil(100 * need / have)} %); "
                       f"{hint}, or a smaller configuration (imcgen fpga --synth-only "
                       f"counts exactly)")
    return est
