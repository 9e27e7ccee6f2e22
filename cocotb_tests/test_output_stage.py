"""Output stage: shift, ReLU and saturation, against ``golden.output_stage.apply``."""


import cocotb
import numpy as np
import pytest
from cocotb.triggers import with_timeout

from imcgen.core.config import MacroConfig
from imcgen.golden.output_stage import apply
from imcgen.hdl.adder_network import sum_layout
from imcgen.hdl.output_stage import OutputStage, output_layout
from imcgen.sim.runner import run_block
from imcgen.sim.tb.streams import decode, encode, seed_from_env, stream_test

BASE = dict(rows=16, tiles=2, outputs=4, input_signed=True)
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


@cocotb.test()
async def outputs_match_golden_under_stalls(dut):
    cfg, rng, source, sink = await stream_test(dut, 0.3, 0.4)
    lo, hi = cfg.sum_range
    corners = [lo, hi, 0, -1, 1, -(1 << cfg.out_shift) - 1]
    sums = np.array([[rng.choice(corners + [rng.randint(lo, hi)] * 4) for _ in range(cfg.outputs)]
                     for _ in range(60)])
    sums = np.clip(sums, lo, hi)
    cocotb.start_soon(source.send_all([encode(sum_layout(cfg), s.tolist()) for s in sums]))
    await with_timeout(sink.wait(len(sums)), 200 * len(sums) + 1000, "ns")
    expected = apply(cfg, sums)
    for n, (_, word) in enumerate(sink.items):
        got = decode(output_layout(cfg), word)
        assert got == expected[n].tolist(), f"{sums[n].tolist()} (seed {seed_from_env()})"
