"""Input driver: vectors in, bit planes out, against ``golden.input_driver.plane_stream``."""


import cocotb
import pytest
from cocotb.triggers import with_timeout

from imcgen.core.config import MacroConfig
from imcgen.golden.input_driver import plane_stream
from imcgen.hdl.input_driver import InputDriver, plane_layout, vector_layout
from imcgen.sim.runner import run_block
from imcgen.sim.tb.streams import decode, encode, seed_from_env, stream_test

CONFIGS = {
    "u4-dense": MacroConfig(rows=8, tiles=1, input_bits=4, schedule="dense"),
    "s5-zero_skip": MacroConfig(rows=13, tiles=1, input_bits=5, input_signed=True),
    "s1-zero_skip": MacroConfig(rows=6, tiles=1, input_bits=1, input_signed=True),
    "u8-zero_skip-wide": MacroConfig(rows=40, tiles=1, input_bits=8),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_input_driver(name, tmp_path, seed):
    cfg = CONFIGS[name]
    run_block(InputDriver(config=cfg), "input_driver", "test_input_driver", tmp_path,
              config=cfg, seed=seed)


def stimulus(cfg, rng, count):
    """Random vectors plus the corner cases: all zero, one sparse plane, all minimum/maximum."""
    vectors = [[0] * cfg.rows, [cfg.input_max] * cfg.rows, [cfg.input_min] * cfg.rows]
    sparse = [0] * cfg.rows
    sparse[rng.randrange(cfg.rows)] = 1 << (cfg.input_bits - 1) if cfg.input_bits > 1 else 1
    vectors.append([v if not cfg.input_signed else -v if v > cfg.input_max else v for v in sparse])
    for _ in range(count):
        density = rng.random()
        vectors.append([rng.randint(cfg.input_min, cfg.input_max) if rng.random() < density else 0
                        for _ in range(cfg.rows)])
    rng.shuffle(vectors)
    return vectors


async def run(dut, idle, stall):
    cfg, rng, source, sink = await stream_test(dut, idle, stall)
    vectors = stimulus(cfg, rng, 40)
    expected = [plane for v in vectors for plane in plane_stream(cfg, v)]
    cocotb.start_soon(source.send_all([encode(vector_layout(cfg, cfg.rows), v) for v in vectors]))
    await with_timeout(sink.wait(len(expected)), 100 * len(expected) + 1000, "ns")
    layout = plane_layout(cfg)
    got = [decode(layout, word) for _, word in sink.items]
    for n, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g == e, f"plane {n}: got {g}, expected {e} (seed {seed_from_env()})"
    return sink


@cocotb.test()
async def planes_match_golden_under_stalls(dut):
    await run(dut, idle=0.3, stall=0.4)


@cocotb.test()
async def planes_leave_back_to_back(dut):
    # With the next vector waiting and the sink always ready, a plane leaves every cycle:
    # no bubble between planes nor between vectors.
    sink = await run(dut, idle=0.0, stall=0.0)
    cycles = [c for c, _ in sink.items]
    assert cycles == list(range(cycles[0], cycles[0] + len(cycles))), cycles
