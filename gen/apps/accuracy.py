"""``imcgen accuracy``: what the device physics does to the macro's results, on the golden model.

For a configuration and an analog device (``ideal``, ``pcm``, ``rram``) it runs a workload
through the golden model (batched) at several drift times, with and without drift
compensation, and over a sweep of one configuration key, and reports:

- the MVM error against the exact integer product ``X @ W`` (the accumulator before the output
  stage): RMS, and the effective fixed-point precision ``log2(range / (sqrt(12) RMS))`` with
  ``range`` the span of the exact results (an n-bit quantizer's error is uniform over one of
  its 2^n steps, RMS ``step / sqrt(12)``);
- the demo's classification accuracy (the digits classifier of ``imcgen demo``), when the
  configuration has its shape (64 inputs, 10 outputs);
- the programming error of the conductances (write-verify on: the verified states; off: the
  device's open-loop programming error).
"""

import math
import re
from dataclasses import dataclass, field

import numpy as np

from imcgen import golden
from imcgen.core.config import AnalogConfig
from imcgen.core.errors import ImcError

__all__ = ["parse_times", "parse_sweep", "Workload", "workload", "evaluate", "run",
           "anchor_config"]

_UNITS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0,
          "y": 365.25 * 86400.0}


def parse_times(text):
    """``"1s,1h,1d,1y"`` -> seconds; a bare number is seconds."""
    out = []
    for item in str(text).split(","):
        item = item.strip()
        match = re.fullmatch(r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-z]*)", item)
        if not item or not match or (match.group(2) and match.group(2) not in _UNITS):
            raise ImcError("--time", item, "must be a non-negative number with an optional "
                                           "unit s, m, h, d, w or y (e.g. 1s,1h,1d,1y)")
        seconds = float(match.group(1)) * _UNITS.get(match.group(2) or "s")
        lo, hi = AnalogConfig.FIELDS["time"].limits  # checked here, under the option's name
        if not lo <= seconds <= hi:
            raise ImcError("--time", item, f"must be a time from {format_time(lo)} to "
                                           f"{format_time(hi)} ({lo:g}..{hi:g} s)")
        out.append(seconds)
    return out


#: Points of one ``--sweep``: each is a whole evaluation (seconds to minutes of golden model).
MAX_SWEEP_POINTS = 64


def parse_sweep(cfg, text):
    """``"adc_bits=3..8"`` (or ``key=a,b,c``) -> (key, [values]), every point checked."""
    from imcgen.core.config import allowed_keys

    key, sep, spec = str(text).partition("=")
    key = key.strip()
    if not sep or key not in allowed_keys():
        raise ImcError("--sweep", text, "must look like key=a..b or key=a,b,c with a "
                                        "configuration key (imcgen config keys)")
    values = []
    range_ = re.fullmatch(r"\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*", spec)
    if range_:
        lo, hi = int(range_.group(1)), int(range_.group(2))
        if hi < lo:
            raise ImcError("--sweep", text, f"the range {lo}..{hi} is empty (a..b with a <= b)")
        if hi - lo + 1 > MAX_SWEEP_POINTS:  # refused before a list of them is even made
            raise ImcError("--sweep", text, f"has {hi - lo + 1} points; at most "
                                            f"{MAX_SWEEP_POINTS} (each is a full evaluation)")
        values = list(range(lo, hi + 1))
    else:
        from imcgen.core.config import _field

        values = [_field(key).parse(key, v) for v in spec.split(",") if v.strip()]
        if not values:
            raise ImcError("--sweep", text, "gives no values")
        if len(values) > MAX_SWEEP_POINTS:
            raise ImcError("--sweep", text, f"has {len(values)} points; at most "
                                            f"{MAX_SWEEP_POINTS} (each is a full evaluation)")
    for value in values:  # every point must be a valid configuration, checked now
        cfg.replace(**{key: value})
    return key, values


@dataclass
class Workload:
    W: np.ndarray
    X: np.ndarray
    labels: np.ndarray | None = None
    name: str = ""


def workload(cfg, seed=0, vectors=500):
    """The demo's digits classifier when the configuration has its shape, else Gaussian
    weights (quantized to the weight range) and uniform random inputs."""
    rng = np.random.default_rng(seed)
    if cfg.input_rows == 64 and cfg.outputs == 10 and cfg.input_max >= 16 and \
            not cfg.input_signed:
        from imcgen.apps.demo import train_and_quantize

        _, W_int, _, (_, X_test, _, y_test), _ = train_and_quantize(cfg, seed)
        return Workload(W_int, X_test, y_test, "digits classifier (450 test images)")
    gauss = rng.standard_normal((cfg.input_rows, cfg.outputs))
    W = np.clip(np.round(gauss / np.abs(gauss).max() * cfg.weight_max), cfg.weight_min,
                cfg.weight_max).astype(np.int64)
    X = rng.integers(cfg.input_min, cfg.input_max + 1, size=(vectors, cfg.input_rows))
    return Workload(W, X, None, f"Gaussian {cfg.input_rows}x{cfg.outputs} matrix, "
                                f"{vectors} random vectors")


@dataclass
class Evaluation:
    config: object
    rms: float
    bits: float
    accuracy: float | None
    errors: np.ndarray
    prog_error: float | None
    extra: dict = field(default_factory=dict)


def _states(cfg, W):
    """The array's states: write-verify programmed (programmable devices) or loaded."""
    from imcgen.golden import device, weight_mapper

    if cfg.programmable:
        from imcgen.golden.programming import program_golden

        return program_golden(cfg, W).states
    return device.load_levels(cfg, device.initial_states(cfg), weight_mapper.cell_levels(cfg, W))


def evaluate(cfg, work, states=None):
    """Golden-model error and accuracy of ``work`` on ``cfg``."""
    from imcgen.golden import analog, weight_mapper

    states = _states(cfg, work.W) if states is None else states
    result = golden.run(cfg, work.W, work.X, states=states)
    exact = work.X @ work.W
    errors = (result.sums - exact).ravel()
    rms = float(np.sqrt(np.mean(errors.astype(np.float64) ** 2))) if errors.size else 0.0
    span = float(exact.max() - exact.min()) if exact.size else 0.0
    bits = math.log2(span / (math.sqrt(12) * rms)) if rms > 0 and span > 0 else float("inf")
    accuracy = None
    if work.labels is not None:
        accuracy = float((np.argmax(result.y, axis=1) == work.labels).mean())
    prog_error = None
    if cfg.analog.physical:
        arr = analog.prepare(cfg.replace(**{"analog.time": 0.0, "analog.read_noise": 0.0}),
                             states)
        levels = weight_mapper.cell_levels(cfg, work.W)
        a = cfg.analog
        g_min = 0.0 if a.device == "ideal" else a.g_min_us
        target = g_min + levels / cfg.cell_max * (a.g_max_us - g_min)
        healthy = ~golden.device.stuck_map(cfg)[0] & (levels > 0)
        prog_error = float(np.mean(np.abs(arr.g_us - target)[healthy] / target[healthy])) \
            if healthy.any() else 0.0
    return Evaluation(cfg, rms, bits, accuracy, errors, prog_error)


def run(cfg, device, times, sweep=None, seed=0, vectors=500, progress=None):
    """The report's evaluations: per drift time with and without compensation, and per sweep
    value (at the first time, without compensation). Returns a dict of lists."""
    base = cfg.replace(**{"analog.device": device, "crossbar": "external"})
    work = workload(base, seed, vectors)
    out = {"workload": work.name, "times": [], "sweep": [], "ideal": None}
    total = 2 * len(times) + (len(sweep[1]) if sweep else 0) + 1
    done = 0

    def tick():
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    out["ideal"] = evaluate(cfg.replace(**{"analog.device": "none"}), work)
    tick()
    states = _states(base, work.W)
    arr = golden.analog.prepare(base.replace(**{"analog.time": times[0]}), states)
    out["adc_lsb_ua"] = float(golden.analog.microamps(base, arr.lsb))
    out["adc_full_scale_ua"] = out["adc_lsb_ua"] * (base.adc_max + 0.5)
    for t in times:
        row = {"time": t}
        for compensate in (False, True):
            c = base.replace(**{"analog.time": t, "analog.drift_compensation": compensate})
            row["compensated" if compensate else "plain"] = evaluate(c, work, states)
            tick()
        out["times"].append(row)
    if sweep:
        key, values = sweep
        for value in values:
            c = base.replace(**{key: value, "analog.time": times[0]})
            out["sweep"].append((value, evaluate(c, work)))
            tick()
    return out


def anchor_config(name):
    """Configurations of the papers' anchors (``--anchor``)."""
    from imcgen.core.config import load_config

    if name == "pcm256":
        # Sebastian et al., "Brain-inspired computing using phase-change memory devices"
        # (2018): a 256x256 Gaussian matrix on PCM, ~4-bit fixed-point precision. Here 8-bit
        # signed weights (differential pairs of 2-bit cells), 8-bit inputs, 8-bit ADCs.
        return load_config(overrides={"rows": 256, "tiles": 1, "outputs": 256,
                                      "input_bits": 8, "weight_bits": 8, "cell_bits": 2,
                                      "adc_bits": 8, "adcs": 64, "crossbar": "external"})
    raise ImcError("--anchor", name, "must be one of pcm256")


def format_time(seconds):
    for unit, size in (("y", _UNITS["y"]), ("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
