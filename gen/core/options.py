"""Argument types of the command line and of the workloads' options: each refuses, in one line
(argparse's ``ArgumentTypeError``), what is not in its domain, and carries its bounds (``.lo``,
``.hi``) so the bad-input battery can aim just outside them."""

import argparse
import math

__all__ = ["seed", "probability", "int_in", "number_in", "positive_int", "positive_float"]


def seed(text):
    try:
        value = int(text, 0)
    except ValueError:
        value = -1
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"{text!r} is not a seed (an integer in 0..2^63-1)")
    return value


def probability(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a probability in [0, 1)")
    return value


def int_in(lo, hi, what=None):
    """argparse type: an integer in ``lo..hi`` (its bounds readable as ``.lo``, ``.hi``);
    ``what`` names the allowed values in the message (default: the range)."""
    what = what or f"an integer in {lo}..{hi}"

    def parse(text):
        try:
            value = int(text, 0)
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{_short(text)} is not {what}")
        return value

    parse.lo, parse.hi, parse.__name__ = lo, hi, f"int_in({lo}, {hi})"
    return parse


def number_in(lo, hi):
    """argparse type: a finite number ``x`` with ``lo < x <= hi`` (``.lo``, ``.hi``)."""

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not lo < value <= hi:  # nan compares false: refused with the rest
            raise argparse.ArgumentTypeError(f"{_short(text)} is not a number in ({lo}, {hi}]")
        return value

    parse.lo, parse.hi, parse.__name__ = lo, hi, f"number_in({lo}, {hi})"
    return parse


def _short(text):
    text = repr(text)
    return text if len(text) <= 40 else text[:30] + "..." + text[-6:]


#: Counts (``--bits``, ``--vectors``...): at least 1; the commands bound them further.
positive_int = int_in(1, 2**62, "a positive integer")
#: Rates and times (``--timeout``, ``--freq``): finite and above 0.
positive_float = number_in(0.0, 1e9)
