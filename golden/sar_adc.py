"""SAR ADC controller: binary search, MSB first, against the comparators (section 5)."""

import numpy as np

from imcgen.golden.crossbar_stub import compare

__all__ = ["convert", "binary_search", "convert_physical", "sar_trials"]


def convert(cfg, values, verify=False):
    """ADC codes of held column values, by the SAR binary search against the comparators.

    For ideal devices the result is ``min(values, adc_max)``; for programmable ones compute
    reads round sums of states to levels and verify reads scale one state onto the codes
    (:func:`imcgen.golden.crossbar_stub.compare`).

    Parameters
    ----------
    cfg : MacroConfig
    values : array_like of non-negative int
        Held column values, any shape.
    verify : bool
        Verify reads (one cell each) instead of compute reads.

    Returns
    -------
    ndarray of int64, same shape as ``values``
    """
    values = np.asarray(values, dtype=np.int64)
    # The comparator's answer falls monotonically with the DAC code, so the binary search ends
    # on the largest code it accepts: that code in closed form (binary_search is the search
    # itself; the tests hold the two equal).
    frac = cfg.state_frac
    code = (2 * values + (1 << frac)) >> (frac + 1)
    if cfg.programmable and np.any(verify):
        check = (2 * values * cfg.adc_max + cfg.state_max) // (2 * cfg.state_max)
        code = np.where(verify, check, code)
    return np.clip(code, 0, cfg.adc_max)


def binary_search(cfg, values, verify=False):
    """:func:`convert` step by step, as the SAR controller does it: MSB first, the comparator
    answering whether the held value reaches the trial code, a yes keeping the bit."""
    values = np.asarray(values, dtype=np.int64)
    code = np.zeros_like(values)
    for bit in reversed(range(cfg.adc_bits)):
        trial = code | (1 << bit)
        code = np.where(compare(cfg, values, trial, verify), trial, code)
    return code


def convert_physical(cfg, arr, held, tile, column, read, transposed=False):
    """ADC codes of held currents through the analog model's comparators (offset and noise;
    :func:`imcgen.golden.analog.compare`; the row side's with ``transposed``), the same binary
    search."""
    from imcgen.golden import analog

    held = np.asarray(held, dtype=np.int64)
    if not arr.cmp_sigma:  # a noiseless comparator: the search's result in closed form
        code = (2 * (held + arr.offset) + arr.lsb) // (2 * arr.lsb)
        return np.clip(code, 0, cfg.adc_max)
    code = np.zeros(held.shape, dtype=np.int64)
    for bit in reversed(range(cfg.adc_bits)):
        trial = code | (1 << bit)
        answer = analog.compare(cfg, arr, held, trial, tile, column, read, bit, transposed)
        code = np.where(answer, trial, code)
    return code


def sar_trials(cfg, value, verify=False):
    """DAC codes the SAR drives, one per compare cycle, while converting one value.

    Parameters
    ----------
    cfg : MacroConfig
    value : int
        One held column value.
    verify : bool
        A verify read.

    Returns
    -------
    list of int
        ``adc_bits`` trial codes, MSB decision first.
    """
    code = 0
    trials = []
    for bit in reversed(range(cfg.adc_bits)):
        trial = code | (1 << bit)
        trials.append(trial)
        if compare(cfg, value, trial, verify):
            code = trial
    return trials
