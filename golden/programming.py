"""Programming a macro by write-verify, on the golden model and on the RTL.

``program_golden`` runs the NumPy model (vectorised over cells: a million cells in seconds);
``program_rtl`` drives the same requests through the RTL on Verilator (:func:`imcgen.simulate`
with ``program=``) and replays them on the golden model, resets included, so every result,
state and later MVM can be compared exactly.
"""

from dataclasses import dataclass, field

import numpy as np

from imcgen.core import timing
from imcgen.core.codes import Status
from imcgen.golden import device, write_verify

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
    """Program on the golden model, in the order the RTL host sends: the stuck test (if
    asked), the single ``requests``, then ``W`` in array mode ``passes`` times.

    With ``stuck_test`` every cell is first driven to the top level and then to the bottom
    one, so that every stuck cell shows as stuck whatever its target (docs/write_verify.md
    section 5).
    """
    plan = []
    if stuck_test:
        plan += stuck_test_requests(cfg)
    if requests is not None:
        plan.append(requests)
    if W is not None:
        plan += [write_verify.array_requests(cfg, W)] * passes
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


def golden_replay(cfg, rtl):
    """The golden model of what an RTL programming run did, resets included.

    ``rtl`` holds what the testbench recorded: the cells in result order (``program_cells``,
    ``[row, column, target, source, seq]``), the results before a reset (``program_cut``),
    the cell that reset cut, as first sent (``program_cut_cell``), and the event edges. The
    cut cell took the pulses whose update edge came no later than the reset
    (:func:`imcgen.core.timing.pulses_applied`, from its start edge T0), then the host resent it.

    Returns ``(ProgramReport, delivered)``: ``delivered`` selects the requests that returned a
    result, in the order the RTL returned them.
    """
    cells = np.asarray(rtl["program_cells"], dtype=np.int64).reshape(-1, 5)
    cut = int(rtl["program_cut"])
    order, interrupt = cells, None
    if cut >= 0 and cut < len(cells):
        row, column, target, source, seq = (int(v) for v in rtl["program_cut_cell"])
        if source == 0:
            edges = rtl["request_edges"]
            start = int(edges[seq]) if seq < len(edges) else None
        elif column == 0:
            start = int(rtl["row_edges"][seq]) + timing.ARRAY_ROW_START
        else:
            start = int(rtl["result_edges"][cut - 1]) + timing.ARRAY_NEXT_START
        applied = 0 if start is None else timing.pulses_applied(
            cfg, start, int(rtl["reset_edges"][0]))
        order = np.concatenate([cells[:cut], [[row, column, target, source, seq]], cells[cut:]])
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


def final_requests(report):
    """Index of each cell's last request (the target it was left at), in request order."""
    req = report.requests
    flat = (req.tile * report.states.shape[1] + req.row) * report.states.shape[2] + req.column
    last = np.zeros(len(flat), dtype=bool)
    _, first_from_end = np.unique(flat[::-1], return_index=True)
    last[len(flat) - 1 - first_from_end] = True
    return np.flatnonzero(last)


def summary(cfg, report):
    """The figures ``imcgen program`` prints. Tolerance and relative error are taken from
    each cell's last request (its final target); pulses count every request; a cell is found
    stuck when any request reported it."""
    req = report.requests
    final = final_requests(report)
    t, r, c = req.tile[final], req.row[final], req.column[final]
    healthy = ~report.stuck[t, r, c]
    status = report.status[final]
    states = report.states[t, r, c]
    target_states = write_verify.readback_levels(cfg, req.target[final]) << cfg.state_frac
    nonzero = healthy & (target_states > 0)
    rel = np.abs(states - target_states)[nonzero] / target_states[nonzero]
    found = np.zeros(report.stuck.shape, dtype=bool)
    hit = report.status == Status.STUCK
    found[req.tile[hit], req.row[hit], req.column[hit]] = True
    pulses = report.pulses[report.status >= 0] if len(report.pulses) else report.pulses
    return {
        "cells": len(final),
        "requests": len(report.status),
        "ok": int((status == Status.OK).sum()),
        "healthy_in_tolerance": float((status[healthy] == Status.OK).mean()) if healthy.any()
        else 1.0,
        "mean_relative_error": float(rel.mean()) if len(rel) else 0.0,
        "max_relative_error": float(rel.max()) if len(rel) else 0.0,
        "mean_pulses": float(pulses.mean()) if len(pulses) else 0.0,
        "max_pulses": int(pulses.max()) if len(pulses) else 0,
        "stuck_cells": int(report.stuck.sum()),
        "stuck_found": int((found & report.stuck).sum()),
        "healthy_reported_stuck": int((found & ~report.stuck).sum()),
        "gave_up": int((report.status == Status.GAVE_UP).sum()),
        "pulse_histogram": np.bincount(pulses, minlength=1).tolist(),
    }
