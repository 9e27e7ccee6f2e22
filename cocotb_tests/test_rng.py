# amaranth: UnusedElaboratable=no
"""Shared random generator: Threefry-2x32 against Random123's known answers, the NumPy model
against the scalar reference, statistics of ``golden.rng.draw``, and the RTL on Verilator
against ``golden.rng.threefry2x32`` (values, stream rules, exact latency).

The first line silences Amaranth's warning for components built only to read a property or to
check a parameter error."""

import os
import random

import cocotb
import numpy as np
import pytest
from amaranth.sim import Simulator
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, with_timeout

from imcgen.core.config import MacroConfig
from imcgen.golden.rng import draw, threefry2x32, uniform_bits
from imcgen.hdl.rng import Threefry2x32, request_layout, result_layout, threefry2x32_reference
from imcgen.sim.runner import run_block
from imcgen.sim.tb.streams import CLOCK_NS, decode, encode, seed_from_env, stream_test

MASK32 = (1 << 32) - 1

# Random123 known answers, fields in the order of its ``kat_vectors`` file:
# (rounds, ctr0, ctr1, key0, key1, x0, x1).
# Rounds 13 and 20: Random123's kat_vectors as cut and pasted into DEShawResearch/Random123-Boost,
# libs/random/test/test_threefry.cpp (test_kat_threefry2x32).
# Rounds 32: Random123's tests/kat_vectors as quoted in KaroshiBee/randii, tests/kat2x32.ml.
PI = (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344)  # first hex digits of pi
ZERO, ONES = (0, 0, 0, 0), (MASK32,) * 4
KAT = {
    "13-zero": (13, *ZERO, 0x9D1C5EC6, 0x8BD50731),
    "13-ones": (13, *ONES, 0xFD36D048, 0x2D17272C),
    "13-pi": (13, *PI, 0xBA3E4725, 0xF27D669E),
    "20-zero": (20, *ZERO, 0x6B200159, 0x99BA4EFE),
    "20-ones": (20, *ONES, 0x1CB996FC, 0xBB002BE7),
    "20-pi": (20, *PI, 0xC4923A9C, 0x483DF7A0),
    "32-zero": (32, *ZERO, 0xCEE3D47E, 0xA23DFD5C),
    "32-ones": (32, *ONES, 0x6E2FE0D0, 0xB1B76F82),
    "32-pi": (32, *PI, 0xE2827716, 0xC3C05CDF),
}

FIELDS = ("key0", "key1", "ctr0", "ctr1")  # request fields, in random_words order

# Hardware parameter sets run on Verilator: (rounds, rounds_per_cycle).
PARAMS = {"r20-c4": (20, 4), "r20-c1": (20, 1), "r12-c12": (12, 12)}


def random_words(rng, count):
    """``count`` 32-bit words, a quarter of them corner values (0, 1, all ones, top bit)."""
    corners = (0, 1, MASK32, 1 << 31)
    return [rng.choice(corners) if rng.random() < 0.25 else rng.getrandbits(32)
            for _ in range(count)]


# --- Golden model and scalar reference (no simulator) -------------------------------------


@pytest.mark.parametrize("name", KAT)
def test_golden_matches_random123_known_answers(name):
    rounds, c0, c1, k0, k1, x0, x1 = KAT[name]
    got = threefry2x32(k0, k1, c0, c1, rounds=rounds)
    assert (int(got[0]), int(got[1])) == (x0, x1), [hex(int(w)) for w in got]


@pytest.mark.parametrize("name", KAT)
def test_reference_matches_random123_known_answers(name):
    rounds, c0, c1, k0, k1, x0, x1 = KAT[name]
    assert threefry2x32_reference(k0, k1, c0, c1, rounds=rounds) == (x0, x1)


def test_golden_matches_reference_on_random_inputs(seed):
    rng = random.Random(seed)
    for rounds in range(33):  # 33 x 100 inputs, every round count Random123 allows
        words = np.array([random_words(rng, 4) for _ in range(100)], dtype=np.uint32)
        x0, x1 = threefry2x32(*words.T, rounds=rounds)
        for n, (k0, k1, c0, c1) in enumerate(words.tolist()):
            expected = threefry2x32_reference(k0, k1, c0, c1, rounds=rounds)
            assert (int(x0[n]), int(x1[n])) == expected, \
                f"rounds {rounds}, words {[hex(w) for w in (k0, k1, c0, c1)]} (seed {seed})"


def test_golden_broadcasts_and_stays_uint32():
    where = np.arange(12, dtype=np.int64).reshape(3, 4)  # int64 in: no promotion out
    when = np.array([0, 1, MASK32, 7])
    x0, x1 = threefry2x32(5, 6, where, when)
    assert x0.shape == x1.shape == (3, 4) and x0.dtype == x1.dtype == np.uint32
    for (r, c), w in np.ndenumerate(where):
        assert (int(x0[r, c]), int(x1[r, c])) == threefry2x32_reference(5, 6, int(w),
                                                                         int(when[c]))
    s0, s1 = threefry2x32(1, 2, 3, 4)
    assert s0.shape == () and s0.dtype == np.uint32


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((-1, 0, 0, 0), {}, "key0 must be integers in 0..4294967295 (32-bit unsigned), not -1"),
    ((0, 0, [1, 1 << 32], 0), {}, "ctr0 must be integers in 0..4294967295 (32-bit unsigned), "
                                  "not 4294967296"),
    ((0, 0, 0, 0), {"rounds": 33}, "rounds must be an integer in 0..32, not 33"),
])
def test_golden_rejects_bad_words(args, kwargs, message):
    with pytest.raises(ValueError) as err:
        threefry2x32(*args, **kwargs)
    assert str(err.value) == message


def test_golden_rejects_float_words():
    with pytest.raises(TypeError, match=r"^key1 must be integers in 0\.\.4294967295, "
                                        r"not float64 values$"):
        threefry2x32(0, 1.5, 0, 0)


def test_reference_rejects_bad_words():
    with pytest.raises(ValueError, match=r"^ctr1 must be an integer in 0\.\.4294967295, "
                                         r"not 4294967296$"):
        threefry2x32_reference(0, 0, 0, 1 << 32)


def test_draw_is_x1_over_x0_keyed_by_seed_mod_2_32(seed):
    rng = random.Random(seed)
    seeds = [rng.getrandbits(64) for _ in range(50)]
    what, where, when = (random_words(rng, 50) for _ in range(3))
    for n, s in enumerate(seeds):
        x0, x1 = threefry2x32_reference(s % (1 << 32), what[n], where[n], when[n])
        assert int(draw(s, what[n], where[n], when[n])) == x0 | x1 << 32, f"seed {seed}"
    got = draw(np.array(seeds, dtype=np.uint64), what, where, when)
    assert got.dtype == np.uint64
    assert got.tolist() == [int(draw(s, what[n], where[n], when[n])) for n, s in enumerate(seeds)]
    assert int(draw(-1, 2, 3, 4)) == int(draw(MASK32, 2, 3, 4))  # mod 2**32 for negatives too
    assert int(draw(np.int64(-1), 2, 3, 4)) == int(draw(MASK32, 2, 3, 4))


def test_draw_bytes_are_uniform(seed):
    # Pearson chi-square of the 8e6 bytes of 1e6 draws over 256 values (255 degrees of freedom),
    # at consecutive counters as the noise models use them. Two-sided bound: a uniform source
    # lands outside [chi2.ppf(1e-6), chi2.isf(1e-6)] = [161.7, 377.1] with probability 2e-6.
    from scipy.stats import chi2

    bits = draw(seed, 0x5EED, np.arange(1_000_000), 3)
    counts = np.bincount(bits.view(np.uint8), minlength=256)
    expected = bits.size * 8 / 256
    statistic = float(((counts - expected) ** 2 / expected).sum())
    assert chi2.ppf(1e-6, 255) < statistic < chi2.isf(1e-6, 255), (statistic, seed)


def test_draw_bits_are_balanced(seed):
    # Ones at each of the 64 bit positions over 1e6 draws: Binomial(1e6, 1/2), sd 500. A bound of
    # 5.5 sd (2750) is crossed by some position with probability 64 * 3.8e-8 = 2.4e-6.
    bits = draw(seed, 0xB175, 9, np.arange(1_000_000))  # consecutive "when" this time
    ones = [int(uniform_bits(bits, 1, b).sum()) for b in range(64)]
    worst = max(range(64), key=lambda b: abs(ones[b] - 500_000))
    assert abs(ones[worst] - 500_000) <= 2750, (worst, ones[worst], seed)


def test_uniform_bits_extracts_the_field(seed):
    rng = random.Random(seed)
    values = [rng.getrandbits(64) for _ in range(200)] + [0, (1 << 64) - 1]
    bits = np.array(values, dtype=np.uint64)
    for n, offset in [(1, 0), (1, 63), (8, 24), (13, 51), (32, 32), (64, 0)]:
        got = uniform_bits(bits, n, offset)
        assert got.dtype == np.uint64
        assert got.tolist() == [(v >> offset) & ((1 << n) - 1) for v in values], (n, offset)


@pytest.mark.parametrize(("n", "offset", "message"), [
    (0, 0, "n must be in 1..64, not 0"),
    (65, 0, "n must be in 1..64, not 65"),
    (16, 49, "offset must be in 0..48 for a field of 16 bits, not 49"),
    (1, -1, "offset must be in 0..63 for a field of 1 bits, not -1"),
])
def test_uniform_bits_rejects_bad_fields(n, offset, message):
    with pytest.raises(ValueError) as err:
        uniform_bits(np.zeros(3, dtype=np.uint64), n, offset)
    assert str(err.value) == message


# --- Hardware: parameters and properties (no simulator) -----------------------------------


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"rounds": 13}, "Threefry rounds must be a multiple of 4 from 4 to 32, not 13"),
    ({"rounds": 0}, "Threefry rounds must be a multiple of 4 from 4 to 32, not 0"),
    ({"rounds": 36}, "Threefry rounds must be a multiple of 4 from 4 to 32, not 36"),
    ({"rounds": 20.0}, "Threefry rounds must be a multiple of 4 from 4 to 32, not 20.0"),
    ({"rounds": 20, "rounds_per_cycle": 3},
     "Threefry rounds_per_cycle must divide rounds (20): one of 1, 2, 4, 5, 10, 20, not 3"),
    ({"rounds": 12, "rounds_per_cycle": 0},
     "Threefry rounds_per_cycle must divide rounds (12): one of 1, 2, 3, 4, 6, 12, not 0"),
    ({"rounds": 8, "rounds_per_cycle": 16},
     "Threefry rounds_per_cycle must divide rounds (8): one of 1, 2, 4, 8, not 16"),
])
def test_threefry_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError) as err:
        Threefry2x32(**kwargs)
    assert str(err.value) == message


def test_threefry_properties_and_ports():
    dut = Threefry2x32()
    assert (dut.rounds, dut.rounds_per_cycle, dut.latency) == (20, 4, 5)
    assert [Threefry2x32(rounds=r, rounds_per_cycle=c).latency
            for r, c in [(20, 1), (12, 12), (32, 8), (20, 5)]] == [20, 1, 4, 4]
    assert dut.i.payload.shape() == request_layout and dut.o.payload.shape() == result_layout
    assert request_layout.size == 128 and result_layout.size == 64
    assert request_layout["key0"].offset == 0 and request_layout["ctr1"].offset == 96
    with pytest.raises(AttributeError):
        dut.latency = 3


# Rounds per cycle that the Verilator runs do not cover; Amaranth's simulator is fast enough
# for a few requests each.
AMARANTH_PARAMS = [(4, 4), (8, 2), (20, 5), (28, 7), (32, 8)]


@pytest.mark.parametrize(("rounds", "per_cycle"), AMARANTH_PARAMS)
def test_other_rounds_per_cycle_in_amaranth_sim(rounds, per_cycle, seed):
    dut = Threefry2x32(rounds=rounds, rounds_per_cycle=per_cycle)
    rng = random.Random(seed)
    requests = [random_words(rng, 4) for _ in range(6)]
    results = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for words in requests:
            ctx.set(dut.i.payload, dict(zip(FIELDS, words, strict=True)))
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
            cycles = 0
            while not ctx.get(dut.o.valid):
                await ctx.tick()
                cycles += 1
            results.append((ctx.get(dut.o.payload.x0), ctx.get(dut.o.payload.x1), cycles))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    for words, (x0, x1, cycles) in zip(requests, results, strict=True):
        assert (x0, x1) == threefry2x32_reference(*words, rounds=rounds), (words, seed)
        assert cycles == dut.latency


# --- Hardware on Verilator ----------------------------------------------------------------


@pytest.mark.parametrize("name", PARAMS)
def test_rng(name, tmp_path, seed):
    rounds, per_cycle = PARAMS[name]
    run_block(Threefry2x32(rounds=rounds, rounds_per_cycle=per_cycle), "rng", "test_rng",
              tmp_path, config=MacroConfig(), seed=seed,
              env={"IMCGEN_RNG_ROUNDS": str(rounds),
                   "IMCGEN_RNG_ROUNDS_PER_CYCLE": str(per_cycle)})


def dut_params():
    """The generator the pytest side built, from the environment it passed."""
    return Threefry2x32(rounds=int(os.environ["IMCGEN_RNG_ROUNDS"]),
                        rounds_per_cycle=int(os.environ["IMCGEN_RNG_ROUNDS_PER_CYCLE"]))


def make_requests(rng, count):
    """Known-answer inputs first, then random words with corner values."""
    fixed = [dict(key0=k0, key1=k1, ctr0=c0, ctr1=c1) for c0, c1, k0, k1 in (ZERO, ONES, PI)]
    return fixed + [dict(zip(FIELDS, random_words(rng, 4), strict=True))
                    for _ in range(count - len(fixed))]


def expected_results(requests, rounds):
    words = {k: np.array([r[k] for r in requests], dtype=np.uint32) for k in requests[0]}
    x0, x1 = threefry2x32(words["key0"], words["key1"], words["ctr0"], words["ctr1"],
                          rounds=rounds)
    return [dict(x0=int(a), x1=int(b)) for a, b in zip(x0, x1, strict=True)]


async def watch_output_rules(dut, errors):
    """Each cycle: a result offered and not taken stays offered, unchanged, next cycle."""
    held = None
    while True:
        await RisingEdge(dut.clk)
        await ReadOnly()
        valid, ready = int(dut.o__valid.value), int(dut.o__ready.value)
        payload = int(dut.o__payload.value)
        if held is not None and (not valid or payload != held):
            errors.append(f"result {held:#x} withdrawn or changed under a stall at "
                          f"cycle {get_sim_time('ns') // CLOCK_NS}")
        held = payload if valid and not ready else None


async def check_in_order(sink, expected, seed):
    """Compare each result as it arrives, so a failure stops at the first bad one."""
    for n, want in enumerate(expected):
        await sink.wait(n + 1)
        got = decode(result_layout, sink.items[n][1])
        assert got == want, f"request {n}: got {got}, expected {want} (seed {seed})"


@cocotb.test()
@cocotb.parametrize(idle=[0.0, 0.5], stall=[0.0, 0.6])
async def results_match_golden_under_gaps_and_stalls(dut, idle, stall):
    params, seed = dut_params(), seed_from_env()
    _, rng, source, sink = await stream_test(dut, idle, stall)
    errors = []
    cocotb.start_soon(watch_output_rules(dut, errors))
    requests = make_requests(rng, 40)
    expected = expected_results(requests, params.rounds)
    cocotb.start_soon(source.send_all([encode(request_layout, r) for r in requests]))
    budget = len(requests) * (params.latency + 1) * 12 + 200
    await with_timeout(check_in_order(sink, expected, seed), budget * CLOCK_NS, "ns")
    await ClockCycles(dut.clk, 2 * params.latency + 20)  # nothing more may come out
    assert len(sink.items) == len(requests), f"{len(sink.items)} results (seed {seed})"
    assert not errors, errors


@cocotb.test()
async def latency_is_exact_when_streams_flow(dut):
    # Source always valid, sink always ready: the result is valid `latency` edges after the
    # accepting edge, and the edge that takes it accepts the next request.
    params, seed = dut_params(), seed_from_env()
    _, rng, source, sink = await stream_test(dut, 0.0, 0.0)
    requests = make_requests(rng, 12)
    accepted = []  # cycle (edge index) of each accepting edge

    async def send():
        for request in requests:
            await source.send(encode(request_layout, request))
            accepted.append(get_sim_time("ns") // CLOCK_NS)

    cocotb.start_soon(send())
    expected = expected_results(requests, params.rounds)
    budget = len(requests) * (params.latency + 1) + 50
    await with_timeout(check_in_order(sink, expected, seed), budget * CLOCK_NS, "ns")
    arrived = [cycle for cycle, _ in sink.items]
    latencies = [a - b for a, b in zip(arrived, accepted, strict=True)]
    assert latencies == [params.latency] * len(requests), (latencies, seed)
    gaps = [b - a for a, b in zip(arrived[:-1], accepted[1:], strict=True)]
    assert gaps == [1] * (len(requests) - 1), (arrived, accepted, seed)


@cocotb.test()
@cocotb.parametrize(phase=["running", "holding"])
async def reset_drops_the_request_in_flight(dut, phase):
    # A reset while computing (or while holding an untaken result) loses that request; the next
    # one is computed from scratch.
    params, seed = dut_params(), seed_from_env()
    _, rng, source, sink = await stream_test(dut, 0.0, 0.0)
    lost, kept = make_requests(rng, 5)[3:]
    if phase == "holding":
        sink.ready.value = 0
    await source.send(encode(request_layout, lost))  # returns on the accepting edge
    wait = params.latency // 2 if phase == "running" else params.latency + 2
    if wait:
        await ClockCycles(dut.clk, wait)
    dut.rst.value = 1  # the next edge resets
    await ReadOnly()
    assert int(dut.o__valid.value) == (phase == "holding"), "not in the phase under test"
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    await ReadOnly()
    assert not int(dut.o__valid.value), "result survived the reset"
    await RisingEdge(dut.clk)
    sink.ready.value = 1
    sink.clear()
    await source.send(encode(request_layout, kept))
    await with_timeout(check_in_order(sink, expected_results([kept], params.rounds), seed),
                       (params.latency + 20) * CLOCK_NS, "ns")
    await ClockCycles(dut.clk, params.latency + 10)
    assert len(sink.items) == 1, f"{len(sink.items)} results (seed {seed})"
