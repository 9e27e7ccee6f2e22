"""SAR ADC controller: binary search, MSB first, against the comparators (section 5)."""

import numpy as np

from .crossbar_stub import compare

__all__ = ["convert", "convert_physical", "sar_trials"]


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
    code = np.zeros_like(values)
    for bit in reversed(range(cfg.adc_bits)):
        trial = code | (1 << bit)
        # The comparator answers whether the held value reaches the DAC code; yes keeps the bit.
        code = np.where(compare(cfg, values, trial, verify), trial, code)
    return code


def convert_physical(cfg, arr, held, tile, column, read):
    """ADC codes of held currents through the analog model's comparators (offset and noise;
    :func:`imcgen.golden.analog.compare`), the same binary search."""
    from . import analog

    held = np.asarray(held, dtype=np.int64)
    code = np.zeros(held.shape, dtype=np.int64)
    for bit in reversed(range(cfg.adc_bits)):
        trial = code | (1 << bit)
        answer = analog.compare(cfg, arr, held, trial, tile, column, read, bit)
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
