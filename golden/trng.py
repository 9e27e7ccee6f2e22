"""TRNG: switching delays of the entropy devices, parity bits, SP 800-90B health tests,
von Neumann debiasing; vectorised over rounds and sources (docs/trng.md).

Each round every source's device gets a write pulse of ``pulse_cycles`` periods; it switches
after a delay ``d`` drawn from the counter-based generator (one 64-bit draw serves four sources:
``what = TRNG``, ``where`` = the draw's group of four, ``when`` = the round's event number) and
the table of the delay distribution's quantiles (:attr:`TrngConfig.delay_table`), interpolated:

    idx, frac = 8-bit fields of the source's 16 bits of the draw
    d16 = T[idx] + (((T[idx+1] - T[idx]) * frac) >> 8)      (1/16 clock periods)
    d   = d16 >> 4                                          (clock periods)

The counter counts the pulse's cycles after the switch: ``P - d`` when ``d < P``, else the
device did not switch (a retry: no bit, raw sample 0). The raw sample is the count's parity.
Health tests run per source on the raw samples (RCT and APT, SP 800-90B section 4.4, cutoffs
from the configuration); an alarm drops that round's bits and stops the output. Valid samples
become bits, directly or through von Neumann pairs, in (round, source) order.
"""

from dataclasses import dataclass

import numpy as np

from imcgen.core.config import TRNG_DELAY_FRAC, TRNG_FRAC_BITS, TRNG_TABLE_BITS
from imcgen.core.draws import What
from imcgen.golden import rng

__all__ = ["TrngRun", "delays", "samples", "health_alarm", "run", "pack_bytes"]


def delays(cfg, events):
    """Switching delay in clock periods, shape (len(events), sources)."""
    trng = cfg.trng
    events = np.asarray(events, dtype=np.int64)
    table = np.asarray(trng.delay_table[trng.voltage], dtype=np.int64)
    out = np.empty((len(events), trng.sources), dtype=np.int64)
    mask = (1 << TRNG_TABLE_BITS) - 1
    for g in range(trng.draws):
        bits = rng.draw(trng.seed, int(What.TRNG), g, events, rounds=cfg.device.rng_rounds)
        for s in range(4 * g, min(4 * g + 4, trng.sources)):
            field = (bits >> np.uint64(16 * (s % 4))).astype(np.int64)
            idx = field & mask
            frac = (field >> TRNG_TABLE_BITS) & ((1 << TRNG_FRAC_BITS) - 1)
            lo, hi = table[idx], table[idx + 1]
            out[:, s] = (lo + (((hi - lo) * frac) >> TRNG_FRAC_BITS)) >> TRNG_DELAY_FRAC
    return out


def samples(cfg, events):
    """``(raw, switched)`` of every source in every round: the parity of the post-switch
    count (0 without a switch) and whether the device switched within the pulse."""
    d = delays(cfg, events)
    switched = d < cfg.trng.pulse_cycles
    raw = np.where(switched, (cfg.trng.pulse_cycles - d) & 1, 0)
    return raw.astype(np.int64), switched


def health_alarm(cfg, raw):
    """First round at which a health test fails, over every source: ``(round, test, source)``
    or None. The tests start fresh at round 0 (after a reset or a cleared alarm).

    RCT: a run of ``rct_cutoff`` identical samples. APT: in a window of ``apt_window``
    samples, ``apt_cutoff`` equal to the window's first sample (the first counted).
    """
    trng = cfg.trng
    rounds = raw.shape[0]
    best = None
    for s in range(raw.shape[1]):
        x = raw[:, s]
        if rounds == 0:
            continue
        change = np.r_[True, x[1:] != x[:-1]]
        start = np.maximum.accumulate(np.where(change, np.arange(rounds), 0))
        run = np.arange(rounds) - start + 1
        hits = np.flatnonzero(run >= trng.rct_cutoff)
        if len(hits) and (best is None or hits[0] < best[0]):
            best = (int(hits[0]), "rct", s)
        W = trng.apt_window
        window = np.arange(rounds) // W
        first = x[window * W]
        equal = (x == first).astype(np.int64)
        count = np.cumsum(equal) - np.r_[0, np.cumsum(equal)][window * W]
        hits = np.flatnonzero(count >= trng.apt_cutoff)
        if len(hits) and (best is None or hits[0] < best[0]):
            best = (int(hits[0]), "apt", s)
    return best


@dataclass
class TrngRun:
    """Output of :func:`run`: ``bits`` (0/1, in output order), ``rounds`` run, retries (pulses
    without a switch), the alarm ``(round, test, source)`` or None, and the raw samples."""

    bits: np.ndarray
    rounds: int
    retries: int
    alarm: tuple | None
    raw: np.ndarray
    switched: np.ndarray


def _output_bits(cfg, raw, switched):
    """Bits in (round, source) order from the valid samples, debiased if configured."""
    rounds, sources = raw.shape
    keys, values = [], []
    for s in range(sources):
        valid = np.flatnonzero(switched[:, s])
        v = raw[valid, s]
        if cfg.trng.debias:
            pairs = len(v) // 2
            a, b = v[0:2 * pairs:2], v[1:2 * pairs:2]
            keep = a != b
            at = valid[1:2 * pairs:2][keep]  # emitted with the pair's second sample
            v = a[keep]
        else:
            at = valid
        keys.append(at * sources + s)
        values.append(v)
    keys, values = np.concatenate(keys), np.concatenate(values)
    order = np.argsort(keys, kind="stable")
    return values[order].astype(np.uint8)


def run(cfg, rounds, first_event=0):
    """``rounds`` rounds from event ``first_event`` with fresh health-test and debiasing
    state; output stops at an alarm (that round's bits are dropped)."""
    raw, switched = samples(cfg, np.arange(first_event, first_event + rounds))
    alarm = health_alarm(cfg, raw)
    used = rounds if alarm is None else alarm[0]
    bits = _output_bits(cfg, raw[:used], switched[:used])
    return TrngRun(bits, rounds if alarm is None else alarm[0] + 1,
                   int((~switched[:used + (alarm is not None)]).sum()), alarm, raw, switched)


def bits_for(cfg, count, first_event=0, chunk=None):
    """At least ``count`` output bits (fewer if an alarm stops the output), with the rounds
    they took: returns ``(bits, rounds, alarm)``."""
    per_round = max(cfg.trng.sources * (0.25 if cfg.trng.debias else 0.8), 0.1)
    rounds = int(count / per_round * 1.1) + 64 if chunk is None else chunk
    while True:
        result = run(cfg, rounds, first_event)
        if len(result.bits) >= count or result.alarm is not None:
            return result
        rounds *= 2


def pack_bytes(bits):
    """Bits (0/1) to bytes, least significant bit first (the hardware's order)."""
    bits = np.asarray(bits, dtype=np.uint8)
    whole = len(bits) // 8 * 8
    return np.packbits(bits[:whole], bitorder="little")
