"""Write-verify: program cells by pulses until their verify read is within tolerance.

Vectorised over cells: every cell's loop is independent of the others (the device model has no
disturb term), so the k-th request of every cell is processed in one batch, iteration by
iteration, with NumPy arrays over the cells still busy. The algorithm is the hardware FSM's
(``hdl/write_verify.py``, docs/write_verify.md section 3):

1. read; within ``target +/- tolerance``: OK;
2. else if the last ``stuck_pulses`` pulses were all at ``amp_max`` and left the code
   unchanged at a rail (0 or ``adc_max``, where stuck cells sit): STUCK; else if
   ``max_pulses`` pulses were spent: GAVE_UP;
3. else pulse towards the target (SET below it, RESET above), the amplitude ``amp_start`` for
   the first pulse in a direction and ``amp_step`` more (up to ``amp_max``) for each further
   one in the same direction (incremental step pulse programming); back to 1.

Stuck cells ignore pulses (their state and pulse count do not change).
"""

from dataclasses import dataclass

import numpy as np

from imcgen.core.codes import Status
from imcgen.core.draws import cell_where
from imcgen.golden import device

__all__ = ["Requests", "ProgramResult", "array_requests", "program", "readback_levels",
           "readback_weights"]


@dataclass
class Requests:
    """Cell programming requests, in the order the host sends them (arrays of equal length)."""

    tile: np.ndarray
    row: np.ndarray      # tile-local row
    column: np.ndarray   # physical column
    target: np.ndarray   # verify code

    def __len__(self):
        return len(self.target)

    @classmethod
    def of(cls, tile, row, column, target):
        return cls(*(np.atleast_1d(np.asarray(a, dtype=np.int64)) for a in
                     (tile, row, column, target)))


@dataclass
class ProgramResult:
    """Results per request, and the array afterwards.

    ``code``, ``reads``, ``pulses``, ``status`` have one entry per request (``status`` -1 for a
    request cut by ``interrupt``: it returns no result). ``states`` and ``wear`` are the whole
    array's states and pulse counts, shape (tiles, rows, physical_columns).
    """

    code: np.ndarray
    reads: np.ndarray
    pulses: np.ndarray
    status: np.ndarray
    states: np.ndarray
    wear: np.ndarray


def array_requests(cfg, W):
    """Requests programming a whole weight matrix: every row in order, every physical column
    (all slices, both differential columns) in column order, targets from the weight mapping."""
    from imcgen.golden.weight_mapper import cell_levels

    levels = cell_levels(cfg, W)  # (tiles, rows, columns)
    tile, row, column = (a.reshape(-1) for a in
                         np.indices(levels.shape, dtype=np.int64))
    targets = np.asarray(cfg.verify_targets, dtype=np.int64)[levels.reshape(-1)]
    return Requests(tile, row, column, targets)


def _rounds(keys):
    """Occurrence number of each key among the earlier equal keys (0 for the first)."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_keys)) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(keys)]))
    rounds = np.empty(len(keys), dtype=np.int64)
    rounds[order] = np.arange(len(keys)) - run_start
    return rounds


def program(cfg, requests, states=None, wear=None, interrupt=None):
    """Run the write-verify algorithm for every request.

    Parameters
    ----------
    cfg : MacroConfig
        ``device.kind`` rram or pcm.
    requests : Requests
    states, wear : ndarray of int, shape (tiles, rows, physical_columns), optional
        The array before programming (default: a fresh array, no pulse yet).
    interrupt : tuple (int, int), optional
        ``(request index, pulses)``: that request is cut (by a reset) after this many pulses
        and returns no result; later requests start from the state it left.

    Returns
    -------
    ProgramResult
    """
    wv = cfg.write_verify
    states = device.initial_states(cfg) if states is None else np.array(states, dtype=np.int64)
    wear = np.zeros_like(states) if wear is None else np.array(wear, dtype=np.int64)
    stuck, _ = device.stuck_map(cfg)
    n = len(requests)
    code = np.zeros(n, dtype=np.int64)
    reads = np.zeros(n, dtype=np.int64)
    pulses = np.zeros(n, dtype=np.int64)
    status = np.full(n, -1, dtype=np.int64)
    cap = np.full(n, wv.max_pulses + 1, dtype=np.int64)  # pulses allowed before a cut
    if interrupt is not None:
        cap[interrupt[0]] = interrupt[1]
    flat = (requests.tile * cfg.rows + requests.row) * cfg.physical_columns + requests.column
    rounds = _rounds(flat)
    wear_mask = (1 << cfg.device.wear_bits) - 1
    for k in range(int(rounds.max()) + 1 if n else 0):
        idx = np.flatnonzero(rounds == k)  # at most one request per cell
        t, r, c = requests.tile[idx], requests.row[idx], requests.column[idx]
        target = requests.target[idx]
        where = cell_where(cfg, t, r, c)
        s, w, stk = states[t, r, c], wear[t, r, c], stuck[t, r, c]
        out = _program_cells(cfg, s, w, stk, where, target, cap[idx], wear_mask)
        code[idx], reads[idx], pulses[idx], status[idx], s, w = out
        states[t, r, c], wear[t, r, c] = s, w
    return ProgramResult(code, reads, pulses, status, states, wear)


def _program_cells(cfg, s, w, stuck, where, target, cap, wear_mask):
    """One request per cell, all cells at once; returns (code, reads, pulses, status, s, w)."""
    wv = cfg.write_verify
    m = len(s)
    s, w = s.copy(), w.copy()
    code = device.verify_code(cfg, s)
    reads = np.ones(m, dtype=np.int64)
    pulses = np.zeros(m, dtype=np.int64)
    status = np.full(m, -1, dtype=np.int64)
    amp = np.zeros(m, dtype=np.int64)
    last_set = np.zeros(m, dtype=bool)
    still = np.zeros(m, dtype=np.int64)  # pulses in a row at amp_max that left the code alone
    busy = np.ones(m, dtype=bool)
    while True:
        within = np.abs(code - target) <= wv.tolerance
        rail = (code == 0) | (code == cfg.adc_max)
        for mask, value in ((within, Status.OK), ((still >= wv.stuck_pulses) & rail,
                                                  Status.STUCK),
                            (pulses >= wv.max_pulses, Status.GAVE_UP)):
            hit = busy & mask
            status[hit] = int(value)
            busy &= ~hit
        busy &= pulses < cap  # cut by a reset: no result
        live = np.flatnonzero(busy)
        if not len(live):
            break
        set_ = code[live] < target[live]
        again = (pulses[live] > 0) & (set_ == last_set[live])
        a = np.where(again, np.minimum(amp[live] + wv.amp_step, wv.amp_max), wv.amp_start)
        moving = ~stuck[live]
        new = s[live]
        if moving.any():
            sel = live[moving]
            new = new.copy()
            new[moving] = device.apply_pulse(cfg, s[sel], set_[moving], a[moving], where[sel],
                                             w[sel])
            w[sel] = (w[sel] + 1) & wear_mask
        s[live] = new
        new_code = device.verify_code(cfg, new)
        unchanged = (a == wv.amp_max) & (new_code == code[live])
        still[live] = np.where(unchanged, still[live] + 1, 0)
        code[live], amp[live], last_set[live] = new_code, a, set_
        pulses[live] += 1
        reads[live] += 1
    return code, reads, pulses, status, s, w


def readback_levels(cfg, codes):
    """The level each final verify code is nearest to (what the host reads back)."""
    targets = np.asarray(cfg.verify_targets, dtype=np.int64)
    codes = np.asarray(codes, dtype=np.int64)
    return np.abs(codes[..., np.newaxis] - targets).argmin(axis=-1)


def readback_weights(cfg, levels):
    """Weights from cell levels (tiles, rows, physical_columns): the weight mapping inverted."""
    from imcgen.golden.weight_mapper import column_index

    levels = np.asarray(levels, dtype=np.int64)
    q = levels[..., column_index(cfg)]  # (tiles, rows, outputs, slices, polarities)
    significance = np.left_shift(np.int64(1), cfg.cell_bits * np.arange(cfg.slices,
                                                                         dtype=np.int64))
    if cfg.weight_mapping == "differential":
        w = ((q[..., 0] - q[..., 1]) * significance).sum(axis=-1)
    else:
        w = (q[..., 0] * significance).sum(axis=-1) - cfg.weight_offset
    return w.reshape(cfg.input_rows, cfg.outputs)
