"""SAR ADC controller: ideal binary search, MSB first (architecture section 5)."""

import numpy as np

__all__ = ["convert", "sar_trials"]


def convert(cfg, values):
    """ADC codes of column values: ``min(values, adc_max)``, found by the SAR binary search.

    Parameters
    ----------
    cfg : MacroConfig
    values : array_like of non-negative int
        Column values, any shape.

    Returns
    -------
    ndarray of int64, same shape as ``values``
    """
    values = np.asarray(values, dtype=np.int64)
    code = np.zeros_like(values)
    for bit in reversed(range(cfg.adc_bits)):
        trial = code | (1 << bit)
        # The comparator answers value >= dac; a yes keeps the trial bit.
        code = np.where(values >= trial, trial, code)
    return code


def sar_trials(cfg, value):
    """DAC codes the SAR drives, one per compare cycle, while converting one value.

    Parameters
    ----------
    cfg : MacroConfig
    value : int
        One column value.

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
        if value >= trial:
            code = trial
    return trials
