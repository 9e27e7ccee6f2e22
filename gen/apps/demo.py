"""``imcgen demo``: a digit classifier on the default macro, float vs golden vs RTL.

scikit-learn's bundled 8x8 digits (offline) train a linear classifier (logistic regression, no
intercept: the macro computes W.T x only). Its weights are quantized symmetrically onto the
macro's signed weight range; the pixels (0..16) are already 5-bit unsigned integers. The whole
held-out test set then runs through the RTL on Verilator with zero-skipping and with the dense
baseline, and every output and cycle count is compared with the golden model.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imcgen import golden
from imcgen.core.config import load_config
from imcgen.core.progress import Progress
from imcgen.sim.api import simulate
from imcgen.sim.generate import generate

__all__ = ["DemoReport", "run_demo", "train_and_quantize"]

REGULARIZATION = (0.003, 0.01, 0.03, 0.1)  # C values tried by cross-validation on the train set


@dataclass
class DemoReport:
    float_accuracy: float
    golden_accuracy: float
    rtl_accuracy: float
    rtl_matches_golden: bool
    cycles_dense: np.ndarray
    cycles_zero_skip: np.ndarray
    speedup: float
    build_seconds: float
    sim_seconds: float
    simulated_cycles: int
    out_dir: Path


def train_and_quantize(cfg, seed=0):
    """Fit the float classifier and quantize it; returns (W_float, W_int, scale, data, C)."""
    import warnings

    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = digits.data.astype(np.int64)  # pixel intensities 0..16
    X_train, X_test, y_train, y_test = train_test_split(
        X, digits.target, test_size=0.25, random_state=seed, stratify=digits.target)
    W, C = _fit_cached(X_train, y_train, seed, LogisticRegressionCV, warnings)
    scale = cfg.weight_max / np.abs(W).max()
    W_int = np.clip(np.round(W * scale), cfg.weight_min, cfg.weight_max).astype(np.int64)
    return W, W_int, scale, (X_train, X_test, y_train, y_test), C


def _fit_cached(X_train, y_train, seed, estimator, warnings):
    """The float classifier ``(W, C)``, fitted once per (data, seed, library versions) and kept
    in the cache: cross-validated fitting takes tens of seconds, the reports need it often."""
    import hashlib
    import os

    import sklearn

    from imcgen.sim.toolchain import cache_dir

    key = hashlib.sha256(repr((X_train.tobytes(), y_train.tobytes(), seed, REGULARIZATION,
                               sklearn.__version__, np.__version__)).encode()).hexdigest()[:20]
    path = cache_dir() / "classifiers" / f"digits-{key}.npz"
    try:
        with np.load(path) as saved:
            return saved["W"], float(saved["C"])
    except (OSError, KeyError, ValueError):
        pass  # absent or damaged: fit again
    from threadpoolctl import threadpool_limits

    # One BLAS thread: the problem is small, and threaded BLAS on it slows by 20x or more on a
    # busy 2-core machine (measured: 6 s against 2 min).
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")  # lbfgs convergence chatter on the unscaled pixels
        model = estimator(Cs=REGULARIZATION, cv=5, fit_intercept=False, max_iter=5000,
                          random_state=seed).fit(X_train, y_train)
    W, C = model.coef_.T, float(model.C_[0])  # W: (64 pixels, 10 classes)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(partial, W=W, C=C)
    os.replace(partial, path)  # atomic: a concurrent reader sees all or nothing
    return W, C


def run_demo(out_dir="out/demo", seed=0, out=sys.stdout, program=False, engine="cocotb"):
    """Run the demo end to end and print its report; returns a :class:`DemoReport`.

    With ``program`` the weights are also programmed by write-verify on an RRAM device (the
    default device noise) in the RTL and the golden model, and the accuracy with the
    programmed (imperfect) weights is reported next to the ideally loaded ones. ``engine``
    runs the test images of both schedules (``"fast"``: :mod:`imcgen.sim.fast`); programming and
    the waves need Python in the loop and always run on cocotb.
    """
    out_dir = Path(out_dir)
    cfg = load_config("default", overrides={"schedule": "zero_skip"})
    if cfg.input_rows != 64 or cfg.outputs != 10 or cfg.input_max < 16:
        raise SystemExit("the default preset must take 64 inputs of 0..16 and give 10 outputs")
    dense = cfg.replace(schedule="dense")
    say = out.write

    say(f"imcgen demo: 8x8 digits on the 'default' macro ({cfg.tiles} tiles x {cfg.rows} rows, "
        f"{cfg.outputs} outputs, {cfg.weight_bits}-bit weights over {cfg.slices} x "
        f"{cfg.cell_bits}-bit cells, {cfg.adcs} x {cfg.adc_bits}-bit SAR ADCs per tile)\n")
    W, W_int, scale, (_, X_test, _, y_test), C = train_and_quantize(cfg, seed)
    float_acc = float((np.argmax(X_test @ W, axis=1) == y_test).mean())
    expected = golden.run(cfg, W_int, X_test)
    golden_acc = float((np.argmax(expected.y, axis=1) == y_test).mean())
    say(f"  data: {len(y_test)} held-out test images, pixels 0..16 as {cfg.input_bits}-bit "
        f"unsigned inputs; weights x {scale:.2f} rounded to {cfg.weight_min}..{cfg.weight_max}\n")

    say("  generating Verilog ...\n")
    verilog_dir = out_dir / "verilog"
    generate(cfg, verilog_dir)
    results = {}
    for name, config in (("zero_skip", cfg), ("dense", dense)):
        say(f"  building and running {name} (Verilator, {engine} engine) ...\n")
        progress = Progress(f"  RTL {name}: images", stream=out)
        try:
            results[name] = simulate(config, W_int, X_test, seed=seed, progress=progress,
                                     engine=engine)
        finally:
            progress.close()
    zs, dn = results["zero_skip"], results["dense"]
    rtl_acc = float((np.argmax(zs.y, axis=1) == y_test).mean())
    matches = zs.match and dn.match
    programmed = None
    if program:
        from imcgen.golden.programming import summary

        pcfg = cfg.replace(**{"device.kind": "rram"})
        say("  programming the weights by write-verify (rram) and running the images (RTL) ...\n")
        progress = Progress("  RTL programmed: cells, then images", stream=out)
        try:
            programmed = simulate(pcfg, W_int, X_test, seed=seed, program="array",
                                  progress=progress)
        finally:
            progress.close()
        matches = matches and programmed.match

    say("  recording waves of the first 4 test images ...\n")
    waves_dir = out_dir / "waves"
    simulate(cfg, W_int, X_test[:4], seed=seed, waves_dir=waves_dir)

    speedup = float(dn.cycles.mean() / zs.cycles.mean())
    simulated = int(zs.cycles.sum() + dn.cycles.sum())
    sim_seconds = zs.sim_seconds + dn.sim_seconds
    bound = zs.reads.sum(axis=1) * cfg.column_groups * (cfg.adc_bits + 1) + 32
    say("\n")
    say(f"  accuracy   float model (logistic regression, C={C:g})   {100 * float_acc:6.2f} %\n")
    say(f"             quantized golden model                      {100 * golden_acc:6.2f} %\n")
    say(f"             RTL on Verilator (zero_skip)                {100 * rtl_acc:6.2f} %\n")
    if programmed is not None:
        figures = summary(pcfg, programmed.program_golden[0])
        p_golden = float((np.argmax(programmed.y_golden, axis=1) == y_test).mean())
        p_rtl = float((np.argmax(programmed.y, axis=1) == y_test).mean())
        changed = int((programmed.y_golden != expected.y).any(axis=1).sum())
        say(f"  programmed golden model (write-verify, rram)           {100 * p_golden:6.2f} % "
            f"({100 * (p_golden - golden_acc):+.2f} points against ideal weights)\n")
        say(f"  programmed RTL on Verilator                            {100 * p_rtl:6.2f} %\n")
        say(f"  programming: {figures['cells']} cells, {figures['ok']} in tolerance, mean "
            f"relative error {100 * figures['mean_relative_error']:.2f} %, "
            f"{figures['mean_pulses']:.2f} pulses per cell; {changed} of {len(y_test)} images "
            f"have outputs that differ from ideal weights\n")
    verdict = "equal" if matches else "DIFFERENT"
    say(f"  RTL vs golden: outputs and cycle counts {verdict} for all {len(y_test)} images "
        f"in both schedules\n")
    say(f"  cycles per image   dense {dn.cycles.mean():7.1f}   zero_skip {zs.cycles.mean():7.1f} "
        f"(min {zs.cycles.min()}, max {zs.cycles.max()})   speedup {speedup:.2f}x\n")
    say(f"  ADC bound (reads x groups x (adc_bits+1) + 32): zero_skip uses at most "
        f"{(zs.cycles / bound).max():.3f} of it\n")
    say(f"  RTL speed: {simulated} cycles simulated in {sim_seconds:.1f} s "
        f"({simulated / sim_seconds / 1000:.1f}k cycles/s, {engine} engine); builds "
        f"{zs.build_seconds:.1f} s + {dn.build_seconds:.1f} s (cached by Verilog hash)\n")
    say(f"  Verilog  {verilog_dir / 'imc_macro.v'}  (+ imc_macro.vlt, manifest.json)\n")
    say(f"  waves    gtkwave {waves_dir / 'dump.vcd'} {waves_dir / 'imc_macro.gtkw'}\n")
    if not matches:
        say(zs.mismatch_report() + "\n" + dn.mismatch_report() + "\n")
        if programmed is not None and not programmed.match:
            say(programmed.mismatch_report() + "\n")
    return DemoReport(float_acc, golden_acc, rtl_acc, matches, dn.cycles, zs.cycles, speedup,
                      zs.build_seconds + dn.build_seconds, sim_seconds, simulated, out_dir)
