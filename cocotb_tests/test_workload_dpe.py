"""``imcgen workload dpe``: the HP Dot-Product Engine's single-layer MNIST classifier on the
``dpe`` preset (docs/workloads.md), end to end through the CLI, with its pieces checked against
independent arithmetic."""

import json

import numpy as np
import pytest

from imcgen import cli, golden
from imcgen.apps.workloads import dpe
from imcgen.core.config import load_config


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One run of the command (seed 0, 3 test images on the RTL), shared by the checks."""
    out = tmp_path_factory.mktemp("dpe")
    code = cli.main(["workload", "dpe", "-o", str(out), "--seed", "0", "--rtl", "3"])
    return code, out, json.loads((out / "report.json").read_text())


def test_preset_is_the_dpe_array():
    cfg = load_config("dpe")
    # 128 rows x 64 columns: 32 differential pairs of one 6-bit cell, 4 rows per 8-bit read.
    assert (cfg.input_rows, cfg.physical_columns, cfg.slices, cfg.cell_bits) == (128, 64, 1, 6)
    assert (cfg.weight_min, cfg.weight_max, cfg.input_max) == (-63, 63, 255)
    assert cfg.rows_per_read == 4 and not cfg.reads_may_clip


def test_mnist_is_pooled_to_block_means_of_the_central_crop():
    X, y, _ = dpe.load_data("mnist")
    assert X.shape == (5000, 121) and np.bincount(y).tolist() == [500] * 10
    assert X.min() == 0 and X.max() <= 255
    image = np.arange(784).reshape(1, 784) % 256
    block = image.reshape(28, 28)[3:5, 3:5]  # the first 2x2 block of the central 22x22
    assert dpe.pool_mnist(image)[0, 0] == (block.sum() + 2) // 4


def test_narrow_inputs_shift_the_pixels_and_keep_the_bias_row_at_the_top_level():
    cfg = load_config("dpe", overrides=["input_bits=5"])
    inputs, shift = dpe.macro_inputs(cfg, np.array([[255, 8, 0]]), 255)
    assert shift == 3 and inputs[0, :4].tolist() == [31, 1, 0, 31] and inputs.shape == (1, 128)


def test_single_layer_accuracy_and_exact_rtl(report):
    code, out, data = report
    assert code == 0 and (out / "dpe.png").stat().st_size > 10_000
    acc = data["accuracy"]
    # Seed 0 measured: float 90.6 %, golden ideal 90.6 %, golden rram 90.1 % (paper 89.9 %).
    assert acc["float"] >= 0.88 and abs(acc["golden"] - acc["float"]) <= 0.01
    assert acc["device"] >= 0.87 and acc["golden"] - acc["device"] <= 0.02
    assert data["golden_equals_product"] and data["test_images"] == 1000
    assert 5.0 <= data["mvm_precision_bits"] <= 8.0  # measured 6.2 bits (paper: 6)
    assert data["rtl"]["vectors"] == 3 and data["rtl"]["values_match"] \
        and data["rtl"]["cycles_match"]


def test_golden_equals_the_integer_product_on_the_preset(seed):
    cfg = load_config("dpe")
    rng = np.random.default_rng(seed)
    W = rng.integers(cfg.weight_min, cfg.weight_max + 1, size=(128, 32))
    X = rng.integers(0, 256, size=(20, 128)) * (rng.random((20, 128)) < 0.3)
    assert np.array_equal(golden.run(cfg, W, X).sums, X @ W)


@pytest.mark.parametrize("option, message", [
    (["--test-fraction", "0.9"], "--test-fraction"),
    (["--set", "rows=64"], "rows = 64: rows x tiles = 64; mnist needs at least 122"),
])
def test_bad_option_is_refused_with_exit_2(option, message, tmp_path, capsys):
    try:
        code = cli.main(["workload", "dpe", "-o", str(tmp_path / "out"), *option])
    except SystemExit as stop:  # argparse
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
