"""The physical analog model (``golden/analog.py``, behind the boundary of ``hdl/analog.py``):
its statistics against the formulas it implements (aihwkit's PCM model, the RRAM numbers of
Yan et al., "Resistive memory-based in-memory computing", 2019), exactness of the batched against
the per-read evaluation, the ideal device against the digital model, and RTL co-simulation with
the Python crossbar equal to the golden model
bit for bit with noise, drift, stuck cells, IR drop, comparator noise, stalls and a reset."""

import numpy as np
import pytest

from imcgen import golden, simulate
from imcgen.apps.soak import random_config, stimulus
from imcgen.core.config import MacroConfig, load_config
from imcgen.golden import analog, device


def analog_config(device_, **analog_changes):
    return load_config(overrides={"rows": 64, "tiles": 2, "outputs": 16, "crossbar": "external",
                                  "analog.device": device_,
                                  **{f"analog.{k}": v for k, v in analog_changes.items()}})


def uniform_states(cfg, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, cfg.cell_max + 1, size=(cfg.tiles, cfg.rows, cfg.physical_columns))


def test_the_ideal_device_is_the_digital_model(seed):
    rng = np.random.default_rng(seed)
    cfg = MacroConfig(rows=20, tiles=2, outputs=4, input_signed=True, rows_per_read=12)
    W, X = stimulus(cfg, rng, 50)
    digital = golden.run(cfg, W, X)
    physical = golden.run(cfg.replace(**{"analog.device": "ideal"}), W, X)
    np.testing.assert_array_equal(physical.y, digital.y)
    np.testing.assert_array_equal(physical.clipped, digital.clipped)


def test_pcm_programming_error_follows_the_aihwkit_formula():
    # sigma[uS] = 0.26348 + 1.9650 x - 1.1731 x^2 at g_max = 25 uS (digest section 5).
    cfg = analog_config("pcm", time=0.0, read_noise=0.0)
    states = uniform_states(cfg, 1)
    arr = analog.prepare(cfg, states)
    a = cfg.analog
    target = a.g_min_us + states / cfg.cell_max * (a.g_max_us - a.g_min_us)
    for level in range(cfg.cell_max + 1):
        sel = states == level
        g0 = target[sel][0]
        x = g0 / a.g_max_us
        want = 0.26348 + 1.9650 * x - 1.1731 * x * x
        got = arr.g_us[sel] - g0
        if g0 - 3 * want > 0:  # not clipped at zero
            assert abs(got.std() / want - 1) < 0.05, (level, got.std(), want)
            assert abs(got.mean()) < 0.05 * want


def test_pcm_drift_follows_the_power_law():
    # G(t) = G0 (t / t0)^-nu, nu ~ |N(mu(x), sd(x))|: the median ratio at t is (t/t0)^-nu.
    t = 86400.0
    base = analog_config("pcm", time=20.0, read_noise=0.0)
    late = base.replace(**{"analog.time": t})
    states = np.full((base.tiles, base.rows, base.physical_columns), base.cell_max)
    g0 = analog.prepare(base, states).g_us
    gt = analog.prepare(late, states).g_us
    nu = -np.log(gt / g0) / np.log(t / 20.0)
    # x = g/g_max ~ 1: mu = clip(0.0244, 0.049, 0.1) = 0.049, sd = clip(-0.0059, ...) = 0.008
    assert abs(np.median(nu) - 0.049) < 0.002 and abs(nu.std() - 0.008) < 0.001


def test_rram_read_noise_is_three_percent_per_read():
    cfg = analog_config("rram", prog_noise=0.0)
    states = np.full((cfg.tiles, cfg.rows, cfg.physical_columns), cfg.cell_max)
    arr = analog.prepare(cfg, states)
    one = np.zeros(cfg.rows)
    one[0] = 1
    current, var = analog.read_currents(arr, one, tile=0)
    reads = np.arange(4000)
    held = analog.held(cfg, arr, current[0], var[0], 0, 0, reads)
    assert abs(held.std() / current[0] - 0.03) < 0.003


def test_batched_reads_equal_reads_one_at_a_time(seed):
    # The golden model evaluates every read at once; the Python crossbar one read at a time:
    # the same held currents and comparator answers, exactly.
    cfg = analog_config("pcm", time=3600.0, ir_drop=0.1, comparator_noise=0.8,
                        comparator_offset=0.4)
    arr = analog.prepare(cfg, uniform_states(cfg, seed))
    rng = np.random.default_rng(seed)
    enable = rng.integers(0, 2, size=(7, cfg.tiles, cfg.rows))
    current, var = analog.read_currents(arr, enable[:, :, np.newaxis, :])
    current, var = current[:, :, 0], var[:, :, 0]
    reads = rng.integers(0, 10**6, size=(7, 1, 1))
    tiles = np.arange(cfg.tiles)[:, np.newaxis]
    columns = np.arange(cfg.physical_columns)
    batched = analog.held(cfg, arr, current, var, tiles, columns, reads)
    for v in range(7):
        for t in range(cfg.tiles):
            c1, v1 = analog.read_currents(arr, enable[v, t], tile=t)
            single = analog.held(cfg, arr, c1, v1, t, columns, int(reads[v, 0, 0]))
            np.testing.assert_array_equal(single, batched[v, t])
            dac = rng.integers(1, cfg.adc_max + 1, size=columns.size)
            for c in range(0, columns.size, 17):
                one = analog.compare(cfg, arr, single[c], dac[c], t, c, int(reads[v, 0, 0]),
                                     analog.bit_under_test(dac[c]))
                many = analog.compare(cfg, arr, batched[v, t], dac, t, columns,
                                      int(reads[v, 0, 0]), analog.bit_under_test(dac[c]))
                assert bool(one) == bool(many[c])


def test_ir_drop_loses_more_far_along_the_line_and_with_more_current():
    cfg = analog_config("ideal", ir_drop=0.2)
    arr = analog.prepare(cfg, np.full((cfg.tiles, cfg.rows, cfg.physical_columns),
                                      cfg.cell_max))
    near, far = np.zeros(cfg.rows), np.zeros(cfg.rows)
    near[0], far[-1] = 1, 1
    c_near, _ = analog.read_currents(arr, near, tile=0)
    c_far, _ = analog.read_currents(arr, far, tile=0)
    assert c_far[0] < c_near[0]
    many = np.zeros(cfg.rows)
    many[:cfg.rows_per_read] = 1
    c_many, _ = analog.read_currents(arr, many, tile=0)
    held_many = analog.held(cfg, arr, c_many, np.zeros_like(c_many), 0, 0, 0)
    assert held_many[0] < c_many[0]  # the line current's share


def test_drift_compensation_restores_the_scale():
    cfg = analog_config("pcm", time=3.15e7, read_noise=0.0)
    states = uniform_states(cfg, 3)
    plain = analog.prepare(cfg, states)
    comp = analog.prepare(cfg.replace(**{"analog.drift_compensation": True}), states)
    assert 1.2 < comp.compensation < 3.0 and comp.lsb < plain.lsb


def test_stuck_cells_sit_at_their_rail():
    cfg = analog_config("rram").replace(**{"device.stuck_fraction": 0.05})
    arr = analog.prepare(cfg, uniform_states(cfg, 4))
    stuck, on = device.stuck_map(cfg)
    assert stuck.any() and (arr.g_us[on] == cfg.analog.g_max_us).all()
    assert (arr.g_us[stuck & ~on] == cfg.analog.g_min_us).all()


# -- RTL co-simulation ----------------------------------------------------------------------

CASES = {
    "pcm-drift-noise-ir": dict(device="pcm", time=86400.0, read_noise=2.0, ir_drop=0.05,
                               comparator_noise=0.5, comparator_offset=0.25,
                               drift_compensation=True),
    # A positive offset drives reads to adc_max, codes no level sum reaches: the widths allow.
    "rram-stuck-calibrated-saturating": dict(device="rram", read_noise=1.5, comparator_noise=0.4,
                                             comparator_offset=2.5, adc_range="calibrated"),
}


@pytest.mark.parametrize("name", CASES)
def test_rtl_with_the_noisy_crossbar_equals_golden(name, seed, tmp_path):
    rng = np.random.default_rng(seed)
    base = random_config(rng)
    cfg = base.replace(crossbar="external", analog=CASES[name], adc_overlap=name.startswith("pcm"),
                       **{"device.stuck_fraction": 0.03})
    W, X = stimulus(cfg, rng, 24)
    result = simulate(cfg, W, X, seed=seed, in_gaps=0.2, out_stalls=0.2, reset_after=[7],
                      work_dir=tmp_path)
    assert result.match, result.mismatch_report() + f"\n{cfg}"
    assert result.extra["in_flight_at_reset"][0] >= 0


def test_physical_model_with_the_stub_is_refused(tmp_path):
    from imcgen.core.errors import ImcError

    cfg = MacroConfig(rows=4, tiles=1, outputs=1, adcs=1, tables={"analog": {"device": "pcm"}})
    with pytest.raises(ImcError, match='set crossbar = "external"'):
        simulate(cfg, np.zeros((4, 1), dtype=int), np.zeros((1, 4), dtype=int))


# -- imcgen accuracy ----------------------------------------------------------------------------

ACCURACY_SETS = ["rows=16", "tiles=2", "outputs=3", "input_bits=4", "weight_bits=4",
                 "cell_bits=2", "adc_bits=5", "adcs=2"]


def test_accuracy_cli_reports_and_plots(tmp_path, capsys):
    from imcgen import cli
    from imcgen.apps import accuracy
    from imcgen.core.config import load_config

    plots = tmp_path / "plots"
    args = ["accuracy", "--device", "pcm", "--time", "20s,1d", "--sweep", "adc_bits=4..5",
            "--vectors", "60", "--seed", "3", "--plots", str(plots)]
    for item in ACCURACY_SETS:
        args += ["--set", item]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    # The printed numbers are the API's, for the same configuration and seed.
    cfg = load_config(overrides=ACCURACY_SETS)
    report = accuracy.run(cfg.replace(crossbar="external"), "pcm", [20.0, 86400.0],
                          ("adc_bits", [4, 5]), seed=3, vectors=60)
    assert report["ideal"].rms == 0.0  # no device physics: the exact product
    day = report["times"][1]
    for label, e in (("t =     1d  no compensation:   ", day["plain"]),
                     ("t =     1d  drift compensation:", day["compensated"])):
        assert f"{label} RMS error {e.rms:9.2f}, precision {e.bits:5.2f} bits" in out
    assert day["compensated"].rms < day["plain"].rms  # a day's drift, compensated
    assert report["times"][0]["plain"].rms < day["plain"].rms  # drift grows the error
    assert "adc_bits =      4:" in out and "adc_bits =      5:" in out
    assert "programming error (open loop)" in out
    for name in ("accuracy_vs_time.png", "accuracy_vs_adc_bits.png", "error_histograms.png"):
        assert (plots / name).stat().st_size > 10_000, name
        assert f"wrote {plots / name}" in out


def test_accuracy_of_write_verify_programmed_rram():
    # Write-verify on: the computation and the programming error use the verified states
    # (fractional levels), not the requested ones.
    from imcgen.apps import accuracy
    from imcgen.core.config import load_config
    from imcgen.golden import weight_mapper
    from imcgen.golden.programming import program_golden

    cfg = load_config(overrides=[*ACCURACY_SETS, "device.kind=rram", "crossbar=external"])
    report = accuracy.run(cfg, "rram", [20.0], seed=1, vectors=40)
    work = accuracy.workload(cfg, seed=1, vectors=40)
    states = program_golden(cfg.replace(**{"analog.device": "rram"}), work.W).states
    levels = weight_mapper.cell_levels(cfg, work.W)
    a = cfg.analog
    span = a.g_max_us - a.g_min_us
    g = a.g_min_us + states / (cfg.cell_max << cfg.state_frac) * span
    target = a.g_min_us + levels / cfg.cell_max * span
    healthy = ~device.stuck_map(cfg)[0] & (levels > 0)
    want = np.mean(np.abs(g - target)[healthy] / target[healthy])
    assert report["times"][0]["plain"].prog_error == pytest.approx(want, rel=1e-12)
    assert 0 < want < 0.1
