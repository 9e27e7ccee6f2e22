"""The board link's executor (``hdl/executor.py``) on a macro, tokens in and response bytes out,
no UART or SLIP in between (those have their own tests): every command answered as the host
codec expects, results exact against the golden model under backpressure, and every refused
frame answered with its error while the macro's state stays as it was."""

import re
from pathlib import Path

import cocotb
import numpy as np
import pytest
from amaranth import Module
from amaranth.hdl import Shape
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout

from imcgen import golden
from imcgen.apps.soak import stimulus
from imcgen.core.config import MacroConfig, load_config
from imcgen.fpga.protocol import Codec
from imcgen.golden import slip
from imcgen.hdl.executor import BATCH_DEPTH, Executor
from imcgen.hdl.macro_top import MacroTop
from imcgen.hdl.slip import raw_layout, token_layout
from imcgen.link.protocol import (
    ERROR,
    OK_BIT,
    PROTOCOL_VERSION,
    Command,
    LinkError,
    config_digest,
    crc16,
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

TIMEOUT_CYCLES = 300
DEPTH, DIVISOR, CLK_HZ = 64, 217, 25_000_000
# The iCEBreaker's macro with a programmable device: every command of the link exists but the
# TRNG's (refused as unsupported); test_board_top runs the TRNG commands through the UART.
CONFIGS = {"small-rram": load_config("small", overrides={"device.kind": "rram"})}


class ExecutorOnMacro(wiring.Component):
    """The executor driving a macro of ``config``; its token input and byte output as ports."""

    def __init__(self, config):
        self._config = config
        super().__init__({"i": In(stream.Signature(token_layout)),
                          "o": Out(stream.Signature(raw_layout))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.macro = macro = MacroTop(config=self._config)
        m.submodules.executor = executor = Executor(
            config=self._config, timeout_cycles=TIMEOUT_CYCLES, rx_fifo_depth=DEPTH,
            divisor=DIVISOR, clk_hz=CLK_HZ)
        wiring.connect(m, wiring.flipped(self.i), executor.i)
        wiring.connect(m, executor.o, wiring.flipped(self.o))
        wiring.connect(m, executor.macro, macro)
        return m


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")  # refused ones
def test_executor_refuses_bad_parameters():
    with pytest.raises(TypeError, match="MacroConfig"):
        Executor(config={"rows": 8}, timeout_cycles=10)
    with pytest.raises(ValueError, match="link timeout must be an integer of at least 1"):
        Executor(config=MacroConfig(), timeout_cycles=0)
    with pytest.raises(ValueError, match="RX FIFO depth must be an integer in 2..65535"):
        Executor(config=MacroConfig(), timeout_cycles=5, rx_fifo_depth=1)


DOC = Path(__file__).resolve().parents[1] / "docs" / "board.md"


def test_reference_answers_follow_the_documented_order():
    # golden.executor, on hand-made frames (the board's own answers: test_board_top's fuzz).
    from imcgen.golden import executor
    from imcgen.link.protocol import ESC, encode_frame

    bits = {int(Command.WEIGHTS): 21, int(Command.MVM): 64}
    supported = {Command.INFO, Command.WEIGHTS, Command.MVM}
    frame = encode_frame(Command.WEIGHTS, 7, b"\x01\x02\x03")
    cases = [
        (encode_frame(Command.INFO, 1), (Command.INFO | OK_BIT, 1, None)),
        (frame, (Command.WEIGHTS | OK_BIT, 7, None)),
        (frame[:-3] + bytes([frame[-3] ^ 1]) + frame[-2:], (ERROR, 7, LinkError.CRC)),
        (bytes([0xC0, 0x10, 0xC0]), (ERROR, 0, LinkError.SHORT)),
        (encode_frame(0x55, 2), (ERROR, 2, LinkError.COMMAND)),
        (encode_frame(Command.PROGRAM, 3, b"\0\0"), (ERROR, 3, LinkError.UNSUPPORTED)),
        (encode_frame(Command.WEIGHTS, 4, b"\1\2"), (ERROR, 4, LinkError.LENGTH)),
        (encode_frame(Command.WEIGHTS, 5, b"\1\2\x20"), (ERROR, 5, LinkError.PADDING)),
        (frame[:4] + bytes([ESC, 0x41]) + frame[4:], (ERROR, 7, LinkError.ESCAPE)),
    ]
    for line, want in cases:
        (got,) = executor.answers(line, bits, supported)
        assert got[:3] == want, (line.hex(), got, want)
    assert executor.answers(b"\x13\x37" + frame, bits, supported, hunting=True)[0][2] is None


def test_docs_payload_tables_are_current():
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "scripts" / "doc_layouts.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def doc_fields(title):
    """``[(name, first, stride, width, signed, count)]`` of a payload table of docs/board.md,
    read from the text as a client written from the docs would read it."""
    text = DOC.read_text()
    block = text[text.index(f"**{title}"):].split("\n\n")[1]
    fields = []
    for line in block.splitlines()[2:]:
        name, at, width, signed = (c.strip(" `") for c in line.strip("|").split("|"))
        count = 1
        match = re.fullmatch(r"(\w+)\[i\], i = 0\.\.(\d+)", name)
        if match:
            name, count = match.group(1), int(match.group(2)) + 1
        first, _, stride = at.partition(" + ") if " + " in at else \
            (("0", "", at) if at.endswith("i") else (at, "", ""))
        fields.append((name, int(first), int(stride[:-1]) if stride else 0, int(width),
                       signed == "yes", count))
    return fields


def doc_pack(fields, values):
    """Payload bytes of ``values`` (name -> int or list) by the documented offsets."""
    word, top = 0, 0
    for name, first, stride, width, _, count in fields:
        items = values[name] if count > 1 else [values[name]]
        for i, v in enumerate(items):
            word |= (int(v) & ((1 << width) - 1)) << (first + stride * i)
            top = max(top, first + stride * i + width)
    return word.to_bytes((top + 7) // 8, "little")


def doc_unpack(fields, payload):
    word, out = int.from_bytes(payload, "little"), {}
    for name, first, stride, width, signed, count in fields:
        items = []
        for i in range(count):
            v = (word >> (first + stride * i)) & ((1 << width) - 1)
            items.append(v - (1 << width) if signed and v >> (width - 1) else v)
        out[name] = items if count > 1 else items[0]
    return out


@pytest.mark.parametrize("name", CONFIGS)
def test_executor(name, tmp_path, seed):
    cfg = CONFIGS[name]
    run_block(ExecutorOnMacro(cfg), "executor", "test_executor", tmp_path, config=cfg,
              seed=seed)


class Bench:
    def __init__(self, dut):
        self.dut, self.cfg, self.seed = dut, config_from_env(), seed_from_env()
        self.codec = Codec(self.cfg)
        self.rng = np.random.default_rng(self.seed)

    async def start(self):
        import random

        await start_clock(self.dut)
        self.source = StreamSource(self.dut, "i", random.Random(self.seed), idle=0.2)
        await reset_dut(self.dut)
        self.sink = StreamSink(self.dut, "o", random.Random(self.seed + 1), stall=0.4)
        self.seq = 0

    async def send_tokens(self, tokens):
        await self.source.send_all([encode(token_layout, {"kind": k, "data": d})
                                    for k, d in tokens])

    async def exchange(self, tokens):
        """Send ``tokens``; the response's bytes (before its end token)."""
        before = len(self.sink.items)
        await self.send_tokens(tokens)
        while True:
            await with_timeout(self.sink.wait(len(self.sink.items) + 1), 2_000_000, "ns")
            items = [decode(raw_layout, w) for _, w in self.sink.items[before:]]
            if items[-1]["end"]:
                await RisingEdge(self.dut.clk)  # out of the monitor's read-only phase
                return bytes(v["data"] for v in items[:-1])

    def frame(self, command, payload=b"", seq=None, crc=None):
        self.seq = (self.seq + 1) & 0xFF
        body = bytes([command, self.seq if seq is None else seq]) + bytes(payload)
        crc = crc16(body) if crc is None else crc
        return [(slip.DATA, b) for b in body + crc.to_bytes(2, "big")] + [(slip.FRAME_END, 0)]

    async def ok(self, command, payload=b""):
        response = await self.exchange(self.frame(command, payload))
        assert response[:2] == bytes([command | OK_BIT, self.seq]), (response, self.seed)
        return response[2:]

    async def refused(self, tokens, error, command):
        response = await self.exchange(tokens)
        assert response[0] == ERROR, (response, self.seed)
        assert self.codec.error(response[2:]) == (error.value, command), \
            (LinkError(response[2]).name, response.hex(), self.seed)

    async def check_mvms(self, W, X):
        expected = golden.run(self.cfg, W, X)
        for n, x in enumerate(X):
            got = self.codec.result(await self.ok(Command.MVM, self.codec.vector(x)))
            assert got == (expected.y[n].tolist(), int(expected.cycles[n])), \
                (n, got, expected.y[n].tolist(), self.seed)


@cocotb.test()
async def commands_answer_as_the_host_codec_expects(dut):
    bench = Bench(dut)
    await bench.start()
    cfg, codec = bench.cfg, bench.codec
    info = codec.one(Command.INFO, await bench.ok(Command.INFO))
    assert info == {"version": PROTOCOL_VERSION, "programmable": int(cfg.programmable),
                    "trng": int(cfg.trng.enabled), "divisor_frac": 0, "reserved": 0,
                    "config_digest": config_digest(cfg), "rx_fifo_depth": DEPTH,
                    "divisor": DIVISOR, "clk_hz": CLK_HZ, "macro_hz": 0,
                    "batch_depth": BATCH_DEPTH}
    W, X = stimulus(cfg, bench.rng, 8)
    for row, values in enumerate(W):
        assert await bench.ok(Command.WEIGHTS, codec.weights(row, values)) == b""
    await bench.check_mvms(W, X)

    # Refused frames: each answered with its error, none applied.
    other = codec.weights(0, -W[0] if cfg.weight_mapping == "differential" else W[-1])
    frame = bench.frame(Command.WEIGHTS, other)
    await bench.refused(frame[:-3] + [(slip.DATA, frame[-3][1] ^ 1)] + frame[-2:],
                        LinkError.CRC, Command.WEIGHTS)
    await bench.refused([(slip.DATA, Command.MVM), (slip.FRAME_END, 0)], LinkError.SHORT,
                        Command.MVM)
    await bench.refused(bench.frame(0x55, other), LinkError.COMMAND, 0x55)
    await bench.refused(bench.frame(Command.WEIGHTS, other[:-1]), LinkError.LENGTH,
                        Command.WEIGHTS)
    await bench.refused(bench.frame(Command.CLEAR, b"\0"), LinkError.LENGTH, Command.CLEAR)
    if not cfg.trng.enabled:
        await bench.refused(bench.frame(Command.TRNG_READ, b"\4"), LinkError.UNSUPPORTED,
                            Command.TRNG_READ)
    await bench.refused(frame[:-1] + [(slip.BAD_END, 0)], LinkError.ESCAPE, Command.WEIGHTS)
    await bench.refused(frame[:5] + [(slip.TIMEOUT, 0)], LinkError.TIMEOUT, Command.WEIGHTS)
    # A bit above the layout in the payload's last byte: refused, not read as another row.
    layout = codec.requests[Command.WEIGHTS]
    width = Shape.cast(layout).width
    assert 8 * len(other) > width, "the test needs a layout with padding"
    padded = bytearray(other)
    padded[-1] |= 1 << (width % 8 if width % 8 else 7)
    await bench.refused(bench.frame(Command.WEIGHTS, bytes(padded)), LinkError.PADDING,
                        Command.WEIGHTS)
    status = codec.one(Command.STATUS, await bench.ok(Command.STATUS))
    refused = 8 + (not cfg.trng.enabled)
    assert (status["commands"], status["bad_frames"]) == (1 + len(W) + len(X), refused)
    assert await bench.ok(Command.CLEAR) == b""
    status = codec.one(Command.STATUS, await bench.ok(Command.STATUS))
    assert (status["commands"], status["bad_frames"]) == (0, 0)
    await bench.check_mvms(W, X)  # the weights are untouched
    await ClockCycles(dut.clk, 10)


@cocotb.test()
async def documented_bytes_work_without_the_codec(dut):
    """A client written from docs/board.md alone: its tables pack the requests and read the
    responses (no imcgen codec); every MVM exact, INFO as documented."""
    bench = Bench(dut)
    await bench.start()
    cfg = bench.cfg
    info = doc_unpack(doc_fields("INFO"), await bench.ok(Command.INFO))
    assert (info["version"], info["programmable"], info["rx_fifo_depth"]) == \
        (PROTOCOL_VERSION, 1, DEPTH)
    weights, x, result = (doc_fields("WEIGHTS** (0x10) request"), doc_fields("MVM** (0x11) "
                                                                            "request"),
                          doc_fields("MVM** (0x11) response"))
    W, X = stimulus(cfg, bench.rng, 6)
    for row, values in enumerate(W):
        payload = doc_pack(weights, {"row": row, "weights": values, "program": 0})
        assert await bench.ok(Command.WEIGHTS, payload) == b""
    expected = golden.run(cfg, W, X)
    for n, vector in enumerate(X):
        got = doc_unpack(result, await bench.ok(Command.MVM, doc_pack(x, {"x": vector})))
        assert (got["y"], got["cycles"]) == (expected.y[n].tolist(), int(expected.cycles[n]))
