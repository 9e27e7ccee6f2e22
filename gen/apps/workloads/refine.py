"""``imcgen workload refine``: mixed-precision iterative refinement of ``A x = b`` on the macro.

After Le Gallo et al., "Mixed-precision in-memory computing" (Nature Electronics, 2018): a
low-precision unit (here the macro with the noisy PCM model) does the bulk of the work, the
matrix-vector products of an inexact inner solver; a high-precision unit (here the host, in
float64) computes the residual and updates the solution, so the solution reaches a residual
the macro alone never could.

The scheme (docs/workloads.md, section "refine"):

- ``A`` (``n x n``, symmetric positive definite, condition number ``--condition``) is stored
  once in the macro as ``W = round(A.T / s)`` with one scale per output column,
  ``s_j = max_i |A_ji| / weight_max``; the cells are loaded once and the PCM model adds its
  programming error (open loop, no write-verify), the same for every product.
- The ADC range is calibrated (``analog.adc_range = "calibrated"``: the largest read of the
  programmed array fills the ADC) and one read covers a whole tile (``rows_per_read = rows``),
  so ``--adc-bits`` sets the resolution of every read.
- The host calibrates the macro's gain once, by least squares from a batch of random vectors
  against their exact integer products (the macro's output units then read as ``X @ W``).
- One product ``A v`` on the macro: ``v`` scaled to the signed integer inputs
  (``v / max |v| * input_max``, rounded), run, rescaled by the gain, the input scale and the
  column scales. Read and comparator noise are keyed by the macro's read counter, which the
  host carries from product to product, so every product sees fresh noise.
- Outer loop (float64): ``r = b - A x``; stop when ``||r|| / ||b|| <= --tol``; else solve
  ``A z = r`` with ``--inner`` conjugate-gradient iterations whose products run on the macro,
  and ``x += z``. It also stops, reported as not converged, after ``--max-iter`` iterations,
  when the residual has not improved for ``STALL`` iterations, or when it grows past
  ``DIVERGED`` times ``||b||``.

The workload solves the base point (``--noise``, ``--adc-bits``) and then sweeps the device
noise (``NOISE_SWEEP``, at ``--adc-bits``) and the ADC resolution (``ADC_SWEEP``, at
``--noise``), each point a separate solve from the same ``A`` and ``b``.
"""

import math
import time
from dataclasses import dataclass

import numpy as np

from imcgen.core.errors import ImcError
from imcgen.core.options import int_in, number_in

__all__ = ["SUMMARY", "RTL_DEFAULT", "NOISE_SWEEP", "ADC_SWEEP", "Solve", "macro_config",
           "system", "Macro", "solve", "add_arguments", "check", "run"]

SUMMARY = ("mixed-precision iterative refinement of A x = b after Le Gallo et al. (2018): "
           "inner CG products on the noisy PCM macro, residuals and updates in float64")
RTL_DEFAULT = 4

#: Device noise scales swept (programming and read noise of the PCM model, 1 = the model).
NOISE_SWEEP = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
#: ADC resolutions swept.
ADC_SWEEP = (2, 3, 4, 5, 6, 7, 8, 10, 12)
#: Iterations without a new lowest residual after which a solve counts as stalled.
STALL = 8
#: A residual above this many times ``||b||`` counts as diverged.
DIVERGED = 1e3
#: Random vectors of the gain calibration (one batch).
CALIBRATION_VECTORS = 32
ROWS = 32  # rows per tile: tiles = ceil(n / ROWS)


def macro_config(n, adc_bits=8, noise=1.0, cell_bits=2, input_bits=8, weight_bits=8, seed=0):
    """The macro holding an ``n x n`` matrix: signed inputs, the external crossbar with the
    PCM analog model (programming and read noise scaled by ``noise``), a calibrated ADC range
    and one read per tile and plane."""
    from imcgen.core.config import MacroConfig

    tiles = -(-n // ROWS)
    return MacroConfig(
        rows=ROWS, tiles=tiles, outputs=n, input_bits=input_bits, input_signed=True,
        weight_bits=weight_bits, cell_bits=cell_bits, adc_bits=adc_bits, adcs=min(64, 2 * n),
        rows_per_read=ROWS, crossbar="external",
        tables={"analog": {"device": "pcm", "adc_range": "calibrated", "seed": seed % 2**32,
                           "prog_noise": noise, "read_noise": noise}})


def system(n, condition, seed):
    """``(A, b)``: a random symmetric positive definite ``A`` whose eigenvalues spread
    geometrically from 1 to ``condition`` (random orthogonal eigenvectors), and a random
    ``b`` of unit norm."""
    rng = np.random.default_rng([seed, n])
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    q *= np.sign(np.diag(r))  # Haar-distributed eigenvectors
    eig = np.geomspace(1.0, condition, n)
    A = (q * eig) @ q.T
    A = (A + A.T) / 2
    b = rng.standard_normal(n)
    return A, b / np.linalg.norm(b)


class Macro:
    """The matrix ``A`` stored in the macro, and its products ``A v`` in float64 units.

    ``W`` (``input_rows x outputs`` int) holds ``A.T`` (zero rows pad it to whole tiles) with
    one scale per column (:attr:`scales`); :attr:`gain` is calibrated once; :attr:`inputs`
    keeps every integer vector sent (the RTL subset replays them).
    """

    def __init__(self, cfg, A, seed=0):
        from imcgen.golden import device, weight_mapper

        n = A.shape[0]
        self.cfg, self.n = cfg, n
        self.scales = np.abs(A).max(axis=1) / cfg.weight_max  # row j of A = column j of W
        self.scales[self.scales == 0] = 1.0
        W = np.zeros((cfg.input_rows, cfg.outputs), dtype=np.int64)
        W[:n] = np.rint(A.T / self.scales).astype(np.int64)
        self.W = np.clip(W, cfg.weight_min, cfg.weight_max)
        self.states = device.load_levels(cfg, device.initial_states(cfg),
                                         weight_mapper.cell_levels(cfg, self.W))
        self.next_read = np.zeros(cfg.tiles, dtype=np.int64)  # the macro's read counter
        self.products = 0
        self.inputs = []
        rng = np.random.default_rng([seed, 2])
        X = rng.integers(cfg.input_min, cfg.input_max + 1, size=(CALIBRATION_VECTORS,
                                                                 cfg.input_rows))
        X[:, n:] = 0
        sums = self._run(X, keep=False)
        exact = (X @ self.W).astype(np.float64)
        self.gain = float((sums * exact).sum() / (exact * exact).sum())
        self.error = float(np.linalg.norm(sums / self.gain - exact) / np.linalg.norm(exact))

    def _run(self, X, keep=True):
        from imcgen import golden
        from imcgen.golden import row_scheduler

        counts = row_scheduler.reads_per_tile(self.cfg, X)
        start = self.next_read + np.cumsum(counts, axis=0) - counts
        result = golden.run(self.cfg, None, X, states=self.states, read_start=start)
        self.next_read = self.next_read + counts.sum(axis=0)
        if keep:
            self.inputs.append(X)
        return result.sums.astype(np.float64)

    def matvec(self, v):
        """``A v`` through the macro (``v`` float, shape ``(n,)``)."""
        top = np.abs(v).max()
        if top == 0:
            return np.zeros(self.n)
        step = top / self.cfg.input_max
        X = np.zeros((1, self.cfg.input_rows), dtype=np.int64)
        X[0, :self.n] = np.clip(np.rint(v / step), self.cfg.input_min, self.cfg.input_max)
        self.products += 1
        return self._run(X)[0] * (step / self.gain) * self.scales


def inner_cg(macro, r, iterations):
    """``z ~ A^-1 r``: conjugate gradients from 0 whose products run on the macro. Stops early
    when a search direction has no positive curvature on the noisy operator."""
    z = np.zeros_like(r)
    res = r.copy()
    p = res.copy()
    rho = res @ res
    for _ in range(iterations):
        q = macro.matvec(p)
        curvature = p @ q
        if not curvature > 0:
            break
        alpha = rho / curvature
        z += alpha * p
        res -= alpha * q
        rho, rho_old = res @ res, rho
        if rho == 0:
            break
        p = res + (rho / rho_old) * p
    return z


@dataclass
class Solve:
    """One refinement run: ``status`` (converged, stalled, diverged or max_iter), ``history``
    (relative residual per outer iteration, iteration 0 first), ``products`` (MVMs on the
    macro), ``mvm_error`` (the macro's relative error after the gain calibration)."""

    status: str
    history: list
    products: int
    mvm_error: float
    seconds: float

    @property
    def converged(self):
        return self.status == "converged"

    @property
    def iterations(self):
        return len(self.history) - 1

    @property
    def residual(self):
        return self.history[-1]

    def to_dict(self):
        return {"status": self.status, "iterations": self.iterations,
                "residual": self.residual, "products": self.products,
                "mvm_error": self.mvm_error, "history": list(self.history),
                "seconds": self.seconds}


def solve(cfg, A, b, inner=2, tol=1e-6, max_iter=60, seed=0):
    """Mixed-precision refinement of ``A x = b`` with ``A`` stored in the macro ``cfg``
    (``seed``: the gain calibration's vectors); returns ``(Solve, x, Macro)``."""
    start = time.perf_counter()
    macro = Macro(cfg, A, seed)
    norm_b = np.linalg.norm(b)
    x = np.zeros_like(b)
    history = []
    best, since = math.inf, 0
    status = "max_iter"
    for k in range(max_iter + 1):
        r = b - A @ x  # float64, the exact A
        rel = float(np.linalg.norm(r) / norm_b)
        history.append(rel)
        if rel <= tol:
            status = "converged"
            break
        if not math.isfinite(rel) or rel > DIVERGED:
            status = "diverged"
            break
        best, since = (rel, 0) if rel < best else (best, since + 1)
        if since >= STALL:
            status = "stalled"
            break
        if k < max_iter:
            x = x + inner_cg(macro, r, inner)
    return Solve(status, history, macro.products, macro.error,
                 time.perf_counter() - start), x, macro


# -- command line ------------------------------------------------------------------------------

#: Floor of ``--tol`` per unit of condition number: float64 residuals of a backward-stable
#: update bottom out near machine epsilon times the condition number.
TOL_FLOOR = 100 * np.finfo(np.float64).eps

_OPTION = {"adc_bits": "--adc-bits", "cell_bits": "--cell-bits", "input_bits": "--input-bits",
           "weight_bits": "--weight-bits", "outputs": "--size", "tiles": "--size",
           "analog.prog_noise": "--noise", "analog.read_noise": "--noise"}


def add_arguments(parser):
    parser.add_argument("--size", type=int_in(8, 256), default=64, metavar="N",
                        help="unknowns n of the system (default 64; the macro gets "
                             f"ceil(n / {ROWS}) tiles of {ROWS} rows and n outputs)")
    parser.add_argument("--condition", type=number_in(1.0, 1e4), default=10.0, metavar="K",
                        help="condition number of the symmetric positive definite A "
                             "(default 10)")
    parser.add_argument("--noise", type=number_in(0.0, 100.0), default=1.0, metavar="S",
                        help="scale of the PCM model's programming and read noise at the base "
                             "point (default 1: the model; the sweep adds 0)")
    parser.add_argument("--adc-bits", type=int_in(1, 16), default=8, metavar="N",
                        help="ADC resolution at the base point (default 8)")
    parser.add_argument("--cell-bits", type=int_in(1, 4), default=2, metavar="N",
                        help="bits per PCM cell (default 2)")
    parser.add_argument("--input-bits", type=int_in(2, 16), default=8, metavar="N",
                        help="bits of the signed inputs each product's vector is scaled to "
                             "(default 8)")
    parser.add_argument("--weight-bits", type=int_in(2, 16), default=8, metavar="N",
                        help="bits of the signed weights A is stored in (default 8)")
    parser.add_argument("--inner", type=int_in(1, 64), default=2, metavar="K",
                        help="conjugate-gradient iterations per correction, each one product "
                             "on the macro (default 2)")
    parser.add_argument("--max-iter", type=int_in(1, 10_000), default=60, metavar="N",
                        help="outer iterations before a solve counts as not converged "
                             "(default 60)")
    parser.add_argument("--tol", type=number_in(0.0, 0.5), default=1e-6, metavar="T",
                        help="relative residual ||b - A x|| / ||b|| to reach (default 1e-6)")
    parser.add_argument("--sweep", choices=("both", "noise", "adc", "none"), default="both",
                        help="what else to solve for: the device noise "
                             f"({', '.join(f'{s:g}' for s in NOISE_SWEEP)}), the ADC bits "
                             f"({', '.join(map(str, ADC_SWEEP))}), both (default) or none")


def _config(args, **changes):
    values = {"adc_bits": args.adc_bits, "noise": args.noise, "cell_bits": args.cell_bits,
              "input_bits": args.input_bits, "weight_bits": args.weight_bits,
              "seed": args.seed, **changes}
    return macro_config(args.size, **values)


def check(args):
    floor = TOL_FLOOR * args.condition
    if args.tol < floor:
        raise ImcError("--tol", args.tol, f"cannot be reached in float64 with --condition "
                                          f"{args.condition:g}: at least {floor:.1e}")
    try:
        cfg = _config(args)
    except ImcError as err:
        raise ImcError(_OPTION.get(err.field, err.field), err.value, err.allowed) from None
    if args.rtl:
        from imcgen.apps.workloads import check_engine

        check_engine(cfg, args.engine)


def _sweeps(args):
    """``[(axis, value, cfg)]`` of the sweep points."""
    points = []
    if args.sweep in ("both", "noise"):
        points += [("noise", s, _config(args, noise=s)) for s in NOISE_SWEEP]
    if args.sweep in ("both", "adc"):
        points += [("adc_bits", a, _config(args, adc_bits=a)) for a in ADC_SWEEP]
    return points


def _limit(points, worse):
    """``(first failing, last converging)`` walking the sweep from its best end: the first
    value that does not converge and the value before it (None when there is none)."""
    ordered = sorted(points, key=lambda p: p[0], reverse=not worse)
    last = None
    for value, result in ordered:
        if not result.converged:
            return value, last
        last = value
    return None, last


def run(args, out_dir, progress):
    from imcgen.apps.workloads import Report, check_rtl

    A, b = system(args.size, args.condition, args.seed)
    sweeps = _sweeps(args)
    total = 1 + len(sweeps)
    options = dict(inner=args.inner, tol=args.tol, max_iter=args.max_iter, seed=args.seed)
    cfg = _config(args)
    base, x, macro = solve(cfg, A, b, **options)
    progress(1, total)
    results = []
    for n, (axis, value, point) in enumerate(sweeps):
        results.append((axis, value, solve(point, A, b, **options)[0]))
        progress(2 + n, total)
    noise = [(v, r) for a, v, r in results if a == "noise"]
    adc = [(v, r) for a, v, r in results if a == "adc_bits"]

    rtl = None
    if args.rtl:
        X = np.concatenate(macro.inputs)[:args.rtl]
        rtl = check_rtl([(cfg, macro.W, X)], args.seed, args.engine, progress)

    def outcome(result):
        return f"{result.iterations}" if result.converged else \
            f"not converged ({result.status} after {result.iterations})"

    tol = f"{args.tol:g}"
    figures = [
        (f"outer iterations to relative residual <= {tol}",
         f"{outcome(base)} (n = {args.size}, noise x{args.noise:g}, {args.adc_bits}-bit ADC)",
         "24 (5000 equations, 1 Mb PCM chip)"),
        ("final relative residual", f"{base.residual:.1e}", "1e-6"),
        ("equations", str(args.size), "5000"),
        ("products on the macro", f"{base.products} ({args.inner} CG steps per iteration)",
         "-"),
        ("relative MVM error of the macro", f"{100 * base.mvm_error:.1f} % (calibration batch)",
         "-"),
    ]
    if noise:
        fail, ok = _limit(noise, worse=True)
        figures.append(("device noise where it stops converging",
                        "converges at every scale swept" if fail is None else
                        f"x{fail:g} (converges up to x{ok:g})" if ok is not None else
                        f"x{fail:g} (converges at none swept)", "-"))
    if adc:
        fail, ok = _limit(adc, worse=False)
        figures.append(("ADC bits where it stops converging",
                        "converges at every resolution swept" if fail is None else
                        f"{fail} (converges from {ok})" if ok is not None else
                        f"{fail} (converges at none swept)", "-"))
    lines = [
        f"A: {args.size}x{args.size} symmetric positive definite, condition {args.condition:g} "
        f"(seed {args.seed}); b random, ||b|| = 1",
        f"macro: {cfg.tiles} tile(s) of {cfg.rows} rows, {cfg.outputs} outputs, "
        f"{cfg.weight_bits}-bit weights (one scale per column) in {cfg.cell_bits}-bit PCM "
        f"cells, {cfg.input_bits}-bit signed inputs, {cfg.adc_bits}-bit ADC (calibrated range, "
        f"one read per tile and plane), gain {macro.gain:.3f} (calibrated)",
        f"solver: outer refinement in float64, inner {args.inner} CG step(s) on the macro, "
        f"stop at {tol}, after {args.max_iter} iterations or {STALL} without progress",
    ]
    for title, rows in (("device noise scale", noise), ("ADC bits", adc)):
        if rows:
            lines += ["", f"{title:<20}  iterations  residual  status"]
            lines += [f"{v:<20g}  {r.iterations:<10}  {r.residual:<8.1e}  {r.status}"
                      for v, r in rows]
    plot = _plot(out_dir, args, base, noise, adc)
    data = {
        "options": {k: getattr(args, k) for k in ("size", "condition", "noise", "adc_bits",
                                                  "cell_bits", "input_bits", "weight_bits",
                                                  "inner", "max_iter", "tol", "sweep", "seed")},
        "config": cfg.to_dict(), "gain": macro.gain, "base": base.to_dict(),
        "noise_sweep": [{"noise": v, **r.to_dict()} for v, r in noise],
        "adc_sweep": [{"adc_bits": v, **r.to_dict()} for v, r in adc],
        "solution_error": float(np.linalg.norm(x - np.linalg.solve(A, b))
                                / np.linalg.norm(np.linalg.solve(A, b))),
    }
    return Report("refine", "Mixed-precision iterative refinement of A x = b on the noisy PCM "
                  "macro (Le Gallo et al. 2018)", figures, lines, plot, rtl, data)


def _plot(out_dir, args, base, noise, adc):
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.4))
    ax = axes[0]
    ax.semilogy(base.history, "o-", ms=3, color="black",
                label=f"base: noise x{args.noise:g}, {args.adc_bits}-bit ADC")
    for value, result in noise:
        if value != args.noise:
            ax.semilogy(result.history, "-", alpha=0.6, label=f"noise x{value:g}")
    ax.axhline(args.tol, color="tab:red", ls="--", lw=1, label=f"tolerance {args.tol:g}")
    ax.set_xlabel("outer iteration")
    ax.set_ylabel("relative residual ||b - A x|| / ||b||")
    ax.set_ylim(min(args.tol / 10, ax.get_ylim()[0]), 10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(f"n = {args.size}, condition {args.condition:g}, {args.inner} CG steps inner",
                 fontsize=9)
    for ax, rows, label, log in ((axes[1], noise, "device noise scale (x the PCM model)", True),
                                 (axes[2], adc, "ADC bits", False)):
        if not rows:
            ax.set_visible(False)
            continue
        ok = [(v, r.iterations) for v, r in rows if r.converged]
        bad = [(v, r.iterations) for v, r in rows if not r.converged]
        shown = [(max(v, 0.25) if log else v) for v, _ in rows]
        if ok:
            ax.plot([max(v, 0.25) if log else v for v, _ in ok], [k for _, k in ok], "o-",
                    label="converged")
        if bad:
            ax.plot([max(v, 0.25) if log else v for v, _ in bad], [args.max_iter] * len(bad),
                    "x", color="tab:red", ms=9, label="not converged")
        if log:
            ax.set_xscale("log", base=2)
            ax.set_xticks(shown, [f"{v:g}" for v, _ in rows])
        else:
            ax.set_xticks(shown)
        ax.set_xlabel(label)
        ax.set_ylabel(f"outer iterations to {args.tol:g}")
        ax.set_ylim(0, args.max_iter * 1.08)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[1].set_title(f"{args.adc_bits}-bit ADC (0 drawn at 0.25)", fontsize=9)
    axes[2].set_title(f"noise x{args.noise:g}", fontsize=9)
    fig.tight_layout()
    path = out_dir / "refine.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
