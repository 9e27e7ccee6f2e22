"""Per-block Fmax suite of scripts/bench: every block of each preset placed and routed alone on
an ECP5 out of context (imcgen.fpga.fmax), the critical path of each named by block.

    ./scripts/bench --suite fmax [--configs default,small] [--blocks shift_add,...] \
        [--freq 100] [--seed 1] [--json fmax.json]
"""

import json
import time

from imcgen import load_config
from imcgen.core.config import parse_set
from imcgen.fpga.fmax import BLOCKS, block_fmax


def bench_fmax(args):
    configs = (args.configs or "default,small").split(",")
    blocks = args.blocks.split(",") if args.blocks else list(BLOCKS)
    unknown = [b for b in blocks if b not in BLOCKS]
    if unknown:
        raise SystemExit(f"bench: error: --blocks: unknown {', '.join(unknown)}; "
                         f"allowed: {', '.join(BLOCKS)}")
    sets = parse_set(args.sets)
    rows = []
    start = time.monotonic()
    for preset in configs:
        cfg = load_config(preset, overrides=sets)
        for name in blocks:
            result = block_fmax(cfg, name, freq=args.freq, seed=args.seed)
            result["config"] = preset
            rows.append(result)
            path = result["critical_path"] or {}
            print(f"{preset:10s} {name:14s} {result['fmax_mhz']:7.1f} MHz  "
                  f"{result['luts']:6d} LUT {result['ffs']:6d} FF  "
                  f"{path.get('from', '?')} -> {path.get('to', '?')} "
                  f"({path.get('logic_levels', '?')} levels)  {result['seconds']:.0f} s",
                  flush=True)
    report = {"suite": "fmax", "freq_mhz": args.freq, "seed": args.seed, "sets": args.sets,
              "rows": rows, "seconds": round(time.monotonic() - start, 1)}
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return report
