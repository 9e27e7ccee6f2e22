"""SLIP framing in hardware (``hdl/slip.py``) against its reference (``golden/slip.py``): every
byte value through both directions, random frames with garbage, bad escapes and empty frames
under gaps and backpressure, and the decoder's timeout."""

import cocotb
import pytest
from cocotb.triggers import ClockCycles, with_timeout

from imcgen.core.config import MacroConfig
from imcgen.golden import slip
from imcgen.hdl.slip import SlipDecoder, SlipEncoder, raw_layout, token_layout
from imcgen.link.protocol import (
    END,
    ESC,
    ESC_END,
    ESC_ESC,
    ESC_XOFF,
    ESC_XON,
    STUFFED,
    XOFF,
    XON,
    FrameReader,
    encode_frame,
)
from imcgen.sim.runner import run_block
from imcgen.sim.tb.streams import decode, encode, seed_from_env, stream_test

TIMEOUT_CYCLES = 200
CFG = MacroConfig()  # the blocks take no configuration; run_block passes one along


def test_reference_tokens_of_a_host_frame():
    # The reference decoder reads what the host's encoder writes, every byte value included.
    body = bytes(range(256))
    line = b"\x13\x37" + encode_frame(body[0], body[1], body[2:])
    got = slip.tokens(line)
    assert [d for k, d in got if k == slip.DATA][:256] == list(body)
    assert got[-1] == (slip.FRAME_END, 0) and len(got) == 256 + 2 + 1  # body, CRC, end
    assert slip.tokens(bytes([END, ESC, 0x41, 0x42, END])) == [(slip.DATA, 0x42),
                                                                (slip.BAD_END, 0)]
    assert slip.tokens(bytes([END, 0x41, ESC, END])) == [(slip.DATA, 0x41), (slip.BAD_END, 0)]
    assert slip.tokens(bytes([END, END, END])) == []
    reader = FrameReader()
    body = b"\x81\x07" + bytes([END, ESC, ESC_END, ESC_ESC, XON, XOFF, ESC_XON, ESC_XOFF])
    line = slip.frame(body)
    assert XON not in line and XOFF not in line  # stuffed: a raw one is flow control
    frames = reader.feed(line)
    assert len(frames) == 1 and frames[0].crc_ok and frames[0].body[:-2] == body
    assert slip.tokens(bytes([END, ESC, ESC_XON, ESC, ESC_XOFF, END])) == [
        (slip.DATA, XON), (slip.DATA, XOFF), (slip.FRAME_END, 0)]


@pytest.mark.parametrize("block", ["decoder", "encoder"])
def test_slip(block, tmp_path, seed):
    component = SlipDecoder(timeout_cycles=TIMEOUT_CYCLES) if block == "decoder" else \
        SlipEncoder()
    run_block(component, f"slip_{block}", "test_slip", tmp_path, config=CFG, seed=seed,
              env={"COCOTB_TEST_FILTER": rf"\.{block}_"})


def _random_line(rng):
    """Random traffic: garbage, frames of random bytes rich in the special ones, bad escapes,
    empty frames, frames ending inside an escape."""
    special = [*STUFFED, *STUFFED.values()]
    line = bytearray(rng.randbytes(rng.randint(0, 5)))  # before the first END: dropped
    for _ in range(40):
        body = bytes(rng.choice(special) if rng.random() < 0.3 else rng.randrange(256)
                     for _ in range(rng.randint(0, 12)))
        kind = rng.random()
        if kind < 0.75:
            line += bytes([END]) + bytes(_escape(body)) + bytes([END])
        elif kind < 0.85:
            line += bytes([END]) + bytes(_escape(body)) + bytes([ESC, rng.randrange(256)]) + \
                bytes([END])
        elif kind < 0.95:
            line += bytes([END, END])
        else:
            line += bytes([END]) + bytes(_escape(body)) + bytes([ESC, END])
    return bytes(line)


def _escape(body):
    from imcgen.link.protocol import escape

    return escape(body)


@cocotb.test()
async def decoder_tokens_equal_the_reference(dut):
    _, rng, source, sink = await stream_test(dut, idle=0.3, stall=0.4)
    # Every byte value in one frame (each escape directed, not left to chance), then random
    # traffic.
    line = encode_frame(0, 1, bytes(range(256))) + _random_line(rng)
    expected = slip.tokens(line)
    cocotb.start_soon(source.send_all(list(line)))
    await with_timeout(sink.wait(len(expected)), 40 * len(line) * 10 + 10_000, "ns")
    await ClockCycles(dut.clk, 50)
    got = [(v["kind"], v["data"] if v["kind"] == slip.DATA else 0)
           for v in (decode(token_layout, w) for _, w in sink.items)]
    assert got == expected, f"seed {seed_from_env()}"


@cocotb.test()
async def decoder_times_out_a_stalled_frame_and_hunts_again(dut):
    _, _, source, sink = await stream_test(dut)
    await source.send_all([END, 0x11, ESC, ESC_END])  # a frame that stops
    await ClockCycles(dut.clk, TIMEOUT_CYCLES + 20)
    got = [decode(token_layout, w) for _, w in sink.items]
    assert [(v["kind"], v["data"]) for v in got[:2]] == [(slip.DATA, 0x11), (slip.DATA, END)]
    assert len(got) == 3 and got[2]["kind"] == slip.TIMEOUT
    # The rest of the old frame is dropped until a delimiter; the next frame is whole.
    await source.send_all([0x22, 0x33, END, 0x44, END])
    await ClockCycles(dut.clk, 20)
    got = [decode(token_layout, w) for _, w in sink.items[3:]]
    assert [v["kind"] for v in got] == [slip.DATA, slip.FRAME_END] and got[0]["data"] == 0x44


@cocotb.test()
async def encoder_lines_equal_the_reference(dut):
    _, rng, source, sink = await stream_test(dut, idle=0.3, stall=0.4)
    special = [*STUFFED, *STUFFED.values()]
    bodies = [bytes(range(256))] + [
        bytes(rng.choice(special) if rng.random() < 0.3 else rng.randrange(256)
              for _ in range(rng.randint(2, 20))) for _ in range(30)]
    words = []
    for body in bodies:
        words += [encode(raw_layout, {"data": b, "end": 0}) for b in body]
        words.append(encode(raw_layout, {"data": 0, "end": 1}))
    expected = b"".join(slip.frame(body) for body in bodies)
    cocotb.start_soon(source.send_all(words))
    await with_timeout(sink.wait(len(expected)), 40 * len(expected) * 10 + 10_000, "ns")
    await ClockCycles(dut.clk, 50)
    assert bytes(w for _, w in sink.items) == expected, f"seed {seed_from_env()}"

