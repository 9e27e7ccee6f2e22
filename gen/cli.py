"""``imcgen`` command line.

Bad input (a configuration, a file, a path or an option) is one line naming the field, the value
and what is allowed, exit code 2, and it is found before any long work starts: configurations,
input files and output paths are all checked first.
"""

import argparse
import sys

from .board_cli import positive_int
from .config import PRESETS, allowed_keys, load_config, parse_set
from .errors import ImcError

OK = 0
MISMATCH = 1
USAGE_ERROR = 2

EXIT_CODES = {
    "config": "exit status: 0 done, 2 bad configuration or option",
    "verilog": "exit status: 0 files written, 2 bad configuration, option or output path",
    "simulate": "exit status: 0 RTL equals the golden model (values and cycles), 1 it differs or "
                "the build/simulation failed, 2 bad configuration, input file, option or path",
    "demo": "exit status: 0 RTL equals the golden model, 1 it differs or a build/simulation "
            "failed, 2 bad option or output path",
    "trng": "exit status: 0 bits written (and, with --rtl, RTL equals the golden model; with "
            "--report, every applicable test passed), 1 the RTL differs, a test failed or a "
            "health alarm stopped the output, 2 bad configuration, option or path",
    "accuracy": "exit status: 0 report written, 2 bad configuration, device, time, sweep, "
                "option or path",
    "program": "exit status: 0 programmed (and, with --rtl, RTL equals the golden model), 1 "
               "the RTL differs or the build/simulation failed, 2 bad configuration, input "
               "file, option or path",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage + message by default)
        sys.stderr.write(f"imcgen: error: {message} (see {self.prog} --help)\n")
        sys.exit(USAGE_ERROR)


def _config_args(parser):
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", help=f"built-in configuration: {', '.join(PRESETS)}")
    source.add_argument("--config", metavar="FILE", help="TOML file (may name a base preset)")
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append",
                        default=[], help="override one key (repeatable); table keys are dotted "
                                         "(table.key=value)")


def _allow_long_arg(parser):
    parser.add_argument("--allow-long", action="store_true",
                        help="run even when the estimate says hours or more memory than the "
                             "machine has")


def _config(args):
    cfg = load_config(args.preset, args.config, args.overrides)
    for line in cfg.warnings():
        sys.stderr.write(f"imcgen: warning: {line}\n")
    return cfg


def _seed(text):
    try:
        value = int(text, 0)
    except ValueError:
        value = -1
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"{text!r} is not a seed (an integer in 0..2^63-1)")
    return value


def _probability(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a probability in [0, 1)")
    return value


# -- subcommands -------------------------------------------------------------------------------

def cmd_config_show(args):
    cfg = _config(args)
    title = f"imcgen configuration ({args.config or 'preset ' + (args.preset or 'default')})"
    sys.stdout.write(cfg.to_toml(title))
    return OK


def cmd_config_presets(args):
    for name in PRESETS:
        cfg = load_config(name)
        sys.stdout.write(
            f"{name:8} {cfg.tiles} x {cfg.rows} rows, {cfg.outputs} outputs, "
            f"{cfg.input_bits}-bit {'signed' if cfg.input_signed else 'unsigned'} inputs, "
            f"{cfg.weight_bits}-bit {cfg.weight_mapping} weights over {cfg.cell_bits}-bit cells, "
            f"{cfg.adcs} x {cfg.adc_bits}-bit ADCs, {cfg.rows_per_read} rows/read, "
            f"{cfg.schedule}\n")
    return OK


def cmd_config_keys(args):
    sys.stdout.write("\n".join(allowed_keys()) + "\n")
    return OK


def cmd_verilog(args):
    from .checks import check_output_dir
    from .cost import check_affordable
    from .generate import generate

    cfg = _config(args)
    check_output_dir("-o", args.output)
    check_affordable(cfg, rtl=False, allow_long=args.allow_long, what="generating this macro")
    manifest = generate(cfg, args.output)
    for path in manifest["files"]:
        sys.stdout.write(f"wrote {path}\n")
    return OK


def cmd_simulate(args):
    from .checks import (
        check_inputs,
        check_output_dir,
        check_output_file,
        check_weights,
        load_array,
    )
    from .cost import check_affordable
    from .progress import Progress

    cfg = _config(args)
    if args.program:
        _programmable(cfg)
    _check_engine(cfg, args.engine, program=args.program, waves=args.waves)
    out = check_output_file("-o", args.output, suffix=".npz")
    if args.waves is not None:
        check_output_dir("--waves", args.waves)
    if args.work is not None:
        check_output_dir("--work", args.work)
    weights = check_weights(cfg, load_array("--weights", args.weights))
    inputs = check_inputs(cfg, load_array("--inputs", args.inputs))
    check_affordable(cfg, inputs, allow_long=args.allow_long,
                     what=f"simulating {len(inputs)} vectors")

    import numpy as np

    from .simulation import simulate

    progress = Progress("simulating: vectors")
    try:
        result = simulate(cfg, weights, inputs, seed=args.seed, in_gaps=args.in_gaps,
                          out_stalls=args.out_stalls, waves_dir=args.waves, work_dir=args.work,
                          progress=progress, program="array" if args.program else None,
                          engine=args.engine)
    finally:
        progress.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    extra = {}
    if args.program:  # [row, column, code, reads, pulses, status] per cell, RTL and golden
        extra = dict(program_results=result.program_rtl,
                     program_results_golden=result.program_expected)
    np.savez(out, y=result.y, cycles=result.cycles, y_golden=result.y_golden,
             cycles_golden=result.cycles_golden, reads=result.reads, clipped=result.clipped,
             seed=result.seed, **extra)
    n = len(result.y_golden)
    sys.stdout.write(
        f"{n} vectors: values {'match' if result.values_match else 'DIFFER'}, cycles "
        f"{'match' if result.cycles_match else 'DIFFER'} (golden model); "
        f"{result.cycles.mean() if n else 0:.1f} cycles/vector; "
        f"{int(result.clipped.sum())} vectors with clipped reads; seed {result.seed}\n"
        f"build {result.build_seconds:.1f} s, simulation {result.sim_seconds:.1f} s; wrote {out}\n")
    if args.program:
        from .golden import run as golden_run

        ideal = golden_run(cfg, weights, inputs)
        differ = (result.y_golden != ideal.y)
        err = np.abs(result.y_golden - ideal.y)
        n_prog = len(result.program_rtl)
        sys.stdout.write(
            f"programmed {n_prog} cells (results {'match' if result.program_match else 'DIFFER'}"
            f"); against ideally loaded weights {int(differ.any(axis=1).sum())} of {n} vectors "
            f"and {int(differ.sum())} of {differ.size} outputs differ (mean |difference| "
            f"{err.mean() if err.size else 0:.3f}, max {err.max() if err.size else 0})\n")
    if result.waves:
        gtkw = result.waves.with_name("imc_macro.gtkw")
        sys.stdout.write(f"waves: gtkwave {result.waves} {gtkw}\n")
    if not result.match:
        sys.stdout.write(result.mismatch_report() + "\n")
        return MISMATCH
    return OK


def _check_engine(cfg, engine, program=False, waves=None):
    """Refuse what ``--engine fast`` cannot run (imcgen.fast.check_supported), before work."""
    if engine != "cocotb":
        from .fast import check_supported

        check_supported(cfg, engine=engine, program="array" if program else None,
                        waves_dir=waves, cli=True)


def _engine_arg(parser, what, limits):
    parser.add_argument("--engine", choices=("cocotb", "fast"), default="cocotb",
                        help=f"how {what} run: cocotb (default; Python drives every stream) "
                             "or fast (a generated C++ driver runs the whole batch, with the "
                             "same gaps, stalls and exact checks against the golden model; "
                             f"{limits})")


def _programmable(cfg):
    if not cfg.programmable:
        raise ImcError("device.kind", cfg.device.kind,
                       "programming needs a programmable device: --set device.kind=rram or pcm")


def _load_requests(cfg, path):
    """Single-cell requests from an (N, 3) int array: global row, physical column, target."""
    from .checks import load_array

    array = load_array("--requests", path)
    if array.ndim != 2 or array.shape[1] != 3:
        raise ImcError("requests.shape", array.shape,
                       "must be (N, 3): global row, physical column, target verify code")
    for n, (name, top) in enumerate((("row", cfg.input_rows - 1),
                                     ("column", cfg.physical_columns - 1),
                                     ("target", cfg.adc_max))):
        bad = (array[:, n] < 0) | (array[:, n] > top)
        if bad.any():
            i = int(bad.argmax())
            raise ImcError(f"requests[{i}, {n}]", int(array[i, n]),
                           f"{name} must be an integer in 0..{top}")
    return array.astype("int64")


def cmd_program(args):
    import numpy as np

    from .checks import check_output_dir, check_output_file, check_weights, load_array
    from .program import program_golden, summary
    from .progress import Progress

    cfg = _config(args)
    _programmable(cfg)
    out = check_output_file("-o", args.output, suffix=".npz")
    if args.plots is not None:
        check_output_dir("--plots", args.plots)
    if args.weights is None and args.requests is None:
        raise ImcError("--weights", None, "give --weights W.npy (array mode) and/or "
                                          "--requests R.npy (single cells)")
    W = None if args.weights is None else check_weights(cfg, load_array("--weights",
                                                                        args.weights))
    requests = None if args.requests is None else _load_requests(cfg, args.requests)
    if args.passes < 1:
        raise ImcError("--passes", args.passes, "must be a positive integer")
    passes = args.passes if W is not None else 0
    single = None
    if requests is not None:
        from .golden.write_verify import Requests

        single = Requests.of(requests[:, 0] // cfg.rows, requests[:, 0] % cfg.rows,
                             requests[:, 1], requests[:, 2])
    cells = (0 if single is None else len(single)) + \
        passes * cfg.input_rows * cfg.physical_columns + \
        (2 * cfg.tiles * cfg.rows * cfg.physical_columns if args.stuck_test else 0)
    if args.rtl:
        from . import timing

        cycles = cells * int(timing.program_cycles(cfg, 8))
        if cycles > 2e8 and not args.allow_long:
            raise ImcError("estimate", f"{cycles / 1.5e5 / 3600:.1f} h",
                           f"programming {cells} cells on the RTL takes that long; allowed "
                           f"without --allow-long: 1 h (program fewer cells, or use the golden "
                           f"model: no --rtl)")
    where = "the RTL and the golden model" if args.rtl else "the golden model"
    sys.stderr.write(f"programming {cells} cells ({cfg.device.kind}, tolerance "
                     f"+/-{cfg.write_verify.tolerance} codes) on {where}\n")
    if args.rtl:
        from .program import stuck_test_requests
        from .simulation import simulate

        plan = []
        for part in (stuck_test_requests(cfg) if args.stuck_test else []) + \
                ([] if single is None else [single]):
            plan += np.stack([part.tile * cfg.rows + part.row, part.column, part.target],
                             axis=1).tolist()
        progress = Progress("programming: cells")
        weights = W if W is not None else np.zeros((cfg.input_rows, cfg.outputs), np.int64)
        try:
            result = simulate(cfg, weights, np.zeros((0, cfg.input_rows), dtype=np.int64),
                              seed=args.seed, program={"requests": plan, "passes": passes},
                              progress=progress)
        finally:
            progress.close()
        report, _ = result.program_golden
        rtl_rows, match = result.program_rtl, result.match
    else:
        report = program_golden(cfg, W, requests=single, passes=passes,
                                stuck_test=args.stuck_test)
        rtl_rows, match = None, True
    from .program import readback

    figures = summary(cfg, report)
    req = report.requests
    weights_back = readback(cfg, req, report.code) if W is not None else None
    out.parent.mkdir(parents=True, exist_ok=True)
    arrays = dict(states=report.states, wear=report.wear, stuck=report.stuck,
                  tile=req.tile, row=req.row, column=req.column, target=req.target,
                  code=report.code, reads=report.reads, pulses=report.pulses,
                  status=report.status)
    if weights_back is not None:
        arrays["weights_read_back"] = weights_back
    if rtl_rows is not None:
        arrays["rtl_results"] = rtl_rows
    np.savez(out, **arrays)
    hist = figures["pulse_histogram"]
    sys.stdout.write(
        f"{figures['cells']} cells ({figures['requests']} requests): {figures['ok']} in tolerance "
        f"({100 * figures['healthy_in_tolerance']:.3f} % of healthy cells), mean relative "
        f"error {100 * figures['mean_relative_error']:.2f} % (max "
        f"{100 * figures['max_relative_error']:.1f} %), pulses per cell mean "
        f"{figures['mean_pulses']:.2f} max {figures['max_pulses']}\n"
        f"stuck cells: {figures['stuck_found']} found of {figures['stuck_cells']} in the device, "
        f"{figures['healthy_reported_stuck']} healthy reported stuck; {figures['gave_up']} "
        f"gave up\n"
        f"pulse histogram (pulses: requests): "
        f"{', '.join(f'{n}: {c}' for n, c in enumerate(hist) if c)}\n")
    if weights_back is not None:
        wrong = int((weights_back != W).sum())
        sys.stdout.write(f"read-back weights: {wrong} of {W.size} differ from the targets\n")
    if args.rtl:
        compared = "results and states" if result.states is not None else "results"
        sys.stdout.write(f"RTL vs golden: {compared} {'equal' if match else 'DIFFERENT'}; "
                         f"seed {result.seed}\n")
        if not match:
            sys.stdout.write(result.mismatch_report() + "\n")
    if args.plots is not None:
        from .plots import program_plots

        for path in program_plots(cfg, report, figures, args.plots):
            sys.stdout.write(f"wrote {path}\n")
    sys.stdout.write(f"wrote {out}\n")
    return OK if match else MISMATCH


def cmd_trng(args):
    import numpy as np

    from .checks import check_output_dir, check_output_file
    from .trng_report import generate, throughput

    cfg = _config(args).replace(**{"trng.enabled": True})
    out = check_output_file("-o", args.output)
    if args.report is not None:
        check_output_dir("--report", args.report)
    if args.clock_mhz <= 0:
        raise ImcError("--clock-mhz", args.clock_mhz, "must be a positive number")
    if args.rtl and args.bits > 2_000_000 and not args.allow_long:
        raise ImcError("--bits", args.bits, "the RTL makes about 10^5 bits a minute here: at "
                                            "most 2000000 without --allow-long")
    t = cfg.trng
    bits, run = generate(cfg, args.bits)
    per_clock = throughput(cfg, run)
    data = np.packbits(bits.astype(np.uint8), bitorder="little")
    match = True
    if args.rtl:
        from .progress import Progress
        from .simulation import simulate_trng

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
    out.write_bytes(data.tobytes())
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

    from .trng_report import battery, generate, reference_bits, sweep, sweep_plot

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
    from . import timing

    return timing.trng_draw_cycles(cfg.replace(**{"trng.enabled": True}))


def cmd_accuracy(args):
    from . import accuracy
    from .checks import check_output_dir
    from .progress import Progress

    if args.anchor:
        if args.preset or args.config:
            raise ImcError("--anchor", args.anchor, "is a configuration of its own: give "
                                                    "--anchor or --preset/--config, not both")
        cfg = accuracy.anchor_config(args.anchor).replace(**parse_set(args.overrides))
    else:
        cfg = _config(args)
    times = accuracy.parse_times(args.time)
    cfg = cfg.replace(**{"analog.device": args.device, "crossbar": "external"})
    sweep = accuracy.parse_sweep(cfg, args.sweep) if args.sweep else None
    if args.plots is not None:
        check_output_dir("--plots", args.plots)
    if args.vectors <= 0:
        raise ImcError("--vectors", args.vectors, "must be a positive integer")
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
        from .plots import accuracy_plots

        for path in accuracy_plots(report, args.device, args.plots):
            say(f"wrote {path}\n")
    return OK


def cmd_demo(args):
    from .checks import check_output_dir
    from .demo import run_demo

    check_output_dir("--out", args.out)
    report = run_demo(out_dir=args.out, seed=args.seed, program=args.program,
                      engine=args.engine)
    return OK if report.rtl_matches_golden else MISMATCH


# -- parser ------------------------------------------------------------------------------------

def build_parser():
    parser = _Parser(prog="imcgen", description="Generate and verify IMC macro periphery RTL.",
                     epilog="exit status: 0 done (and RTL == golden), 1 RTL differs from the "
                            "golden model or a build failed, 2 bad input (one line naming the "
                            "field, the value and what is allowed)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name, help_, epilog_key=None):
        return commands.add_parser(name, help=help_, description=help_,
                                   epilog=EXIT_CODES[epilog_key or name])

    config = command("config", "show configurations")
    config_commands = config.add_subparsers(dest="config_command", required=True,
                                            parser_class=_Parser)
    show = config_commands.add_parser("show", help="print the resolved configuration as TOML",
                                      epilog=EXIT_CODES["config"])
    _config_args(show)
    show.set_defaults(run=cmd_config_show)
    presets = config_commands.add_parser("presets", help="list the built-in presets",
                                         epilog=EXIT_CODES["config"])
    presets.set_defaults(run=cmd_config_presets)
    keys = config_commands.add_parser("keys", help="list every key --set takes",
                                      epilog=EXIT_CODES["config"])
    keys.set_defaults(run=cmd_config_keys)

    verilog = command("verilog", "write Verilog, .vlt, .gtkw and manifest.json")
    _config_args(verilog)
    verilog.add_argument("-o", "--output", required=True, metavar="DIR")
    _allow_long_arg(verilog)
    verilog.set_defaults(run=cmd_verilog)

    sim = command("simulate", "run the RTL (Verilator) and the golden model")
    _config_args(sim)
    sim.add_argument("--weights", required=True, metavar="W.npy",
                     help="int array (rows*tiles, outputs)")
    sim.add_argument("--inputs", required=True, metavar="X.npy",
                     help="int array (vectors, rows*tiles)")
    sim.add_argument("-o", "--output", required=True, metavar="OUT.npz")
    sim.add_argument("--waves", metavar="DIR", help="trace: dump.vcd, Verilog and .gtkw in DIR")
    sim.add_argument("--work", metavar="DIR",
                     help="keep the job files, Verilog and simulator log in DIR (by default a "
                          "temporary directory, removed at the end)")
    sim.add_argument("--seed", type=_seed, help="seed of the stimulus timing (printed when drawn)")
    sim.add_argument("--program", action="store_true",
                     help="program the weights by write-verify (array mode) instead of loading "
                          "them; needs a programmable device (--set device.kind=rram)")
    sim.add_argument("--in-gaps", type=_probability, default=0.0, metavar="P",
                     help="probability of an idle gap before each input vector")
    sim.add_argument("--out-stalls", type=_probability, default=0.0, metavar="P",
                     help="probability that the output is not ready in a cycle")
    _engine_arg(sim, "the vectors", "stub crossbar only, no --program or --waves")
    _allow_long_arg(sim)
    sim.set_defaults(run=cmd_simulate)

    trng = command("trng", "random bits from the TRNG (golden model, or the RTL too)")
    _config_args(trng)
    trng.add_argument("--bits", type=positive_int, required=True, metavar="N",
                      help="output bits to generate")
    trng.add_argument("-o", "--output", required=True, metavar="FILE",
                      help="raw bytes, least significant bit first")
    trng.add_argument("--rtl", action="store_true",
                      help="also generate on the RTL (Verilator) and check it bit for bit")
    trng.add_argument("--report", metavar="DIR",
                      help="NIST SP 800-22 battery (nistrng) on 10^6 bits, debiasing off and "
                           "on, and the pulse-length sweep plot in DIR")
    trng.add_argument("--clock-mhz", type=float, default=100.0, metavar="F",
                      help="clock for the Mb/s figure (default 100)")
    trng.add_argument("--seed", type=_seed, help="seed of the stimulus timing (--rtl)")
    _allow_long_arg(trng)
    trng.set_defaults(run=cmd_trng)

    acc = command("accuracy", "device physics against the exact product (golden model)")
    _config_args(acc)
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
    acc.add_argument("--seed", type=_seed, default=0, help="workload seed")
    acc.set_defaults(run=cmd_accuracy)

    prog = command("program", "program cells by write-verify (golden model, or the RTL too)")
    _config_args(prog)
    prog.add_argument("--weights", metavar="W.npy",
                      help="int array (rows*tiles, outputs): program every cell (array mode)")
    prog.add_argument("--requests", metavar="R.npy",
                      help="int array (N, 3): global row, physical column, target verify code")
    prog.add_argument("-o", "--output", required=True, metavar="OUT.npz")
    prog.add_argument("--rtl", action="store_true",
                      help="also program the RTL on Verilator and check it against the golden "
                           "model")
    prog.add_argument("--passes", type=int, default=1,
                      help="array passes over the weight matrix (a second pass re-verifies)")
    prog.add_argument("--stuck-test", action="store_true",
                      help="first drive every cell to the top and the bottom level, so that "
                           "every stuck cell shows")
    prog.add_argument("--plots", metavar="DIR", help="relative-error and pulse histograms (PNG)")
    prog.add_argument("--seed", type=_seed, help="seed of the stimulus timing (--rtl)")
    _allow_long_arg(prog)
    prog.set_defaults(run=cmd_program)

    demo = command("demo", "digits classifier: float vs golden vs RTL")
    demo.add_argument("--out", default="out/demo", metavar="DIR", help="where files go")
    demo.add_argument("--seed", type=_seed, default=0, help="train/test split and stimulus seed")
    demo.add_argument("--program", action="store_true",
                      help="also program the weights by write-verify (rram device) and report "
                           "the accuracy with programmed against ideally loaded weights")
    _engine_arg(demo, "the test images (both schedules)",
                "programming (--program) and the waves stay on cocotb")
    demo.set_defaults(run=cmd_demo)

    from .board_cli import add_commands  # imcgen fpga, imcgen board

    add_commands(commands, _config_args, _seed)
    return parser


def main(argv=None):
    from .errors import SimulationError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ImcError as err:
        sys.stderr.write(f"imcgen: error: {err}\n")
        return USAGE_ERROR
    except SimulationError as err:  # a build or simulation failed: not the user's input
        sys.stderr.write(f"imcgen: simulation failed: {err.summary}\n")
        return MISMATCH
    except OSError as err:  # the machine, not the input: a full disk, a vanished directory
        sys.stderr.write(f"imcgen: error: {err.strerror or err}"
                         f"{': ' + str(err.filename) if err.filename else ''}\n")
        return MISMATCH
    except KeyboardInterrupt:
        sys.stderr.write("imcgen: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
