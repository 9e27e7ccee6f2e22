"""The fast regression engine (``simulate(..., engine="fast")``, :mod:`imcgen.sim.fast`): the same
Verilog driven by a generated C++ main, checked against the golden model exactly.

Each configuration is one native build (cached by the hash of its Verilog and of the driver);
the stimulus is seeded (``seed`` fixture, printed on failure). Speed is measured by
``scripts/bench --suite perf``, not here.
"""

import json

import numpy as np
import pytest

from imcgen import MacroConfig, cli, simulate
from imcgen.apps.soak import stimulus
from imcgen.core.errors import ImcError
from imcgen.link import codec
from imcgen.sim import fast as fast_engine

CONFIGS = {
    # zero_skip, two tiles (one adder level), differential weights, unsigned inputs.
    "default": MacroConfig(),
    # dense, three tiles (two adder levels), a partial ADC group, signed inputs, saturating
    # reads, output stage (shift, ReLU, saturation) in the loop.
    "dense-tiles3-clip-out": MacroConfig(rows=12, tiles=3, outputs=4, input_bits=3,
                                         input_signed=True, weight_bits=5, cell_bits=2,
                                         adc_bits=3, adcs=5, rows_per_read=12,
                                         schedule="dense", out_shift=1, out_relu=True,
                                         out_bits=6),
}


def assert_exact(result):
    assert result.values_match, result.mismatch_report()
    assert result.cycles_match, result.mismatch_report()


@pytest.mark.parametrize("name", CONFIGS)
def test_fast_engine_matches_golden_under_gaps_stalls_and_resets(name, seed, tmp_path):
    # Gaps on both input streams, backpressure on the output, a reset while weights load and
    # three resets mid-stream (one before any result): every vector answered once, in order,
    # with the golden model's values and cycle count.
    cfg = CONFIGS[name]
    rng = np.random.default_rng(seed)
    W, X = stimulus(cfg, rng, 60)
    result = simulate(cfg, W, X, seed=seed, in_gaps=0.3, out_stalls=0.3, w_gaps=0.3,
                      reset_after=[0, 9, 31], weight_reset_after=5, work_dir=tmp_path,
                      engine="fast")
    assert_exact(result)
    assert result.extra["engine"] == "fast"
    assert result.extra["weight_rows_resent"] == 1
    assert len(result.extra["in_flight_at_reset"]) == 3
    assert len(result.extra["reset_edges"]) == 4  # the weight reset and the three others
    if cfg.reads_may_clip:
        assert result.clipped.any(), "the stimulus should make some read saturate"


def test_fast_engine_reset_catches_vectors_in_flight(seed, tmp_path):
    # Back to back (no gaps), a reset after some results lands while vectors are inside: they
    # are lost in the macro and resent by the host, never duplicated.
    cfg = CONFIGS["default"]
    rng = np.random.default_rng(seed)
    W, X = stimulus(cfg, rng, 30)
    result = simulate(cfg, W, X, seed=seed, reset_after=11, work_dir=tmp_path, engine="fast")
    assert_exact(result)
    assert result.extra["in_flight_at_reset"][0] >= 1, "the reset should catch a vector inside"


def test_fast_engine_back_to_back_results_leave_at_the_stream_rate(seed, tmp_path):
    # No gaps, no stalls: results leave timing.stream_cycles apart, as on the cocotb engine
    # (test_macro_top), exactly where neither vector passes a skip token.
    from imcgen.core import timing

    cfg = CONFIGS["default"]
    rng = np.random.default_rng(seed)
    W, X = stimulus(cfg, rng, 40)
    X = X[(X != 0).any(axis=1)]
    result = simulate(cfg, W, X, seed=seed, work_dir=tmp_path, engine="fast")
    assert_exact(result)
    gaps = np.diff(result.extra["output_edges"])
    want = timing.stream_cycles(cfg, result.reads)[1:]
    reading = (result.reads > 0).all(axis=1)
    exact = reading[1:] & reading[:-1]
    assert (gaps[exact] == want[exact]).all(), (gaps, want, seed)
    assert ((gaps >= want) & (gaps <= want + 1)).all(), (gaps, want, seed)


def test_fast_engine_flags_bad_weight_rows_like_cocotb(seed, tmp_path):
    # Raw rows after loading: an index past rows*tiles (36 rows, a 6-bit field) and the
    # differential mapping's excluded value are dropped and flagged in the sticky status.
    cfg = CONFIGS["dense-tiles3-clip-out"]
    rng = np.random.default_rng(seed)
    W, X = stimulus(cfg, rng, 8)
    excluded = -(1 << (cfg.weight_bits - 1))
    raw = [(63, [cfg.weight_min] * cfg.outputs),
           (3, [excluded] + [cfg.weight_max] * (cfg.outputs - 1))]
    result = simulate(cfg, W, X, seed=seed, raw_rows=raw, work_dir=tmp_path, engine="fast")
    assert_exact(result)
    assert result.status == {"bad_weight_row": 1, "bad_weight": 1}, result.status


def test_cached_run_neither_elaborates_nor_builds(seed, tmp_path, monkeypatch):
    cfg = CONFIGS["default"]
    rng = np.random.default_rng(seed)
    W, X = stimulus(cfg, rng, 5)
    first = simulate(cfg, W, X, seed=seed, engine="fast")
    assert_exact(first)
    binary = fast_engine.build_native(fast_engine.elaborated(cfg), "fast")
    built = binary.parent / "BUILT"
    stamp = built.stat().st_mtime_ns
    assert json.loads(built.read_text())["kind"] == "fast"

    def refuse(*args, **kwargs):
        raise AssertionError("a cached run elaborated or compiled")

    monkeypatch.setattr("imcgen.sim.verilog.elaborate", refuse)
    monkeypatch.setattr("imcgen.sim.runner._ports_only_verilator", refuse)
    again = simulate(cfg, W, X, seed=seed, engine="fast")
    assert_exact(again)
    assert built.stat().st_mtime_ns == stamp, "the build was redone"
    np.testing.assert_array_equal(again.y, first.y)


@pytest.mark.parametrize("layout_name", ["vector", "weights", "result"])
def test_bulk_packing_equals_layout_const_and_from_bits(layout_name, seed):
    # pack/unpack read offsets from the layout; each row must equal what layout.const gives
    # and what layout.from_bits reads, signed fields included.
    from imcgen.hdl.input_driver import vector_layout
    from imcgen.hdl.macro_top import result_layout
    from imcgen.hdl.weight_mapper import weight_row_layout

    cfg = CONFIGS["dense-tiles3-clip-out"]
    layout = {"vector": lambda: vector_layout(cfg, cfg.input_rows),
              "weights": lambda: weight_row_layout(cfg),
              "result": lambda: result_layout(cfg)}[layout_name]()
    rng = np.random.default_rng(seed)
    fields = codec.leaves(layout)
    values = np.array([[int(rng.integers(-(1 << (w - 1)) if s else 0,
                                         (1 << (w - 1)) if s else (1 << w)))
                        for _, w, s in fields] for _ in range(20)], dtype=np.int64)
    words = codec.pack_rows(layout, values)
    np.testing.assert_array_equal(codec.unpack_rows(layout, words), values)
    for row, packed in zip(values, words, strict=True):
        flat = int.from_bytes(packed.astype("<u4").tobytes(), "little")
        view = layout.from_bits(flat)
        assert [int(v) for v in _flatten(view)] == row.tolist()


def _flatten(view):
    from amaranth.lib import data

    layout = view.shape()
    keys = range(layout.length) if isinstance(layout, data.ArrayLayout) else \
        [name for name, _ in layout]
    out = []
    for key in keys:
        item = view[key]
        out += _flatten(item) if isinstance(item, (data.View, data.Const)) else [item]
    return out


@pytest.mark.parametrize("kwargs, field", [
    (dict(engine="verilator"), "engine"),
    (dict(program="array"), "program"),
    (dict(waves_dir="w"), "waves_dir"),
    (dict(p_gaps=0.1), "p_gaps"),
    (dict(program_reset_after=3), "program_reset_after"),
])
def test_fast_engine_refuses_what_needs_python(kwargs, field, tmp_path, monkeypatch):
    monkeypatch.setenv("IMCGEN_CACHE", str(tmp_path / "cache"))
    cfg = MacroConfig()
    if "program" in kwargs:
        cfg = cfg.replace(**{"device.kind": "rram"})
    W = np.zeros((cfg.input_rows, cfg.outputs), dtype=np.int64)
    X = np.zeros((2, cfg.input_rows), dtype=np.int64)
    kwargs.setdefault("engine", "fast")
    with pytest.raises(ImcError) as err:
        simulate(cfg, W, X, **kwargs)
    assert err.value.field == field
    assert "\n" not in str(err.value)
    assert not (tmp_path / "cache").exists(), "work started before the refusal"


def test_fast_engine_refuses_the_python_crossbar(tmp_path, monkeypatch):
    monkeypatch.setenv("IMCGEN_CACHE", str(tmp_path / "cache"))
    cfg = MacroConfig(crossbar="external")
    with pytest.raises(ImcError, match="crossbar = 'external': the fast engine runs"):
        simulate(cfg, np.zeros((cfg.input_rows, cfg.outputs), dtype=np.int64),
                 np.zeros((1, cfg.input_rows), dtype=np.int64), engine="fast")


def test_cli_simulate_engine_fast(seed, tmp_path, capsys):
    cfg = CONFIGS["default"]
    rng = np.random.default_rng(seed)
    W, X = stimulus(cfg, rng, 10)
    np.save(tmp_path / "W.npy", W)
    np.save(tmp_path / "X.npy", X)
    out = tmp_path / "out.npz"
    code = cli.main(["simulate", "--weights", str(tmp_path / "W.npy"), "--inputs",
                     str(tmp_path / "X.npy"), "-o", str(out), "--engine", "fast",
                     "--seed", str(seed), "--in-gaps", "0.2", "--out-stalls", "0.2"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "values match, cycles match" in text
    saved = np.load(out)
    np.testing.assert_array_equal(saved["y"], saved["y_golden"])
    np.testing.assert_array_equal(saved["cycles"], saved["cycles_golden"])
