"""The mapping layer: layers larger than one macro, planned onto a grid of macros and run on the
golden model or the RTL (docs/workloads.md, section 1).

A dense layer ``y = x @ W`` (``W``: ``n_in x n_out``) takes ``ceil(n_in / input_rows)`` row
blocks, whose partial sums a digital combiner adds, by ``ceil(n_out / outputs)`` column blocks,
concatenated: one macro per block, each holding its block of ``W`` (zero-padded) in its own
cells, all running the same vectors in parallel. A convolution is a dense layer over im2col
patches. The weights are quantized from a float model symmetrically, per layer or per output
channel (:func:`quantize`); activations are unsigned ``input_bits``-bit integers with a
per-layer scale calibrated on data (:func:`calibrate`).

Requantization (``[requant]``) runs in the macro's output stage when a layer fits one row block,
so its outputs are the next layer's inputs directly; with several row blocks the combiner adds
the blocks' exact sums first and applies the same stage (``golden.output_stage.apply``) after
them. Every macro of a model shares one of two configurations, so the RTL needs two builds:
``hidden`` (requantization, ReLU, outputs saturated to the next layer's input range) and
``raw`` (the exact sums; the last layer's logits are formed from them on the host).

Counts come from the golden model: the reads each macro issued and the cycles each vector took;
macros of a layer run in parallel, so a layer's cycles per vector are the slowest macro's.
"""

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imcgen import golden
from imcgen.core.errors import ImcError
from imcgen.golden.output_stage import apply as output_stage

__all__ = ["Layer", "Model", "Plan", "quantize", "calibrate", "im2col", "plan", "configs",
           "compile_model", "check_config", "run", "load_model", "save_model", "LayerRun",
           "RunResult", "format_plan"]

KINDS = ("dense", "conv")


# -- float model --------------------------------------------------------------------------------


@dataclass
class Layer:
    """One layer of a float model.

    ``dense``: ``weights`` ``(n_in, n_out)``; ``conv``: ``weights`` ``(out_ch, in_ch, kh, kw)``
    applied with ``stride`` and no padding to inputs ``(in_ch, h, w)`` (channel-first,
    flattened). ``bias`` ``(n_out,)`` or ``(out_ch,)``; ``relu`` after it.
    """

    kind: str
    weights: np.ndarray
    bias: np.ndarray
    relu: bool = True
    stride: int = 1
    name: str = ""

    @property
    def n_out(self):
        return self.weights.shape[1] if self.kind == "dense" else self.weights.shape[0]


@dataclass
class Model:
    """Layers and the input's shape (``(features,)`` or ``(channels, h, w)``); inputs are
    unsigned integers of ``input_scale`` each (pixels: 1.0)."""

    layers: list
    input_shape: tuple
    input_scale: float = 1.0
    name: str = "model"

    def shapes(self):
        """The input shape of each layer and the output shape of the last."""
        shape, out = tuple(self.input_shape), []
        for layer in self.layers:
            out.append(shape)
            if layer.kind == "conv":
                c, h, w = shape
                oc, ic, kh, kw = layer.weights.shape
                s = layer.stride
                shape = (oc, (h - kh) // s + 1, (w - kw) // s + 1)
            else:
                shape = (layer.n_out,)
        return out + [shape]

    def forward(self, X):
        """The float model on ``X`` (real-valued inputs, ``(V, features)``): the logits."""
        a = np.asarray(X, dtype=np.float64)
        for layer, shape in zip(self.layers, self.shapes(), strict=False):
            a = _float_layer(layer, a, shape)
        return a


def _float_layer(layer, a, shape):
    if layer.kind == "conv":
        cols, (oh, ow) = im2col(a, shape, layer.weights.shape[2:], layer.stride)
        W = layer.weights.reshape(layer.weights.shape[0], -1).T
        y = cols @ W + layer.bias
        y = y.reshape(len(a), oh * ow, -1).transpose(0, 2, 1).reshape(len(a), -1)
    else:
        y = a @ layer.weights + layer.bias
    return np.maximum(y, 0) if layer.relu else y


def im2col(a, shape, kernel, stride=1):
    """Patches of ``a`` ``(V, c*h*w)`` (channel-first images of ``shape``) as rows
    ``(V * oh * ow, c * kh * kw)``, in the order of the kernel's flattened ``(c, kh, kw)``;
    and ``(oh, ow)``."""
    c, h, w = shape
    kh, kw = kernel
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    img = np.asarray(a).reshape(-1, c, h, w)
    view = np.lib.stride_tricks.sliding_window_view(img, (kh, kw), axis=(2, 3))
    view = view[:, :, ::stride, ::stride][:, :, :oh, :ow]  # (V, c, oh, ow, kh, kw)
    cols = view.transpose(0, 2, 3, 1, 4, 5).reshape(len(img) * oh * ow, c * kh * kw)
    return cols, (oh, ow)


# -- quantization -------------------------------------------------------------------------------


def quantize(W, cfg, per="channel"):
    """Symmetric quantization of ``W`` ``(n_in, n_out)`` to the macro's weight range: ``W ~
    W_int * scale`` with ``scale`` per output column (``per = "channel"``) or one for the
    layer (``"layer"``), ``max |W| -> weight_max``. Returns ``(W_int, scale)``, ``scale`` of
    shape ``(n_out,)``."""
    if per not in ("channel", "layer"):
        raise ImcError("--quantize", per, "must be channel or layer")
    top = min(cfg.weight_max, -cfg.weight_min)
    peak = np.abs(W).max(axis=0) if per == "channel" else np.full(W.shape[1], np.abs(W).max())
    scale = np.where(peak > 0, peak / top, 1.0)
    W_int = np.clip(np.round(W / scale), -top, top).astype(np.int64)
    return W_int, scale


def calibrate(activations, cfg, percentile=99.9):
    """The scale of a layer's unsigned ``input_bits`` inputs: the ``percentile`` of the float
    activations (ReLU outputs, non-negative) at the top code."""
    top = cfg.input_max
    hi = float(np.percentile(activations, percentile)) if np.size(activations) else 0.0
    return hi / top if hi > 0 else 1.0


# -- the plan -----------------------------------------------------------------------------------


@dataclass
class Plan:
    """A layer on a grid of macros."""

    name: str
    n_in: int
    n_out: int
    vectors_per_input: int  # im2col patches per input (1 for dense)
    row_blocks: int
    col_blocks: int
    rows: int        # input rows of one macro
    outputs: int     # outputs of one macro
    tiles: int
    in_macro_requant: bool

    @property
    def macros(self):
        return self.row_blocks * self.col_blocks

    @property
    def arrays(self):
        return self.macros * self.tiles

    @property
    def utilisation(self):
        """Cells holding a weight, of the cells of the layer's macros."""
        return self.n_in * self.n_out / (self.macros * self.rows * self.outputs)


#: Macros one layer may take (each is a golden run per batch, and an RTL run to check).
MAX_MACROS = 4096


def plan(cfg, n_in, n_out, name="", vectors_per_input=1, requant=True):
    """The grid of macros of configuration ``cfg`` that holds an ``n_in x n_out`` layer."""
    rb, cb = math.ceil(n_in / cfg.input_rows), math.ceil(n_out / cfg.outputs)
    if rb * cb > MAX_MACROS:
        raise ImcError(f"layer {name}", f"{n_in}x{n_out}",
                       f"cannot map: it needs {rb}x{cb} = {rb * cb} macros of "
                       f"{cfg.input_rows}x{cfg.outputs}; at most {MAX_MACROS} (choose a "
                       f"larger macro)")
    return Plan(name, n_in, n_out, vectors_per_input, rb, cb, cfg.input_rows, cfg.outputs,
                cfg.tiles, requant and rb == 1)


# -- the integer model --------------------------------------------------------------------------


@dataclass
class IntLayer:
    """A layer as the macros run it: integer weights ``(n_in, n_out)``, and either the
    requantization to the next layer's inputs (``bias``, ``scale`` for the output stage) or,
    for the last layer, the float map from exact sums to logits (``sum_scale``, ``float_bias``)."""

    layer: Layer
    shape: tuple
    W: np.ndarray
    plan: Plan
    bias: np.ndarray | None = None
    scale: np.ndarray | None = None
    sum_scale: np.ndarray | None = None
    float_bias: np.ndarray | None = None


def configs(cfg, shift=None):
    """The two configurations every macro of a model uses: ``hidden`` (requantization with
    ReLU to the input range, ``out_shift`` = ``shift``) and ``raw`` (exact sums)."""
    raw = cfg.replace(out_shift=0, out_relu=False, out_bits=0, requant={"enabled": False})
    if shift is None:
        return None, raw
    hidden = cfg.replace(out_shift=shift, out_relu=True, out_bits=cfg.input_bits + 1,
                         requant={"enabled": True,
                                  "scale_bits": cfg.requant.scale_bits
                                  if cfg.requant.enabled else 16,
                                  "rounding": cfg.requant.rounding})
    return hidden, raw


def check_config(cfg):
    """Refuse a configuration the mapping layer cannot feed (before any work)."""
    if cfg.input_signed:
        raise ImcError("input_signed", True, "the mapping layer feeds ReLU activations, "
                                             "unsigned: input_signed = false")


def compile_model(cfg, model, X_cal, per="channel"):
    """Quantize ``model`` for ``cfg``'s macros: integer weights, activation scales calibrated
    on ``X_cal`` (real-valued inputs), the requantization of each hidden layer, one shared
    ``out_shift``. Returns ``(int_layers, hidden_cfg, raw_cfg)``; ``hidden_cfg`` is None for a
    single-layer model."""
    if not model.layers:
        raise ImcError("model", "no layers", "needs at least one dense or conv layer")
    check_config(cfg)
    for n, layer in enumerate(model.layers[:-1]):
        if not layer.relu:
            raise ImcError(f"--model layers[{n}].relu", False,
                           "a hidden layer's outputs are the next layer's unsigned inputs: "
                           "relu = true (only the last layer may be linear)")
    shapes = model.shapes()
    scales = [model.input_scale]
    a = np.asarray(X_cal, dtype=np.float64)
    for layer, shape in zip(model.layers[:-1], shapes, strict=False):
        a = _float_layer(layer, a, shape)
        scales.append(calibrate(a, cfg))
    _, raw = configs(cfg)
    bits = cfg.requant.scale_bits if cfg.requant.enabled else 16
    out, multipliers = [], []
    for n, (layer, shape) in enumerate(zip(model.layers, shapes, strict=False)):
        W = layer.weights if layer.kind == "dense" else \
            layer.weights.reshape(layer.weights.shape[0], -1).T
        W_int, w_scale = quantize(W, raw, per)
        n_in = W.shape[0]
        per_input = 1
        if layer.kind == "conv":
            per_input = math.prod(shapes[n + 1][1:])
        last = n == len(model.layers) - 1
        p = plan(raw, n_in, W.shape[1], layer.name or f"{layer.kind}{n + 1}", per_input,
                 requant=not last)
        acc = scales[n] * w_scale  # the real value of one step of the exact sum
        if last:
            out.append(IntLayer(layer, shape, W_int, p, sum_scale=acc, float_bias=layer.bias))
        else:
            multipliers.append(acc / scales[n + 1])
            out.append(IntLayer(layer, shape, W_int, p, bias=np.round(layer.bias / acc)))
    if not multipliers:
        return out, None, raw
    # One out_shift for every hidden layer (one build): the largest that keeps every scale
    # within scale_bits.
    peak = max(float(np.max(m)) for m in multipliers)
    wide = cfg.replace(requant={"enabled": True, "scale_bits": bits,
                                "rounding": cfg.requant.rounding})
    shift = bits - 1 - math.floor(math.log2(peak)) if peak > 0 else bits
    shift = max(0, min(shift, wide.product_bits - 2))
    hidden, _ = configs(wide, shift)
    lo, hi = -(1 << (hidden.bias_bits - 1)), (1 << (hidden.bias_bits - 1)) - 1
    top = (1 << bits) - 1
    for il, m in zip([il for il in out if il.sum_scale is None], multipliers, strict=True):
        il.scale = np.clip(np.round(m * 2.0 ** shift), 0, top).astype(np.int64)
        il.bias = np.clip(il.bias, lo, hi).astype(np.int64)
    return out, hidden, raw


# -- running ------------------------------------------------------------------------------------


@dataclass
class LayerRun:
    """One layer's run: its macro runs ``[(cfg, W_block, X_block, requant)]`` (what the RTL
    check replays), reads and cycles per input."""

    plan: Plan
    runs: list
    reads: np.ndarray       # (inputs,) reads of every macro of the layer, summed
    cycles: np.ndarray      # (inputs,) cycles: slowest macro, its im2col patches in sequence
    clipped: int = 0


@dataclass
class RunResult:
    logits: np.ndarray
    layers: list = field(default_factory=list)

    @property
    def reads(self):
        return sum(lr.reads for lr in self.layers)

    @property
    def cycles(self):
        return sum(lr.cycles for lr in self.layers)


def _layer_inputs(il, a):
    """The integer vectors the layer's macros take for inputs ``a`` ``(V, features)``."""
    if il.layer.kind == "conv":
        cols, _ = im2col(a, il.shape, il.layer.weights.shape[2:], il.layer.stride)
        return cols
    return a


def _to_features(il, y, V):
    """Macro outputs ``(V * patches, channels)`` back to channel-first features."""
    if il.layer.kind == "conv":
        per = il.plan.vectors_per_input
        return y.reshape(V, per, -1).transpose(0, 2, 1).reshape(V, -1)
    return y


def run_layer(il, hidden, raw, a, states=None):
    """One layer on the golden model: each macro of the grid on its block, the row blocks'
    sums added, the requantization in the macros (one row block) or after the combiner."""
    p, V = il.plan, len(a)
    X = _layer_inputs(il, a)
    rows, outs = raw.input_rows, raw.outputs
    requant_in_macro = p.in_macro_requant and hidden is not None
    cfg = hidden if requant_in_macro else raw
    W = np.zeros((p.row_blocks * rows, p.col_blocks * outs), dtype=np.int64)
    W[:il.W.shape[0], :il.W.shape[1]] = il.W
    Xp = np.zeros((len(X), p.row_blocks * rows), dtype=np.int64)
    Xp[:, :X.shape[1]] = X
    sums = np.zeros((len(X), p.col_blocks * outs), dtype=np.int64)
    ys = np.zeros_like(sums)
    reads = np.zeros(len(X), dtype=np.int64)
    cycles = np.zeros(len(X), dtype=np.int64)
    runs, clipped = [], 0
    for c in range(p.col_blocks):
        cols = slice(c * outs, (c + 1) * outs)
        requant = None
        if il.scale is not None:  # padding columns: bias 0, scale 0
            requant = tuple(np.pad(v, (0, p.col_blocks * outs - len(v)))[cols]
                            for v in (il.bias, il.scale))
        for r in range(p.row_blocks):
            Wb, Xb = W[r * rows:(r + 1) * rows, cols], Xp[:, r * rows:(r + 1) * rows]
            res = golden.run(cfg, Wb, Xb, requant=requant if requant_in_macro else None)
            runs.append((cfg, Wb, Xb, requant if requant_in_macro else None))
            sums[:, cols] += res.sums
            if requant_in_macro:
                ys[:, cols] = res.y
            reads += res.reads.sum(axis=1)
            cycles = np.maximum(cycles, res.cycles)
            clipped += int(res.clipped.sum())
        if requant is not None and not requant_in_macro:  # after the combiner
            ys[:, cols] = output_stage(hidden, sums[:, cols], requant)
    per = p.vectors_per_input
    run = LayerRun(p, runs, reads.reshape(V, per).sum(axis=1),
                   cycles.reshape(V, per).sum(axis=1), clipped)
    if il.sum_scale is not None:  # the last layer: logits on the host from the exact sums
        logits = sums[:, :p.n_out] * il.sum_scale + il.float_bias
        return _to_features(il, logits, V), run
    return _to_features(il, ys[:, :p.n_out], V), run


def run(int_layers, hidden, raw, X, progress=None):
    """The whole model on the golden model for integer inputs ``X`` ``(V, features)``."""
    a = np.asarray(X, dtype=np.int64)
    result = RunResult(None)
    for n, il in enumerate(int_layers):
        a, lr = run_layer(il, hidden, raw, a)
        result.layers.append(lr)
        if progress:
            progress(n + 1, len(int_layers))
    result.logits = a
    return result


def format_plan(int_layers, result=None):
    """The printed plan: per layer, the grid, arrays, cell utilisation, reads and cycles."""
    head = f"{'layer':<8} {'shape':>10} {'macros':>9} {'arrays':>6} {'cells used':>10}"
    if result is not None:
        head += f" {'reads/input':>11} {'cycles/input':>12}"
    lines = [head]
    for n, il in enumerate(int_layers):
        p = il.plan
        grid = f"{p.row_blocks}x{p.col_blocks}={p.macros}"
        line = (f"{p.name:<8} {f'{p.n_in}x{p.n_out}':>10} {grid:>9} {p.arrays:>6} "
                f"{p.utilisation:>9.1%}")
        if result is not None:
            lr = result.layers[n]
            line += f" {lr.reads.mean():>11.1f} {lr.cycles.mean():>12.1f}"
        if p.vectors_per_input > 1:
            line += f"  (im2col: {p.vectors_per_input} patches per input)"
        lines.append(line)
    return lines


# -- model files --------------------------------------------------------------------------------


def save_model(model, toml_path, npz_path):
    """``model`` as a TOML description and an ``.npz`` of its arrays (:func:`load_model`)."""
    arrays, lines = {}, [f'name = "{model.name}"',
                         f"input_shape = {list(model.input_shape)}",
                         f"input_scale = {model.input_scale!r}", ""]
    for n, layer in enumerate(model.layers):
        key = layer.name or f"{layer.kind}{n + 1}"
        arrays[f"{key}.weights"], arrays[f"{key}.bias"] = layer.weights, layer.bias
        lines += ["[[layers]]", f'kind = "{layer.kind}"', f'name = "{key}"',
                  f'weights = "{key}.weights"', f'bias = "{key}.bias"',
                  f"relu = {'true' if layer.relu else 'false'}"]
        if layer.kind == "conv":
            lines.append(f"stride = {layer.stride}")
        lines.append("")
    Path(toml_path).write_text("\n".join(lines))
    np.savez(npz_path, **arrays)


def _model_error(field, value, allowed):
    return ImcError(f"--model {field}", value, allowed)


def load_model(toml_path, npz_path):
    """A :class:`Model` from a TOML description (``input_shape``, ``input_scale``, and
    ``[[layers]]`` with ``kind``, ``weights``, ``bias``, ``relu``, ``stride``) and the ``.npz``
    holding the arrays it names; every field checked, each refusal one line."""
    from imcgen.core.checks import check_input_file, read_config_text

    try:
        spec = tomllib.loads(read_config_text(toml_path, "--model"))
    except tomllib.TOMLDecodeError as err:
        raise ImcError("--model", str(toml_path), f"is not TOML: {err}") from None
    npz_path = check_input_file("--weights", npz_path, "an .npz of the model's arrays")
    try:
        with np.load(npz_path, allow_pickle=False) as archive:
            arrays = dict(archive)
    except (OSError, ValueError, AttributeError):
        raise ImcError("--weights", str(npz_path), "is not an .npz of arrays "
                                                   "(numpy.savez)") from None
    known = {"name", "input_shape", "input_scale", "layers"}
    for key in spec:
        if key not in known:
            raise _model_error(key, spec[key], "unknown key; allowed: " + ", ".join(sorted(known)))
    shape = spec.get("input_shape")
    if not isinstance(shape, list) or len(shape) not in (1, 3) or \
            not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape):
        raise _model_error("input_shape", shape, "must be [features] or [channels, h, w] "
                                                 "of positive integers")
    scale = spec.get("input_scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or \
            not math.isfinite(scale) or scale <= 0:
        raise _model_error("input_scale", scale, "must be a positive number")
    layers = spec.get("layers")
    if not isinstance(layers, list) or not layers:
        raise _model_error("layers", layers, "must be one or more [[layers]] tables")
    out, current = [], tuple(shape)
    for n, item in enumerate(layers):
        where = f"layers[{n}]"
        allowed = {"kind", "name", "weights", "bias", "relu", "stride"}
        for key in item:
            if key not in allowed:
                raise _model_error(f"{where}.{key}", item[key],
                                   "unknown key; allowed: " + ", ".join(sorted(allowed)))
        kind = item.get("kind")
        if kind not in KINDS:
            raise _model_error(f"{where}.kind", kind, "must be dense or conv")
        arrs = []
        for key in ("weights", "bias"):
            name = item.get(key)
            if name not in arrays:
                raise _model_error(f"{where}.{key}", name,
                                   f"must name an array of {npz_path}: "
                                   + ", ".join(sorted(arrays)))
            arr = arrays[name]
            if arr.dtype.kind not in "iuf" or not np.all(np.isfinite(arr)):
                raise _model_error(f"{where}.{key}", name, "must be finite numbers")
            arrs.append(arr.astype(np.float64))
        W, b = arrs
        relu = item.get("relu", True)
        stride = item.get("stride", 1)
        if not isinstance(relu, bool):
            raise _model_error(f"{where}.relu", relu, "must be true or false")
        if isinstance(stride, bool) or not isinstance(stride, int) or not 1 <= stride <= 16:
            raise _model_error(f"{where}.stride", stride, "must be an integer in 1..16")
        if kind == "dense":
            features = math.prod(current)
            if W.ndim != 2 or W.shape[0] != features:
                raise _model_error(f"{where}.weights", f"shape {W.shape}",
                                   f"must be ({features}, outputs): the layer's input has "
                                   f"{features} features")
        else:
            if len(current) != 3:
                raise _model_error(f"{where}.kind", kind, f"needs a [channels, h, w] input; "
                                                          f"this layer's is {list(current)}")
            c, h, w = current
            if W.ndim != 4 or W.shape[1] != c or W.shape[2] > h or W.shape[3] > w:
                raise _model_error(f"{where}.weights", f"shape {W.shape}",
                                   f"must be (out_channels, {c}, kh <= {h}, kw <= {w})")
        layer = Layer(kind, W, b, relu, stride, item.get("name", f"{kind}{n + 1}"))
        if b.shape != (layer.n_out,):
            raise _model_error(f"{where}.bias", f"shape {b.shape}", f"must be ({layer.n_out},)")
        out.append(layer)
        current = Model(out, tuple(shape)).shapes()[-1]
    return Model(out, tuple(shape), float(scale), str(spec.get("name", Path(toml_path).stem)))
