"""The cells' device model: stuck cells, conductance states, programming pulses, verify reads.

One NumPy model, shared by the golden model (batched over every cell) and the cocotb-side
crossbar (one pulse at a time), so a pulse's arithmetic exists once in Python; the crossbar
stub (``hdl/crossbar_stub.py``) is its independent hardware implementation.

A cell holds a state ``s`` in ``0..S`` (``S = cfg.state_max``), ``frac_bits`` finer than a
level: level ``L`` is exactly ``L << frac_bits``. Fresh cells sit at the minimum state; cells
stuck on sit at ``S``. Every random quantity is a counter-based draw (:mod:`imcgen.core.draws`):
whether a cell is stuck depends on (device seed, cell) only, a pulse's noise on (device seed,
cell, the cell's pulse count). Fixed-point arithmetic, docs/write_verify.md section 2:

- rram SET:   s' = clamp(s + ((a g_set (S - s)) >> (amp_bits + 8)) + n)
- rram RESET: s' = clamp(s - ((a g_reset s) >> (amp_bits + 8)) + n)
- pcm SET:    s' = clamp(s + max(0, ((a g_set (S - s)) >> (amp_bits + 8)) + n))  (only up)
- pcm RESET:  s' = clamp(pcm_reset_state + n)  (abrupt, whatever the amplitude)
- noise:      n = (z noise_code + 2^11) >> 12, z = b0 + b1 + b2 + b3 - 510 from the draw's
              four low bytes (Irwin-Hall, standard deviation 147.8)
- verify read: code = (2 s adc_max + S) // (2 S)   (the reference spans 0..S over the codes)
"""

import numpy as np

from imcgen.core.config import GAIN_SHIFT, NOISE_SHIFT
from imcgen.core.draws import What, cell_where
from imcgen.golden import rng

__all__ = ["cell_addresses", "stuck_map", "initial_states", "load_levels", "pulse_noise",
           "apply_pulse", "verify_code", "levels_of_states"]


def cell_addresses(cfg):
    """The ``where`` of every cell, shape (tiles, rows, physical_columns)."""
    tile, row, column = np.indices((cfg.tiles, cfg.rows, cfg.physical_columns), dtype=np.int64)
    return cell_where(cfg, tile, row, column)


def stuck_map(cfg):
    """``(stuck, on)``: bool arrays (tiles, rows, physical_columns). Cells of a real device
    (``device.kind`` or ``analog.device`` pcm or rram) may be stuck; no cell of an ideal one."""
    shape = (cfg.tiles, cfg.rows, cfg.physical_columns)
    real = cfg.programmable or cfg.analog.device in ("pcm", "rram")
    if not real or cfg.device.stuck_threshold == 0:
        return np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
    bits = rng.draw(cfg.device.seed, int(What.STUCK), cell_addresses(cfg), 0,
                    rounds=cfg.device.rng_rounds)
    low = (bits & np.uint64(0xFFFFFFFF)).astype(np.int64)
    high = (bits >> np.uint64(32)).astype(np.int64)
    stuck = low < cfg.device.stuck_threshold
    return stuck, stuck & (high < cfg.device.stuck_on_threshold)


def initial_states(cfg):
    """States of a fresh array: the minimum, or the maximum for cells stuck on."""
    _, on = stuck_map(cfg)
    return np.where(on, cfg.state_max, 0).astype(np.int64)


def load_levels(cfg, states, levels):
    """States after loading ``levels`` exactly (the ideal weight port): ``level << frac_bits``,
    except stuck cells, which keep their state."""
    stuck, _ = stuck_map(cfg)
    return np.where(stuck, states, np.asarray(levels, dtype=np.int64) << cfg.state_frac)


def pulse_noise(cfg, where, wear):
    """Noise (state LSBs) of the pulse a cell at ``where`` gets as its ``wear``-th."""
    bits = rng.draw(cfg.device.seed, int(What.PULSE), where, wear, rounds=cfg.device.rng_rounds)
    z = sum(((bits >> np.uint64(8 * k)) & np.uint64(0xFF)).astype(np.int64) for k in range(4))
    z = z - 510
    return (z * cfg.device.noise_code + (1 << (NOISE_SHIFT - 1))) >> NOISE_SHIFT


def apply_pulse(cfg, state, set_, amp, where, wear):
    """States after one pulse (vectorised; stuck cells must be excluded by the caller).

    Parameters
    ----------
    state : array of int
        States before the pulse.
    set_ : array of bool
        SET (towards the maximum) or RESET.
    amp : array of int
        Amplitude codes, ``1 .. 2^amp_bits - 1``.
    where, wear : array of int
        The cells' addresses and pulse counts before this pulse (the noise draw).
    """
    dev, top = cfg.device, cfg.state_max
    state = np.asarray(state, dtype=np.int64)
    amp = np.asarray(amp, dtype=np.int64)
    set_ = np.asarray(set_, dtype=bool)
    shift = cfg.write_verify.amp_bits + GAIN_SHIFT
    noise = pulse_noise(cfg, where, wear)
    up = (amp * dev.set_gain_code * (top - state)) >> shift
    if dev.kind == "rram":
        down = (amp * dev.reset_gain_code * state) >> shift
        moved = np.where(set_, state + up + noise, state - down + noise)
    else:  # pcm: gradual SET, only upward; abrupt RESET near the minimum
        moved = np.where(set_, state + np.maximum(up + noise, 0), dev.pcm_reset_state + noise)
    return np.clip(moved, 0, top)


def verify_code(cfg, state):
    """Verify-read ADC code of a single cell's state (the reference spans the state range)."""
    state = np.asarray(state, dtype=np.int64)
    return (2 * state * cfg.adc_max + cfg.state_max) // (2 * cfg.state_max)


def levels_of_states(cfg, states):
    """The level a single-row compute read sees: ``round(s / 2^frac)``, at most ``cell_max``."""
    states = np.asarray(states, dtype=np.int64)
    half = (1 << cfg.state_frac) >> 1
    return np.minimum((states + half) >> cfg.state_frac, cfg.cell_max)
