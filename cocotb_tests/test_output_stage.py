"""Output stage: requantization (bias, scale, every rounding mode) or shift, ReLU and
saturation, against ``golden.output_stage.apply``; the golden model against the ``fixedpoint``
package as an independent oracle; the macro end to end with its ``q`` port."""


import cocotb
import numpy as np
import pytest
from cocotb.triggers import with_timeout
from hypothesis import given, settings
from hypothesis import strategies as st

from imcgen.core.config import ROUNDINGS, MacroConfig
from imcgen.core.errors import ImcError
from imcgen.golden.output_stage import apply, requant_params, round_shift
from imcgen.hdl.adder_network import sum_layout
from imcgen.hdl.output_stage import OutputStage, output_layout, requant_layout
from imcgen.sim.runner import run_block
from imcgen.sim.tb.streams import decode, encode, seed_from_env, stream_test

BASE = dict(rows=16, tiles=2, outputs=4, input_signed=True)
#: One configuration per rounding mode (the shift and the scale width vary too; one has ReLU).
REQUANT = {mode: MacroConfig(**BASE, out_shift=shift, out_bits=8,
                             out_relu=mode == "half_up").replace(
    requant={"enabled": True, "rounding": mode, "scale_bits": bits})
    for mode, shift, bits in (("floor", 9, 8), ("ceil", 9, 8), ("zero", 7, 6),
                              ("half_up", 10, 8), ("half_away", 9, 8), ("half_even", 11, 12))}
#: No shift at all (the product itself, saturated): no rounding step.
REQUANT["no-shift"] = MacroConfig(**BASE, out_bits=12).replace(
    requant={"enabled": True, "scale_bits": 3})
CONFIGS = {
    "full-precision": MacroConfig(**BASE),
    "shift3": MacroConfig(**BASE, out_shift=3),
    "relu": MacroConfig(**BASE, out_relu=True),
    "sat6": MacroConfig(**BASE, out_bits=6),
    "shift2-relu-sat4": MacroConfig(**BASE, out_shift=2, out_relu=True, out_bits=4),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_output_stage(name, tmp_path, seed):
    cfg = CONFIGS[name]
    run_block(OutputStage(config=cfg), "output_stage", "test_output_stage", tmp_path,
              config=cfg, seed=seed)


def _params(cfg, rng):
    """Random bias and scale with their corners (0, the extremes, a tie-making scale)."""
    lo, hi = -(1 << (cfg.bias_bits - 1)), (1 << (cfg.bias_bits - 1)) - 1
    top = (1 << cfg.requant.scale_bits) - 1
    bias = [rng.choice([lo, hi, 0, -1, rng.randint(lo, hi), rng.randint(-99, 99)])
            for _ in range(cfg.outputs)]
    scale = [rng.choice([0, 1, top, rng.randint(0, top), rng.randint(0, top)])
             for _ in range(cfg.outputs)]
    return bias, scale


@cocotb.test()
async def outputs_match_golden_under_stalls(dut):
    cfg, rng, source, sink = await stream_test(dut, 0.3, 0.4)
    lo, hi = cfg.sum_range
    corners = [lo, hi, 0, -1, 1, -(1 << cfg.out_shift) - 1, (1 << cfg.out_shift) // 2]
    sums = np.array([[rng.choice(corners + [rng.randint(lo, hi)] * 4) for _ in range(cfg.outputs)]
                     for _ in range(60)])
    sums = np.clip(sums, lo, hi)
    cocotb.start_soon(source.send_all([encode(sum_layout(cfg), s.tolist()) for s in sums]))
    await with_timeout(sink.wait(len(sums)), 200 * len(sums) + 1000, "ns")
    expected = apply(cfg, sums)
    for n, (_, word) in enumerate(sink.items):
        got = decode(output_layout(cfg), word)
        assert got == expected[n].tolist(), f"{sums[n].tolist()} (seed {seed_from_env()})"


@pytest.mark.parametrize("mode", sorted(REQUANT))
def test_every_rounding_mode_in_amaranths_simulator(mode, seed):
    """The RTL of each rounding mode, sum after sum (ties made on purpose), against golden
    (Amaranth's simulator: no build per mode; the macro test below runs it through
    Verilator)."""
    import random

    from amaranth.sim import Simulator

    cfg = REQUANT[mode]
    rng = random.Random(seed)
    dut = OutputStage(config=cfg)
    lo, hi = cfg.sum_range
    half = 1 << max(cfg.out_shift - 1, 0)
    sums = [[rng.choice([lo, hi, 0, -1, half, -half, 3 * half, -3 * half,
                         rng.randint(lo, hi)]) for _ in range(cfg.outputs)] for _ in range(300)]
    params = []
    got = []

    async def bench(ctx):
        for n, row in enumerate(sums):
            if n % 50 == 0:  # new parameters now and then, ties with scale 1 and bias 0
                bias, scale = _params(cfg, rng)
                if n == 0:
                    bias, scale = [0] * cfg.outputs, [1] * cfg.outputs
                ctx.set(dut.q.payload, requant_layout(cfg).const({"bias": bias,
                                                                  "scale": scale}))
                ctx.set(dut.q.valid, 1)
                await ctx.tick()
                ctx.set(dut.q.valid, 0)
                params.append((n, bias, scale))
            ctx.set(dut.i.payload, sum_layout(cfg).const(row))
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.o.ready, 1)
            await ctx.tick()
            ctx.set(dut.i.valid, 0)
            got.append([int(v) for v in ctx.get(dut.o.payload)])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for (start, bias, scale), end in zip(params, [p[0] for p in params[1:]] + [len(sums)],
                                         strict=True):
        want = apply(cfg, np.array(sums[start:end]), (np.array(bias), np.array(scale)))
        assert got[start:end] == want.tolist(), f"{mode} (seed {seed})"


# -- the golden model against the fixedpoint package ---------------------------------------


def _oracle_round(p, shift, rounding, width):
    """``p / 2^shift`` rounded by ``fixedpoint``: ``p`` as a Q(width-shift).shift number (a
    spare integer bit for the carry of rounding up), its fraction rounded away."""
    from fixedpoint import FixedPoint

    x = FixedPoint(hex(p & ((1 << (width + 1)) - 1)), signed=True, m=width + 1 - shift,
                   n=shift, rounding=ROUNDINGS[rounding])
    x.n = 0
    return int(x)


def test_every_rounding_matches_the_oracle_exhaustively_on_10_bits():
    width = 10
    p = np.arange(-(1 << (width - 1)), 1 << (width - 1))
    for rounding in ROUNDINGS:
        for shift in (1, 2, 3, 5, 9):
            want = [_oracle_round(int(v), shift, rounding, width) for v in p]
            assert round_shift(p, shift, rounding).tolist() == want, (rounding, shift)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.sampled_from(sorted(ROUNDINGS)), st.integers(1, 40),
       st.integers(-(1 << 61), (1 << 61) - 1))
def test_every_rounding_matches_the_oracle_on_wide_products(rounding, shift, p):
    assert int(round_shift(np.array([p]), shift, rounding)[0]) == \
        _oracle_round(p, shift, rounding, 63)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.data())
def test_requantized_outputs_match_the_oracle(data):
    """The whole stage: (sum + bias) * scale in fixedpoint, rounded, ReLU, saturated."""
    rounding = data.draw(st.sampled_from(sorted(ROUNDINGS)))
    bits = data.draw(st.integers(1, 16))
    relu, out_bits = data.draw(st.booleans()), data.draw(st.sampled_from([0, 4, 8, 16]))
    base = MacroConfig(**BASE, out_relu=relu, out_bits=out_bits)
    cfg = base.replace(requant={"enabled": True, "rounding": rounding, "scale_bits": bits})
    shift = data.draw(st.integers(0, cfg.product_bits - 2))
    cfg = cfg.replace(out_shift=shift)
    lo, hi = cfg.sum_range
    blo, bhi = -(1 << (cfg.bias_bits - 1)), (1 << (cfg.bias_bits - 1)) - 1
    sums = data.draw(st.lists(st.integers(lo, hi), min_size=4, max_size=4))
    bias = data.draw(st.lists(st.integers(blo, bhi), min_size=4, max_size=4))
    scale = data.draw(st.lists(st.integers(0, (1 << bits) - 1), min_size=4, max_size=4))
    got = apply(cfg, np.array([sums]), (np.array(bias), np.array(scale)))[0].tolist()
    for j in range(4):
        p = (sums[j] + bias[j]) * scale[j]
        y = _oracle_round(p, shift, rounding, cfg.product_bits) if shift else p
        y = max(y, 0) if relu else y
        if out_bits:
            y = min(max(y, -(1 << (out_bits - 1))), (1 << (out_bits - 1)) - 1)
        assert got[j] == y, (j, sums, bias, scale, shift, rounding)
        lo_out, hi_out = cfg.out_range
        assert lo_out <= got[j] <= hi_out  # the derived width holds every output


def test_requant_widths_and_refusals():
    cfg = MacroConfig(**BASE, out_shift=9, out_bits=8).replace(requant={"enabled": True})
    assert (cfg.bias_bits, cfg.product_bits, cfg.out_width) == (cfg.sum_bits,
                                                                cfg.sum_bits + 9, 8)
    assert cfg.derived()["out_width"] == 8
    with pytest.raises(ImcError, match=r"requant.scale_bits = 24: \(sum \+ bias\) \* scale "
                                       r"needs 71 bits with 46-bit sums; at most 63: "
                                       r"allowed 1..16"):
        MacroConfig(rows=1024, tiles=16, input_bits=16, weight_bits=16).replace(
            requant={"enabled": True, "scale_bits": 24})
    with pytest.raises(ImcError, match="out_shift = 24: shifts out every magnitude bit of "
                                       r"the 25-bit products .* allowed: 0..23"):
        MacroConfig().replace(out_shift=24, requant={"enabled": True})
    with pytest.raises(ImcError, match=r"requant.scale = 256: must be integers in 0..255"):
        requant_params(cfg, (np.zeros(4, int), np.array([1, 2, 3, 256])))
    with pytest.raises(ImcError, match=r"requant.bias.shape = \(3,\): must be \(4,\)"):
        requant_params(cfg, (np.zeros(3, int), np.ones(4, int)))
    with pytest.raises(ImcError, match="requant.bias = 'float64': must be integers"):
        requant_params(cfg, (np.zeros(4), np.ones(4, int)))


# -- the macro end to end ------------------------------------------------------------------


MACRO = MacroConfig(rows=8, tiles=2, outputs=4, input_bits=4, weight_bits=4, cell_bits=2,
                    adc_bits=4, adcs=4, input_signed=True, out_shift=6, out_relu=True,
                    out_bits=5).replace(requant={"enabled": True, "rounding": "half_even"})


def test_macro_requantizes_exactly_through_its_q_port(seed):
    """A whole macro with folded-batch-norm-like parameters: every output and cycle equals
    the golden model's under gaps, stalls and a reset (the parameters survive it, as the
    weights do), on both engines; bad parameters are refused."""
    import random

    from imcgen import simulate

    cfg = MACRO
    rng = np.random.default_rng(seed)
    W = rng.integers(cfg.weight_min, cfg.weight_max + 1, (cfg.input_rows, cfg.outputs))
    X = rng.integers(cfg.input_min, cfg.input_max + 1, (40, cfg.input_rows))
    bias, scale = _params(cfg, random.Random(seed))
    r = simulate(cfg, W, X, seed=seed, in_gaps=0.2, out_stalls=0.3, reset_after=17,
                 requant=(bias, scale))
    assert r.values_match and r.cycles_match, f"seed {r.seed}"
    from imcgen import golden

    plain = golden.run(cfg, W, X)  # nothing loaded: bias 0, scale 1
    assert not np.array_equal(plain.y, r.y) and np.array_equal(
        r.y_golden, apply(cfg, X @ W, (np.array(bias), np.array(scale))))
    fast = simulate(cfg, W, X, seed=seed, in_gaps=0.2, out_stalls=0.3, reset_after=17,
                    requant=(bias, scale), engine="fast")
    assert fast.values_match and fast.cycles_match and np.array_equal(fast.y, r.y), \
        f"seed {fast.seed}"
    with pytest.raises(ImcError, match="requant = 'given': needs a configuration with "
                                       "requant.enabled = true"):
        simulate(cfg.replace(requant={"enabled": False}), W, X, requant=(bias, scale))


def test_imcgen_simulate_loads_requant_from_a_file(tmp_path, capsys):
    """The command line: ``--requant Q.npz`` on the fast engine; its refusals in one line."""
    import random

    from imcgen import cli

    rng = np.random.default_rng(5)
    W = rng.integers(MACRO.weight_min, MACRO.weight_max + 1, (MACRO.input_rows, MACRO.outputs))
    X = rng.integers(MACRO.input_min, MACRO.input_max + 1, (20, MACRO.input_rows))
    bias, scale = _params(MACRO, random.Random(5))
    np.save(tmp_path / "W.npy", W)
    np.save(tmp_path / "X.npy", X)
    np.savez(tmp_path / "q.npz", bias=np.array(bias), scale=np.array(scale))
    np.savez(tmp_path / "half.npz", bias=np.array(bias))
    sets = [f"--set={k}={v}" for k, v in MACRO.to_dict().items() if not isinstance(v, dict)]
    sets += ["--set=requant.enabled=true", "--set=requant.rounding=half_even"]
    base = ["simulate", *sets, "--weights", str(tmp_path / "W.npy"), "--inputs",
            str(tmp_path / "X.npy")]
    assert cli.main([*base, "--requant", str(tmp_path / "q.npz"), "--engine", "fast", "-o",
                     str(tmp_path / "out.npz")]) == 0
    out = np.load(tmp_path / "out.npz")
    assert np.array_equal(out["y"], apply(MACRO, X @ W, (np.array(bias), np.array(scale))))
    assert "values match, cycles match" in capsys.readouterr().out
    bad = {"half.npz": "must hold two arrays, bias and scale", "nowhere.npz": "file not found"}
    for name, message in bad.items():
        code = cli.main([*base, "--requant", str(tmp_path / name), "-o",
                         str(tmp_path / "no.npz")])
        err = capsys.readouterr().err
        assert code == 2 and "--requant = '" in err and message in err, err
    off = [a for a in base if a != "--set=requant.enabled=true"]
    assert cli.main([*off, "--requant", str(tmp_path / "q.npz"), "-o",
                     str(tmp_path / "no.npz")]) == 2
    assert "needs a configuration with requant.enabled = true" in capsys.readouterr().err
    assert not (tmp_path / "no.npz").exists()
