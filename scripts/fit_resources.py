"""Fit imcgen.fpga.resources' coefficients: synthesize the board top over a spread of
configurations.

    .venv/bin/python scripts/fit_resources.py [--family ecp5|ice40] [--out samples.json]

Each configuration is synthesized once (Yosys synth_<family>, flattened, no hierarchy; minutes
each); the counts go to a JSON file (reused on the next run), then the least-squares fit of
imcgen.fpga.resources.features prints the coefficient table and each sample's error.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from imcgen.core.config import load_config
from imcgen.fpga import flow as fpga
from imcgen.fpga.resources import estimate, features
from imcgen.hdl.board_top import BoardCore

SAMPLES = {
    "small": ["preset=small", "rows=8"],
    "small16": ["preset=small", "rows=16"],
    "default": ["preset=default"],
    "chang": ["preset=chang"],
    "isaac": ["preset=isaac"],
    "wide1": ["preset=small", "rows=32", "tiles=1", "outputs=8"],
    "deep4": ["preset=small", "rows=8", "tiles=4", "outputs=2", "adcs=2", "input_bits=8",
              "weight_bits=8", "cell_bits=1", "adc_bits=3", "rows_per_read=7"],
    "cell3": ["preset=small", "rows=24", "tiles=1", "outputs=6", "input_bits=3",
              "weight_bits=6", "cell_bits=3", "adc_bits=6", "adcs=6", "schedule=dense"],
    "offset": ["preset=small", "rows=12", "tiles=3", "outputs=5", "adcs=5",
               "weight_mapping=offset", "weight_bits=6", "input_signed=true"],
    "small-rram": ["preset=small", "rows=16", "device.kind=rram"],
    "default-rram": ["preset=default", "device.kind=rram"],
}
ICE40_SKIP = {"chang", "isaac", "default-rram"}  # far beyond an UP5K; cell storage as FFs


def config(items):
    values = dict(item.split("=", 1) for item in items)
    preset = values.pop("preset")
    return load_config(preset, overrides=[f"{k}={v}" for k, v in values.items()])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--family", default="ecp5", choices=fpga.FAMILIES)
    parser.add_argument("--out", default=None)
    parser.add_argument("--work", default="/tmp/imcgen-fit")
    args = parser.parse_args()
    out = Path(args.out or f"/tmp/imcgen-fit-{args.family}.json")
    samples = json.loads(out.read_text()) if out.exists() else {}
    for name, items in SAMPLES.items():
        if name in samples or (args.family == "ice40" and name in ICE40_SKIP):
            continue
        cfg = config(items)
        t = time.time()
        report = fpga.synth_only(BoardCore(config=cfg, divisor=104, timeout_cycles=600000),
                                 args.family, build_dir=f"{args.work}/{args.family}-{name}",
                                 hierarchy=False)
        samples[name] = {"items": items, "resources": report["resources"],
                         "seconds": round(time.time() - t, 1)}
        out.write_text(json.dumps(samples, indent=1))
        print(name, report["resources"], f"{time.time() - t:.0f} s", flush=True)
    names = sorted(samples)
    keys = list(features(config(samples[names[0]]["items"])))
    F = np.array([[features(config(samples[n]["items"]))[k] for k in keys] for n in names],
                 dtype=float)
    from scipy.optimize import nnls  # a test dependency; this script is for maintainers

    for resource in ("luts", "ffs"):
        y = np.array([samples[n]["resources"][resource] for n in names], dtype=float)
        coef, _ = nnls(F, y, maxiter=50 * len(keys))  # non-negative: no structure refunds
        print(f"{resource}: " + ", ".join(f'"{k}": {c:.4g}'
                                          for k, c in zip(keys, coef, strict=True)))
        for i, (n, row, want) in enumerate(zip(names, F, y, strict=True)):
            rest = np.arange(len(names)) != i
            loo = float(row @ nnls(F[rest], y[rest], maxiter=50 * len(keys))[0])
            got = float(row @ coef)
            model = estimate(config(samples[n]["items"]), args.family)[resource]
            print(f"  {n:14} synth {want:8.0f}  fit {got:8.0f} "
                  f"({100 * (got - want) / want:+4.0f} %)  "
                  f"leave-one-out {100 * (loo - want) / want:+4.0f} %"
                  f"  table {model:8.0f} ({100 * (model - want) / want:+4.0f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
