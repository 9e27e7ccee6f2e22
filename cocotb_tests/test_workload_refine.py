"""``imcgen workload refine``: mixed-precision iterative refinement of ``A x = b`` with the
products on the noisy PCM macro (docs/workloads.md), end to end through the CLI (golden sweeps
and two of the solver's own vectors on the RTL), with its pieces checked against float64
linear algebra."""

import json

import numpy as np
import pytest

from imcgen import cli
from imcgen.apps.workloads import refine


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One run of the command (seed 0, both sweeps, 2 solver vectors on the RTL)."""
    out = tmp_path_factory.mktemp("refine")
    code = cli.main(["workload", "refine", "-o", str(out), "--seed", "0", "--rtl", "2"])
    return code, out, json.loads((out / "report.json").read_text())


def test_system_is_symmetric_positive_definite_with_the_condition_asked():
    A, b = refine.system(64, 10.0, 0)
    eig = np.linalg.eigvalsh(A)
    assert np.allclose(A, A.T) and np.isclose(eig.min(), 1.0) and np.isclose(eig.max(), 10.0)
    assert np.isclose(np.linalg.norm(b), 1.0)


def test_stored_weights_are_the_matrix_quantized_per_column():
    A, _ = refine.system(40, 10.0, 3)
    cfg = refine.macro_config(40)
    macro = refine.Macro(cfg, A)
    assert macro.W.shape == (64, 40) and not macro.W[40:].any()  # padded to two tiles
    assert np.abs(macro.W).max(axis=0).tolist() == [cfg.weight_max] * 40
    assert np.abs(macro.W[:40] * macro.scales - A.T).max() <= macro.scales.max() / 2 + 1e-12


def test_noise_free_products_follow_a_times_v_within_the_quantization():
    # No device noise and a 12-bit ADC: only the 8-bit weights and inputs and the ADC steps.
    A, _ = refine.system(64, 10.0, 1)
    macro = refine.Macro(refine.macro_config(64, noise=0.0, adc_bits=12), A)
    v = np.random.default_rng(1).standard_normal(64)
    assert np.linalg.norm(macro.matvec(v) - A @ v) <= 0.03 * np.linalg.norm(A @ v)
    assert macro.products == 1 and macro.inputs[-1].shape == (1, 64)


def test_refinement_reaches_1e6_in_a_fixed_number_of_iterations():
    A, b = refine.system(64, 10.0, 0)
    result, x, macro = refine.solve(refine.macro_config(64), A, b, inner=2)
    # Seed 0 measured: 20 outer iterations, 40 products (the paper: 24 for 5000 equations).
    assert result.converged and (result.iterations, result.products) == (20, 40)
    assert result.residual <= 1e-6 and result.history[0] == 1.0
    assert np.linalg.norm(b - A @ x) <= 1e-6 * np.linalg.norm(b)  # independent of the loop
    exact = np.linalg.solve(A, b)
    assert np.linalg.norm(x - exact) <= 10 * 1e-6 * np.linalg.norm(exact)  # condition 10


@pytest.mark.parametrize("changes, status", [
    ({"adc_bits": 2}, "stalled"),   # 2-bit reads: the corrections point the wrong way
    ({"noise": 32.0}, "diverged"),  # 32 times the PCM noise
])
def test_refinement_stops_where_the_macro_is_too_coarse(changes, status):
    A, b = refine.system(64, 10.0, 0)
    result, _, _ = refine.solve(refine.macro_config(64, **changes), A, b, inner=2)
    assert result.status == status and not result.converged
    assert result.iterations <= refine.STALL + 2  # stopped early, not at --max-iter


def test_refinement_stops_at_max_iter():
    A, b = refine.system(64, 10.0, 0)
    result, _, _ = refine.solve(refine.macro_config(64), A, b, inner=2, max_iter=5)
    assert result.status == "max_iter" and result.iterations == 5 and result.products == 10


def test_command_sweeps_noise_and_adc_bits_and_the_rtl_is_exact(report):
    code, out, data = report
    assert code == 0 and (out / "refine.png").stat().st_size > 10_000
    assert data["base"]["status"] == "converged" and data["base"]["iterations"] == 20
    assert data["solution_error"] <= 1e-5
    noise = {p["noise"]: p for p in data["noise_sweep"]}
    adc = {p["adc_bits"]: p for p in data["adc_sweep"]}
    # Seed 0 measured: converges up to 2x the PCM noise (18, 18, 20, 31 iterations), not at
    # 4x and above; from 5 ADC bits (35 iterations) up (19 at 12 bits), not at 4 and below.
    assert [noise[s]["iterations"] for s in (0.0, 0.5, 1.0, 2.0)] == [18, 18, 20, 31]
    assert not any(noise[s]["status"] == "converged" for s in (4.0, 8.0, 16.0, 32.0))
    assert all(adc[a]["status"] == "converged" for a in (5, 6, 7, 8, 10, 12))
    assert not any(adc[a]["status"] == "converged" for a in (2, 3, 4))
    figures = {f["what"]: f["here"] for f in data["figures"]}
    assert figures["device noise where it stops converging"] == "x4 (converges up to x2)"
    assert figures["ADC bits where it stops converging"] == "4 (converges from 5)"
    assert data["rtl"]["vectors"] == 2 and data["rtl"]["values_match"] \
        and data["rtl"]["cycles_match"]


@pytest.mark.parametrize("option, message", [
    (["--tol", "1e-16"], "--tol = 1e-16: cannot be reached in float64"),
    (["--inner", "0"], "--inner"),
    (["--engine", "fast"], "the fast engine runs the synthesizable stub only"),
])
def test_bad_option_is_refused_with_exit_2(option, message, tmp_path, capsys):
    try:
        code = cli.main(["workload", "refine", "-o", str(tmp_path / "out"), *option])
    except SystemExit as stop:  # argparse
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
