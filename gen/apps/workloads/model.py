"""``imcgen workload model``: your own model, described in a small TOML file with its arrays in
an ``.npz`` (docs/workloads.md, section 1), run across macros on your inputs.

The inputs are unsigned integers (``X.npy``, one row per input, ``input_shape`` features in
channel-first order) worth ``input_scale`` each; the activation scales are calibrated on them.
With ``--labels`` the accuracy is reported float vs golden vs RTL; without, the agreement of
the golden model's outputs with the float model's (argmax, and the RMS of the logits).
"""

SUMMARY = "a model file of dense and conv layers (TOML + .npz), planned onto macros and run"
CONFIG = True
RTL_DEFAULT = 2


def add_arguments(parser):
    from imcgen.apps.workloads.classifier import add_common

    parser.add_argument("--model", metavar="MODEL.toml", required=True,
                        help="the layers: input_shape, input_scale, [[layers]] with kind "
                             "(dense, conv), weights, bias, relu, stride")
    parser.add_argument("--weights", metavar="MODEL.npz", required=True,
                        help="the arrays the model file names")
    parser.add_argument("--inputs", metavar="X.npy", required=True,
                        help="unsigned integer inputs (V, features)")
    parser.add_argument("--labels", metavar="y.npy", help="integer class of each input")
    add_common(parser)


def _load(args):
    import numpy as np

    from imcgen.apps import mapping
    from imcgen.apps import workloads as common
    from imcgen.core.checks import load_array
    from imcgen.core.errors import ImcError

    cfg = common.load(args)
    net = mapping.load_model(args.model, args.weights)
    X = load_array("--inputs", args.inputs)
    features = int(np.prod(net.input_shape))
    if X.ndim != 2 or X.shape[1] != features or not len(X):
        raise ImcError("--inputs", f"shape {X.shape}",
                       f"must be (V >= 1, {features}): the model's input_shape "
                       f"{list(net.input_shape)}")
    if X.dtype.kind not in "iu" or X.min() < 0 or X.max() > cfg.input_max:
        bad = X.dtype.name if X.dtype.kind not in "iu" else int(X.min() if X.min() < 0
                                                                  else X.max())
        raise ImcError("--inputs", bad, f"must be integers in 0..{cfg.input_max} "
                                        f"(input_bits = {cfg.input_bits}, unsigned)")
    y = None
    if args.labels is not None:
        y = load_array("--labels", args.labels)
        if y.shape != (len(X),) or y.dtype.kind not in "iu" or y.min() < 0 or \
                y.max() >= net.layers[-1].n_out:
            raise ImcError("--labels", args.labels, f"must be {len(X)} integers in "
                                                    f"0..{net.layers[-1].n_out - 1}")
    mapping.compile_model(cfg.replace(requant={"enabled": True, "scale_bits":
                                               args.scale_bits}), net,
                          X[:1] * net.input_scale, args.quantize)  # refusals before work
    return cfg, net, X.astype(np.int64), y


def check(args):
    _load(args)


def run(args, out_dir, progress):
    import numpy as np

    from imcgen.apps import mapping
    from imcgen.apps.workloads import Report, check_rtl
    from imcgen.apps.workloads.classifier import evaluate

    cfg, net, X, y = _load(args)
    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"{net.name}: {len(net.layers)} layers from {args.model}, across macros"
    if y is not None:
        return evaluate(args, cfg, net, X, X, y, out_dir, progress, title, "-", "model")
    cfg = cfg.replace(requant={"enabled": True, "scale_bits": args.scale_bits})
    int_layers, hidden, raw = mapping.compile_model(cfg, net, X * net.input_scale,
                                                    args.quantize)
    result = mapping.run(int_layers, hidden, raw, X, progress)
    ref = net.forward(X * net.input_scale)
    agree = float((result.logits.argmax(1) == ref.argmax(1)).mean())
    rms = float(np.sqrt(np.mean((result.logits - ref) ** 2)))
    rtl = None
    if args.rtl:
        sub = mapping.run(int_layers, hidden, raw, X[:args.rtl])
        rtl = check_rtl([r for lr in sub.layers for r in lr.runs], args.seed, args.engine,
                        progress)
    lines = mapping.format_plan(int_layers, result)
    figures = [("argmax agreement with the float model", f"{agree:.1%}", "-"),
               ("RMS of the outputs against the float model", f"{rms:.4g}", "-")]
    plot = out_dir / "model.png"
    _scatter(plot, title, ref, result.logits)
    return Report("model", title, figures, lines, plot, rtl,
                  {"agreement": agree, "rms": rms, "inputs": int(len(X)),
                   "plan": [vars(il.plan) for il in int_layers]})


def _scatter(path, title, ref, got):
    """The macro's outputs against the float model's, every output of every input."""
    from imcgen.apps.plots import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot(ref.ravel(), got.ravel(), ".", ms=2, alpha=0.5)
    lo, hi = float(min(ref.min(), got.min())), float(max(ref.max(), got.max()))
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    ax.set_xlabel("float model")
    ax.set_ylabel("macro (golden model)")
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
