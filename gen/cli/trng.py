"""``imcgen trng``: random bits from the TRNG, its report and its RTL check."""

import sys

from imcgen.cli import common
from imcgen.cli.common import MISMATCH, OK
from imcgen.core.errors import ImcError


def add_parser(commands, command):
    trng = command("trng", "random bits from the TRNG (golden model, or the RTL too)")
    common.config_args(trng)
    trng.add_argument("--bits", type=common.positive_int, required=True, metavar="N",
                      help="output bits to generate")
    trng.add_argument("-o", "--output", required=True, metavar="FILE",
                      help="raw bytes, least significant bit first")
    trng.add_argument("--rtl", action="store_true",
                      help="also generate on the RTL (Verilator) and check it bit for bit")
    trng.add_argument("--report", metavar="DIR",
                      help="NIST SP 800-22 battery (nistrng) on 10^6 bits, debiasing off and "
                           "on, and the pulse-length sweep plot in DIR")
    trng.add_argument("--clock-mhz", type=common.number_in(0.0, 1e5), default=100.0,
                      metavar="F",
                      help="clock for the Mb/s figure (default 100)")
    trng.add_argument("--seed", type=common.seed, help="seed of the stimulus timing (--rtl)")
    common.allow_long_arg(trng)
    trng.set_defaults(run=cmd_trng)


def cmd_trng(args):
    import numpy as np

    from imcgen.apps.trng_report import generate, throughput
    from imcgen.core.checks import check_output_dir, check_output_file, written_whole

    cfg = common.load(args).replace(**{"trng.enabled": True})
    out = check_output_file("-o", args.output)
    if args.report is not None:
        check_output_dir("--report", args.report)
    if args.clock_mhz <= 0:
        raise ImcError("--clock-mhz", args.clock_mhz, "must be a positive number")
    if args.rtl and args.bits > 2_000_000 and not args.allow_long:
        raise ImcError("--bits", args.bits, "the RTL makes about 10^5 bits a minute here: at "
                                            "most 2000000 without --allow-long")
    from imcgen.sim.budget import check_memory

    # The golden model holds about 60 bytes per output bit at its peak (measured: 59 MB for
    # 10^6 bits), at about 10^7 bits a second: memory, not time, bounds it.
    check_memory("--bits", args.bits, 60 * args.bits, f"generating {args.bits} bits")
    t = cfg.trng
    bits, run = generate(cfg, args.bits)
    per_clock = throughput(cfg, run)
    data = np.packbits(bits.astype(np.uint8), bitorder="little")
    match = True
    if args.rtl:
        from imcgen.core.progress import Progress
        from imcgen.sim.api import simulate_trng

        progress = Progress("RTL: bytes")
        try:
            rtl = simulate_trng(cfg, len(data), seed=args.seed, progress=progress)
        finally:
            progress.close()
        got = rtl["trng_bytes"]
        match = len(got) >= len(data) and bool((got[:len(data)] == data).all())
        status = dict(zip(rtl["trng_status_names"].tolist(), rtl["trng_status"].tolist(),
                          strict=True))
        data = got[:len(data)]
    out.parent.mkdir(parents=True, exist_ok=True)
    with written_whole(out) as partial:
        partial.write_bytes(data.tobytes())
    bias = float(bits.mean() - 0.5) if len(bits) else 0.0
    health = ("no alarm" if run.alarm is None else
              f"{run.alarm[1].upper()} alarm at round {run.alarm[0]} (source {run.alarm[2]}): "
              f"output stopped")
    sys.stdout.write(
        f"{len(bits)} bits ({len(data)} bytes) from {t.sources} sources, pulse "
        f"{t.pulse_cycles} + reset {t.reset_cycles} cycles, median delay "
        f"{t.delay_median_at(t.voltage):.2f} periods, debias {'on' if t.debias else 'off'}\n"
        f"{per_clock:.4f} bits per clock = {per_clock * args.clock_mhz:.1f} Mb/s at "
        f"{args.clock_mhz:g} MHz (CMOS TRNG baseline: 23 Mb/s); bias {bias:+.5f}; "
        f"{run.retries} of {run.rounds * t.sources} pulses without a switch (retried)\n"
        f"health tests (RCT cutoff {t.rct_cutoff}, APT cutoff {t.apt_cutoff} of "
        f"{t.apt_window}): {health}\n")
    if args.rtl:
        sys.stdout.write(f"RTL vs golden: {'equal' if match else 'DIFFERENT'} ({len(data)} "
                         f"bytes); RTL status {status}; seed {rtl['seed']}\n")
    sys.stdout.write(f"wrote {out}\n")
    ok = match and run.alarm is None
    if args.report is not None:
        ok = _trng_report(cfg, args) and ok
    return OK if ok else MISMATCH


def _trng_report(cfg, args):
    """SP 800-22 on 10^6 bits with debiasing off and on, next to a reference generator, and
    the pulse-length sweep plot."""
    from pathlib import Path

    from imcgen.apps.trng_report import battery, generate, reference_bits, sweep, sweep_plot

    directory = Path(args.report)
    directory.mkdir(parents=True, exist_ok=True)
    count = 10**6
    reference = battery(reference_bits(count), progress=lambda line: sys.stderr.write(
        f"  reference (PCG64): {line}\n"))
    columns = {}
    for debias in (False, True):
        c = cfg.replace(**{"trng.debias": debias})
        bits, run = generate(c, count)
        label = f"debias {'on' if debias else 'off'}"
        columns[label] = battery(bits, progress=lambda line, label=label: sys.stderr.write(
            f"  {label}: {line}\n"))
    sys.stdout.write(f"\nNIST SP 800-22 (nistrng) on {count} bits, alpha 0.01:\n")
    sys.stdout.write(f"  {'test':36} {'debias off':>14} {'debias on':>14} {'PCG64':>14}\n")
    all_pass = True
    for n, (name, *_rest) in enumerate(reference):
        cells = []
        defect = reference[n][3] and not reference[n][2]
        for label in ("debias off", "debias on"):
            _, p, passed, applies = columns[label][n]
            cells.append("n/a" if not applies else f"{p:.4f} {'pass' if passed else 'FAIL'}")
            if applies and not passed and not defect:
                all_pass = False
        _, p, passed, applies = reference[n]
        ref = "n/a" if not applies else f"{p:.4f} {'pass' if passed else 'FAIL'}"
        note = "  (fails on PCG64 too: a defect of the test, not counted)" if defect else ""
        sys.stdout.write(f"  {name:36} {cells[0]:>14} {cells[1]:>14} {ref:>14}{note}\n")
    lengths = range(max(4, cfg.trng.pulse_cycles - 6), cfg.trng.pulse_cycles + 13, 2)
    rows = sweep(cfg, [n for n in lengths
                       if n + cfg.trng.reset_cycles + 2 >= _draw_cycles(cfg)])
    path = sweep_plot(cfg, rows, directory / "trng_pulse_sweep.png", args.clock_mhz)
    sys.stdout.write("\npulse sweep (100000 bits each; failing fast tests of "
                     "monobit, block frequency, runs, longest run, DFT, cumulative sums):\n")
    for r in rows:
        sys.stdout.write(f"  pulse {r['pulse_cycles']:3d}: {r['bits_per_clock']:.4f} bits/clock"
                         f" ({r['bits_per_clock'] * args.clock_mhz:5.1f} Mb/s), bias "
                         f"{r['bias']:+.5f}, retries {100 * r['retry_rate']:.1f} %, "
                         f"{r['failing_fast_tests']} failing\n")
    sys.stdout.write(f"wrote {path}\n")
    return all_pass


def _draw_cycles(cfg):
    from imcgen.core import timing

    return timing.trng_draw_cycles(cfg.replace(**{"trng.enabled": True}))
