"""The cost model (``gen/apps/cost.py``): event counts equal the golden model's, energies are the
counts times the ``[cost]`` table's figures, the table stays out of the hardware identity, and
``imcgen cost`` works end to end. No simulator."""

import json
import math

import numpy as np
import pytest

from imcgen import golden
from imcgen.apps import cost
from imcgen.core.config import MacroConfig, load_config
from imcgen.golden.input_driver import bit_planes, plane_popcounts
from imcgen.link.protocol import config_digest

CONFIGS = {
    "default": {}, "dense": {"schedule": "dense"}, "signed": {"input_signed": True},
    "one tile": {"tiles": 1, "rows": 64}, "overlap": {"adc_overlap": True},
    "offset": {"weight_mapping": "offset", "cell_bits": 2},
    "wide inputs": {"input_bits": 12, "rows": 8, "tiles": 8},
}


def _stimulus(cfg, rng, n=64):
    W = rng.integers(cfg.weight_min, cfg.weight_max + 1, (cfg.input_rows, cfg.outputs))
    X = rng.integers(cfg.input_min, cfg.input_max + 1, (n, cfg.input_rows))
    X = np.where(rng.random(X.shape) < 0.4, 0, X)
    X[0] = 0
    X[1] = cfg.input_max
    X[2] = cfg.input_min
    return W, X


@pytest.mark.parametrize("name", CONFIGS)
def test_events_equal_the_golden_models_counts(name, seed):
    """Reads and cycles as ``run`` gives them (exact path and read by read), pulses as the
    bit planes' ones, every derived count by its definition."""
    cfg = load_config("default").replace(**CONFIGS[name])
    W, X = _stimulus(cfg, np.random.default_rng(seed))
    ev = golden.macro_top.events(cfg, X)
    for force in (False, True):
        run = golden.run(cfg, W, X, force_reads=force)
        assert np.array_equal(ev.reads, run.reads.sum(axis=1)), (name, seed)
        assert np.array_equal(ev.cycles, run.cycles), (name, seed)
    planes = bit_planes(cfg, X)
    assert np.array_equal(plane_popcounts(cfg, X), planes.sum(axis=-1))
    assert np.array_equal(ev.row_pulses, planes.sum(axis=(1, 2, 3)))
    assert np.array_equal(ev.cell_reads, ev.row_pulses * cfg.physical_columns)
    assert np.array_equal(ev.conversions, ev.reads * cfg.physical_columns)
    assert np.array_equal(ev.compares, ev.conversions * cfg.adc_bits)
    assert np.array_equal(ev.adds, np.full(len(X), cfg.tiles * cfg.outputs))
    assert ev.row_pulses[0] == 0 and (cfg.schedule == "dense" or ev.reads[0] == 0)


def test_tile_sums_on_the_exact_path_equal_the_read_by_read_ones(seed):
    cfg = load_config("default")
    W, X = _stimulus(cfg, np.random.default_rng(seed))
    fast, slow = golden.run(cfg, W, X), golden.run(cfg, W, X, force_reads=True)
    assert np.array_equal(fast.psums, slow.psums) and np.array_equal(fast.sums, X @ W)


def test_energy_is_counts_times_the_tables_figures():
    cfg = load_config("default")
    X = np.zeros((3, cfg.input_rows), dtype=np.int64)
    X[1, :5] = 1     # 5 rows in plane 0 of tile 0: one read (rows_per_read 10)
    X[2, :] = 31     # every row in every plane
    report = cost.cost(cfg, X, fpga=False)
    ev = golden.macro_top.events(cfg, X).total()
    c = cfg.cost
    assert ev["row_pulses"] == 5 + 64 * 5
    assert ev["reads"] == 1 + 2 * 5 * 4  # ceil(32 / 10) = 4 reads per plane and tile
    adc = c.adc_energy_pj * 2.0 ** (cfg.adc_bits - 8)
    expected = (ev["conversions"] * (adc + c.sample_pj) + ev["row_pulses"] * c.row_pulse_pj
                + ev["cell_reads"] * c.cell_read_fj / 1000 + ev["shift_adds"] * c.shift_add_pj
                + ev["adds"] * c.add_pj) / 3
    leak = c.leakage_mw_per_mm2 * report.area_mm2 * ev["interval"] / 3 / c.clock_mhz * 1e3
    assert math.isclose(report.energy_pj, expected + leak, rel_tol=1e-12)
    assert math.isclose(report.tops_per_w, 2 * 64 * 10 / report.energy_pj, rel_tol=1e-12)
    assert math.isclose(report.latency_ns, np.mean(golden.run(cfg, np.zeros(
        (64, 10), dtype=np.int64), X).cycles) / c.clock_mhz * 1e3, rel_tol=1e-12)
    # The ADC's law: a bit more doubles it (Walden), or adds 1/8 (linear).
    up = cost.cost(cfg.replace(adc_bits=6), X, fpga=False)
    assert math.isclose(up.area["adc"], 2 * report.area["adc"], rel_tol=1e-12)
    linear = cfg.replace(**{"cost.adc_scaling": "linear"})
    assert math.isclose(cost.area(linear)["adc"], cfg.tiles * cfg.adcs * c.adc_area_mm2 * 5 / 8,
                        rel_tol=1e-12)


def test_zero_skipping_saves_energy_on_sparse_inputs():
    cfg = load_config("default")
    rng = np.random.default_rng(0)
    X = np.where(rng.random((200, 64)) < 0.8, 0, rng.integers(0, 32, (200, 64)))
    skip = cost.cost(cfg, X, fpga=False)
    dense = cost.cost(cfg.replace(schedule="dense"), X, fpga=False)
    assert skip.energy["adc"] < dense.energy["adc"] / 3 and skip.cycles < dense.cycles
    assert skip.area == dense.area


def test_programming_energy_is_its_pulses_and_verify_reads():
    cfg = load_config("small").replace(device={"kind": "pcm"})
    W, X = _stimulus(cfg, np.random.default_rng(3))
    report = cost.cost(cfg, X, W, program=True, fpga=False)
    prog = golden.programming.program_golden(cfg, W)
    c = cfg.cost
    pulses, reads = int(prog.pulses.sum()), int(prog.reads.sum())
    read = c.row_pulse_pj + c.cell_read_fj / 1000 + c.sample_pj + \
        c.adc_energy_pj * 2.0 ** (cfg.adc_bits - 8)
    assert report.programming["pulses"] == pulses > 0
    assert math.isclose(report.programming["energy_pj"], pulses * c.pcm_pulse_pj + reads * read)


def test_cost_keys_are_not_hardware():
    cfg = load_config("default")
    other = cfg.replace(**{"cost.adc_energy_pj": 99.0, "cost.clock_mhz": 500.0})
    assert config_digest(other) == config_digest(cfg) and "cost" not in cfg.hardware_dict()
    assert config_digest(cfg.replace(adc_bits=6)) != config_digest(cfg)
    assert MacroConfig.from_dict(other.to_dict()) == other  # the table round-trips


def test_imcgen_cost_prints_and_writes_json(tmp_path, capsys):
    from imcgen import cli

    out = tmp_path / "cost.json"
    assert cli.main(["cost", "--preset", "default", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "TOPS/W" in text and "adc" in text and "reported in the seeds" in text
    assert "digits classifier" in text and "accuracy: golden_accuracy 0.97" in text
    data = json.loads(out.read_text())
    assert data["vectors"] == 450 and data["events"]["reads"] > 0
    assert math.isclose(data["energy_pj"], sum(data["energy_pj_per_block"].values()))
    assert math.isclose(data["tops_per_w"], 1280 / data["energy_pj"])
    assert cli.main(["cost", "--preset", "small", "--set", "device.kind=rram",
                     "--program"]) == 0
    assert "programming 256 cells" in capsys.readouterr().out  # 16 rows x 16 physical columns
