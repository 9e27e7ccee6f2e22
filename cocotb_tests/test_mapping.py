"""The mapping layer (``gen/apps/mapping.py``) and the classifier workloads (``mlp``, ``cnn``,
``model``): plans counted exactly, layers across macros equal to an independent integer
reference, model files parsed and refused in one line, and each workload end to end from the
CLI with its RTL subset exact."""

import json

import numpy as np
import pytest

from imcgen import cli
from imcgen.apps import mapping
from imcgen.core.config import MacroConfig, load_config
from imcgen.core.errors import ImcError
from imcgen.golden.output_stage import round_shift

DEFAULT = load_config("default", None, [])


def test_plans_count_macros_arrays_and_cells():
    p = mapping.plan(DEFAULT, 288, 10)
    assert (p.row_blocks, p.col_blocks, p.macros, p.arrays) == (5, 1, 5, 10)
    assert p.utilisation == pytest.approx(288 * 10 / (5 * 64 * 10))
    assert not p.in_macro_requant  # five row blocks: requantized after the combiner
    p = mapping.plan(DEFAULT, 64, 32)
    assert (p.row_blocks, p.col_blocks, p.macros, p.utilisation) == (1, 4, 4, 0.8)
    assert p.in_macro_requant
    with pytest.raises(ImcError, match=r"layer big = '100000x1000': cannot map: it needs "
                                       r"1563x100 = 156300 macros of 64x10; at most 4096"):
        mapping.plan(DEFAULT, 100_000, 1000, "big")


def test_im2col_is_the_convolution():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 9, (3, 2 * 7 * 6))  # three images of 2 channels, 7x6
    K = rng.integers(-3, 4, (4, 2, 3, 2))  # 4 output channels, 3x2 kernels
    cols, (oh, ow) = mapping.im2col(img, (2, 7, 6), (3, 2), stride=2)
    got = (cols @ K.reshape(4, -1).T).reshape(3, oh, ow, 4)
    x = img.reshape(3, 2, 7, 6)
    for v in range(3):
        for i in range(oh):
            for j in range(ow):
                patch = x[v, :, 2 * i:2 * i + 3, 2 * j:2 * j + 2]
                assert got[v, i, j].tolist() == [int((patch * K[o]).sum()) for o in range(4)]


def _reference(int_layers, hidden, X):
    """The integer model computed directly: exact products (no read clips on these
    configurations), the requantization by the golden rounding (itself checked against the
    fixedpoint oracle), ReLU and the input range; the last layer's logits in float."""
    a = X
    for il in int_layers:
        V = len(a)
        if il.layer.kind == "conv":
            c, h, w = il.shape
            oc, _, kh, kw = il.layer.weights.shape
            x = a.reshape(V, c, h, w)
            oh, ow = h - kh + 1, w - kw + 1
            acc = np.zeros((V, oc, oh, ow), dtype=np.int64)
            Wk = il.W.T.reshape(oc, c, kh, kw)
            for i in range(oh):
                for j in range(ow):
                    acc[:, :, i, j] = np.einsum("vchw,ochw->vo", x[:, :, i:i + kh, j:j + kw], Wk)
            acc = acc.reshape(V, -1)
            rep = oh * ow
        else:
            acc, rep = a @ il.W, 1
        if il.sum_scale is not None:
            return acc * np.repeat(il.sum_scale, rep) + np.repeat(il.float_bias, rep)
        bias, scale = np.repeat(il.bias, rep), np.repeat(il.scale, rep)
        y = round_shift((acc + bias) * scale, hidden.out_shift, hidden.requant.rounding)
        a = np.clip(y, 0, hidden.input_max)
    return a


@pytest.mark.parametrize("per", ["channel", "layer"])
def test_a_cnn_across_macros_equals_the_integer_reference(per):
    """A conv layer (im2col, in-macro requantization) and a dense layer over five row blocks
    (partial sums added by the combiner)."""
    from imcgen.apps.workloads.classifier import digits, train_cnn

    X_train, X_test, y_train, _ = digits(0)
    net = train_cnn(X_train[:300], y_train[:300], 0, channels=8, steps=20)
    cfg = DEFAULT.replace(requant={"enabled": True, "scale_bits": 12})
    int_layers, hidden, raw = mapping.compile_model(cfg, net, X_train / 16.0, per)
    assert [il.plan.macros for il in int_layers] == [1, 5]
    assert hidden.requant.enabled and not raw.requant.enabled and raw.out_shift == 0
    assert hidden.out_bits == cfg.input_bits + 1 and hidden.out_relu
    X = X_test[:40]
    result = mapping.run(int_layers, hidden, raw, X)
    assert np.array_equal(result.logits, _reference(int_layers, hidden, X))
    # The counts are the golden model's: the conv macro runs 36 patches per image.
    assert len(result.layers[0].runs) == 1 and len(result.layers[1].runs) == 5
    assert result.layers[0].runs[0][2].shape == (40 * 36, 64)


def test_model_files_round_trip_and_refuse_bad_fields(tmp_path):
    from imcgen.apps.workloads.classifier import digits, train_cnn

    X_train, _, y_train, _ = digits(0)
    net = train_cnn(X_train[:100], y_train[:100], 0, channels=2, steps=2)
    mapping.save_model(net, tmp_path / "m.toml", tmp_path / "m.npz")
    back = mapping.load_model(tmp_path / "m.toml", tmp_path / "m.npz")
    assert back.input_shape == (1, 8, 8) and [la.kind for la in back.layers] == ["conv", "dense"]
    assert np.allclose(back.forward(X_train[:5] / 16), net.forward(X_train[:5] / 16))
    text = (tmp_path / "m.toml").read_text()
    cases = {
        "not = toml [": "is not TOML",
        text.replace('kind = "conv"', 'kind = "pool"'): "layers[0].kind = 'pool': must be "
                                                        "dense or conv",
        text.replace("input_shape = [1, 8, 8]", "input_shape = [64]"):
            "layers[0].kind = 'conv': needs a [channels, h, w] input",
        text.replace('weights = "fc.weights"', 'weights = "nope"'):
            "layers[1].weights = 'nope': must name an array of",
        text.replace("relu = false", "relu = 2"): "layers[1].relu = 2: must be true or false",
        text.replace("stride = 1", "stride = 0"): "layers[0].stride = 0: must be an integer",
        text + "\nspeed = 3\n": "speed = 3: unknown key",
        text.replace("input_scale = 0.0625", "input_scale = -1"): "input_scale = -1",
    }
    for bad, message in cases.items():
        (tmp_path / "bad.toml").write_text(bad)
        with pytest.raises(ImcError) as err:
            mapping.load_model(tmp_path / "bad.toml", tmp_path / "m.npz")
        assert message in str(err.value), (message, str(err.value))
    relu_off = text.replace("relu = true", "relu = false")
    (tmp_path / "bad.toml").write_text(relu_off)
    lin = mapping.load_model(tmp_path / "bad.toml", tmp_path / "m.npz")
    with pytest.raises(ImcError, match=r"layers\[0\].relu = False: a hidden layer's outputs"):
        mapping.compile_model(DEFAULT, lin, X_train[:10] / 16)
    with pytest.raises(ImcError, match="input_signed = True: the mapping layer"):
        mapping.compile_model(MacroConfig(input_signed=True), back, X_train[:10] / 16)


def _run(argv, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as stop:  # argparse's own refusals
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def test_mlp_workload_end_to_end(tmp_path, capsys, seed):
    """Golden only (the cnn test below runs the same mapping path on the RTL: a build per
    trained model's out_shift is the cost of another)."""
    code, out, err = _run(["workload", "mlp", "-o", str(tmp_path), "--hidden", "16",
                           "--rtl", "0", "--seed", "3"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["rtl"] is None
    assert report["golden_accuracy"] >= 0.9 and report["float_accuracy"] >= 0.9
    assert [(p["row_blocks"], p["col_blocks"]) for p in report["plan"]] == [(1, 2), (1, 1)]
    assert "fc1" in out
    assert (tmp_path / "mlp.png").stat().st_size > 0 and (tmp_path / "model.toml").exists()
    # The model it wrote runs through the generic workload, on the same macros.
    from imcgen.apps.workloads.classifier import digits

    _, X_test, _, y_test = digits(3)
    np.save(tmp_path / "X.npy", X_test[:60])
    np.save(tmp_path / "y.npy", y_test[:60])
    code, out, err = _run(["workload", "model", "--model", str(tmp_path / "model.toml"),
                           "--weights", str(tmp_path / "model.npz"), "--inputs",
                           str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy"),
                           "--rtl", "0", "-o", str(tmp_path / "again")], capsys)
    assert code == 0, err
    again = json.loads((tmp_path / "again" / "report.json").read_text())
    assert again["golden_accuracy"] >= 0.85
    code, out, err = _run(["workload", "model", "--model", str(tmp_path / "model.toml"),
                           "--weights", str(tmp_path / "model.npz"), "--inputs",
                           str(tmp_path / "X.npy"), "--rtl", "0", "-o",
                           str(tmp_path / "unlabelled")], capsys)
    assert code == 0, err
    plain = json.loads((tmp_path / "unlabelled" / "report.json").read_text())
    assert plain["agreement"] >= 0.85 and (tmp_path / "unlabelled" / "model.png").exists()


def test_cnn_workload_end_to_end_with_its_rtl_subset(tmp_path, capsys):
    code, out, err = _run(["workload", "cnn", "-o", str(tmp_path), "--channels", "2",
                           "--steps", "30", "--rtl", "1"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["rtl"]["values_match"] and report["rtl"]["cycles_match"]
    assert report["rtl"]["vectors"] == 36 + 2 * 1  # 36 patches, then 2 row blocks
    assert "im2col: 36 patches per input" in out


def test_workloads_refuse_bad_input_in_one_line(tmp_path, capsys):
    (tmp_path / "m.toml").write_text("input_shape = [64]\n")
    np.savez(tmp_path / "m.npz", w=np.zeros((64, 10)))
    np.save(tmp_path / "X.npy", np.zeros((3, 64), dtype=np.int64))
    cases = [
        (["workload", "model", "--model", str(tmp_path / "m.toml"), "--weights",
          str(tmp_path / "m.npz"), "--inputs", str(tmp_path / "X.npy")],
         "--model layers = None: must be one or more [[layers]] tables"),
        (["workload", "mlp", "--hidden", "0"], "--hidden"),
        (["workload", "mlp", "--set", "input_signed=true", "-o", str(tmp_path / "o")],
         "input_signed = True: the mapping layer"),
        (["workload", "nope"], "invalid choice: 'nope'"),
    ]
    for argv, message in cases:
        code, out, err = _run(argv, capsys)
        assert code == 2 and message in err and err.count("\n") == 1 and not out, (argv, err)
    assert not (tmp_path / "o").exists()
