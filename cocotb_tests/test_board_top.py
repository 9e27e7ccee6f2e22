# amaranth: UnusedElaboratable=no
"""The board top on Verilator, driven through its UART pins by cocotbext-uart.

Every result is checked bit-exact against the golden model (outputs and cycle counts, program
results); every malformed frame against the exact error it must get, and then the state
against the golden model again (nothing may have changed). Also: a frame cut by a reset,
back-to-back commands, and the host driver end to end over a pseudo-terminal.

One design per configuration (``CONFIGS``); the cocotb tests read the UART divisor and the
link timeout from ``IMCGEN_UART_DIVISOR`` / ``IMCGEN_LINK_TIMEOUT``.
"""

import os
import random

import cocotb
import numpy as np
import pytest
from amaranth.hdl import Shape
from cocotb.triggers import ClockCycles, FallingEdge, Timer

from imcgen import golden
from imcgen.apps.soak import stimulus
from imcgen.core import timing
from imcgen.core.config import load_config
from imcgen.fpga.protocol import (
    END,
    ERROR,
    ESC,
    OK_BIT,
    PROTOCOL_VERSION,
    XOFF,
    XON,
    Codec,
    Command,
    LinkError,
    config_digest,
    crc16,
    encode_frame,
    escape,
    parse_response,
)
from imcgen.fpga.tb_board import UartLink, reset_domains, start_clocks
from imcgen.golden import flow
from imcgen.hdl.board_top import BoardCore, BoardTop
from imcgen.hdl.uart import baud_divisor
from imcgen.sim.runner import run_block
from imcgen.sim.tb.streams import CLOCK_NS, config_from_env, seed_from_env

DIVISOR = 8            # clock cycles per bit in simulation
TIMEOUT_CYCLES = 4000  # a frame idle this long mid-way is truncated (50 byte times)

CONFIGS = {
    "small": ["preset=small"],  # the iCEBreaker's macro
    # Every other path of the board top in one build: PROGRAM and array-mode rows, the TRNG.
    "small-rram-trng": ["preset=small", "device.kind=rram", "trng.enabled=true"],
}
# The macro's clock period against the link's 10 ns: unrelated ratios, faster and slower.
MACRO_NS = {"small": 7.3, "small-rram-trng": 23.1}
BATCH = 32  # vectors the simulated boards' batch memories hold


def config_of(name):
    items = dict(item.split("=", 1) for item in CONFIGS[name])
    return load_config(items.pop("preset"), overrides=[f"{k}={v}" for k, v in items.items()])


def macro_timeout(macro_ns):
    """The TRNG byte wait in macro cycles: the link timeout's time, rounded up."""
    return -(-TIMEOUT_CYCLES * CLOCK_NS * 10 // round(10 * macro_ns))


def core_of(cfg, macro_ns):
    return BoardCore(config=cfg, divisor=DIVISOR, timeout_cycles=TIMEOUT_CYCLES,
                     macro_timeout_cycles=macro_timeout(macro_ns), batch_depth=BATCH)


# -- parameters (no simulator) ----------------------------------------------------------------


def test_refuses_external_crossbar_and_bad_parameters():
    cfg = load_config("small")
    with pytest.raises(ValueError) as error:
        BoardCore(config=cfg.replace(crossbar="external"), divisor=8, timeout_cycles=10)
    assert "crossbar = 'external'" in str(error.value)
    with pytest.raises(ValueError) as error:
        BoardCore(config=cfg, divisor=3, timeout_cycles=10)
    assert str(error.value) == "UART divisor must be an integer in 4..65535, not 3"
    with pytest.raises(ValueError) as error:
        BoardCore(config=cfg, divisor=8, timeout_cycles=0)
    assert str(error.value) == "link timeout must be an integer of at least 1, not 0"
    with pytest.raises(TypeError):
        BoardCore(config={"rows": 4}, divisor=8, timeout_cycles=10)


def test_board_top_derives_its_divisor_and_timeout_from_the_clock():
    top = BoardTop(config=load_config("small"), baud=115200, timeout_ms=50)
    core, ulx3s = top.core(12e6), top.core(25e6)  # iCEBreaker, ULX3S
    for built in (core, ulx3s):
        built._MustUse__silence = True  # inspected, not elaborated
    assert (core.divisor, core.timeout_cycles) == (baud_divisor(12e6, 115200), 600_000) == \
        (104, 600_000)
    assert ulx3s.divisor == 217
    with pytest.raises(ValueError):
        BoardTop(config=load_config("small"), baud=0)


# -- simulation --------------------------------------------------------------------------------


def _run(name, tmp_path, seed, tests):
    cfg = config_of(name)
    run_block(core_of(cfg, MACRO_NS[name]), "board_top", "test_board_top", tmp_path, config=cfg,
              seed=seed,
              env={"IMCGEN_UART_DIVISOR": str(DIVISOR),
                   "IMCGEN_LINK_TIMEOUT": str(TIMEOUT_CYCLES),
                   "IMCGEN_MACRO_NS": str(MACRO_NS[name]),
                   "COCOTB_TEST_FILTER": rf"\.({'|'.join(tests)})$"})


LINK_TESTS = ["info_and_mvm_match_golden", "back_to_back_commands_answer_in_order",
              "a_burst_of_requests_gets_every_answer",
              "malformed_frames_are_refused_and_change_nothing", "frame_cut_by_a_reset",
              "hostile_frames_get_their_documented_answers_and_change_nothing",
              "batch_runs_match_golden_in_cycles_counted_on_chip"]


@pytest.mark.parametrize("name", CONFIGS)
def test_board_top(name, tmp_path, seed):
    _run(name, tmp_path, seed, LINK_TESTS)


@pytest.mark.slow
def test_board_top_long_fuzz(tmp_path, seed, monkeypatch):
    # Opt-in (IMCGEN_SLOW=1): 10^5 hostile frames (IMCGEN_FUZZ_FRAMES to change it).
    monkeypatch.setenv("IMCGEN_FUZZ_FRAMES", os.environ.get("IMCGEN_FUZZ_FRAMES", "100000"))
    _run("small", tmp_path, seed, ["hostile_frames_get_their_documented_answers_and_change_"
                                   "nothing"])


def test_board_top_trng(tmp_path, seed):
    _run("small-rram-trng", tmp_path / "trng", seed, ["trng_bytes_match_golden"])
    # Every command present; a simulation of its own, so its TRNG bytes start the stream.
    _run("small-rram-trng", tmp_path / "burst", seed, ["a_burst_of_requests_gets_every_answer"])


def test_board_top_programming(tmp_path, seed):
    # A simulation of its own: cells are non-volatile, so the device must start fresh (as the
    # golden model's does), not with the weights the other tests loaded.
    _run("small-rram-trng", tmp_path, seed, ["programming_matches_golden"])


# -- cocotb tests ------------------------------------------------------------------------------


class Bench:
    """Clock, reset, the UART link, the codec, the seeded stimulus and the golden model."""

    def __init__(self, dut):
        self.dut = dut
        self.cfg = config_from_env()
        self.codec = Codec(self.cfg, batch_depth=BATCH)
        self.seed = seed_from_env()
        self.rng = np.random.default_rng(self.seed)
        self.link = None

    async def start(self):
        self.macro_ns = float(os.environ["IMCGEN_MACRO_NS"])
        await start_clocks(self.dut, self.macro_ns)
        self.dut.rx.value = 1
        self.link = UartLink(self.dut, DIVISOR)  # listening before the reset's XON
        await self.reset()

    async def reset(self, link=True, macro=True):
        await reset_domains(self.dut, link=link, macro=macro)

    async def ok(self, command, payload=b""):
        response = await self.link.call(command, payload)
        assert response.ok and response.code == command | OK_BIT, \
            (Command(command).name, response, f"seed {self.seed}")
        return response.payload

    async def refused(self, frame, error, command):
        """Send a raw frame; it must get exactly this error response."""
        await self.link.send(frame)
        response = await self.link.response()
        assert response.code == ERROR, (response, f"seed {self.seed}")
        assert self.codec.error(response.payload) == (error.value, command), \
            (LinkError(response.payload[0]).name, response, frame.hex())
        return response

    async def load(self, W):
        for row, values in enumerate(W):
            assert await self.ok(Command.WEIGHTS, self.codec.weights(row, values)) == b""

    async def check_mvms(self, W, X, states=None):
        expected = golden.run(self.cfg, W, X, states=states)
        for n, x in enumerate(X):
            y, cycles = self.codec.result(await self.ok(Command.MVM, self.codec.vector(x)))
            assert (y, cycles) == (expected.y[n].tolist(), int(expected.cycles[n])), \
                f"vector {n}: {y} in {cycles} cycles, golden {expected.y[n].tolist()} in " \
                f"{expected.cycles[n]}; seed {self.seed}"

    async def status(self):
        return self.codec.one(Command.STATUS, await self.ok(Command.STATUS))


def _bits(layout, name):
    return Shape.cast(layout[name].shape).width


@cocotb.test()
async def info_and_mvm_match_golden(dut):
    bench = Bench(dut)
    await bench.start()
    cfg = bench.cfg
    info = bench.codec.one(Command.INFO, await bench.ok(Command.INFO))
    assert info == {"version": PROTOCOL_VERSION, "programmable": int(cfg.programmable),
                    "trng": int(cfg.trng.enabled), "reserved": 0,
                    "config_digest": config_digest(cfg), "rx_fifo_depth": 512,
                    "divisor": DIVISOR, "divisor_frac": 0, "clk_hz": 0, "macro_hz": 0,
                    "batch_depth": BATCH}
    W, X = stimulus(cfg, bench.rng, 12)
    await bench.load(W)
    await bench.check_mvms(W, X)
    status = await bench.status()
    macro_flags = {name: 0 for name in status["macro"]}
    assert status == {"macro": macro_flags, "commands": 1 + len(W) + len(X),
                      "bad_frames": 0, "framing_errors": 0, "overruns": 0}
    # A weight row the macro drops (row index past the last) sets its sticky flag; CLEAR
    # clears it and every counter.
    if (1 << _bits(bench.codec.requests[Command.WEIGHTS], "row")) > cfg.input_rows:
        assert await bench.ok(Command.WEIGHTS, bench.codec.weights(cfg.input_rows,
                                                                   [0] * cfg.outputs)) == b""
        assert (await bench.status())["macro"]["bad_weight_row"] == 1
        assert dut.macro_error.value == 1
    assert await bench.ok(Command.CLEAR) == b""
    status = await bench.status()
    assert status == {"macro": macro_flags, "commands": 0, "bad_frames": 0,
                      "framing_errors": 0, "overruns": 0}
    assert dut.macro_error.value == 0 and dut.link_error.value == 0
    await bench.check_mvms(W, X[:2])  # the dropped row changed nothing


@cocotb.test()
async def back_to_back_commands_answer_in_order(dut):
    """Frames sent back to back, without waiting for answers: responses come in order, none
    lost, the RX FIFO absorbing requests whose answers take longer to send (INFO)."""
    bench = Bench(dut)
    await bench.start()
    cfg, codec, link = bench.cfg, bench.codec, bench.link
    W, X = stimulus(cfg, bench.rng, 10)
    plan = [(Command.WEIGHTS, codec.weights(r, w)) for r, w in enumerate(W)]
    plan += [(Command.INFO, b"")] * 20
    plan += [(Command.MVM, codec.vector(x)) for x in X]
    plan += [(Command.STATUS, b"")]
    frames = [link.frame(command, payload) for command, payload in plan]
    await link.send(b"".join(frame for _, frame in frames))
    expected = golden.run(cfg, W, X)
    results = []
    for (command, _), (seq, _) in zip(plan, frames, strict=True):
        response = await link.response(timeout_ns=2000 * link.byte_ns)
        assert (response.code, response.seq) == (command | OK_BIT, seq), \
            (Command(command).name, response)
        if command == Command.MVM:
            results.append(codec.result(response.payload))
        if command == Command.STATUS:
            status = codec.one(command, response.payload)
    assert [y for y, _ in results] == expected.y.tolist(), f"seed {bench.seed}"
    assert [c for _, c in results] == expected.cycles.tolist(), f"seed {bench.seed}"
    assert (status["commands"], status["bad_frames"], status["overruns"]) == \
        (len(plan) - 1, 0, 0)
    await link.silence()


BURST = int(os.environ.get("IMCGEN_BURST", "1000"))


def burst_requests(rng, codec, cfg, W, X):
    """``[(command, payload, line)]``: a burst of every command this protocol has (those the
    build lacks answer UNSUPPORTED), corrupted and unknown frames among them; none changes
    the weights (WEIGHTS rewrites a row with its own values; PROGRAM, if present, names a
    cell that does not exist)."""
    program = None
    if Command.PROGRAM in codec.supported and \
            (1 << _bits(codec.requests[Command.PROGRAM], "column")) > cfg.physical_columns:
        program = codec.program(0, cfg.physical_columns, 1)
    choices = [(Command.INFO, b""), (Command.STATUS, b""), (Command.MVM, None),
               (Command.WEIGHTS, None), (Command.TRNG_STATUS, b""), (Command.TRNG_READ, None),
               (Command.PROGRAM, program or b"\0\0"), (0x55, b""), ("crc", None)]
    out = [(Command.CLEAR, b""), (Command.TRNG_ENABLE, b"\x01")]
    while len(out) < BURST:
        command, payload = choices[int(rng.integers(len(choices)))]
        if command == Command.PROGRAM and program is None and \
                Command.PROGRAM in codec.supported:
            continue
        if command == Command.MVM:
            payload = codec.vector(X[int(rng.integers(len(X)))])
        elif command == Command.WEIGHTS:
            row = int(rng.integers(len(W)))
            payload = codec.weights(row, W[row])
        elif command == Command.TRNG_READ:
            payload = bytes([int(rng.integers(1, 5))])
        out.append((command, payload))
    return out


@cocotb.test()
async def a_burst_of_requests_gets_every_answer(dut):
    """BURST requests (1000) sent back to back without waiting, their responses up to twenty
    times their size: every one answered, in order, exactly; the board paced the host with
    XOFF and XON (docs/board.md section 1) and its receive FIFO never overran."""
    bench = Bench(dut)
    await bench.start()
    cfg, codec, link, rng = bench.cfg, bench.codec, bench.link, bench.rng
    W, X = stimulus(cfg, rng, 8)
    await bench.load(W)
    requests = burst_requests(rng, codec, cfg, W, X)
    line = bytearray()
    for command, payload in requests:
        if command == "crc":  # a corrupted frame: answered CRC, applied never
            seq, _ = link.frame(Command.MVM)
            body = bytes([Command.MVM, seq]) + codec.vector(X[0])
            crc = crc16(body) ^ 0x0100
            line += bytes([END]) + escape(body + crc.to_bytes(2, "big")) + bytes([END])
        else:
            line += link.frame(command, payload)[1]
    expected, applied = expected_answers(codec, bytes(line))
    assert len(expected) == len(requests)
    assert all(np.array_equal(W[row], values) for row, values in applied)  # no change
    run = golden.run(cfg, W, X)
    mvm = {codec.vector(x): (run.y[n].tolist(), int(run.cycles[n])) for n, x in enumerate(X)}
    start = _now()
    await link.send(bytes(line))
    trng_bytes, answered = b"", 0
    for (command, payload), (code, seq, error) in zip(requests, expected, strict=True):
        response = await link.response(timeout_ns=(TIMEOUT_CYCLES + 4000) * CLOCK_NS)
        assert (response.code, response.seq) == (code, seq), \
            (answered, response, code, seq, f"seed {bench.seed}")
        answered += 1
        if error is not None:
            assert response.payload == error, (answered, response)
        elif command == Command.MVM:
            assert codec.result(response.payload) == mvm[payload], (answered, response)
        elif command == Command.TRNG_READ:
            assert len(response.payload) == payload[0], (answered, response)
            trng_bytes += response.payload
    cycles = _now() - start
    assert answered == len(requests) == BURST
    status = await bench.status()
    assert (status["overruns"], status["framing_errors"]) == (0, 0), status
    assert XOFF in link.flow and flow.flow_bytes_alternate(link.flow), \
        bytes(link.flow).hex()
    if trng_bytes:
        from imcgen.golden import trng

        stream = trng.pack_bytes(trng.bits_for(cfg, 8 * len(trng_bytes)).bits).tobytes()
        assert trng_bytes == stream[:len(trng_bytes)], "TRNG bytes differ from the golden model"
    cocotb.log.info(f"burst of {BURST} requests ({len(line)} bytes): {answered} answers in "
                    f"{cycles} cycles, {link.flow.count(XOFF)} XOFF")


@cocotb.test()
async def malformed_frames_are_refused_and_change_nothing(dut):
    bench = Bench(dut)
    await bench.start()
    cfg, codec, link = bench.cfg, bench.codec, bench.link
    W, X = stimulus(cfg, bench.rng, 4)
    await bench.load(W)
    other = -W[0] if cfg.weight_mapping == "differential" else W[-1]
    row0 = codec.weights(0, other)  # would change row 0 if it were ever applied
    body = bytes([Command.WEIGHTS, 0x42]) + row0
    good_crc = crc16(body).to_bytes(2, "big")
    bad = 0

    def raw(body_bytes):
        return bytes([END]) + escape(body_bytes) + bytes([END])

    # Corrupted: every bit of the payload and of the CRC, one at a time, on a few frames.
    bits = 8 * (len(row0) + 2)
    for bit in sorted(bench.rng.choice(bits, size=min(bits, 6), replace=False).tolist()):
        whole = bytearray(body[2:] + good_crc)
        whole[bit // 8] ^= 1 << (bit % 8)
        await bench.refused(raw(body[:2] + bytes(whole)), LinkError.CRC, Command.WEIGHTS)
        bad += 1
    # Too short to hold a command, a sequence byte and a CRC.
    # (Raw bytes, so not MVM: its code 0x11 is XON, stuffed in a frame, flow control raw.)
    await bench.refused(bytes([END, Command.STATUS, END]), LinkError.SHORT, Command.STATUS)
    await bench.refused(bytes([END, Command.STATUS, 7, 0x12, END]), LinkError.SHORT,
                        Command.STATUS)
    bad += 2
    # A bad escape in the middle, and a frame ending inside an escape.
    frame = encode_frame(Command.WEIGHTS, 1, row0)
    await bench.refused(frame[:3] + bytes([ESC, 0x41]) + frame[3:], LinkError.ESCAPE,
                        Command.WEIGHTS)
    await bench.refused(frame[:-1] + bytes([ESC, END]), LinkError.ESCAPE, Command.WEIGHTS)
    bad += 2
    # Unknown command, good CRC.
    await bench.refused(encode_frame(0x55, 2, row0), LinkError.COMMAND, 0x55)
    bad += 1
    # Known, but not in this build (TRNG commands without a TRNG, PROGRAM without a
    # programmable device).
    if not cfg.trng.enabled:
        await bench.refused(encode_frame(Command.TRNG_READ, 3, b"\x04"),
                            LinkError.UNSUPPORTED, Command.TRNG_READ)
        bad += 1
    if not cfg.programmable:
        await bench.refused(encode_frame(Command.PROGRAM, 4, b"\0\0"), LinkError.UNSUPPORTED,
                            Command.PROGRAM)
        bad += 1
    # Good CRC, wrong length: a byte short, a byte long, a payload on a command without one.
    await bench.refused(encode_frame(Command.WEIGHTS, 5, row0[:-1]), LinkError.LENGTH,
                        Command.WEIGHTS)
    await bench.refused(encode_frame(Command.WEIGHTS, 6, row0 + b"\0"), LinkError.LENGTH,
                        Command.WEIGHTS)
    await bench.refused(encode_frame(Command.CLEAR, 7, b"\0"), LinkError.LENGTH, Command.CLEAR)
    bad += 3
    # A line error: one byte of a good frame with a low stop bit is dropped by the UART.
    frame = encode_frame(Command.WEIGHTS, 8, row0)
    await link.send(frame[:3])
    await link.sent()
    await _bad_stop_bit(dut, frame[3])
    await bench.refused(frame[4:], LinkError.CRC, Command.WEIGHTS)
    bad += 1
    # Truncated: half a frame, then silence. The TIMEOUT answer comes after the timeout,
    # not before; the rest of the frame, arriving late, is dropped up to its END.
    await link.send(frame[:len(frame) // 2])
    await link.sent()
    start = _now()
    response = await link.response(timeout_ns=2 * TIMEOUT_CYCLES * CLOCK_NS)
    waited = _now() - start
    assert (response.code, codec.error(response.payload)) == \
        (ERROR, (LinkError.TIMEOUT.value, Command.WEIGHTS)), response
    assert TIMEOUT_CYCLES <= waited <= TIMEOUT_CYCLES + 30 * link.byte_ns // CLOCK_NS, waited
    bad += 1
    await link.send(frame[len(frame) // 2:])
    await link.silence()

    status = await bench.status()
    assert (status["bad_frames"], status["framing_errors"], status["overruns"]) == (bad, 1, 0)
    assert status["commands"] == len(W)  # the loads: nothing refused ran
    assert dut.link_error.value == 1
    await bench.check_mvms(W, X)  # the weights are untouched


def _now():
    from cocotb.simtime import get_sim_time

    return int(get_sim_time("ns") // CLOCK_NS)


async def _bad_stop_bit(dut, byte):
    """Drive one 8N1 frame of ``byte`` with a low stop bit, then idle."""
    await FallingEdge(dut.clk)
    bits = [0] + [(byte >> k) & 1 for k in range(8)] + [0]
    for level in bits:
        dut.rx.value = level
        await ClockCycles(dut.clk, DIVISOR, rising=False)
    dut.rx.value = 1
    await ClockCycles(dut.clk, 2 * DIVISOR)


@cocotb.test()
async def frame_cut_by_a_reset(dut):
    """A reset of the link's domain, the macro's or both in the middle of a request: no answer
    to it, its tail dropped, nothing it carried applied (cells keep their weights), and the link
    works at once. A reset while a response goes out loses that response only, and one in the
    middle of a batch run loses its answer; the run then repeats exactly."""
    bench = Bench(dut)
    await bench.start()
    cfg, codec, link = bench.cfg, bench.codec, bench.link
    rng = random.Random(bench.seed)
    W, X = stimulus(cfg, bench.rng, 4)
    await bench.load(W)
    commands = len(W)
    other = codec.weights(1, -W[1] if cfg.weight_mapping == "differential" else W[0])
    domains = [(True, True), (True, False), (False, True)]
    bad = 0
    for link_reset, macro_reset in domains + domains:
        _, frame = link.frame(Command.WEIGHTS, other)
        await link.send(frame)
        cut = rng.randint(2, len(frame) - 2) * link.byte_ns + rng.randint(0, 9) * DIVISOR * \
            CLOCK_NS
        await Timer(cut, "ns")
        await bench.reset(link=link_reset, macro=macro_reset)
        cocotb.log.info(f"reset link={link_reset} macro={macro_reset} at {cut} ns")
        await link.sent()  # the tail goes out after the reset
        await Timer(3 * link.byte_ns, "ns")
        # A reset in the middle of a byte leaves the UART reading the rest of the line from a
        # wrong start bit: if that garbage holds an END, the next bytes make a frame, which is
        # refused (never run). Anything else is silence.
        frames = link.reader.feed(link.take())
        link.forget()
        responses = [parse_response(frame) for frame in frames]
        assert all(r.code == ERROR for r in responses), (responses, f"seed {bench.seed}")
        commands = 0 if macro_reset else commands  # the executor's counters restart with it
        bad = 0 if macro_reset else bad
        bad += len(responses)
        status = await bench.status()
        assert (status["commands"], status["bad_frames"]) == (commands, bad), \
            (link_reset, macro_reset, status, f"seed {bench.seed}")
        await bench.check_mvms(W, X)
        commands += 1 + len(X)
    # While a response is going out: that response is lost (or arrives whole), never another.
    for link_reset, macro_reset in domains:
        _, frame = link.frame(Command.INFO)
        await link.send(frame)
        await Timer((len(frame) + rng.randint(2, 8)) * link.byte_ns, "ns")
        await bench.reset(link=link_reset, macro=macro_reset)
        await Timer(20 * link.byte_ns, "ns")
        link.forget()
        await bench.check_mvms(W, X[:1])
    # In the middle of a batch run (the macro's side): its answer is lost, the run repeats.
    count = min(BATCH, 16)
    line = b"".join(link.frame(Command.BATCH_WRITE, codec.batch_write(k, X[k % len(X)]))[1]
                    for k in range(count))
    await link.send(line)
    for _ in range(count):
        assert (await link.response()).ok
    _, frame = link.frame(Command.BATCH_RUN, codec.batch_run(count))
    await link.send(frame)
    await link.sent()
    await Timer(rng.randint(1, 20) * 10 * bench.macro_ns, "ns")  # the run has started
    await bench.reset(link=False, macro=True)
    await Timer(20 * link.byte_ns, "ns")
    link.forget()
    expected = golden.run(cfg, W, np.array([X[k % len(X)] for k in range(count)]))
    run = codec.one(Command.BATCH_RUN, await bench.ok(Command.BATCH_RUN, codec.batch_run(count)))
    assert run["vectors"] == count and \
        run["cycles"] >= timing.batch_cycles(cfg, expected.reads), run
    got = codec.results(Command.BATCH_READ, await bench.ok(Command.BATCH_READ,
                                                           codec.batch_read(0, count)))
    assert got == list(zip(expected.y.tolist(), expected.cycles.tolist(), strict=True)), \
        f"seed {bench.seed}"


@cocotb.test()
async def batch_runs_match_golden_in_cycles_counted_on_chip(dut):
    """BATCH_WRITE, BATCH_RUN, BATCH_READ, pipelined as the host driver sends them: every
    result equals the golden model's, and the run's cycles, counted on chip at the macro's
    clock, equal imcgen.core.timing.batch_cycles of the golden model's reads."""
    bench = Bench(dut)
    await bench.start()
    cfg, codec, link = bench.cfg, bench.codec, bench.link
    W, X = stimulus(cfg, bench.rng, BATCH + 3)
    await bench.load(W)
    for count in (1, BATCH, 7):
        chunk = X[bench.rng.permutation(len(X))[:count]]
        plan = [(Command.BATCH_WRITE, codec.batch_write(k, x)) for k, x in enumerate(chunk)]
        plan.append((Command.BATCH_RUN, codec.batch_run(count)))
        half = count // 2  # two reads, the second from the middle
        plan += [(Command.BATCH_READ, codec.batch_read(0, half)),
                 (Command.BATCH_READ, codec.batch_read(half, count - half))]
        frames = [link.frame(command, payload) for command, payload in plan]
        await link.send(b"".join(frame for _, frame in frames))
        answers = []
        for (command, _), (seq, _) in zip(plan, frames, strict=True):
            response = await link.response(timeout_ns=2000 * link.byte_ns)
            assert (response.code, response.seq) == (command | OK_BIT, seq), response
            answers.append(response.payload)
        expected = golden.run(cfg, W, chunk)
        run = codec.one(Command.BATCH_RUN, answers[count])
        got = [r for p in answers[count + 1:] for r in codec.results(Command.BATCH_READ, p)]
        assert got == list(zip(expected.y.tolist(), expected.cycles.tolist(), strict=True)), \
            f"seed {bench.seed}"
        predicted = timing.batch_cycles(cfg, expected.reads)
        # Exact, but with overlap a tile without reads may add a cycle (timing.stream_cycles).
        slack = int((expected.reads == 0).any(axis=1).sum()) if cfg.overlap else 0
        assert run["vectors"] == count and \
            predicted <= run["cycles"] <= predicted + slack, (run, predicted, slack)
        cocotb.log.info(f"batch of {count}: {run['cycles']} macro cycles on chip (predicted "
                        f"{predicted}), {count / (run['cycles'] * bench.macro_ns * 1e-9):.3g} "
                        f"MVM/s at the simulated {1e3 / bench.macro_ns:.0f} MHz")
    await bench.check_mvms(W, X[:2])  # single MVMs after runs


@cocotb.test()
async def programming_matches_golden(dut):
    """Single-cell requests (one for a cell that does not exist) and array-mode weight rows,
    every result and the later MVMs equal to the golden model's."""
    from imcgen.golden.programming import program_golden
    from imcgen.golden.write_verify import Requests

    bench = Bench(dut)
    await bench.start()
    cfg, codec = bench.cfg, bench.codec
    W, X = stimulus(cfg, bench.rng, 4)
    cells = bench.rng.integers(0, [cfg.input_rows, cfg.physical_columns, cfg.adc_max + 1],
                               size=(6, 3))
    got = []
    for row, column, target in cells:
        got += codec.program_results(Command.PROGRAM, await bench.ok(
            Command.PROGRAM, codec.program(row, column, target)))
    # A cell that does not exist: dropped, no result, flagged.
    if (1 << _bits(codec.requests[Command.PROGRAM], "column")) > cfg.physical_columns:
        assert await bench.ok(Command.PROGRAM, codec.program(0, cfg.physical_columns, 1)) == b""
        assert (await bench.status())["macro"]["bad_request"] == 1
    for row, values in enumerate(W):  # array mode: every cell of the row, in column order
        got += codec.program_results(Command.WEIGHTS, await bench.ok(
            Command.WEIGHTS, codec.weights(row, values, program=True)))
    singles = Requests.of(cells[:, 0] // cfg.rows, cells[:, 0] % cfg.rows, cells[:, 1],
                          cells[:, 2])
    report = program_golden(cfg, W, requests=singles)
    req = report.requests
    expected = np.stack([req.tile * cfg.rows + req.row, req.column, report.code, report.reads,
                         report.pulses, report.status], axis=1)
    assert np.array_equal(np.array(got), expected), f"seed {bench.seed}"
    await bench.check_mvms(W, X, states=report.states)


@cocotb.test()
async def trng_bytes_match_golden(dut):
    """The TRNG commands: nothing while disabled (the read ends after the link timeout), then
    the golden model's bytes, in order, across reads; status without alarms; clear."""
    from imcgen.golden import trng

    bench = Bench(dut)
    await bench.start()
    cfg, codec = bench.cfg, bench.codec
    info = codec.one(Command.INFO, await bench.ok(Command.INFO))
    assert info["trng"] == 1
    start = _now()
    assert await bench.ok(Command.TRNG_READ, bytes([3])) == b""  # disabled: none comes
    assert _now() - start >= TIMEOUT_CYCLES
    assert await bench.ok(Command.TRNG_ENABLE, b"\x01") == b""
    got = b""
    for count in (20, 1, 11):
        got += await bench.ok(Command.TRNG_READ, bytes([count]))
    expected = trng.pack_bytes(trng.bits_for(cfg, 8 * 32).bits)[:32].tobytes()
    assert got == expected, f"{got.hex()} != golden {expected.hex()}"
    status = codec.one(Command.TRNG_STATUS, await bench.ok(Command.TRNG_STATUS))
    assert (status["rct_alarm"], status["apt_alarm"], status["alarms"]) == (0, 0, 0), status
    assert status["bits"] >= 8 * len(got) and status["pulses"] >= status["bits"], status
    assert await bench.ok(Command.TRNG_CLEAR) == b""
    assert await bench.ok(Command.TRNG_ENABLE, b"\x00") == b""
    await bench.refused(encode_frame(Command.TRNG_READ, 9, b""), LinkError.LENGTH,
                        Command.TRNG_READ)


# -- the protocol, host side (no simulator) ----------------------------------------------------


def test_crc_is_ccitt_false_in_both_implementations():
    from amaranth.lib import crc

    from imcgen.hdl.board_top import CRC

    assert crc16(b"123456789") == 0x29B1  # the catalogue's check value
    params = CRC(data_width=8)
    assert params is not None and crc.catalog.CRC16_IBM_3740 is CRC
    rng = random.Random(7)
    for n in (0, 1, 2, 17, 300):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert crc16(data) == params.compute(data)
        # A frame with its CRC appended, most significant byte first, leaves the residue 0.
        assert params.compute(data + crc16(data).to_bytes(2, "big")) == params.residue() == 0


def test_slip_framing_round_trips_every_byte_value():
    from imcgen.link.protocol import ESC_END, ESC_ESC, ESC_XON, FrameReader

    payload = bytes(range(256)) + bytes([END, ESC, END, ESC, ESC_END, ESC_ESC, XON, XOFF])
    frame = encode_frame(Command.MVM, END, payload)
    assert frame[0] == END and frame[-1] == END and END not in frame[1:-1]
    assert XON not in frame and XOFF not in frame  # raw, they are flow control
    assert frame[1:6] == bytes([ESC, ESC_XON, ESC, ESC_END, 0]) and \
        escape(bytes([ESC])) == bytes([ESC, ESC_ESC])
    reader = FrameReader()
    # Garbage before the first END is dropped; split anywhere; empty frames are skipped.
    frames = []
    stream = b"\x12\x34" + frame + bytes([END, XON]) + frame  # a flow byte between frames
    for n in range(0, len(stream), 7):
        frames += reader.feed(stream[n:n + 7])
    assert [f.body for f in frames] == [frames[0].body] * 2 and all(f.crc_ok for f in frames)
    assert frames[0].body[:2] == bytes([Command.MVM, END]) and frames[0].body[2:-2] == payload
    bad = reader.feed(bytes([END, 1, ESC, 0x41, 2, 3, 4, END]))
    assert len(bad) == 1 and bad[0].bad_escape


def test_parse_response_refuses_what_the_protocol_forbids():
    from imcgen.link.protocol import Frame, ProtocolError, parse_response

    good = encode_frame(Command.INFO | OK_BIT, 9, b"\x01\x02")[1:-1]
    response = parse_response(Frame(good))
    assert (response.ok, response.command, response.seq, response.payload) == \
        (True, Command.INFO, 9, b"\x01\x02")
    error = parse_response(Frame(encode_frame(ERROR, 3, bytes([5, 0x10]))[1:-1]))
    assert (error.ok, error.error, error.command) == (False, LinkError.LENGTH, 0x10)
    for body, message in ((good[:-1] + bytes([good[-1] ^ 1]), "bad CRC"),
                          (good[:3], "at least 4"),
                          (encode_frame(0x01, 0)[1:-1], "lacks the OK bit"),
                          (encode_frame(0xF7, 0)[1:-1], "is no command")):
        with pytest.raises(ProtocolError, match=message):
            parse_response(Frame(body))


def test_payloads_pack_through_the_hardware_layouts():
    cfg = load_config("small")
    codec = Codec(cfg)
    # small: a 4-bit row index, then 4 signed 4-bit weights: 20 bits in 3 bytes, LSB first.
    assert codec.weights(3, [1, -1, 7, -7]) == \
        (3 | (0x1 << 4) | (0xF << 8) | (0x7 << 12) | (0x9 << 16)).to_bytes(3, "little")
    assert codec.request_length(Command.MVM) == (16 * 4 + 7) // 8 == 8
    assert codec.request_length(Command.INFO) == 0
    result = codec.responses[Command.MVM]
    lo, hi = cfg.out_range
    y = [lo, -1, 1, hi]  # signed extremes survive the packing
    word = result.const({"y": y, "cycles": cfg.max_cycles}).as_bits()
    payload = word.to_bytes((result.size + 7) // 8, "little")
    assert codec.result(payload) == (y, cfg.max_cycles)
    assert Command.PROGRAM not in codec.supported and \
        Command.PROGRAM in Codec(cfg.replace(device={"kind": "rram"})).supported


# -- the host driver end to end over a pseudo-terminal ---------------------------------------


def test_imcgen_board_passes_against_the_simulated_board(tmp_path):
    """``imcgen board --port /dev/pts/N`` (a real process) against the board top simulated
    behind a pseudo-terminal, then ``--sim``, which does the same by itself."""
    import subprocess
    import sys

    from imcgen.fpga.board_sim import simulated_board
    from imcgen.fpga.host import Board, ConfigMismatch

    cfg = load_config("small")
    with simulated_board(cfg, work_dir=tmp_path / "sim") as sim:
        assert sim.port.startswith("/dev/pts/")
        result = subprocess.run([sys.executable, "-m", "imcgen.cli", "board", "--preset",
                                 "small", "--port", sim.port, "--vectors", "24", "--seed", "5",
                                 "--timeout", "60"], capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "24 vectors: values match, cycles match (golden model)" in result.stdout
        assert "0 bad frames" in result.stdout and "PASS" in result.stdout
        assert "macro cycles counted by the board (as the golden model predicts)" in \
            result.stdout and "MVM/s at the macro's 136.986 MHz" in result.stdout
        # A host with another configuration is refused by the INFO check.
        with pytest.raises(ConfigMismatch, match="another configuration"):
            Board(sim.port, cfg.replace(out_relu=True), timeout=60)
        # The driver's own API over the same port.
        rng = np.random.default_rng(1)
        W, X = stimulus(cfg, rng, 6)
        with Board(sim.port, cfg, timeout=60) as macro:
            macro.load_weights(W)
            Y, cycles = macro.mvm_batch(X)
            runs = macro.runs
            y, c = macro.mvm(X[0])
            expected = golden.run(cfg, W, X)
            assert np.array_equal(Y, expected.y) and np.array_equal(cycles, expected.cycles)
            # One batch run on chip, its cycles counted by the board as the golden model says.
            (run,) = runs
            assert (run.vectors, run.cycles, run.macro_hz) == \
                (len(X), timing.batch_cycles(cfg, expected.reads), macro.info["macro_hz"])
            assert run.mvm_per_s == len(X) * run.macro_hz / run.cycles
            Y2, cycles2 = macro.mvm_batch(X, on_chip=False)  # MVM requests, pipelined
            assert np.array_equal(Y2, expected.y) and np.array_equal(cycles2, expected.cycles)
            assert macro.runs == [] and macro.baud == 100e6 / 8
            assert (y.tolist(), c) == (expected.y[0].tolist(), int(expected.cycles[0]))
            status = macro.status()
            assert (status["bad_frames"], status["overruns"]) == (0, 0)
    result = subprocess.run([sys.executable, "-m", "imcgen.cli", "board", "--preset", "small",
                             "--sim", "--vectors", "8"], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 vectors: values match, cycles match" in result.stdout


def test_host_driver_reports_refusals_and_silence():
    """The driver over a scripted link: an error response and a missing one."""
    from imcgen.fpga.host import Board, BoardError, LinkTimeout

    class Link:
        def __init__(self, answers):
            self.answers, self.out, self.timeout = list(answers), b"", None

        def write(self, data):
            self.out += data

        def read(self, n):
            return self.answers.pop(0) if self.answers else b""

        def close(self):
            pass

    cfg = load_config("small")
    refuse = encode_frame(ERROR, 0, bytes([LinkError.CRC, Command.STATUS]))
    with pytest.raises(BoardError, match=r"refused STATUS \(seq 0\): CRC"):
        Board(None, cfg, link=Link([refuse]), check=False).status()
    with pytest.raises(LinkTimeout, match="no response from the board within 0.3 s"):
        Board(None, cfg, link=Link([]), timeout=0.3, check=False).status()
    wrong_seq = encode_frame(Command.STATUS | OK_BIT, 7, b"\0" * 7)
    with pytest.raises(BoardError, match="out of step"):
        Board(None, cfg, link=Link([wrong_seq]), check=False).status()


@pytest.mark.parametrize("depth, vectors", [(4, 10), (512, 300)])
def test_host_batches_split_into_runs_and_reads(depth, vectors):
    """``Board.mvm_batch`` over a scripted board that answers the batch commands from the
    golden model: more vectors than the batch memory holds make several runs, more results
    than a response holds (255) several reads; every result and run comes back in order."""
    from imcgen.fpga.host import Board
    from imcgen.link.codec import pack, unpack
    from imcgen.link.protocol import FrameReader

    cfg = load_config("small")
    codec = Codec(cfg, batch_depth=depth)
    rng = np.random.default_rng(depth)
    W, X = stimulus(cfg, rng, vectors)
    X = X[:vectors]

    class GoldenBoard:  # answers each request frame as the board's executor would
        def __init__(self):
            self.reader, self.out, self.timeout = FrameReader(), bytearray(), None
            self.memory, self.results = {}, []

        def write(self, data):
            for frame in self.reader.feed(data):
                assert frame.crc_ok and not frame.bad_escape, frame
                code, seq, payload = frame.body[0], frame.body[1], frame.body[2:-2]
                self.out += encode_frame(code | OK_BIT, seq, self.answer(code, payload))

        def answer(self, command, payload):
            fields = unpack(codec.requests[command], payload) if payload else {}
            if command == Command.BATCH_WRITE:
                self.memory[fields["index"]] = fields["vector"]
                return b""
            if command == Command.BATCH_RUN:
                batch = np.array([self.memory[k] for k in range(fields["last"] + 1)])
                run = golden.run(cfg, W, batch)
                self.results = list(zip(run.y.tolist(), run.cycles.tolist(), strict=True))
                return pack(codec.responses[command], {
                    "vectors": len(batch), "cycles": timing.batch_cycles(cfg, run.reads)})
            assert command == Command.BATCH_READ, command
            items = [self.results[(fields["start"] + k) % depth]
                     for k in range(fields["count"])]
            return b"".join(pack(codec.responses[command], {"y": y, "cycles": c})
                            for y, c in items)

        def read(self, n):
            data, self.out = bytes(self.out[:n]), self.out[n:]
            return data

        def close(self):
            pass

    board = Board(None, cfg, link=GoldenBoard(), check=False)
    board.codec, board.info = codec, {"macro_hz": 100_000_000, "clk_hz": 0}
    Y, cycles = board.mvm_batch(X)
    expected = golden.run(cfg, W, X)
    assert np.array_equal(Y, expected.y) and np.array_equal(cycles, expected.cycles)
    sizes = [min(depth, vectors - k) for k in range(0, vectors, depth)]
    assert [run.vectors for run in board.runs] == sizes
    start = 0
    for run, size in zip(board.runs, sizes, strict=True):
        assert run.cycles == timing.batch_cycles(cfg, expected.reads[start:start + size])
        start += size


# -- hostile bytes on the link ----------------------------------------------------------------

FUZZ_FRAMES = int(os.environ.get("IMCGEN_FUZZ_FRAMES", "60"))


def expected_answers(codec, line):
    """What the board answers to ``line`` (golden.executor, given this build's commands and
    payload widths): ``(code, seq, error payload or None)`` per frame; and the WEIGHTS rows it
    applies, ``[(row, values)]``."""
    from imcgen.golden import executor
    from imcgen.link.codec import unpack

    bits = {int(c): Shape.cast(layout).width for c, layout in codec.requests.items()}
    out, applied = [], []
    for code, seq, error, command, payload in executor.answers(line, bits, codec.supported):
        if error is not None:
            out.append((code, seq, bytes([error.value, command])))
            continue
        if command == Command.WEIGHTS:
            value = unpack(codec.requests[Command.WEIGHTS], payload)
            applied.append((value["row"], value["weights"]))
        out.append((code, seq, None))  # a command that ran: its payload is checked elsewhere
    return out, applied


def hostile_line(rng, codec, W):
    """One burst of hostile bytes: a mutated request, garbage, flow-control bytes inside a
    frame, or a good one."""
    good = [(Command.INFO, b""), (Command.STATUS, b""),
            (Command.WEIGHTS, codec.weights(int(rng.integers(len(W))),
                                            W[int(rng.integers(len(W)))]))]
    command, payload = good[int(rng.integers(len(good)))]
    seq = int(rng.integers(256))
    frame = bytearray(encode_frame(command, seq, payload))
    kind = rng.integers(10)
    if kind == 0:  # a bit flip anywhere inside the delimiters
        bit = int(rng.integers(8, 8 * (len(frame) - 1)))
        frame[bit // 8] ^= 1 << (bit % 8)
    elif kind == 1:  # a byte dropped
        del frame[int(rng.integers(1, len(frame) - 1))]
    elif kind == 2:  # a bad escape
        at = int(rng.integers(1, len(frame) - 1))
        frame[at:at] = bytes([ESC, int(rng.integers(256))])
    elif kind == 3:  # oversized, with a good CRC
        frame = bytearray(encode_frame(command, seq, payload + bytes(rng.integers(
            0, 256, int(rng.integers(1, 40)), dtype=np.uint8))))
    elif kind == 4:  # an unknown or unsupported command
        frame = bytearray(encode_frame(int(rng.choice([0x00, 0x55, 0x7F, 0x20, 0x30, 0xFE])),
                                       seq, payload))
    elif kind == 5:  # garbage, then a frame (the garbage forms a frame of its own)
        frame = bytearray(rng.integers(0, 256, int(rng.integers(1, 12)), dtype=np.uint8)) \
            + frame
    elif kind == 6:  # a payload bit above the layout (WEIGHTS)
        if command == Command.WEIGHTS and 8 * len(payload) > Shape.cast(
                codec.requests[Command.WEIGHTS]).width:
            body = bytearray(payload)
            body[-1] |= 0x80
            frame = bytearray(encode_frame(command, seq, bytes(body)))
    elif kind == 7:  # empty frames around it
        frame = bytearray([END, END]) + frame + bytearray([END])
    elif kind == 8:  # raw flow control inside it: XOFF somewhere, XON (maybe) later
        at = sorted(int(a) for a in rng.integers(1, len(frame), 2))
        frame[at[1]:at[1]] = bytes([XON]) if rng.random() < 0.8 else b""
        frame[at[0]:at[0]] = bytes([XOFF])
    return bytes(frame)


@cocotb.test()
async def hostile_frames_get_their_documented_answers_and_change_nothing(dut):
    """Random and mutated frames (bit flips, dropped bytes, bad escapes, oversized frames,
    unknown commands, garbage, padding bits, empty frames, a truncated frame): after each, the
    board's answers are exactly those the documented rules give, and a known MVM still
    answers exactly; at the end STATUS counts every refused frame."""
    bench = Bench(dut)
    await bench.start()
    cfg, codec, link = bench.cfg, bench.codec, bench.link
    rng = bench.rng
    W, X = stimulus(cfg, rng, 3)
    await bench.load(W)
    W = np.array(W)
    refused = 0
    for n in range(FUZZ_FRAMES):
        if n % 25 == 24:  # a truncated frame: its TIMEOUT answer, then the link hunts again
            seq, frame = link.frame(Command.INFO)
            await link.send(frame[:3])
            response = await link.response(timeout_ns=2 * TIMEOUT_CYCLES * CLOCK_NS)
            assert (response.code, codec.error(response.payload)) == \
                (ERROR, (LinkError.TIMEOUT.value, Command.INFO)), response
            refused += 1
            await link.send(bytes([END]))  # the link hunts for a delimiter: give it one
            continue
        line = hostile_line(rng, codec, W)
        if flow.split(line)[1]:  # garbage ending in a raw XOFF: the board stops until XON
            line += bytes([XON])
        answers, applied = expected_answers(codec, line)
        await link.send(line)
        for code, seq, payload in answers:
            response = await link.response()
            assert (response.code, response.seq) == (code, seq), \
                (n, line.hex(), response, answers, f"seed {bench.seed}")
            if payload is not None:
                assert response.payload == payload, (n, line.hex(), response)
                refused += 1
        for row, values in applied:
            W[row] = values
        if n % 10 == 9:
            await bench.check_mvms(W, X[:1])
            await link.silence(1)
    status = await bench.status()
    # bad_frames saturates at 2^16 - 1 (docs/board.md): a long run reaches it.
    assert (status["bad_frames"], status["overruns"], status["framing_errors"]) == \
        (min(refused, 0xFFFF), 0, 0), (status, refused)
    await bench.check_mvms(W, X)
