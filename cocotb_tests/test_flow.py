"""XON/XOFF flow control (``hdl/flow.py``) in Amaranth's simulator, against the reference
(``golden/flow.py``): flow bytes off the receive side, the host's XOFF obeyed, the board's own
XOFF and XON at the documented FIFO levels, an XON after reset, and the stream rules on the
send side (a byte offered is held until taken; none lost, none doubled).
The board top's own burst test (test_board_top.py) runs it end to end."""

import random

import pytest
from amaranth.sim import Simulator

from imcgen.golden import flow
from imcgen.hdl.flow import FlowControl
from imcgen.link.protocol import XOFF, XON, flow_levels

DEPTH = 64
#: Response bytes as the SLIP encoder sends them: never a raw XON or XOFF.
LINE_BYTES = [b for b in range(256) if b not in (XON, XOFF)]


def run(steps, cycles, tx_bytes=(), depth=DEPTH):
    """Drive a :class:`FlowControl` for ``cycles`` cycles; ``steps(cycle)`` gives
    ``(line byte or None, line_o ready, level)``; ``tx`` offers ``tx_bytes`` back to back; a
    byte offered on ``tx`` or ``line_i`` is held until taken. Returns the bytes passed to
    ``rx``, sent on ``line_o`` (and ``when``), taken from ``line_i`` and ``tx``, and
    ``stopped`` per cycle."""
    dut = FlowControl(depth=depth)
    out = {"rx": [], "line_o": [], "line_i": [], "tx": [], "stopped": [], "when": []}

    async def bench(ctx):
        line, tx = None, None
        pending = iter(tx_bytes)
        held = None  # line_o's offer while not taken: it must not change
        for cycle in range(cycles):
            new_line, ready, level = steps(cycle)
            line = new_line if line is None else line
            tx = next(pending, None) if tx is None else tx
            ctx.set(dut.line_i.valid, line is not None)
            ctx.set(dut.line_i.payload, line or 0)
            ctx.set(dut.rx.ready, 1)
            ctx.set(dut.tx.valid, tx is not None)
            ctx.set(dut.tx.payload, tx or 0)
            ctx.set(dut.line_o.ready, ready)
            ctx.set(dut.level, level)
            out["stopped"].append(ctx.get(dut.stopped))
            if ctx.get(dut.line_o.valid):
                payload = ctx.get(dut.line_o.payload)
                assert held is None or held == payload, f"line_o changed while offered {cycle}"
                held = None if ready else payload
                if ready:
                    out["line_o"].append(payload)
                    out["when"].append(cycle)
            if ctx.get(dut.rx.valid):
                out["rx"].append(ctx.get(dut.rx.payload))
            if line is not None and ctx.get(dut.line_i.ready):
                out["line_i"].append(line)
                line = None
            if tx is not None and ctx.get(dut.tx.ready):
                out["tx"].append(tx)
                tx = None
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


def test_levels_leave_an_eighth_for_the_host():
    assert flow_levels(512) == (448, 128)
    with pytest.raises(ValueError, match="RX FIFO depth"):
        FlowControl(depth=4)


def test_receive_side_takes_flow_bytes_off_the_line(seed):
    """Random line bytes, XON and XOFF dense among them: the FIFO gets exactly the data bytes
    of the reference, and ``stopped`` follows the host's last flow byte."""
    rng = random.Random(seed)
    line = [rng.choice([XON, XOFF, rng.randrange(256)]) for _ in range(400)]
    it = iter(line)
    out = run(lambda c: (next(it, None) if rng.random() < 0.7 else None, 1, 0), 700)
    assert out["line_i"] == line, seed  # never stalled: rx is always ready
    data, paused = flow.split(line)
    assert bytes(out["rx"]) == data, seed
    assert out["stopped"][-1] == paused, seed


def test_board_says_xon_after_reset_then_xoff_and_xon_at_its_levels(seed):
    """The FIFO level rises past ``xoff`` and falls below ``xon`` twice while responses flow:
    one XON after reset, then XOFF, XON, XOFF, XON; each within a byte on the line (the
    register's) after its level is seen."""
    xoff, xon = flow_levels(DEPTH)
    rng = random.Random(seed)
    profile = [0] * 20 + [xoff - 1] * 20 + [xoff] * 30 + [xon + 1] * 20 + [xon] * 30 + \
        [DEPTH] * 30 + [0] * 30
    out = run(lambda c: (None, rng.random() < 0.8, profile[c]), len(profile),
              [rng.choice(LINE_BYTES) for _ in range(len(profile))])
    sent = [b for b in out["line_o"] if b in (XON, XOFF)]
    assert sent == [XON, XOFF, XON, XOFF, XON] and flow.flow_bytes_alternate(sent), seed
    when = [c for b, c in zip(out["line_o"], out["when"], strict=True) if b in (XON, XOFF)]
    # The level crosses at cycles 40, 90, 120, 150: compared a cycle later, then the byte in
    # the output register (if not taken at once) goes first.
    for cycle, change in zip(when[1:], (40, 90, 120, 150), strict=True):
        assert change + 2 <= cycle <= change + 12, (when, seed)
    responses = [b for b in out["line_o"] if b not in (XON, XOFF)]
    assert responses == out["tx"][:len(responses)], seed  # in order, none lost or doubled
    assert len(out["tx"]) - len(responses) <= 1, seed  # at most the one in the register


def test_host_xoff_stops_responses_but_not_flow_bytes():
    """An XOFF from the host: no response byte leaves until its XON (the byte already in the
    output register excepted), while the board's own XOFF still goes out."""
    xoff, _ = flow_levels(DEPTH)
    data = LINE_BYTES[100:200]

    def steps(cycle):
        line = {5: XOFF, 60: XON}.get(cycle)
        level = xoff if 30 <= cycle < 40 else 40
        return line, 1, level

    out = run(steps, 90, data)
    stopped = out["stopped"]
    assert stopped[5] == 0 and stopped[6] == 1 and stopped[60] == 1 and stopped[61] == 0
    sent = list(zip(out["when"], out["line_o"], strict=True))
    assert sent[0] == (1, XON)  # loaded in the first cycle, offered from the second
    # From the cycle after `stopped` rose (the byte already in the register may still go) to
    # the host's XON, only the board's own XOFF leaves; then responses again, in order.
    assert [b for c, b in sent if 7 < c <= 61] == [XOFF]
    assert any(c > 61 for c, b in sent if b != XOFF)
    responses = [b for _, b in sent if b not in (XON, XOFF)]
    assert responses == data[:len(responses)] and out["tx"] == data[:len(out["tx"])]
