"""Transposed reads (the backward pass x = W y): the column path against ``golden.transpose``,
the golden model against an independent read-by-read oracle, and the whole macro against the
golden model on backward and mixed streams (docs/architecture.md section 13)."""

import os

import cocotb
import numpy as np
import pytest
from cocotb.triggers import with_timeout

from imcgen import PRESETS, MacroConfig, simulate
from imcgen.apps.soak import random_config, soak_one, stimulus, transposed_variant
from imcgen.core import timing
from imcgen.core.config import load_config
from imcgen.core.errors import ImcError
from imcgen.golden import crossbar_stub, device, sar_adc, transpose, weight_mapper
from imcgen.golden.input_driver import plane_weights
from imcgen.hdl.input_driver import vector_layout
from imcgen.hdl.row_scheduler import back_read_layout
from imcgen.hdl.transpose import ColumnPath
from imcgen.sim.runner import run_block
from imcgen.sim.tb.streams import decode, encode, seed_from_env, stream_test

COLUMN_CASES = {
    # 13 outputs over 3 slices (differential: 6 parts), 5 per read, zero_skip.
    "o13-n5-zero_skip": MacroConfig(rows=8, tiles=1, outputs=13, input_bits=3, weight_bits=6,
                                    cell_bits=2, adc_bits=4, adcs=4, rows_per_read=5,
                                    transposed=True),
    # Offset mapping (one polarity), dense groups, signed inputs; rows_per_read > outputs.
    "o3-dense-offset": MacroConfig(rows=9, tiles=1, outputs=3, input_bits=4, input_signed=True,
                                   weight_bits=4, weight_mapping="offset", cell_bits=2,
                                   adc_bits=5, adcs=2, schedule="dense", transposed=True),
}


def back_stimulus(cfg, rng, vectors):
    """Full-range weights, backward vectors of every density plus the extreme ones."""
    return stimulus(cfg, rng, vectors, backward=True)


# -- golden model (no RTL) ----------------------------------------------------------------------

def oracle(cfg, states, y, t):
    """One backward vector on tile ``t``, read by read from the commands (independent of the
    batched model): every part's held row values converted, weighed and summed."""
    total = np.zeros(cfg.rows, dtype=np.int64)
    weights = plane_weights(cfg)
    for c in transpose.commands(cfg, y):
        if c["skip"]:
            continue
        k, p = divmod(c["part"], cfg.polarities)
        codes = sar_adc.binary_search(cfg, crossbar_stub.held_row_values(
            cfg, states[t], c["cols"], c["part"]))
        value = (codes << (k * cfg.cell_bits)) * (-1 if p else 1)
        if c["part"] == 0:
            value = value - cfg.weight_offset * c["count"]
        total += weights[c["plane"]] * value
    return total


@pytest.mark.parametrize("name", list(PRESETS) + ["offset", "dense-signed", "rram", "clipping"])
def test_golden_backward_equals_oracle_and_exact_product(name, seed):
    base = {"offset": dict(weight_mapping="offset"),
            "dense-signed": dict(schedule="dense", input_signed=True),
            "rram": {"device.kind": "rram"},
            "clipping": dict(rows_per_read=8, adc_bits=3)}.get(name, {})
    preset = name if name in PRESETS else "small"
    cfg = load_config(preset=preset, overrides={**base, "transposed": True})
    rng = np.random.default_rng(seed)
    W, Y = back_stimulus(cfg, rng, 6)
    exact = transpose.run(cfg, W, Y)
    reads = transpose.run(cfg, W, Y, force_reads=True)
    states = device.load_levels(cfg, device.initial_states(cfg),
                                weight_mapper.cell_levels(cfg, W))
    want = np.stack([np.concatenate([oracle(cfg, states, y, t) for t in range(cfg.tiles)])
                     for y in Y])
    np.testing.assert_array_equal(reads.x, want, err_msg=f"seed {seed}")
    if not cfg.reads_may_clip and not cfg.programmable:
        np.testing.assert_array_equal(exact.x, Y @ W.T, err_msg=f"seed {seed}")
        np.testing.assert_array_equal(exact.x, reads.x)
        assert not reads.clipped.any()
    else:
        assert name in ("rram", "clipping")
    if name == "clipping":  # 8 driven cells of 2 bits reach 24 > 7: some reads clip
        assert reads.clipped.any() and (reads.x != Y @ W.T).any()
    # Reads: one per command (a zero vector's skip token is none), and the cycles of each.
    counts = [sum(1 for c in transpose.commands(cfg, y) if not c["skip"]) for y in Y]
    np.testing.assert_array_equal(reads.reads, counts)
    np.testing.assert_array_equal(
        reads.cycles, timing.back_fixed_cycles(cfg) +
        np.maximum(np.array(counts) * timing.back_read_cycles(cfg), 1))


def test_golden_random_configurations(seed):
    rng = np.random.default_rng(seed)
    for n in range(30):
        cfg, _ = transposed_variant(random_config(rng), seed, n)
        if not cfg.transposed:
            continue
        W, Y = back_stimulus(cfg, rng, 4)
        got = transpose.run(cfg, W, Y, force_reads=True).x
        states = device.load_levels(cfg, device.initial_states(cfg),
                                    weight_mapper.cell_levels(cfg, W))
        want = np.stack([np.concatenate([oracle(cfg, states, y, t) for t in range(cfg.tiles)])
                         for y in Y])
        np.testing.assert_array_equal(got, want, err_msg=f"seed {seed}, config {n}: {cfg}")
        if not cfg.reads_may_clip:
            np.testing.assert_array_equal(got, Y @ W.T)


def test_transposed_is_off_by_default_and_changes_nothing_forward():
    cfg = MacroConfig()
    assert not cfg.transposed
    on = cfg.replace(transposed=True)
    # The forward widths and timing are the same; only the cycle counter may widen.
    for key in ("psum_bits", "sum_bits", "out_width", "column_groups"):
        assert getattr(on, key) == getattr(cfg, key)
    assert timing.fixed_cycles(on) == timing.fixed_cycles(cfg)
    assert "back_bits" not in cfg.derived() and "back_bits" in on.derived()


def test_transposed_refusals():
    cfg = load_config(preset="small")
    W = np.zeros((cfg.input_rows, cfg.outputs), dtype=np.int64)
    with pytest.raises(ImcError, match="transposed = False: backward vectors need"):
        simulate(cfg, W, np.zeros((1, cfg.outputs), dtype=np.int64), direction="backward")
    on = cfg.replace(transposed=True)
    with pytest.raises(ImcError, match=r"inputs\.shape = \(1, 16\): must be \(V, 4\)"):
        simulate(on, W, np.zeros((1, cfg.input_rows), dtype=np.int64), direction="backward")
    with pytest.raises(ImcError, match="direction = 'sideways'"):
        simulate(on, W, [np.zeros(cfg.outputs, dtype=np.int64)], direction=["sideways"])
    with pytest.raises(ImcError, match=r"inputs\[1\]\[0, 0\] = 99"):
        simulate(on, W, [np.zeros(cfg.input_rows, dtype=np.int64), np.full(cfg.outputs, 99)],
                 direction=["forward", "backward"])
    with pytest.raises(ImcError, match="transposed = True: backward vectors and"):
        simulate(on, W, np.zeros((1, cfg.outputs), dtype=np.int64), direction="backward",
                 engine="fast")


# -- the column path (driver, scheduler, part sequencer over the outputs) ----------------------

@pytest.mark.parametrize("name", COLUMN_CASES)
def test_column_path(name, tmp_path, seed):
    cfg = COLUMN_CASES[name]
    run_block(ColumnPath(config=cfg), "column_path", "test_transpose", tmp_path, config=cfg,
              seed=seed)


@cocotb.test()
async def column_reads_match_golden_under_stalls(dut):
    cfg, rng, source, sink = await stream_test(dut, idle=0.3, stall=0.4)
    vectors = []
    for n in range(25):
        density = 0.0 if n % 6 == 0 else rng.random()
        vectors.append([rng.randint(cfg.input_min, cfg.input_max) if rng.random() < density
                        else 0 for _ in range(cfg.outputs)])
    expected = [c for v in vectors for c in transpose.commands(cfg, v)]
    in_layout, out_layout = vector_layout(cfg, cfg.outputs), back_read_layout(cfg)
    cocotb.start_soon(source.send_all([encode(in_layout, v) for v in vectors]))
    await with_timeout(sink.wait(len(expected)), 100 * len(expected) + 10_000, "ns")
    got = [decode(out_layout, word) for _, word in sink.items]
    for n, (g, e) in enumerate(zip(got, expected, strict=True)):
        want = dict(rows=e["cols"], count=e["count"], plane=e["plane"], neg=e["neg"],
                    last=e["last"], skip=e["skip"], part=e["part"])
        assert g == want, f"command {n}: got {g}, expected {want} (seed {seed_from_env()})"


# -- the whole macro ---------------------------------------------------------------------------

def mixed(cfg, rng, vectors):
    """Weights and a stream alternating at random between forward and backward vectors."""
    W, Y = back_stimulus(cfg, rng, vectors)
    X = rng.integers(cfg.input_min, cfg.input_max + 1, size=(len(Y), cfg.input_rows))
    back = rng.random(len(Y)) < 0.5
    back[:2] = [True, False]
    return W, [y if b else x for x, y, b in zip(X, Y, back, strict=True)], \
        ["backward" if b else "forward" for b in back]


def assert_directed(result, seed):
    assert result.match, result.mismatch_report() + f" (seed {seed})"


@pytest.mark.parametrize("crossbar", ["stub", "external"])
def test_macro_mixed_stream_stalls_and_resets(crossbar, seed, tmp_path):
    # Backward and forward vectors in one stream under gaps, backpressure and two resets: every
    # result exact, in order, with its direction, and its cycles as the golden model's.
    cfg = load_config(preset="small", overrides={"transposed": True, "crossbar": crossbar})
    rng = np.random.default_rng(seed)
    W, vectors, directions = mixed(cfg, rng, 14)
    result = simulate(cfg, W, vectors, direction=directions, seed=seed, in_gaps=0.3,
                      out_stalls=0.4, reset_after=[3, 9], work_dir=tmp_path)
    assert_directed(result, seed)
    np.testing.assert_array_equal(result.extra["backward"], np.array(directions) == "backward")
    assert len(result.extra["in_flight_at_reset"]) == 2


@pytest.mark.parametrize("device", ["rram", "pcm"])
def test_macro_noisy_analog_model_both_ways(device, seed, tmp_path):
    # The physical analog model in the Python crossbar answers the row side too: read noise,
    # comparator noise and IR drop along the row lines, keyed by each tile's transposed-read
    # index (docs/analog.md). A mixed stream with stalls and a reset equals the golden model
    # bit for bit, and the noise shows (the backward results are not all exact).
    cfg = load_config(preset="small", overrides={
        "transposed": True, "crossbar": "external", "analog.device": device,
        "analog.read_noise": 5.0, "analog.comparator_noise": 0.5, "analog.ir_drop": 0.05})
    W, vectors, directions = mixed(cfg, np.random.default_rng(9), 10)
    result = simulate(cfg, W, vectors, direction=directions, seed=seed, in_gaps=0.3,
                      out_stalls=0.3, reset_after=[4], work_dir=tmp_path)
    assert_directed(result, seed)
    back = np.flatnonzero(np.array(directions) == "backward")
    exact = np.stack([W @ vectors[n] for n in back])
    assert (result.y_golden[back, :cfg.input_rows] != exact).sum() > 10


def test_macro_backward_latency_is_the_reported_count(seed, tmp_path):
    # Backward vectors alone, back to back: the count each result reports is its latency from
    # the accept edge to the FIFO write (two edges before the sink takes it).
    cfg = load_config(preset="small", overrides={"transposed": True, "schedule": "dense"})
    rng = np.random.default_rng(seed)
    W, Y = back_stimulus(cfg, rng, 6)
    result = simulate(cfg, W, Y, direction="backward", seed=seed, work_dir=tmp_path)
    assert_directed(result, seed)
    assert result.y.shape == (len(Y), cfg.input_rows)
    np.testing.assert_array_equal(result.y, Y @ W.T)
    latency = result.extra["output_edges"] - result.extra["accept_edges"] - 2
    np.testing.assert_array_equal(latency, result.cycles)
    dense = cfg.input_bits * cfg.back_groups_per_plane * cfg.parts
    assert (result.cycles == timing.back_fixed_cycles(cfg) +
            dense * timing.back_read_cycles(cfg)).all()


def test_macro_programmed_cells_read_both_ways(seed, tmp_path):
    # RRAM cells programmed by write-verify (pulses change the cells the row side reads too),
    # then a mixed stream: both directions read the programmed states exactly as the golden
    # model's replay.
    cfg = load_config(preset="small", overrides={"transposed": True, "device.kind": "rram"})
    rng = np.random.default_rng(seed)
    W, vectors, directions = mixed(cfg, rng, 6)
    result = simulate(cfg, W, vectors, direction=directions, seed=seed, program="array",
                      work_dir=tmp_path)
    assert_directed(result, seed)


def test_soak_random_transposed_configurations():
    # The default suite's instance: random transposed configurations (one with the stub, one
    # with the Python crossbar) on mixed streams with stalls on every stream and resets.
    for index in (2, 3):  # seed 20261132's transposed draws
        counts = soak_one(20261132, index, cycles_per_config=6000, max_vectors=60)
        assert counts["config"]["transposed"], counts
        assert "failure" not in counts, counts
        assert counts["backward"] > 0 and counts["mvms"] == counts["vectors"], counts


@pytest.mark.slow
@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_mixed_stream(preset, seed, tmp_path):
    # Opt-in (IMCGEN_SLOW=1): every preset's transposed build (isaac's build takes minutes and
    # its backward vectors 131 k cycles each).
    cfg = load_config(preset=preset, overrides={"transposed": True})
    rng = np.random.default_rng(seed)
    W, vectors, directions = mixed(cfg, rng, 3 if preset == "isaac" else 10)
    result = simulate(cfg, W, vectors, direction=directions, seed=seed, in_gaps=0.2,
                      out_stalls=0.2, reset_after=[2], work_dir=tmp_path)
    assert_directed(result, seed)


@pytest.mark.slow
def test_soak_many_random_transposed_configurations():
    seed = int(os.environ.get("IMCGEN_SEED", 7))
    done = 0
    for index in range(60):
        rng = np.random.default_rng([seed, index])
        if not transposed_variant(random_config(rng), seed, index)[0].transposed:
            continue
        counts = soak_one(seed, index, cycles_per_config=30_000, max_vectors=200)
        assert "failure" not in counts, counts
        done += 1
    assert done >= 10


# -- the workload: one training step with the backward pass on the macro -----------------------

def test_backprop_step_follows_float(seed):
    from imcgen.apps.workloads import backprop
    from imcgen.apps.workloads.classifier import digits
    from imcgen.apps.workloads.mlp import model

    cfg = MacroConfig(transposed=True, input_signed=True)
    X_train, _, y_train, _ = digits(0)
    net = model(X_train, y_train, 32, 0, iterations=20)
    (W1, b1), (W2, b2) = [(layer.weights, layer.bias) for layer in net.layers]
    X, y = X_train[:128] / 16.0, y_train[:128]
    s = backprop.step(cfg, W1, b1, W2, b2, X, y)
    # The macro's integers are the exact products of the quantized layer.
    np.testing.assert_array_equal(s["backward"].x, s["G"] @ s["W"].T)
    np.testing.assert_array_equal(s["forward"].y, s["H"] @ s["W"])
    # 5-bit weights and gradients: the input gradient and the update follow float closely
    # (deterministic: seed 0's data and training).
    assert backprop.cosine(s["dh_b"], s["dh_f"]) > 0.99
    assert backprop.cosine(s["gW1_m"], s["gW1_f"]) > 0.98


def test_backprop_workload_end_to_end(tmp_path, capsys):
    import json

    from imcgen import cli

    argv = ["workload", "backprop", "-o", str(tmp_path), "--preset", "small", "--set",
            "outputs=10", "--hidden", "16", "--batch", "64", "--rtl", "1"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "RTL == golden (values and cycles)" in out, out
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["rtl"]["vectors"] == 2 and data["config"]["transposed"]
    assert data["dh_backward_cosine"] > 0.95 and (tmp_path / "backprop.png").stat().st_size
    # Refused before any work: a layer with more hidden units than the macro has rows.
    assert cli.main(argv[:-2] + ["--hidden", "17"]) == 2
    assert "--hidden = 17: the layer needs a row per hidden unit" in capsys.readouterr().err


def test_cost_area_counts_the_row_side():
    from imcgen.apps.cost import area

    off = MacroConfig()
    on, c = off.replace(transposed=True), off.cost
    a, b = area(off), area(on)
    assert b["adc"] == 2 * a["adc"] and b["shift_add"] == 2 * a["shift_add"]
    assert b["control"] == 2 * a["control"] and b["array"] == a["array"]
    assert b["drivers"] - a["drivers"] == pytest.approx(
        off.tiles * off.physical_columns * c.driver_area_um2 / 1e6)
    assert b["sample_hold"] - a["sample_hold"] == pytest.approx(
        off.tiles * off.rows * c.sample_area_um2 / 1e6)


def test_board_refuses_transposed(tmp_path, capsys):
    # The board link has no backward command: refused before any build, naming the key.
    from imcgen import cli

    assert cli.main(["fpga", "--preset", "small", "--board", "icebreaker", "--set",
                     "transposed=true", "-o", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "transposed = True: the board link carries forward vectors only" in err, err
    assert not (tmp_path / "b").exists()
