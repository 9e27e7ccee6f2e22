"""Write-verify: the device model's fixed-point arithmetic against independent oracles, the
vectorised golden algorithm against a scalar reference and the papers' figures, the FSM block
against the golden model, and the whole macro (array mode and single requests, both device
kinds, stub and Python crossbar, stalls and a reset mid-matrix) against the golden replay."""

import math
import random
from fractions import Fraction

import cocotb
import numpy as np
import pytest
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, with_timeout
from fixedpoint import FixedPoint

from imcgen import simulate
from imcgen.apps.soak import stimulus
from imcgen.core import timing
from imcgen.core.codes import Direction, Status
from imcgen.core.config import GAIN_SHIFT, NOISE_SHIFT, MacroConfig, load_config
from imcgen.core.draws import What, cell_where
from imcgen.golden import device, rng, write_verify
from imcgen.golden.programming import program_golden, summary
from imcgen.golden.write_verify import Requests
from imcgen.hdl.write_verify import (
    WriteVerify,
    array_row_layout,
    request_layout,
    result_layout,
    verify_command_layout,
)
from imcgen.sim.runner import run_block
from imcgen.sim.tb.streams import (
    StreamSink,
    StreamSource,
    config_from_env,
    decode,
    encode,
    reset_dut,
    seed_from_env,
    start_clock,
)


def device_config(kind, **changes):
    tables = {"device": {"kind": kind, **changes.pop("device", {})},
              "write_verify": changes.pop("write_verify", {})}
    base = dict(rows=6, tiles=2, outputs=2, input_bits=3, weight_bits=4, cell_bits=2,
                adc_bits=5, adcs=3, adc_overlap=True)  # verify reads between overlapped ones
    base.update(changes)
    return MacroConfig(**base, tables=tables)


# -- the device model's arithmetic ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["rram", "pcm"])
def test_pulse_arithmetic_matches_the_fixedpoint_oracle(kind, seed):
    # Step = amplitude/2^amp_bits x gain (Q1.8) x distance, floored; noise = z x
    # noise_code/2^12 rounded half up; computed here with the fixedpoint package.
    rng_ = np.random.default_rng(seed)
    cfg = device_config(kind, cell_bits=int(rng_.integers(1, 5)), adc_bits=8,
                        device={"frac_bits": int(rng_.integers(1, 6)),
                                "set_gain": float(rng_.random()),
                                "reset_gain": float(rng_.random()),
                                "noise": float(rng_.uniform(0, 3))},
                        write_verify={"amp_bits": int(rng_.integers(2, 7)), "amp_max": 3})
    dev, top, amp_bits = cfg.device, cfg.state_max, cfg.write_verify.amp_bits
    n = 3000
    state = rng_.integers(0, top + 1, n)
    amp = rng_.integers(1, 1 << amp_bits, n)
    set_ = rng_.random(n) < 0.5
    where, wear = rng_.integers(0, 2**20, n), rng_.integers(0, 2**16, n)
    got = device.apply_pulse(cfg, state, set_, amp, where, wear)
    bits = rng.draw(dev.seed, int(What.PULSE), where, wear, rounds=dev.rng_rounds)
    for i in range(n):
        word = int(bits[i])
        z = sum((word >> (8 * k)) & 0xFF for k in range(4)) - 510
        # fixedpoint's "nearest" rounds half up, as (x + 2^11) >> 12 does.
        scaled = FixedPoint(z, signed=True, m=12, n=0, rounding="nearest") * \
            FixedPoint(dev.noise_code / 2**NOISE_SHIFT, signed=False, m=12, n=NOISE_SHIFT,
                       rounding="nearest")
        scaled.resize(24, 0)
        noise = int(scaled)
        fraction = FixedPoint(int(amp[i]) / 2**amp_bits, signed=False, m=1, n=amp_bits)
        s = int(state[i])
        if set_[i]:
            gain = FixedPoint(dev.set_gain_code / 2**GAIN_SHIFT, signed=False, m=2, n=GAIN_SHIFT)
            step = math.floor(float(fraction * gain * FixedPoint(top - s, signed=False, m=16,
                                                                 n=0)))
            want = s + (max(step + noise, 0) if kind == "pcm" else step + noise)
        elif kind == "rram":
            gain = FixedPoint(dev.reset_gain_code / 2**GAIN_SHIFT, signed=False, m=2,
                              n=GAIN_SHIFT)
            step = math.floor(float(fraction * gain * FixedPoint(s, signed=False, m=16, n=0)))
            want = s - step + noise
        else:
            want = dev.pcm_reset_state + noise
        want = min(max(want, 0), top)
        assert got[i] == want, (i, s, int(amp[i]), bool(set_[i]), noise, got[i], want)


@pytest.mark.parametrize("cell_bits, adc_bits, frac", [(1, 3, 1), (2, 5, 4), (5, 8, 4),
                                                       (3, 9, 6)])
def test_verify_code_is_the_exactly_rounded_scaling(cell_bits, adc_bits, frac):
    # The verify reference spans the state range over the codes: code = round-half-up of
    # s * adc_max / S, checked with exact fractions.
    cfg = device_config("rram", cell_bits=cell_bits, adc_bits=adc_bits,
                        weight_bits=cell_bits + 1, device={"frac_bits": frac})
    states = np.arange(cfg.state_max + 1)
    want = [math.floor(Fraction(int(s) * cfg.adc_max, cfg.state_max) + Fraction(1, 2))
            for s in states]
    assert device.verify_code(cfg, states).tolist() == want
    assert list(cfg.verify_targets) == [want[level << frac] for level in range(cfg.cell_max + 1)]


def test_stuck_cells_follow_their_draw_and_ignore_loads():
    cfg = device_config("rram", rows=40, outputs=4, device={"stuck_fraction": 0.1,
                                                            "stuck_on_share": 0.5})
    stuck, on = device.stuck_map(cfg)
    assert 0.05 < stuck.mean() < 0.15 and on.any() and (stuck & ~on).any()
    states = device.initial_states(cfg)
    assert (states[on] == cfg.state_max).all() and (states[~on] == 0).all()
    loaded = device.load_levels(cfg, states, np.ones_like(states))
    assert (loaded[stuck] == states[stuck]).all()
    assert (loaded[~stuck] == 1 << cfg.state_frac).all()


# -- the golden algorithm ------------------------------------------------------------------


def scalar_program(cfg, requests, states, wear, interrupt=None):
    """docs/write_verify.md section 3, one request at a time in plain Python (no vectors)."""
    wv = cfg.write_verify
    stuck, _ = device.stuck_map(cfg)
    states, wear = states.copy(), wear.copy()
    out = []
    for n in range(len(requests)):
        t, r, c, goal = (int(x) for x in (requests.tile[n], requests.row[n],
                                           requests.column[n], requests.target[n]))
        cap = interrupt[1] if interrupt and interrupt[0] == n else None
        code = int(device.verify_code(cfg, states[t, r, c]))
        reads, pulses, amp, last_up, still, status = 1, 0, 0, None, 0, None
        while True:
            if abs(code - goal) <= wv.tolerance:
                status = Status.OK
            elif still >= wv.stuck_pulses and code in (0, cfg.adc_max):
                status = Status.STUCK
            elif pulses >= wv.max_pulses:
                status = Status.GAVE_UP
            if status is not None or pulses == cap:
                break
            up = code < goal
            amp = min(amp + wv.amp_step, wv.amp_max) if pulses and up == last_up \
                else wv.amp_start
            if not stuck[t, r, c]:
                states[t, r, c] = int(device.apply_pulse(
                    cfg, states[t, r, c], up, amp, cell_where(cfg, t, r, c), wear[t, r, c]))
                wear[t, r, c] += 1
            new = int(device.verify_code(cfg, states[t, r, c]))
            still = still + 1 if amp == wv.amp_max and new == code else 0
            code, last_up = new, up
            pulses += 1
            reads += 1
        out.append((code, reads, pulses, -1 if cap is not None else int(status)))
    return out, states, wear


@pytest.mark.parametrize("kind", ["rram", "pcm"])
def test_vectorised_golden_matches_a_scalar_reference(kind, seed):
    # Requests hit the same cells several times (passes), and one is cut by a reset.
    rng_ = np.random.default_rng(seed)
    cfg = device_config(kind, device={"stuck_fraction": 0.1, "noise": 1.5})
    count = 150
    req = Requests.of(rng_.integers(0, cfg.tiles, count), rng_.integers(0, cfg.rows, count),
                      rng_.integers(0, cfg.physical_columns, count),
                      rng_.integers(0, cfg.adc_max + 1, count))
    interrupt = (int(rng_.integers(count)), int(rng_.integers(0, 5)))
    got = write_verify.program(cfg, req, interrupt=interrupt)
    start = device.initial_states(cfg)
    want, states, wear = scalar_program(cfg, req, start, np.zeros_like(start), interrupt)
    got_rows = list(zip(got.code.tolist(), got.reads.tolist(), got.pulses.tolist(),
                        [-1 if n == interrupt[0] else s for n, s in enumerate(got.status.tolist())],
                        strict=True))
    cut = interrupt[0]
    assert got_rows[:cut] + got_rows[cut + 1:] == want[:cut] + want[cut + 1:]
    assert (got.states == states).all() and (got.wear == wear).all()


def seed_anchor_config(kind, cell_bits, adc_bits, **device_):
    return load_config(overrides={"device.kind": kind, "cell_bits": cell_bits,
                                  "adc_bits": adc_bits, "rows": 250 if cell_bits > 1 else 1000,
                                  "tiles": 1,
                                  "outputs": 100 if cell_bits > 1 else 500,
                                  "weight_bits": cell_bits + 1, "rows_per_read": 1, "adcs": 1,
                                  **{f"device.{k}": v for k, v in device_.items()}})


def test_32_levels_leave_under_4_percent_mean_relative_error():
    # Bao et al., "Toward memristive in-memory computing" (2022): 32 states on a 64x64 array
    # with < 4 % mean relative tuning error.
    cfg = seed_anchor_config("rram", 5, 8)
    W = np.random.default_rng(1).integers(cfg.weight_min, cfg.weight_max + 1,
                                          size=(cfg.input_rows, cfg.outputs))
    figures = summary(cfg, program_golden(cfg, W))
    assert figures["cells"] == 50_000
    assert figures["mean_relative_error"] < 0.04, figures
    assert figures["healthy_in_tolerance"] >= 0.99, figures


@pytest.mark.parametrize("kind", ["rram", "pcm"])
def test_binary_cells_reach_a_bit_error_rate_below_1e_5_over_a_million_cells(kind):
    # Yan et al., "Resistive memory-based in-memory computing" (2019): read-verify brings binary
    # RRAM to a BER of about 1e-5. Zero errors in 10^6 cells bounds the BER below 3.0e-6 at 95 %
    # confidence (rule of three).
    cfg = seed_anchor_config(kind, 1, 3)
    W = np.random.default_rng(2).integers(-1, 2, size=(cfg.input_rows, cfg.outputs))
    report = program_golden(cfg, W)
    assert len(report.status) == 1_000_000
    errors = int((report.weights != W).sum())
    assert errors <= 10, errors  # <= 1e-5 of the 10^6 cells (5e5 weights x 2 cells)


@pytest.mark.parametrize("kind", ["rram", "pcm"])
def test_every_stuck_cell_is_reported_stuck_and_no_healthy_one(kind):
    cfg = seed_anchor_config(kind, 2, 5, stuck_fraction=0.01)
    W = np.random.default_rng(3).integers(cfg.weight_min, cfg.weight_max + 1,
                                          size=(cfg.input_rows, cfg.outputs))
    figures = summary(cfg, program_golden(cfg, W, stuck_test=True))
    assert figures["stuck_cells"] > 300
    assert figures["stuck_found"] == figures["stuck_cells"], figures
    assert figures["healthy_reported_stuck"] == 0, figures


# -- the FSM block against the golden model, with a Python verify/pulse responder -----------

BLOCK_CONFIGS = {
    "rram-stuck": device_config("rram", device={"stuck_fraction": 0.15, "noise": 1.0}),
    "pcm-3tiles": device_config("pcm", tiles=3, rows=4, adcs=4),
}


@pytest.mark.parametrize("name", BLOCK_CONFIGS)
def test_write_verify(name, tmp_path, seed):
    cfg = BLOCK_CONFIGS[name]
    run_block(WriteVerify(config=cfg), "write_verify", "test_write_verify", tmp_path,
              config=cfg, seed=seed)


class Responder:
    """Plays the SAR and the crossbars: answers verify reads with the golden device model's
    code after a random delay, applies pulses as they end."""

    def __init__(self, dut, cfg, rng_):
        self.dut, self.cfg, self.rng = dut, cfg, rng_
        self.states = device.initial_states(cfg)
        self.wear = np.zeros_like(self.states)
        self.stuck = device.stuck_map(cfg)[0]
        self.pulse_lengths = []
        self.cmd_layout = verify_command_layout(cfg)

    async def run(self):
        dut, cfg = self.dut, self.cfg
        dut.verify__ready.value = 0
        dut.code__valid.value = 0
        high = 0
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            pulse = int(dut.prog__pulse.value)
            if pulse:
                high += 1
                cell = (int(dut.prog_tile.value), int(dut.prog__row.value),
                        int(dut.prog__group.value) * cfg.adcs + int(dut.prog__lane.value))
                up = int(dut.prog__direction.value) == Direction.SET
                amp = int(dut.prog__amp.value)
            elif high:
                self.pulse_lengths.append(high)
                high = 0
                if not self.stuck[cell]:
                    self.states[cell] = device.apply_pulse(
                        cfg, self.states[cell], up, amp, cell_where(cfg, *cell), self.wear[cell])
                    self.wear[cell] += 1
            if int(dut.verify__valid.value):
                command = decode(self.cmd_layout, dut.verify__payload.value)
                await RisingEdge(dut.clk)
                dut.verify__ready.value = 1
                await RisingEdge(dut.clk)
                dut.verify__ready.value = 0
                await ClockCycles(dut.clk, self.rng.randint(0, 4))
                column = command["group"] * cfg.adcs + command["lane"]
                cell = (command["tile"], command["row"], column)
                dut.code__payload.value = int(device.verify_code(cfg, self.states[cell]))
                dut.code__valid.value = 1
                while True:
                    await RisingEdge(dut.clk)
                    if int(dut.code__ready.value):
                        break
                dut.code__valid.value = 0


@cocotb.test()
async def results_match_golden_under_stalls(dut):
    cfg, rng_ = config_from_env(), random.Random(seed_from_env())
    await start_clock(dut)
    source = StreamSource(dut, "i", rng_, 0.3)
    rows = StreamSource(dut, "rows", rng_, 0.3)
    responder = Responder(dut, cfg, rng_)
    await reset_dut(dut)
    sink = StreamSink(dut, "o", rng_, 0.3)
    cocotb.start_soon(responder.run())
    # An array row, then single requests (a few for cells that do not exist: dropped).
    levels = [rng_.randint(0, cfg.cell_max) for _ in range(cfg.physical_columns)]
    row = rng_.randrange(cfg.input_rows)
    await rows.send(encode(array_row_layout(cfg), {"row": row, "levels": levels}))
    singles = [(rng_.randrange(cfg.input_rows), rng_.randrange(cfg.physical_columns),
                rng_.randint(0, cfg.adc_max)) for _ in range(25)]
    words = [encode(request_layout(cfg), {"row": r, "column": c, "target": t})
             for r, c, t in singles]
    index_bits = request_layout(cfg)["row"].shape.width
    if (1 << index_bits) > cfg.input_rows:
        words.insert(5, encode(request_layout(cfg), {"row": cfg.input_rows, "column": 0,
                                                     "target": 0}))
    cocotb.start_soon(source.send_all(words))
    total = cfg.physical_columns + len(singles)
    await with_timeout(sink.wait(total), 4000 * total, "us")
    cells = [(row, c, cfg.verify_targets[lv]) for c, lv in enumerate(levels)] + singles
    req = Requests.of([r // cfg.rows for r, _, _ in cells], [r % cfg.rows for r, _, _ in cells],
                      [c for _, c, _ in cells], [t for _, _, t in cells])
    want = write_verify.program(cfg, req)
    got = [decode(result_layout(cfg), word) for _, word in sink.items]
    for n, g in enumerate(got):
        expected = dict(row=cells[n][0], column=cells[n][1], code=int(want.code[n]),
                        reads=int(want.reads[n]), pulses=int(want.pulses[n]),
                        status=int(want.status[n]))
        assert g == expected, f"cell {n}: {g} != {expected} (seed {seed_from_env()})"
    assert (responder.states == want.states).all()
    assert set(responder.pulse_lengths) <= {cfg.write_verify.pulse_cycles}
    assert any(g["status"] == Status.STUCK for g in got) or cfg.device.stuck_fraction == 0


# -- the whole macro on Verilator against the golden replay --------------------------------

MACRO_CASES = {
    "rram-stub-array-reset": (device_config("rram", device={"stuck_fraction": 0.05}), "stub",
                              "array"),
    "pcm-external-array-reset": (device_config("pcm", device={"stuck_fraction": 0.05}),
                                 "external", "array"),
    "pcm-stub-requests-reset": (device_config("pcm", device={"noise": 1.0}), "stub",
                                "requests"),
    "rram-external-requests-reset": (device_config("rram", tiles=1, rows=9, adcs=2,
                                                   device={"stuck_fraction": 0.1}),
                                     "external", "requests"),
    "rram-stub-requests-then-two-passes": (device_config("rram", tiles=1, rows=5,
                                                         device={"stuck_fraction": 0.1}),
                                           "stub", "mixed"),
}


@pytest.mark.parametrize("name", MACRO_CASES)
def test_macro_programs_exactly_like_the_golden_model(name, seed, tmp_path):
    # Random stalls on every stream, a reset at a random point of the programming (the host
    # resends every cell it has no result for as a single request), then MVMs on the
    # programmed (imperfect) states: results, states (Python crossbar), outputs and cycles
    # all equal the golden replay.
    base, crossbar, mode = MACRO_CASES[name]
    cfg = base.replace(crossbar=crossbar)
    rng_ = np.random.default_rng(seed)
    W, X = stimulus(cfg, rng_, 8)
    cells = cfg.input_rows * cfg.physical_columns
    singles = [(int(rng_.integers(cfg.input_rows)), int(rng_.integers(cfg.physical_columns)),
                int(rng_.integers(cfg.adc_max + 1))) for _ in range(40)]
    if mode == "array":
        program, count = "array", cells
    elif mode == "requests":
        program, count = singles, len(singles)
    else:  # requests, then the matrix twice (the second pass re-verifies)
        program, count = {"requests": singles[:10], "passes": 2}, 10 + 2 * cells
    reset = int(rng_.integers(1, count - 1))
    result = simulate(cfg, W, X, seed=seed, program=program, program_reset_after=reset,
                      p_gaps=0.3, r_stalls=0.3, w_gaps=0.2, in_gaps=0.2, out_stalls=0.2,
                      load_weights=mode != "array", work_dir=tmp_path)
    assert result.match, result.mismatch_report()
    assert len(result.program_rtl) == count
    if crossbar == "external":
        assert result.states is not None


def test_bad_program_requests_are_dropped_and_flagged(seed, tmp_path):
    cfg = device_config("rram")  # 12 rows: a 4-bit row field reaches 15
    rng_ = np.random.default_rng(seed)
    W, X = stimulus(cfg, rng_, 3)
    program = [(0, 1, 9), (cfg.input_rows + 2, 0, 3), (5, 2, 17)]
    result = simulate(cfg, W, X, seed=seed, program=program, work_dir=tmp_path)
    assert result.status["bad_request"] == 1
    assert result.program_rtl[:, :2].tolist() == [[0, 1], [5, 2]]


def test_program_timing_is_exact(seed, tmp_path):
    # Array mode, no stalls: each cell starts (T0) 2 edges after its row was taken or 1 after
    # the previous result, and its result is taken program_cycles(pulses) + 1 edges later.
    cfg = device_config("rram", tiles=1, device={"noise": 1.0})
    rng_ = np.random.default_rng(seed)
    W, X = stimulus(cfg, rng_, 2)
    result = simulate(cfg, W, X, seed=seed, program="array", work_dir=tmp_path)
    assert result.match, result.mismatch_report()
    rows, results = result.extra["row_edges"], result.extra["result_edges"]
    pulses = result.program_rtl[:, 4]
    per_row = cfg.physical_columns
    for k in range(len(results)):
        start = rows[k // per_row] + timing.ARRAY_ROW_START if k % per_row == 0 else \
            results[k - 1] + timing.ARRAY_NEXT_START
        assert results[k] == start + int(timing.program_cycles(cfg, pulses[k])) + 1, k
    assert pulses.max() >= 3  # the iterations were exercised
