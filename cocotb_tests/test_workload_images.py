"""``imcgen workload edges`` and ``imcgen workload dct``: the image workloads after Li et al.
(2018) (docs/workloads.md). Their pieces against independent arithmetic (SciPy's correlation
and DCT), the golden model's figures on small images with stated bounds, the RTL exact on a
few vectors, and the command end to end."""

import json
import sys

import numpy as np
import pytest

pytest.importorskip("skimage")  # the `workloads` extra (a run without it is tested below)
pytest.importorskip("scipy")

from scipy.fft import dct as scipy_dct  # noqa: E402
from scipy.signal import correlate2d  # noqa: E402

from imcgen import cli, golden  # noqa: E402
from imcgen.apps.workloads import check_rtl, dct, edges, images  # noqa: E402

INF = float("inf")


@pytest.fixture(scope="module")
def small():
    """The bundled photograph at 48x48: 1936 patches, 36 blocks of 8x8."""
    return images.camera(48)


@pytest.fixture(scope="module")
def edges_result(small):
    return edges.evaluate(small, "rram", seed=0)


@pytest.fixture(scope="module")
def dct_result(small):
    return dct.evaluate(small, block=8, keep=0.15, mid_bits=8, device="rram", seed=0)


def test_camera_ships_inside_scikit_image_and_downscales_to_grey_levels():
    full = images.camera()
    assert full.shape == (512, 512) and full.dtype == np.uint8
    small = images.camera(40)
    assert small.shape == (40, 40) and small.dtype == np.uint8
    # Anti-aliased downscale: the mean grey level is kept within a level.
    assert abs(float(small.mean()) - float(full.mean())) < 1.0


def test_im2col_times_a_kernel_is_scipy_correlation(seed):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(9, 12))
    kernel = rng.integers(-5, 6, size=(5, 5))
    patches = images.im2col(image, 5)
    assert patches.shape == (5 * 8, 25)
    assert np.array_equal((patches @ kernel.ravel()).reshape(5, 8),
                          correlate2d(image, kernel, mode="valid"))


def test_psnr_of_a_known_error():
    ref = np.zeros((4, 4))
    assert images.psnr(ref, ref, 255) == INF
    # MSE 1 on a peak of 255: 20 log10(255) = 48.13 dB.
    assert images.psnr(ref, ref + 1, 255) == pytest.approx(48.1308, abs=1e-4)


def test_edges_macro_is_the_25x20_subarray_and_integer_kernels_map_exactly():
    cfg = edges.config()
    assert (cfg.input_rows, cfg.outputs, cfg.physical_columns, cfg.slices) == (25, 10, 20, 1)
    assert not cfg.reads_may_clip and cfg.input_max == 255
    W, scales = edges.mapped_weights(cfg)
    assert W.shape == (25, 10) and np.abs(W).max() == 63
    names = [name for name, _ in edges.KERNELS]
    sobel = W[:, names.index("Sobel 0")].reshape(5, 5)
    # 5x5 Sobel x 5 (the largest integer factor under 63 / 12): the middle row.
    assert sobel[2].tolist() == [-30, -60, 0, 60, 30] and scales[names.index("Sobel 0")] == 5
    assert W[:, names.index("Laplacian 8")].sum() == 0  # 8 x 7 = 56 against 8 x -7


def test_edges_ideal_macro_is_exact_and_noise_costs_a_bounded_psnr(edges_result):
    fig = edges_result["figures"]
    assert fig["patches"] == 44 * 44 and fig["ideal_max_error_vs_integer"] == 0
    names = [name for name, _ in edges.KERNELS]
    ideal = dict(zip(names, fig["kernel_psnr_db"]["ideal"], strict=True))
    # Integer kernels exact; the rounded float ones above 40 dB (measured 42.7..66.4).
    assert all(ideal[n] == INF for n in ("Sobel 0", "Sobel 90", "Prewitt 0", "Prewitt 90",
                                         "Laplacian 8"))
    assert min(ideal.values()) > 40.0
    assert fig["edge_psnr_db"]["ideal"] == INF and fig["edge_ssim"]["ideal"] == 1.0
    # RRAM (seed 0) measured 37.7 dB, SSIM 0.960 on this 48x48 image.
    assert 30.0 < fig["edge_psnr_db"]["rram"] < 50.0
    assert 0.85 < fig["edge_ssim"]["rram"] < 1.0
    assert all(n < i for n, i in zip(fig["kernel_psnr_db"]["rram"],
                                     fig["kernel_psnr_db"]["ideal"], strict=True))


def test_edges_noise_is_deterministic_in_the_seed(small, edges_result):
    again = edges.evaluate(small, "rram", seed=0)["figures"]
    assert again == edges_result["figures"]
    other = edges.evaluate(small, "rram", seed=1)["figures"]
    assert other["edge_psnr_db"]["rram"] != edges_result["figures"]["edge_psnr_db"]["rram"]


def test_dct_matrix_is_scipy_dct_and_the_weights_are_its_rounded_transpose():
    for n in (8, 16):
        x = np.arange(n, dtype=np.float64) ** 1.5
        assert np.allclose(dct.dct_matrix(n) @ x, scipy_dct(x, norm="ortho"))
    cfg = dct.configs(8, 8)[0]
    W, s = dct.mapped_weights(cfg)
    assert np.abs(W).max() == 63 and np.array_equal(W, np.rint(dct.dct_matrix(8).T * s))
    assert (cfg.rows, cfg.physical_columns, cfg.slices) == (8, 16, 1)


def test_dct_rescale_rounds_half_up_within_the_signed_width():
    # B = 10, M = 127: z * 12.7, to the nearest integer.
    assert dct.rescale(np.array([10, -10, 0, 1, -1, 2]), 10, 8).tolist() == \
        [127, -127, 0, 13, -13, 25]
    # B = 254: z / 2; halves go up (1.5 -> 2, -1.5 -> -1, 0.5 -> 1, -0.5 -> 0).
    assert dct.rescale(np.array([3, -3, 1, -1]), 254, 8).tolist() == [2, -1, 1, 0]
    assert dct.rescale(np.array([11, -12]), 10, 8).tolist() == [127, -128]  # clipped
    W, _ = dct.mapped_weights(dct.configs(8, 8)[0])
    bound = dct.first_bound(W)
    ones = np.full((1, 8), 255)
    assert (ones @ W).max() == bound  # the DC column of an all-white block


def test_dct_ideal_macro_is_close_to_float_and_noise_is_worse(small, dct_result):
    fig = dct_result["figures"]
    assert fig["blocks"] == 36 and fig["kept"] == round(0.15 * 48 * 48)
    # Measured on 48x48, seed 0: ideal 38.1 dB, rram 24.3 dB against the float compression.
    assert fig["psnr_vs_float_db"]["ideal"] > 33.0
    assert 18.0 < fig["psnr_vs_float_db"]["rram"] < fig["psnr_vs_float_db"]["ideal"] - 5
    assert fig["ssim_vs_float"]["ideal"] > 0.95
    assert fig["psnr_vs_original_db"]["float"] > fig["psnr_vs_original_db"]["rram"]
    again = dct.evaluate(small, block=8, keep=0.15, mid_bits=8, device="rram", seed=0)
    assert again["figures"] == fig


def test_dct_first_mvm_is_the_integer_product_of_the_block_columns(dct_result):
    cfg1, _ = dct_result["configs"]
    W, X1 = dct_result["W"], dct_result["X1"]
    assert np.array_equal(golden.run(cfg1, W, X1).y, X1 @ W)
    assert dct_result["X2"].min() >= -128 and dct_result["X2"].max() <= 127


def test_rtl_equals_golden_on_patches_and_both_dct_mvms(edges_result, dct_result):
    cfg1, cfg2 = dct_result["configs"]
    runs = [(edges.config(), edges_result["W"], edges_result["X"][:4]),
            (cfg1, dct_result["W"], dct_result["X1"][:4]),
            (cfg2, dct_result["W"], dct_result["X2"][:4])]
    check = check_rtl(runs, seed=5)
    assert check.ok and check.vectors == 12 and check.macros == 3, check.line()


def _main(argv, capsys):
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as stop:  # argparse
        code = stop.code
    return code, capsys.readouterr()


def test_edges_command_end_to_end(tmp_path, capsys):
    code, out = _main(["workload", "edges", "-o", tmp_path, "--size", "32", "--rtl", "2",
                       "--device", "pcm"], capsys)
    assert code == 0, out.err
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["workload"] == "edges" and data["rtl"]["values_match"]
    assert data["rtl"]["cycles_match"] and data["rtl"]["vectors"] == 2
    assert (tmp_path / "edges.png").stat().st_size > 10_000
    assert "edge map PSNR vs float, pcm macro" in out.out


def test_dct_command_end_to_end(tmp_path, capsys):
    code, out = _main(["workload", "dct", "-o", tmp_path, "--size", "32", "--block", "16",
                       "--rtl", "0", "--keep", "0.2", "--mid-bits", "10"], capsys)
    assert code == 0, out.err
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["block"] == 16 and data["kept"] == round(0.2 * 32 * 32)
    assert data["rtl"] is None and data["tops_per_w"] > 0
    assert (tmp_path / "dct.png").stat().st_size > 10_000


@pytest.mark.parametrize("argv, message", [
    (["dct", "--size", "36"], "--size = 36: must be a multiple of --block 8"),
    (["dct", "--block", "12"], "--block"),
    (["dct", "--keep", "0"], "--keep"),
    (["edges", "--size", "8"], "--size"),
])
def test_bad_option_is_refused_with_exit_2(argv, message, tmp_path, capsys):
    code, out = _main(["workload", argv[0], "-o", tmp_path / "out", *argv[1:]], capsys)
    assert code == 2 and message in out.err and len(out.err.strip().splitlines()) == 1
    assert out.out == "" and not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["edges", "dct"])
def test_a_run_without_the_extra_is_refused_in_one_line(name, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)  # import skimage now raises ImportError
    code, out = _main(["workload", name, "-o", tmp_path / "out"], capsys)
    assert code == 2 and len(out.err.strip().splitlines()) == 1
    assert f"workload = '{name}'" in out.err and "pip install 'imcgen[workloads]'" in out.err
    assert not (tmp_path / "out").exists()
