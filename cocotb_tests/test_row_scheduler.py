"""Row scheduler: bit planes in, read commands out, against ``golden.row_scheduler``."""


import cocotb
import pytest
from cocotb.triggers import with_timeout

from imcgen.core.config import MacroConfig
from imcgen.golden.input_driver import plane_stream
from imcgen.golden.row_scheduler import read_commands
from imcgen.hdl.input_driver import plane_layout
from imcgen.hdl.row_scheduler import RowScheduler, read_layout
from imcgen.sim.runner import run_block
from imcgen.sim.tb.streams import config_from_env, decode, encode, seed_from_env, stream_test

CONFIGS = {
    # IEEE Design & Test in-memory computing tutorial (2021), Fig. 11: 8 rows, 4 rows per read
    # (1-bit cells, 2-bit ADC as in the figure).
    "fig11-dense": MacroConfig(rows=8, tiles=1, input_bits=1, cell_bits=1, adc_bits=2,
                               rows_per_read=4, schedule="dense"),
    "fig11-zero_skip": MacroConfig(rows=8, tiles=1, input_bits=1, cell_bits=1, adc_bits=2,
                                   rows_per_read=4, schedule="zero_skip"),
    "r13-n5-dense": MacroConfig(rows=13, tiles=1, input_bits=3, rows_per_read=5, schedule="dense"),
    "r37-n6-zero_skip": MacroConfig(rows=37, tiles=1, input_bits=3, rows_per_read=6),
    "r128-n85-zero_skip": MacroConfig(rows=128, tiles=1, input_bits=2, cell_bits=2, adc_bits=8),
    "r9-n1-zero_skip": MacroConfig(rows=9, tiles=1, input_bits=2, rows_per_read=1),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_row_scheduler(name, tmp_path, seed):
    cfg = CONFIGS[name]
    run_block(RowScheduler(config=cfg), "row_scheduler", "test_row_scheduler", tmp_path,
              config=cfg, seed=seed)


def planes(cfg, rng, vectors):
    """Plane streams of random vectors of varied density, zero vectors included."""
    out = []
    for n in range(vectors):
        density = 0.0 if n % 7 == 0 else rng.random()
        vector = [rng.randint(1, cfg.input_max) if rng.random() < density else 0
                  for _ in range(cfg.rows)]
        out += plane_stream(cfg, vector)
    return out


async def run(dut, idle, stall, extra_planes=()):
    cfg, rng, source, sink = await stream_test(dut, idle, stall)
    stream = planes(cfg, rng, 30) + list(extra_planes)
    expected = read_commands(cfg, stream)
    in_layout, out_layout = plane_layout(cfg), read_layout(cfg)
    cocotb.start_soon(source.send_all([encode(in_layout, p) for p in stream]))
    await with_timeout(sink.wait(len(expected)), 100 * (len(expected) + len(stream)) + 1000, "ns")
    got = [decode(out_layout, word) for _, word in sink.items]
    for n, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g == e, f"command {n}: got {g}, expected {e} (seed {seed_from_env()})"
    return sink


@cocotb.test()
async def reads_match_golden_under_stalls(dut):
    cfg = config_from_env()
    # A zero plane in the middle of a vector: zero_skip consumes it without a command.
    extra = [dict(bits=0, index=0, neg=0, last=0),
             dict(bits=1, index=min(1, cfg.input_bits - 1), neg=0, last=1)]
    await run(dut, idle=0.3, stall=0.4, extra_planes=extra)


@cocotb.test()
async def reads_leave_back_to_back(dut):
    # Commands leave one per cycle, also across plane boundaries: the next plane is taken on the
    # handshake of the current plane's last read. (Driver-made streams hold no mid-vector zero
    # plane; one would cost zero_skip a cycle.)
    sink = await run(dut, idle=0.0, stall=0.0)
    cycles = [c for c, _ in sink.items]
    assert cycles == list(range(cycles[0], cycles[0] + len(cycles))), cycles
