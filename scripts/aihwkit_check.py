"""Cross-check the PCM device model (``analog.device = "pcm"``) against IBM's aihwkit.

Our model re-implements aihwkit's PCMLikeNoiseModel (the PCM statistics of Sebastian et al.,
"Brain-inspired computing using phase-change memory devices", 2018) with counter-based
Irwin-Hall Gaussians; this check samples both on the same target conductances (every level of a
4-bit cell) and compares, per level: programming error (mean, sd), drift exponent nu (mean, sd),
the median drift ratio g(t)/g0 at 1 h, 1 d and 1 y, and the rms read noise at 1 h. aihwkit runs
in a virtual environment of its own (torch is large and must stay out of the project venv), as a
subprocess that reads the targets from a .npy file and writes its samples to a .npz file.

Tolerance per row: 5 standard errors of the difference (both sides' errors, estimated from the
samples), plus the exact difference the Irwin-Hall approximation makes to the quantity under
aihwkit's closed-form formulas (quadrature, no sampling; for medians also half a step between two
of its 2041 values). With 128 rows, a false failure from sampling alone has probability below
1e-4. aihwkit's clock starts at t0: its ``t_inference`` is our ``analog.time`` minus t0 = 20 s.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from imcgen.core.config import G_BITS, load_config
from imcgen.golden import analog

# aihwkit 1.1.0: the newest release with a CPython 3.11 manylinux wheel (1.2.0 is an sdist whose
# build needs CMake, BLAS and a C++ toolchain); the check uses only its pure-Python PCM model.
# torch 2.13.0: aihwkit 1.1.0 asks for torch >= 2.9.1, and PyPI has no CPU-only Linux torch;
# this exact release is the CPU build our machines keep on disk for pip (about 190 MB instead
# of a several-GB CUDA build; elsewhere pip downloads the CUDA build, which runs on the CPU too).
# torchvision 0.28.0: aihwkit declares it, and 0.28 is the release built against torch 2.13 (any
# other would replace torch); the check never imports it.
PINS = ("torch==2.13.0", "torchvision==0.28.0", "aihwkit==1.1.0")
DEFAULT_VENV = Path(os.environ.get("IMCGEN_AIHWKIT_VENV",
                                   Path.home() / ".cache" / "imcgen" / "aihwkit-venv"))

CELL_BITS = 4
G_MAX_US, G_MIN_US = 25.0, 0.25  # aihwkit's g_max; an on/off ratio of 100
TIMES = (("1 h", 3600.0), ("1 d", 86400.0), ("1 y", 365.25 * 86400.0))
READ_AT = 3600.0  # s: the time of the read-noise comparison
SIGMAS = 5.0      # tolerance in standard errors of the difference

QUANTITIES = ("prog mean", "prog sd", "nu mean", "nu sd",
              *(f"g(t)/g0 median {label}" for label, _ in TIMES), "read sd 1 h")


class AihwkitUnavailable(Exception):
    """aihwkit (or torch) could not be installed or imported: exit status 2."""


# -- our side ---------------------------------------------------------------------------------

def pcm_config(cells, seed, time_s):
    """A pcm array (no stuck cells, write-once) with room for ``cells`` cells of every level."""
    levels = 1 << CELL_BITS
    rows = 1024
    outputs = max(1, -(-levels * cells // (rows * 2)))  # 2 physical columns per output
    return load_config(overrides={
        "rows": rows, "tiles": 1, "outputs": outputs, "cell_bits": CELL_BITS,
        "weight_bits": CELL_BITS + 1, "crossbar": "external", "analog.device": "pcm",
        "analog.g_max_us": G_MAX_US, "analog.g_min_us": G_MIN_US, "analog.seed": seed,
        "analog.time": float(time_s), "device.stuck_fraction": 0.0})


def targets(cells):
    """Target conductances in uS, (levels, cells): level L at g_min + L/cell_max (g_max - g_min)."""
    cfg = pcm_config(cells, 0, analog.T0)
    a = cfg.analog
    g = a.g_min_us + np.arange(cfg.cell_max + 1) / cfg.cell_max * (a.g_max_us - a.g_min_us)
    return np.repeat(g[:, None], cells, axis=1)


def sample_ours(cells, seed):
    """Our samples, (levels, cells) arrays under the keys every peer returns: ``prog`` g_prog -
    g_target; ``nu``; ``ratio 1 h`` .. ``ratio 1 y`` g(t)/g_prog; ``read var`` an unbiased
    per-cell estimate of the read-noise variance at ``READ_AT`` (uS^2); ``nu`` and the ratios
    NaN where g_prog = 0 (a cell at zero has no drift to measure).

    Everything comes out of ``analog.prepare``, the code under test: the programmed conductance
    at t0 (no drift yet), the drifted one at each time (same seed: the same cells), the exact
    read-noise variance at ``READ_AT``; nu is read back from the 1-year drift ratio."""
    levels = 1 << CELL_BITS

    def per_level(x):  # cell k of level L is flat cell L + k * levels
        return x.reshape(-1)[:levels * cells].reshape(cells, levels).T

    def run(time_s):
        cfg = pcm_config(cells, seed, time_s)
        states = (np.arange(cfg.tiles * cfg.rows * cfg.physical_columns) % levels).reshape(
            cfg.tiles, cfg.rows, cfg.physical_columns)
        arr = analog.prepare(cfg, states)
        return cfg, per_level(arr.g_us), per_level(arr.var)

    cfg, g0, _ = run(analog.T0)
    out = {"prog": g0 - targets(cells)}
    alive = g0 > 0
    for label, t in TIMES:
        _, gt, _ = run(t)
        out[f"ratio {label}"] = np.where(alive, gt / np.where(alive, g0, 1.0), np.nan)
    out["nu"] = -np.log(out[f"ratio {TIMES[-1][0]}"]) / np.log(TIMES[-1][1] / analog.T0)
    _, _, var = run(READ_AT)
    out["read var"] = var * (cfg.analog.g_max_us / (1 << G_BITS)) ** 2
    return out


# -- aihwkit's side ---------------------------------------------------------------------------

PEER = r'''
import json, sys
import numpy as np
import torch
import aihwkit
from aihwkit.inference.noise.pcm import PCMLikeNoiseModel

args = json.loads(sys.argv[1])
targets = torch.from_numpy(np.load(args["targets"]))  # float64 stays float64
torch.manual_seed(args["seed"])
noisy = PCMLikeNoiseModel(g_max=args["g_max"])
quiet = PCMLikeNoiseModel(g_max=args["g_max"], read_noise_scale=0.0)  # drift alone
t0 = noisy.t_0
g_prog = noisy.apply_programming_noise_to_conductance(targets)
nu = noisy.generate_drift_coefficients(targets)
alive = g_prog > 0
out = {"prog": (g_prog - targets).numpy(), "nu": torch.where(alive, nu, torch.nan).numpy()}
for label, t in args["times"]:
    # aihwkit's clock: t_inference counts from t0 and it drifts by ((t_inference + t0) / t0)^-nu
    g_t = quiet.apply_drift_noise_to_conductance(g_prog, nu, t - t0)
    out["ratio " + label] = torch.where(alive, g_t / torch.where(alive, g_prog, 1.0),
                                        torch.nan).numpy()
t = args["read_at"] - t0
r = noisy.apply_drift_noise_to_conductance(g_prog, nu, t) - \
    quiet.apply_drift_noise_to_conductance(g_prog, nu, t)
# the clamp at 0 cuts only the lower tail; z is symmetric, so 2 r^2 [r > 0] estimates sigma^2
out["read var"] = (2 * r * r * (r > 0)).numpy()
meta = {"aihwkit": aihwkit.__version__, "torch": torch.__version__, "t_0": t0,
        "t_read": noisy.t_read, "g_max": noisy.g_max, "prog_coeff": list(noisy.prog_coeff),
        "prog_coeff_g_max_reference": noisy.prog_coeff_g_max_reference}
np.savez(args["out"], meta=json.dumps(meta), **out)
'''


def ensure_venv(venv, log=sys.stderr):
    """The aihwkit venv's python, created and installed on first use (reused after): the marker
    file names the pins, so changing ``PINS`` reinstalls."""
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists() and marker.read_text() == "\n".join(PINS) and python.exists():
        return python
    start = time.monotonic()
    print(f"aihwkit_check: installing {' '.join(PINS)} into {venv} ...", file=log, flush=True)
    if not python.exists():
        run = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True,
                             text=True)
        if run.returncode:
            raise AihwkitUnavailable(f"python -m venv {venv} failed: {_last(run.stderr)}")
    run = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PINS],
                         capture_output=True, text=True)
    if run.returncode:
        raise AihwkitUnavailable(f"pip install {' '.join(PINS)} failed: {_last(run.stderr)}")
    marker.write_text("\n".join(PINS))
    print(f"aihwkit_check: installed in {time.monotonic() - start:.0f} s", file=log, flush=True)
    return python


def _last(text):
    """The informative part of a failed command's stderr: pip's ERROR lines (which name the
    requirement it could not satisfy), else a Python exception's last line, on one line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR: ") for line in lines
              if line.startswith("ERROR:") and "ResolutionImpossible" not in line]
    return "; ".join(errors) if errors else (lines or ["(no output)"])[-1]


def aihwkit_peer(python):
    """A peer that samples aihwkit's PCMLikeNoiseModel in the venv of ``python``."""
    def peer(g_target, seed):
        with tempfile.TemporaryDirectory() as tmp:
            np.save(Path(tmp) / "targets.npy", g_target)
            args = {"targets": str(Path(tmp) / "targets.npy"), "out": str(Path(tmp) / "out.npz"),
                    "seed": seed, "g_max": G_MAX_US, "times": TIMES,
                    "read_at": READ_AT}
            run = subprocess.run([str(python), "-c", PEER, json.dumps(args)],
                                 capture_output=True, text=True)
            if run.returncode:
                raise AihwkitUnavailable(f"the aihwkit sampler failed: {_last(run.stderr)}")
            with np.load(args["out"]) as data:
                out = {k: data[k] for k in data.files if k != "meta"}
                peer.meta = json.loads(str(data["meta"]))
        return out
    peer.meta = {}
    return peer


def constant_mismatches(meta):
    """aihwkit's model constants that differ from ours (empty if they agree)."""
    ours = {"t_0": analog.T0, "t_read": analog.T_READ, "g_max": G_MAX_US,
            "prog_coeff": [0.26348, 1.9650, -1.1731], "prog_coeff_g_max_reference": 25.0}
    return [f"{k}: aihwkit {meta.get(k)} vs ours {v}" for k, v in ours.items()
            if not np.allclose(meta.get(k, np.nan), v, rtol=1e-12, atol=0)]


# -- statistics -------------------------------------------------------------------------------

def estimate(quantity, x):
    """``(value, standard error)`` of a per-level statistic from samples ``x`` (NaN: no cell)."""
    x = x[np.isfinite(x)]
    n = x.size
    if quantity.startswith("read"):  # rms of per-cell variance estimates
        m = x.mean()
        return np.sqrt(m), x.std(ddof=1) / np.sqrt(n) / (2 * np.sqrt(m))
    if quantity.endswith("mean"):
        return x.mean(), x.std(ddof=1) / np.sqrt(n)
    if quantity.endswith("sd"):
        s = x.std(ddof=1)
        m4 = np.mean((x - x.mean()) ** 4)
        return s, np.sqrt(max(m4 - s**4, 0.0) / n) / (2 * s)  # delta method, any shape
    if "median" in quantity:  # distribution-free: ranks n/2 +- sqrt(n)/2 lie one SE away
        x = np.sort(x)
        lo = max(int(np.floor(n / 2 - np.sqrt(n) / 2)), 0)
        hi = min(int(np.ceil(n / 2 + np.sqrt(n) / 2)), n - 1)
        return np.median(x), (x[hi] - x[lo]) / 2
    raise ValueError(quantity)


def _samples_for(quantity, samples):
    if quantity.startswith("prog"):
        return samples["prog"]
    if quantity.startswith("nu"):
        return samples["nu"]
    if "median" in quantity:
        return samples[quantity.replace("g(t)/g0 median", "ratio")]
    return samples["read var"]


def _weighted_median(values, weights):
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return values[order][np.searchsorted(cum, 0.5 * cum[-1])]


def closed_form(g_target, z, w):
    """aihwkit's expected value of every quantity at conductance ``g_target`` (uS) when its
    standard normal variates are replaced by the distribution with support ``z`` and weights
    ``w``: quadrature, no sampling. Sebastian et al. (2018) / aihwkit PCMLikeNoiseModel."""
    g_max, t0, t_read = G_MAX_US, analog.T0, analog.T_READ
    w = w / w.sum()
    x = g_target / g_max
    sigma = g_max / 25.0 * (0.26348 + 1.9650 * x - 1.1731 * x * x)
    g_prog = np.maximum(g_target + sigma * z, 0.0)
    err = g_prog - g_target
    mean = np.sum(w * err)
    out = {"prog mean": mean, "prog sd": np.sqrt(np.sum(w * (err - mean) ** 2))}
    xr = max(x, 1e-7)
    mu = np.clip(-0.0155 * np.log(xr) + 0.0244, 0.049, 0.1)
    sd = np.clip(-0.0125 * np.log(xr) - 0.0059, 0.008, 0.045)
    nu = np.abs(mu + sd * z)  # independent of g_prog in aihwkit: conditioning on g_prog > 0 is moot
    nu_mean = np.sum(w * nu)
    out["nu mean"] = nu_mean
    out["nu sd"] = np.sqrt(np.sum(w * (nu - nu_mean) ** 2))
    nu_median = _weighted_median(nu, w)
    half_step = 0.5 * sd / analog.IRWIN_HALL8_SD  # nu between two of our Gaussian's values
    for label, t in TIMES:
        out[f"g(t)/g0 median {label}"] = (t / t0) ** -nu_median
        out[f"step {label}"] = (t / t0) ** -nu_median * (1 - (t / t0) ** -half_step)
    q = np.minimum(0.0088 / np.maximum((g_prog / g_max) ** 0.65, 1e-3), 0.2)
    s2 = np.log((READ_AT + t_read) / (2 * t_read))
    out["read sd 1 h"] = np.sqrt(s2 * np.sum(w * (g_prog * q) ** 2)
                                 * np.sum(w * (READ_AT / t0) ** (-2 * nu)))
    return out


def irwin_hall8():
    """Support and probabilities of our Gaussian (:func:`analog.gauss`): the sum of 8 uniform
    bytes, centred and scaled to unit variance."""
    p = np.ones(1)
    for _ in range(8):
        p = np.convolve(p, np.full(256, 1 / 256))
    return (np.arange(p.size) - 1020) / analog.IRWIN_HALL8_SD, p


def normal_grid():
    z = np.linspace(-9.0, 9.0, 180_001)
    return z, np.exp(-0.5 * z * z)


@dataclass
class Row:
    quantity: str
    level: int
    g_target: float
    ours: float
    aihwkit: float
    formula: float
    diff: float
    tol: float
    passed: bool


def compare(g_target, ours, theirs):
    """One :class:`Row` per (quantity, level): ``ours`` against ``theirs`` (sample dicts of
    (levels, cells) arrays) within ``SIGMAS`` standard errors plus the Irwin-Hall allowance."""
    ih, normal = irwin_hall8(), normal_grid()
    rows = []
    for level, g in enumerate(g_target[:, 0]):
        exact, approx = closed_form(g, *normal), closed_form(g, *ih)
        for quantity in QUANTITIES:
            a, sa = estimate(quantity, _samples_for(quantity, ours)[level])
            b, sb = estimate(quantity, _samples_for(quantity, theirs)[level])
            tol = SIGMAS * np.hypot(sa, sb) + abs(approx[quantity] - exact[quantity])
            if "median" in quantity:  # our sample median lands on one of our Gaussian's values
                tol += approx[quantity.replace("g(t)/g0 median", "step")]
            rows.append(Row(quantity, level, float(g), float(a), float(b),
                            float(exact[quantity]), float(a - b), float(tol),
                            bool(abs(a - b) <= tol)))
    return rows


def format_table(rows):
    head = (f"{'quantity':<20} {'lvl':>3} {'g_target':>8} {'ours':>11} {'aihwkit':>11} "
            f"{'formula':>11} {'diff':>11} {'tol':>10}  result")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.quantity:<20} {r.level:>3} {r.g_target:>8.3f} {r.ours:>11.5g} "
                     f"{r.aihwkit:>11.5g} {r.formula:>11.5g} {r.diff:>+11.3e} {r.tol:>10.3e}  "
                     f"{'pass' if r.passed else 'FAIL'}")
    return "\n".join(lines)


def check(cells, seed, peer):
    """Sample both sides on the same targets and compare: the rows."""
    g_target = targets(cells)
    return compare(g_target, sample_ours(cells, seed), peer(g_target, seed))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="exit status: 0 every row agrees, 1 a row disagrees, "
                                            "2 aihwkit could not be installed or run")
    parser.add_argument("--cells", type=int, default=20_000, help="cells per level (20000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of both sides (1)")
    parser.add_argument("--json", type=Path, help="also write the table to this JSON file")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV,
                        help=f"aihwkit's virtual environment (default {DEFAULT_VENV}, "
                             "or $IMCGEN_AIHWKIT_VENV)")
    args = parser.parse_args(argv)
    try:
        peer = aihwkit_peer(ensure_venv(args.venv))
        start = time.monotonic()
        rows = check(args.cells, args.seed, peer)
    except AihwkitUnavailable as e:
        print(f"aihwkit_check: error: {e}", file=sys.stderr)
        return 2
    elapsed = time.monotonic() - start
    meta = peer.meta
    print(f"aihwkit {meta['aihwkit']}, torch {meta['torch']}; {args.cells} cells per level, "
          f"seed {args.seed}; {elapsed:.1f} s")
    print(format_table(rows))
    print(f"formula: aihwkit's closed form with normal variates (quadrature); tol: {SIGMAS:g} "
          "standard errors of the difference + the Irwin-Hall allowance; aihwkit's t_inference "
          f"= t - t0 (t0 = {analog.T0:g} s)")
    mismatches = constant_mismatches(meta)
    for m in mismatches:
        print(f"constant differs: {m}")
    failed = sum(not r.passed for r in rows)
    print(f"aihwkit_check: {len(rows)} rows, {failed} outside tolerance")
    if args.json:
        args.json.write_text(json.dumps({"cells": args.cells, "seed": args.seed, "meta": meta,
                                         "sigmas": SIGMAS, "rows": [asdict(r) for r in rows]},
                                        indent=1))
    return 0 if not failed and not mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
