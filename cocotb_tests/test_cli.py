"""The ``imcgen`` command line: configurations, bad input (one line, exit 2), generated files."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from imcgen import PRESETS, MacroConfig, load_config
from imcgen.core.errors import ImcError


def imcgen(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "imcgen.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


# -- configuration ----------------------------------------------------------------------------

def test_presets_resolve_to_the_documented_macros():
    isaac = load_config("isaac")
    # 128x128 array: 16 weights of 16 bits over 8 two-bit cells per row, one 8-bit ADC.
    assert (isaac.rows, isaac.physical_columns, isaac.slices, isaac.column_groups) == \
        (128, 128, 8, 128)
    assert (isaac.weight_offset, isaac.rows_per_read, isaac.conversion_cycles) == \
        (1 << 15, 85, 1 + 128 * 8)
    chang = load_config("chang")
    assert (chang.cell_bits, chang.input_bits, chang.adc_bits, chang.rows_per_read) == (1, 2, 3, 7)
    default = load_config()
    assert (default.input_rows, default.outputs, default.input_max) == (64, 10, 31)


def test_rows_per_read_auto_never_saturates():
    # 2-bit cells and a 5-bit ADC: 10 rows * 3 = 30 <= 31, 11 rows * 3 = 33 > 31.
    cfg = MacroConfig(rows=32, cell_bits=2, adc_bits=5)
    assert cfg.rows_per_read == 10 and not cfg.reads_may_clip
    assert cfg.replace(rows_per_read=11).reads_may_clip
    assert cfg.replace(rows=8).rows_per_read == 8  # auto re-resolves, capped at rows


def test_show_round_trips_through_a_toml_file(tmp_path):
    for name in PRESETS:
        shown = imcgen("config", "show", "--preset", name)
        assert shown.returncode == 0, shown.stderr
        path = tmp_path / f"{name}.toml"
        path.write_text(shown.stdout)
        assert load_config(config_file=path) == load_config(name)


def test_config_file_names_a_base_preset_and_set_overrides_it(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('preset = "isaac"\nschedule = "zero_skip"\n')
    cfg = load_config(config_file=path, overrides=["out_relu=true", "adcs=4"])
    assert cfg == load_config("isaac").replace(schedule="zero_skip", out_relu=True, adcs=4)


BAD_CONFIGS = {
    "rows_per_read=300": "rows_per_read = 300: must be 0 (auto) or an integer in 1..32",
    "weight_mapping=signed": "weight_mapping = 'signed': must be one of 'differential', 'offset'",
    "adcs=41": "adcs = 41: must be an integer in 1..40 (physical columns)",
    "weight_bits=1": "weight_bits = 1: the differential mapping needs at least 2 bits",
    "out_bits=1": "out_bits = 1: must be 0 (off) or an integer in 2..64",
    "input_signed=maybe": "input_signed = 'maybe': must be true or false",
    "rows=zero": "rows = 'zero': must be an integer",
    "tiles=17": "tiles = 17: must be an integer in 1..16",
    "colour=red": "--set = 'colour': unknown key; allowed: rows,",
    # 2^32 inputs x 2^31 weights x 64 rows = 2^69, plus sign: 70 bits.
    "weight_bits=32 input_bits=32": "the accumulator needs 70 bits; at most 62 are supported",
}


@pytest.mark.parametrize("setting", BAD_CONFIGS)
def test_bad_configuration_is_one_line_and_exit_2(setting):
    sets = [arg for item in setting.split() for arg in ("--set", item)]
    result = imcgen("config", "show", *sets)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("imcgen: error: "), result.stderr
    assert BAD_CONFIGS[setting] in lines[0]


def test_malformed_config_file_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("rows = [\n")
    for args, message in (
        (["--config", bad], "not valid TOML"),
        (["--config", tmp_path / "missing.toml"], "file not found"),
        (["--preset", "nope"], "preset = 'nope': must be one of default, isaac, chang"),
        (["--preset", "isaac", "--config", bad], "not allowed with argument"),
    ):
        result = imcgen("config", "show", *args)
        assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
        assert message in result.stderr


def test_config_errors_name_field_value_and_allowed_in_the_api():
    with pytest.raises(ImcError) as err:
        MacroConfig(adc_bits=0)
    assert (err.value.field, err.value.value, err.value.allowed) == \
        ("adc_bits", 0, "must be an integer in 1..16")


# -- bad arrays -------------------------------------------------------------------------------

@pytest.fixture
def arrays(tmp_path):
    cfg = load_config()
    rng = np.random.default_rng(0)
    files = {
        "W": rng.integers(cfg.weight_min, cfg.weight_max + 1, size=(64, 10)),
        "W_neg16": np.full((64, 10), -16),
        "W_shape": np.zeros((63, 10), dtype=np.int64),
        "X": rng.integers(0, 17, size=(3, 64)),
        "X_range": np.full((2, 64), 32),
        "X_float": np.zeros((2, 64)),
        "X_1d": np.zeros(64, dtype=np.int64),
    }
    paths = {}
    for name, array in files.items():
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], array)
    paths["npz"] = tmp_path / "both.npz"
    np.savez(paths["npz"], W=files["W"])
    paths["text"] = tmp_path / "text.npy"
    paths["text"].write_text("not numpy")
    return paths


BAD_ARRAYS = {
    ("W_neg16", "X"): "weights[0, 0] = -16: must be an integer in -15..15; the differential "
                      "mapping stores |w| in 4 bits, so -16 is excluded",
    ("W_shape", "X"): "weights.shape = (63, 10): must be (64, 10)",
    ("W", "X_range"): "inputs[0, 0] = 32: must be an integer in 0..31 (5-bit unsigned)",
    ("W", "X_float"): "holds floating-point numbers (dtype float64); an integer array is needed",
    ("W", "X_1d"): "inputs.shape = (64,): must be (V, 64)",
    ("npz", "X"): "is an .npz archive, not a .npy file",
    ("text", "X"): "is not a .npy file (it starts with b'not nu'",
    ("missing", "X"): "file not found",
}


@pytest.mark.parametrize("pair", BAD_ARRAYS)
def test_bad_weights_or_inputs_are_one_line_and_exit_2(pair, arrays, tmp_path):
    weights = arrays.get(pair[0], tmp_path / "missing.npy")
    result = imcgen("simulate", "--weights", weights, "--inputs", arrays[pair[1]],
                    "-o", tmp_path / "out.npz")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and BAD_ARRAYS[pair] in lines[0], result.stderr
    assert not (tmp_path / "out.npz").exists()


# -- generated files --------------------------------------------------------------------------

def test_verilog_writes_clean_verilog_waivers_gtkw_and_manifest(tmp_path):
    result = imcgen("verilog", "--preset", "chang", "--set", "tiles=1", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    verilog = (tmp_path / "imc_macro.v").read_text()
    assert "\\" not in verilog and "$" not in verilog.replace("$signed", "").replace(
        "$unsigned", "")  # GTKWave-safe: no escaped or $-names
    control = (tmp_path / "imc_macro.vlt").read_text()
    assert 'lint_off -rule WIDTH -file "*/imc_macro.v"' in control
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    cfg = load_config("chang", overrides={"tiles": 1})
    assert manifest["config"] == cfg.to_dict()
    ports = {p["name"]: p for p in manifest["ports"]}
    assert ports["i__payload"]["width"] == cfg.input_rows * cfg.input_bits
    assert ports["o__payload"]["width"] == cfg.outputs * cfg.out_width + cfg.cycle_bits
    for port in ports:  # exactly the ports are public
        assert f'-var "{port}"' in control
    assert manifest["gtkw_traces"] > 20


def test_simulate_cli_writes_results_and_waves_whose_gtkw_traces_all_exist(arrays, tmp_path):
    out, waves = tmp_path / "out.npz", tmp_path / "waves"
    result = imcgen("simulate", "--weights", arrays["W"], "--inputs", arrays["X"], "-o", out,
                    "--waves", waves, "--seed", "7", "--out-stalls", "0.3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 vectors: values match, cycles match" in result.stdout
    data = np.load(out)
    np.testing.assert_array_equal(data["y"], data["y_golden"])
    np.testing.assert_array_equal(data["cycles"], data["cycles_golden"])
    W, X = np.load(arrays["W"]), np.load(arrays["X"])
    np.testing.assert_array_equal(data["y"], X @ W)
    assert int(data["seed"]) == 7
    # Every trace of the save file is a signal of the dump (GTKWave shows no blanks).
    vcd = (waves / "dump.vcd").read_text().split("$enddefinitions")[0]
    scopes, names = [], set()
    for line in vcd.splitlines():
        words = line.split()
        if words[:2] == ["$scope", "module"]:
            scopes.append(words[2])
        elif words[:1] == ["$upscope"]:
            scopes.pop()
        elif words[:1] == ["$var"]:
            rng_ = words[5] if words[5] != "$end" else ""
            names.add(".".join(scopes + [words[4]]) + rng_)
    traces = [t for t in (waves / "imc_macro.gtkw").read_text().splitlines()
              if t.startswith("imc_macro.")]
    assert len(traces) > 50
    missing = [t for t in traces if t not in names]
    assert not missing, missing[:5]
    assert not re.search(r"\$var \w+ \d+ \S+ \\?\$", vcd)  # no $-named signals in the VCD


# -- configuration tables, equality, imports -------------------------------------------------

def test_configurations_equal_exactly_when_they_behave_alike():
    auto, explicit = MacroConfig(), MacroConfig(rows_per_read=10)
    assert auto.rows_per_read == explicit.rows_per_read == 10
    assert auto != explicit and hash(auto) != hash(explicit)  # replace() tells them apart:
    assert auto.replace(rows=8).rows_per_read == 8
    with pytest.raises(ImcError, match="rows_per_read = 10"):
        explicit.replace(rows=8)
    assert MacroConfig.from_dict(auto.to_dict()) == auto
    rram = MacroConfig(tables={"device": {"kind": "rram"}})
    assert rram != MacroConfig() and rram.replace(**{"device.kind": "ideal"}) == MacroConfig()
    assert rram.replace(write_verify={"tolerance": 2}).write_verify.tolerance == 2


def test_tables_round_trip_through_toml_and_dotted_set(tmp_path):
    sets = ["--set", "device.kind=pcm", "--set", "write_verify.tolerance=2",
            "--set", "device.stuck_fraction=0.25"]
    shown = imcgen("config", "show", "--preset", "isaac", *sets)
    assert shown.returncode == 0, shown.stderr
    assert "[device]" in shown.stdout and "[write_verify]" in shown.stdout
    path = tmp_path / "pcm.toml"
    path.write_text(shown.stdout)
    cfg = load_config(config_file=path)
    assert cfg == load_config("isaac", overrides=[s for s in sets if s != "--set"])
    assert (cfg.device.kind, cfg.write_verify.tolerance, cfg.device.stuck_fraction) == \
        ("pcm", 2, 0.25)
    keys = imcgen("config", "keys").stdout.split()
    assert "write_verify.tolerance" in keys and "rows" in keys


def test_verilog_does_not_import_cocotb(tmp_path):
    code = ("import sys; from imcgen.cli import main; "
            f"main(['verilog', '--set', 'device.kind=rram', '-o', r'{tmp_path}']); "
            "print(sorted(m for m in sys.modules if m.startswith('cocotb')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "wv_states.txt").read_text().startswith("0 IDLE\n")


def test_program_cli_golden_writes_results_and_plots(tmp_path):
    cfg = load_config(overrides={"device.kind": "rram", "device.stuck_fraction": 0.02})
    W = np.random.default_rng(0).integers(cfg.weight_min, cfg.weight_max + 1,
                                          size=(cfg.input_rows, cfg.outputs))
    np.save(tmp_path / "W.npy", W)
    result = imcgen("program", "--set", "device.kind=rram", "--set",
                    "device.stuck_fraction=0.02", "--weights", tmp_path / "W.npy", "-o",
                    tmp_path / "p.npz", "--stuck-test", "--plots", tmp_path / "plots")
    assert result.returncode == 0, result.stderr
    assert "2560 cells (7680 requests)" in result.stdout
    found = re.search(r"stuck cells: (\d+) found of (\d+) in the device, 0 healthy", result.stdout)
    assert found and found.group(1) == found.group(2), result.stdout
    data = np.load(tmp_path / "p.npz")
    assert data["states"].shape == (cfg.tiles, cfg.rows, cfg.physical_columns)
    assert len(data["status"]) == 3 * 2560
    ok = data["status"][-2560:] == 0
    assert ok.mean() > 0.97
    # Weights whose cells are all healthy read back exactly; the others carry stuck cells.
    from imcgen.golden.weight_mapper import column_index

    healthy = ~data["stuck"][..., column_index(cfg)].reshape(cfg.input_rows, cfg.outputs, -1)
    clean = healthy.all(axis=-1)
    back = data["weights_read_back"]
    assert clean.mean() > 0.85 and (back[clean] == W[clean]).all()
    for png in ("relative_error.png", "pulses.png"):
        assert (tmp_path / "plots" / png).read_bytes()[:4] == b"\x89PNG"


def test_trng_cli_writes_the_golden_bytes_and_reports_throughput(tmp_path):
    from imcgen.golden import trng

    result = imcgen("trng", "--bits", "20000", "-o", tmp_path / "r.bin", "--clock-mhz", "50")
    assert result.returncode == 0, result.stderr
    cfg = load_config(overrides={"trng.enabled": True})
    want = trng.pack_bytes(trng.bits_for(cfg, 20000).bits[:20000])
    assert (tmp_path / "r.bin").read_bytes() == want.tobytes()
    per_clock = float(re.search(r"([0-9.]+) bits per clock", result.stdout).group(1))
    mbps = float(re.search(r"= ([0-9.]+) Mb/s at 50 MHz", result.stdout).group(1))
    assert abs(per_clock * 50 - mbps) < 0.1 and per_clock > 0.3
    assert "health tests (RCT cutoff 41, APT cutoff 793 of 1024): no alarm" in result.stdout
    stuck = imcgen("trng", "--bits", "1000", "-o", tmp_path / "s.bin", "--set",
                   "trng.fault=stuck_never")
    assert stuck.returncode == 1 and "RCT alarm at round 40" in stuck.stdout


def test_trng_cli_rtl_equals_golden(tmp_path):
    small = ["--set", "rows=4", "--set", "tiles=1", "--set", "outputs=1", "--set", "adcs=2"]
    result = imcgen("trng", *small, "--bits", "800", "-o", tmp_path / "r.bin", "--rtl",
                    "--seed", "3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RTL vs golden: equal (100 bytes)" in result.stdout
    assert len((tmp_path / "r.bin").read_bytes()) == 100


def test_progress_lines_give_rate_elapsed_and_time_left(monkeypatch):
    import io

    from imcgen.core import progress as progress_module

    clock = iter([0.0, 4.0, 8.0])
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: next(clock))
    out = io.StringIO()
    p = progress_module.Progress("accuracy: evaluations", stream=out, interval=0)
    p(0, 3)  # starts the clock
    p(1, 3)  # one evaluation in 4 s: slow work shows seconds each
    p(3, 3)
    assert out.getvalue().splitlines() == [
        "accuracy: evaluations: 0/3 (0/s, 0 s)",
        "accuracy: evaluations: 1/3 (4.0 s each, 4 s, about 8 s left)",
        "accuracy: evaluations: 3/3 (2.7 s each, 8 s)"]
