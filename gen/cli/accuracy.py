"""``imcgen accuracy``: device physics against the exact product (golden model)."""

import sys

from imcgen.cli import common
from imcgen.cli.common import OK
from imcgen.core.config import parse_set
from imcgen.core.errors import ImcError


def add_parser(commands, command):
    acc = command("accuracy", "device physics against the exact product (golden model)")
    common.config_args(acc)
    acc.add_argument("--device", required=True, choices=("pcm", "rram", "ideal"),
                     help="analog device model")
    acc.add_argument("--time", default="20s,1h,1d,1y", metavar="T,...",
                     help="drift times since programming (s, m, h, d, w, y; default "
                          "20s,1h,1d,1y)")
    acc.add_argument("--sweep", metavar="KEY=A..B",
                     help="also sweep one configuration key (e.g. adc_bits=3..8)")
    acc.add_argument("--plots", metavar="DIR", help="PNG plots in DIR")
    acc.add_argument("--anchor", choices=("pcm256",),
                     help="a seed anchor's configuration instead of --preset/--config "
                          "(pcm256: the 256x256 Gaussian matrix of \"Brain-inspired computing "
                          "using phase-change memory devices\", 2018)")
    acc.add_argument("--vectors", type=int, default=500,
                     help="random vectors for workloads other than the digits classifier")
    acc.add_argument("--seed", type=common.seed, default=0, help="workload seed")
    acc.set_defaults(run=cmd_accuracy)


def cmd_accuracy(args):
    from imcgen.apps import accuracy
    from imcgen.core.checks import check_output_dir
    from imcgen.core.progress import Progress

    if args.anchor:
        if args.preset or args.config:
            raise ImcError("--anchor", args.anchor, "is a configuration of its own: give "
                                                    "--anchor or --preset/--config, not both")
        cfg = accuracy.anchor_config(args.anchor).replace(**parse_set(args.overrides))
    else:
        cfg = common.load(args)
    times = accuracy.parse_times(args.time)
    cfg = cfg.replace(**{"analog.device": args.device, "crossbar": "external"})
    sweep = accuracy.parse_sweep(cfg, args.sweep) if args.sweep else None
    if args.plots is not None:
        check_output_dir("--plots", args.plots)
    if args.vectors <= 0:
        raise ImcError("--vectors", args.vectors, "must be a positive integer")
    if args.vectors > 10**6:
        raise ImcError("--vectors", args.vectors, "must be at most 1000000 (the golden model "
                                                  "holds every vector's reads in memory)")
    progress = Progress("accuracy: evaluations")
    try:
        report = accuracy.run(cfg, args.device, times, sweep, seed=args.seed,
                              vectors=args.vectors, progress=progress)
    finally:
        progress.close()
    if sweep:
        report["sweep_key"] = sweep[0]

    def line(e):
        acc = "" if e.accuracy is None else f", accuracy {100 * e.accuracy:6.2f} %"
        return f"RMS error {e.rms:9.2f}, precision {e.bits:5.2f} bits{acc}"

    say = sys.stdout.write
    a = cfg.analog
    say(f"{args.device} device (g {a.g_min_us}..{a.g_max_us} uS, programming x{a.prog_noise}, "
        f"read noise x{a.read_noise}, drift x{a.drift}, IR drop {a.ir_drop}, comparator "
        f"offset {a.comparator_offset} / noise {a.comparator_noise} LSB, ADC range "
        f"{a.adc_range}); workload: {report['workload']}\n")
    say(f"  ADC (t = {accuracy.format_time(times[0])}): LSB {report['adc_lsb_ua']:.4g} uA, full "
        f"scale {report['adc_full_scale_ua']:.4g} uA at V_read {a.v_read} V\n")
    say(f"  digital reads (no analog):    {line(report['ideal'])}\n")
    first = report["times"][0]["plain"]
    if first.prog_error is not None:
        kind = "write-verify" if cfg.programmable else "open loop"
        say(f"  programming error ({kind}): mean |g - g_target| / g_target = "
            f"{100 * first.prog_error:.2f} % over healthy cells with a non-zero target "
            f"(read-verify in \"Resistive memory-based in-memory computing\", 2019: "
            f"< 2.95 %)\n")
    for row in report["times"]:
        t = accuracy.format_time(row["time"])
        say(f"  t = {t:>6}  no compensation:    {line(row['plain'])}\n")
        say(f"  t = {t:>6}  drift compensation: {line(row['compensated'])}\n")
    for value, e in report["sweep"]:
        say(f"  {sweep[0]} = {value!s:>6}: {line(e)} (rows_per_read "
            f"{e.config.rows_per_read})\n")
    if args.plots is not None:
        from imcgen.apps.plots import accuracy_plots

        for path in accuracy_plots(report, args.device, args.plots):
            say(f"wrote {path}\n")
    return OK
