"""Programming a macro by write-verify, on the golden model and on the RTL.

``program_golden`` runs the NumPy model (vectorised over cells: a million cells in seconds);
``program_rtl`` drives the same requests through the RTL on Verilator (:func:`imcgen.simulate`
with ``program=``) and replays them on the golden model, resets included, so every result,
state and later MVM can be compared exactly.
"""

from dataclasses import dataclass, field

import numpy as np

from . import timing
from .codes import Status
from .golden import device, write_verify

__all__ = ["ProgramReport", "program_golden", "golden_replay", "summary"]


@dataclass
class ProgramReport:
    """Per-cell results of a programming run and what they mean for the weights.

    ``requests`` are the requests in the order they ran; ``code``, ``reads``, ``pulses`` and
    ``status`` their results; ``states``/``wear`` the array afterwards (golden); ``weights``
    the read-back weight matrix (levels nearest the final verify codes); ``stuck`` the cells
    that are stuck in the device (ground truth of the model).
    """

    config: object
    requests: object
    code: np.ndarray
    reads: np.ndarray
    pulses: np.ndarray
    status: np.ndarray
    states: np.ndarray
    wear: np.ndarray
    weights: np.ndarray | None = None
    stuck: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


def program_golden(cfg, W=None, requests=None, passes=1, stuck_test=False, states=None,
                   wear=None):
    """Program ``W`` (array mode, ``passes`` times) or ``requests`` on the golden model.

    With ``stuck_test`` every cell is first driven to the top code and then to 0, so that every
    stuck cell shows as stuck whatever its target (docs/write_verify.md section 5).
    """
    plan = []
    if stuck_test:
        plan += stuck_test_requests(cfg)
    if W is not None:
        plan += [write_verify.array_requests(cfg, W)] * passes
    if requests is not None:
        plan.append(requests)
    merged = _concat(plan)
    result = write_verify.program(cfg, merged, states, wear)
    report = ProgramReport(cfg, merged, result.code, result.reads, result.pulses, result.status,
                           result.states, result.wear, stuck=device.stuck_map(cfg)[0])
    if W is not None:
        report.weights = readback(cfg, merged, result.code)
    return report


def stuck_test_requests(cfg):
    """Two passes over every cell: to the top level's target, then to the bottom level's.

    A cell stuck at either rail fails one of them (the rails sit outside both bands); a healthy
    cell reaches both (the top level lies ``2^frac_bits - 1`` states below the maximum, where a
    full-amplitude pulse still moves it).
    """
    tile, row, column = (a.reshape(-1) for a in np.indices(
        (cfg.tiles, cfg.rows, cfg.physical_columns), dtype=np.int64))
    top = np.full(len(tile), cfg.verify_targets[-1], dtype=np.int64)
    bottom = np.full(len(tile), cfg.verify_targets[0], dtype=np.int64)
    return [write_verify.Requests(tile, row, column, top),
            write_verify.Requests(tile, row, column, bottom)]


def _concat(parts):
    if not parts:
        return write_verify.Requests.of([], [], [], [])
    return write_verify.Requests(*(np.concatenate([getattr(p, f) for p in parts])
                                   for f in ("tile", "row", "column", "target")))


def readback(cfg, requests, codes):
    """The weight matrix a host reads back: each cell's level from its last verify code."""
    levels = np.zeros((cfg.tiles, cfg.rows, cfg.physical_columns), dtype=np.int64)
    levels[requests.tile, requests.row, requests.column] = \
        write_verify.readback_levels(cfg, codes)  # later requests of a cell overwrite
    return write_verify.readback_weights(cfg, levels)


def golden_replay(cfg, rtl, kind):
    """The golden model of what an RTL programming run did, resets included.

    ``rtl`` holds what the testbench recorded (``program_cells``, ``program_cut``, the event
    edges). A reset after ``cut`` results interrupts cell ``cut``: it took the pulses whose
    update edge came no later than the reset (:func:`imcgen.timing.pulses_applied`), and the
    host resent every cell from ``cut`` on as single requests.

    Returns ``(ProgramReport, delivered)``: ``delivered`` selects the requests that returned a
    result, in the order the RTL returned them.
    """
    cells = np.asarray(rtl["program_cells"], dtype=np.int64).reshape(-1, 3)
    cut = int(rtl["program_cut"])
    order = cells
    interrupt = None
    if cut >= 0:
        order = np.concatenate([cells[:cut + 1], cells[cut:]])
        if cut < len(cells):
            if kind == "array":
                per_row = cfg.physical_columns
                start = (int(rtl["row_edges"][cut // per_row]) + timing.ARRAY_ROW_START
                         if cut % per_row == 0 else
                         int(rtl["result_edges"][cut - 1]) + timing.ARRAY_NEXT_START)
            else:
                edges = rtl["request_edges"]
                start = int(edges[cut]) if cut < len(edges) else None
            applied = 0 if start is None else timing.pulses_applied(
                cfg, start, int(rtl["reset_edges"][0]))
            interrupt = (cut, applied)
    requests = write_verify.Requests.of(order[:, 0] // cfg.rows, order[:, 0] % cfg.rows,
                                        order[:, 1], order[:, 2])
    result = write_verify.program(cfg, requests, interrupt=interrupt)
    delivered = result.status >= 0
    if interrupt is not None:
        delivered[interrupt[0]] = False
    report = ProgramReport(cfg, requests, result.code, result.reads, result.pulses,
                           result.status, result.states, result.wear,
                           stuck=device.stuck_map(cfg)[0])
    report.extra["interrupt"] = interrupt
    return report, delivered


def summary(cfg, report, levels=None):
    """A dict of the figures ``imcgen program`` prints: cells in tolerance, relative error,
    iterations, stuck cells found."""
    status = report.status
    healthy = ~report.stuck[report.requests.tile, report.requests.row, report.requests.column]
    states = report.states[report.requests.tile, report.requests.row, report.requests.column]
    target_levels = (write_verify.readback_levels(cfg, report.requests.target)
                     if levels is None else levels)
    target_states = target_levels << cfg.state_frac
    nonzero = healthy & (target_states > 0)
    rel = np.abs(states - target_states)[nonzero] / target_states[nonzero]
    found = np.zeros(report.stuck.shape, dtype=bool)
    req = report.requests
    found[req.tile[status == Status.STUCK], req.row[status == Status.STUCK],
          req.column[status == Status.STUCK]] = True
    return {
        "cells": len(status),
        "ok": int((status == Status.OK).sum()),
        "healthy_in_tolerance": float((status[healthy] == Status.OK).mean()) if healthy.any()
        else 1.0,
        "mean_relative_error": float(rel.mean()) if len(rel) else 0.0,
        "max_relative_error": float(rel.max()) if len(rel) else 0.0,
        "mean_pulses": float(report.pulses.mean()) if len(status) else 0.0,
        "max_pulses": int(report.pulses.max()) if len(status) else 0,
        "stuck_cells": int(report.stuck.sum()),
        "stuck_found": int((found & report.stuck).sum()),
        "healthy_reported_stuck": int((found & ~report.stuck).sum()),
        "gave_up": int((status == Status.GAVE_UP).sum()),
        "pulse_histogram": np.bincount(report.pulses, minlength=1).tolist(),
    }
