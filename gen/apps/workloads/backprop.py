"""``imcgen workload backprop``: one training step of the digits MLP with its backward pass
through the macro's transposed read.

The MLP 64 -> ``--hidden`` -> 10 (ReLU) is trained in float (scikit-learn, as ``imcgen
workload mlp``); its output layer ``W2`` (hidden x 10) is stored in one macro. A training step
on a batch of training digits then runs both directions of that layer on the same cells:

- forward, ``logits = h W2``: the hidden activations (quantized to the inputs' bits) as forward
  vectors, ``y = W^T x``;
- backward, ``dL/dh = g W2^T``: the softmax cross-entropy gradient of each digit (quantized per
  digit to the signed inputs' bits) as a backward vector, ``x = W y`` (Sebastian et al. 2020:
  "the same crossbar" for the backward pass of training).

The macro's ``dL/dh`` is compared with float's, and one SGD step of the hidden layer ``W1``
taken with each: the two updates and the training loss after each. The RTL runs the first
``--rtl`` digits as one mixed stream (each digit's forward vector, then its backward one) and
must equal the golden model exactly. The papers give no figure for this; float is the
reference.
"""

import numpy as np

from imcgen.core.errors import ImcError

SUMMARY = "one training step of the digits MLP: forward and backward (transposed) MVMs of a " \
          "layer through the same macro, against float"
CONFIG = True
RTL_DEFAULT = 4


def add_arguments(parser):
    from imcgen.apps import workloads as common

    parser.add_argument("--hidden", type=common.int_in(1, 1024), default=32,
                        help="hidden units, the rows of the layer in the macro (default 32)")
    parser.add_argument("--batch", type=common.int_in(1, 1347), default=256,
                        help="training digits in the step (default 256)")
    parser.add_argument("--lr", type=common.number_in(1e-6, 100.0), default=0.5,
                        help="SGD learning rate of the step (default 0.5)")
    parser.add_argument("--iterations", type=common.int_in(1, 1000), default=20,
                        help="float training iterations before the step (default 20: a model "
                             "still learning, whose gradients matter)")


def configuration(args):
    """The configuration with ``transposed`` and signed inputs (gradients are signed), checked
    to hold the layer: ``hidden`` rows, 10 outputs."""
    from imcgen.apps import workloads as common

    cfg = common.load(args)
    if cfg.input_rows < args.hidden:
        raise ImcError("--hidden", args.hidden, f"the layer needs a row per hidden unit: at most "
                                                f"rows * tiles = {cfg.input_rows}")
    if cfg.outputs < 10:
        raise ImcError("outputs", cfg.outputs, "the layer has 10 outputs (the digits' classes): "
                                               "at least 10")
    if cfg.input_bits < 2:
        raise ImcError("input_bits", cfg.input_bits, "signed gradients need at least 2 bits")
    return cfg.replace(transposed=True, input_signed=True)


def check(args):
    configuration(args)


def _quantize(values, top, axis=None):
    """``values / scale`` rounded to integers in ``-top..top`` and the scale (``max |v| /
    top``, per row with ``axis=1``)."""
    peak = np.abs(values).max(axis=axis, keepdims=axis is not None)
    scale = np.where(peak > 0, peak / top, 1.0)
    return np.clip(np.rint(values / scale), -top, top).astype(np.int64), scale


def _loss(W1, b1, W2, b2, X, onehot):
    h = np.maximum(X @ W1 + b1, 0)
    z = h @ W2 + b2
    z = z - z.max(1, keepdims=True)
    return float(-(onehot * (z - np.log(np.exp(z).sum(1, keepdims=True)))).sum(1).mean())


def step(cfg, W1, b1, W2, b2, X, y):
    """One step on the batch ``X`` (pixels / 16), float and through the macro (golden).

    Returns a dict of the arrays and figures (the macro's integer stream included)."""
    from imcgen import golden
    from imcgen.golden import transpose

    V, hidden = len(X), W2.shape[0]
    onehot = np.eye(10)[y]
    z1 = X @ W1 + b1
    h = np.maximum(z1, 0)
    # Float reference.
    logits_f = h @ W2 + b2
    p = np.exp(logits_f - logits_f.max(1, keepdims=True))
    g_f = (p / p.sum(1, keepdims=True) - onehot) / V
    dh_f = g_f @ W2.T
    # The layer in the macro: W2 per layer on the weights' bits, padded to the macro's rows
    # and outputs (zero weights add nothing either way).
    Wq, sw = _quantize(W2, cfg.weight_max)
    W = np.zeros((cfg.input_rows, cfg.outputs), dtype=np.int64)
    W[:hidden, :10] = Wq
    hq, sh = _quantize(h, cfg.input_max)
    H = np.zeros((V, cfg.input_rows), dtype=np.int64)
    H[:, :hidden] = hq
    forward = golden.run(cfg, W, H)
    logits_m = forward.y[:, :10] * (sw * sh) + b2
    p = np.exp(logits_m - logits_m.max(1, keepdims=True))
    g_m = (p / p.sum(1, keepdims=True) - onehot) / V
    gq, sg = _quantize(g_m, cfg.input_max, axis=1)
    G = np.zeros((V, cfg.outputs), dtype=np.int64)
    G[:, :10] = gq
    backward = transpose.run(cfg, W, G)
    dh_m = backward.x[:, :hidden] * (sw * sg)
    # The backward read alone: float's own gradient through the transposed read.
    gq_f, sg_f = _quantize(g_f, cfg.input_max, axis=1)
    G_f = np.zeros((V, cfg.outputs), dtype=np.int64)
    G_f[:, :10] = gq_f
    dh_b = transpose.run(cfg, W, G_f).x[:, :hidden] * (sw * sg_f)
    # The hidden layer's gradient and one SGD step with each.
    gW1_f = X.T @ (dh_f * (z1 > 0))
    gW1_m = X.T @ (dh_m * (z1 > 0))
    return dict(dh_f=dh_f, dh_m=dh_m, dh_b=dh_b, gW1_f=gW1_f, gW1_m=gW1_m, W=W, H=H, G=G,
                forward=forward, backward=backward, logits_f=logits_f, logits_m=logits_m)


def cosine(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) or 1.0))


def run(args, out_dir, progress):
    from imcgen.apps.workloads.classifier import digits
    from imcgen.apps.workloads.mlp import model

    cfg = configuration(args)
    X_train, X_test, y_train, y_test = digits(args.seed)
    net = model(X_train, y_train, args.hidden, args.seed, args.iterations)
    (W1, b1), (W2, b2) = [(layer.weights, layer.bias) for layer in net.layers]
    rng = np.random.default_rng(args.seed)
    pick = rng.choice(len(X_train), size=min(args.batch, len(X_train)), replace=False)
    X, y = X_train[pick] / 16.0, y_train[pick]
    s = step(cfg, W1, b1, W2, b2, X, y)
    onehot = np.eye(10)[y]
    before = _loss(W1, b1, W2, b2, X, onehot)
    after_f = _loss(W1 - args.lr * s["gW1_f"], b1, W2, b2, X, onehot)
    after_m = _loss(W1 - args.lr * s["gW1_m"], b1, W2, b2, X, onehot)
    def rel(a, b):
        return float(np.linalg.norm(a - b) / (np.linalg.norm(b) or 1.0))

    figures = [
        ("dL/dh, backward read of float's g: cosine", f"{cosine(s['dh_b'], s['dh_f']):.4f}",
         "-"),
        ("dL/dh, backward read of float's g: relative error",
         f"{rel(s['dh_b'], s['dh_f']):.4f}", "-"),
        ("dL/dh, forward and backward on the macro: cosine",
         f"{cosine(s['dh_m'], s['dh_f']):.4f}", "-"),
        ("dL/dh, forward and backward on the macro: relative error",
         f"{rel(s['dh_m'], s['dh_f']):.4f}", "-"),
        ("W1 update: cosine, macro vs float", f"{cosine(s['gW1_m'], s['gW1_f']):.4f}", "-"),
        ("training loss before the step", f"{before:.4f}", "-"),
        (f"loss after the step (lr {args.lr}), float gradient", f"{after_f:.4f}", "-"),
        (f"loss after the step (lr {args.lr}), macro gradient", f"{after_m:.4f}", "-"),
        ("forward: arg max agrees with float",
         f"{float((s['logits_m'].argmax(1) == s['logits_f'].argmax(1)).mean()):.1%}", "-"),
    ]
    fwd_cycles, back_cycles = s["forward"].cycles, s["backward"].cycles
    lines = [f"configuration: {cfg.rows} rows x {cfg.tiles} tiles, {cfg.outputs} outputs, "
             f"{cfg.input_bits}-bit signed inputs, {cfg.weight_bits}-bit weights, "
             f"{cfg.adc_bits}-bit ADCs, transposed; layer fc2 ({args.hidden} x 10) in one macro",
             f"batch of {len(X)} training digits: forward {fwd_cycles.mean():.1f} cycles and "
             f"{s['forward'].reads.sum(axis=1).mean():.1f} reads per digit, backward "
             f"{back_cycles.mean():.1f} cycles and {s['backward'].reads.mean():.1f} reads per "
             f"digit (golden)"]
    rtl = None
    if args.rtl:
        rtl = _check_rtl(cfg, s, min(args.rtl, len(X)), args.seed, progress)
    plot = out_dir / "backprop.png"
    _plot(plot, s, before, after_f, after_m, args.hidden)
    data = {"config": cfg.to_dict(), "batch": int(len(X)), "hidden": args.hidden,
            "lr": args.lr, "iterations": args.iterations,
            "dh_backward_cosine": cosine(s["dh_b"], s["dh_f"]),
            "dh_backward_relative_error": rel(s["dh_b"], s["dh_f"]),
            "dh_cosine": cosine(s["dh_m"], s["dh_f"]),
            "dh_relative_error": rel(s["dh_m"], s["dh_f"]),
            "w1_update_cosine": cosine(s["gW1_m"], s["gW1_f"]), "loss_before": before,
            "loss_after_float": after_f, "loss_after_macro": after_m,
            "forward_cycles": float(fwd_cycles.mean()),
            "backward_cycles": float(back_cycles.mean())}
    return _report(figures, lines, plot, rtl, data, args.hidden)


def _report(figures, lines, plot, rtl, data, hidden):
    from imcgen.apps.workloads import Report

    return Report("backprop", f"One training step of the MLP 64-{hidden}-10 on the digits: the "
                              "output layer forward and backward through one macro", figures,
                  lines, plot, rtl, data)


def _check_rtl(cfg, s, n, seed, progress):
    """The first ``n`` digits as one mixed stream on the RTL: each digit's forward vector,
    then its backward one; exact against the golden model."""
    import time

    from imcgen.apps.workloads import RtlCheck
    from imcgen.sim.api import simulate

    start = time.perf_counter()
    vectors = [v for k in range(n) for v in (s["H"][k], s["G"][k])]
    directions = ["forward", "backward"] * n
    result = simulate(cfg, s["W"], vectors, direction=directions, seed=seed,
                      progress=progress)
    # The stream's results are the golden step's own: the golden run above is what the step
    # used, so the RTL computed the same step.
    same = np.array_equal(result.y_golden[0::2, :cfg.outputs], s["forward"].y[:n]) and \
        np.array_equal(result.y_golden[1::2, :cfg.input_rows], s["backward"].x[:n])
    return RtlCheck(len(vectors), 1, result.values_match and same, result.cycles_match,
                    time.perf_counter() - start, result.seed)


def _plot(path, s, before, after_f, after_m, hidden):
    from imcgen.apps.plots import pyplot

    plt = pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    a.scatter(s["dh_f"].ravel(), s["dh_m"].ravel(), s=3, alpha=0.4, color="#4c72b0")
    lim = np.abs(s["dh_f"]).max() * 1.1 or 1.0
    a.plot([-lim, lim], [-lim, lim], color="#999999", linewidth=0.8)
    a.set_xlabel("dL/dh, float")
    a.set_ylabel("dL/dh, macro (transposed read)")
    a.set_title(f"backward through fc2 ({hidden} x 10)")
    names = ["before", "after, float", "after, macro"]
    b.bar(names, [before, after_f, after_m], color=["#999999", "#4c72b0", "#dd8452"])
    b.set_ylabel("training loss on the batch")
    b.set_title("one SGD step of fc1")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
