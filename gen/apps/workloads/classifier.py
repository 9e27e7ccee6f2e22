"""Multi-layer classifiers through the mapping layer (:mod:`imcgen.apps.mapping`): what the
``mlp``, ``cnn`` and ``model`` workloads share. A float model is quantized for the macro,
planned onto a grid of macros, run on the golden model for the whole test set and on the RTL
for the first ``--rtl`` test inputs (every macro run of every layer checked exactly), and its
accuracy reported float vs golden vs RTL."""

import numpy as np

from imcgen.apps import mapping
from imcgen.apps.workloads import Report, check_rtl

__all__ = ["digits", "evaluate", "add_common", "train_cnn"]


def digits(seed):
    """scikit-learn's bundled 8x8 digits (offline): pixel integers 0..16, the split of
    ``imcgen demo`` (a quarter for the test, stratified)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    X = d.data.astype(np.int64)
    return train_test_split(X, d.target, test_size=0.25, random_state=seed, stratify=d.target)


def add_common(parser):
    from imcgen.apps import workloads as common

    parser.add_argument("--quantize", choices=("channel", "layer"), default="channel",
                        help="weight scales: one per output channel (default) or per layer")
    parser.add_argument("--scale-bits", type=common.int_in(1, 24), default=16,
                        help="bits of each requantization scale (default 16)")


def evaluate(args, cfg, model, X_train, X_test, y_test, out_dir, progress, title, paper,
             name):
    """Quantize, plan, run golden and RTL, plot; the :class:`Report`."""
    cfg = cfg.replace(requant={"enabled": True, "scale_bits": args.scale_bits})
    int_layers, hidden, raw = mapping.compile_model(cfg, model, X_train * model.input_scale,
                                                    args.quantize)
    float_acc = float((model.forward(X_test * model.input_scale).argmax(1) == y_test).mean())
    result = mapping.run(int_layers, hidden, raw, X_test, progress)
    golden_acc = float((result.logits.argmax(1) == y_test).mean())
    rtl = None
    lines = [f"configuration: {cfg.rows} rows x {cfg.tiles} tiles, {cfg.outputs} outputs, "
             f"{cfg.input_bits}-bit inputs, {cfg.weight_bits}-bit weights, {cfg.adc_bits}-bit "
             f"ADCs; weights per {args.quantize}; hidden layers requantized in the output "
             f"stage (out_shift {hidden.out_shift if hidden else '-'}, "
             f"{args.scale_bits}-bit scales, {cfg.requant.rounding})", ""]
    lines += mapping.format_plan(int_layers, result)
    figures = [("accuracy, float model", f"{float_acc:.1%}", "-"),
               (f"accuracy, golden macro ({len(y_test)} test images)", f"{golden_acc:.1%}",
                paper)]
    if args.rtl:
        n = min(args.rtl, len(X_test))
        sub = mapping.run(int_layers, hidden, raw, X_test[:n])
        runs = [r for lr in sub.layers for r in lr.runs]
        rtl = check_rtl(runs, args.seed, args.engine, progress)
        same = bool(np.array_equal(sub.logits.argmax(1), result.logits[:n].argmax(1)))
        rtl_acc = float((sub.logits.argmax(1) == y_test[:n]).mean())
        figures.append((f"accuracy, RTL ({n} test images)",
                        f"{rtl_acc:.1%}" + ("" if same else " (differs!)"), "-"))
    plot = out_dir / f"{name}.png"
    _plot(plot, title, [("float", float_acc), ("golden", golden_acc)] +
          ([("RTL subset", rtl_acc)] if args.rtl else []), result, int_layers)
    data = {"float_accuracy": float_acc, "golden_accuracy": golden_acc,
            "test_images": int(len(y_test)), "config": cfg.to_dict(),
            "plan": [vars(il.plan) for il in int_layers],
            "reads_per_input": float(result.reads.mean()),
            "cycles_per_input": float(result.cycles.mean())}
    return Report(name, title, figures, lines, plot, rtl, data)


def _plot(path, title, bars, result, int_layers):
    from imcgen.apps.plots import pyplot

    plt = pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.bar([n for n, _ in bars], [v * 100 for _, v in bars], color="#4c72b0")
    for i, (_, v) in enumerate(bars):
        a.text(i, v * 100 + 1, f"{v:.1%}", ha="center")
    a.set_ylim(0, 105)
    a.set_ylabel("accuracy (%)")
    names = [il.plan.name for il in int_layers]
    b.bar(names, [lr.cycles.mean() for lr in result.layers], color="#dd8452")
    b.set_ylabel("cycles per input (golden)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def train_cnn(X, y, seed, channels=8, steps=400):
    """A small convolutional classifier, trained in float with NumPy (full batch, Adam):
    3x3 convolution to ``channels`` channels, ReLU, a dense layer to the classes. Inputs are
    pixels / 16."""
    rng = np.random.default_rng(seed)
    a = X / 16.0
    shape = (1, 8, 8)
    cols, (oh, ow) = mapping.im2col(a, shape, (3, 3))
    classes = int(y.max()) + 1
    Wc = rng.normal(0, 0.5, (9, channels))
    bc = np.zeros(channels)
    Wd = rng.normal(0, 0.1, (channels * oh * ow, classes))
    bd = np.zeros(classes)
    params = [Wc, bc, Wd, bd]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    onehot = np.eye(classes)[y]
    V = len(a)
    for t in range(1, steps + 1):
        z = cols @ Wc + bc                                    # (V*36, ch)
        h = np.maximum(z, 0)
        feat = h.reshape(V, oh * ow, channels).transpose(0, 2, 1).reshape(V, -1)
        logits = feat @ Wd + bd
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / V
        gWd, gbd = feat.T @ g, g.sum(0)
        gfeat = g @ Wd.T
        gh = gfeat.reshape(V, channels, oh * ow).transpose(0, 2, 1).reshape(-1, channels)
        gz = gh * (z > 0)
        gWc, gbc = cols.T @ gz, gz.sum(0)
        for i, grad in enumerate((gWc, gbc, gWd, gbd)):
            m[i] = 0.9 * m[i] + 0.1 * grad
            v[i] = 0.999 * v[i] + 0.001 * grad ** 2
            params[i] -= 0.01 * (m[i] / (1 - 0.9 ** t)) / (np.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8)
    Wc, bc, Wd, bd = params
    conv = mapping.Layer("conv", Wc.T.reshape(channels, 1, 3, 3), bc, True, 1, "conv1")
    dense = mapping.Layer("dense", Wd, bd, False, name="fc")
    return mapping.Model([conv, dense], shape, 1 / 16.0, "cnn-digits")
