"""``imcgen`` command line. Bad input: one line naming field, value and what is allowed; exit 2."""

import argparse
import sys
from pathlib import Path

import numpy as np

from .config import PRESETS, load_config
from .errors import ImcError
from .runner import SimulationError

USAGE_ERROR = 2
MISMATCH = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage + message by default)
        sys.stderr.write(f"imcgen: error: {message} (see {self.prog} --help)\n")
        sys.exit(USAGE_ERROR)


def _config_args(parser):
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", help=f"built-in configuration: {', '.join(PRESETS)}")
    source.add_argument("--config", metavar="FILE", help="TOML file (may name a base preset)")
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append",
                        default=[], help="override one key (repeatable)")


def _config(args):
    return load_config(args.preset, args.config, args.overrides)


def _load_array(flag, path):
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ImcError(flag, path, "file not found") from None
    except (ValueError, OSError, EOFError) as err:
        raise ImcError(flag, path, f"not a readable .npy array ({err})") from None
    if not isinstance(array, np.ndarray):
        raise ImcError(flag, path, "must be a .npy file holding one array, not an .npz archive")
    return array


def cmd_config_show(args):
    cfg = _config(args)
    title = f"imcgen configuration ({args.config or 'preset ' + (args.preset or 'default')})"
    sys.stdout.write(cfg.to_toml(title))
    return 0


def cmd_config_presets(args):
    for name in PRESETS:
        cfg = load_config(name)
        sys.stdout.write(
            f"{name:8} {cfg.tiles} x {cfg.rows} rows, {cfg.outputs} outputs, "
            f"{cfg.input_bits}-bit {'signed' if cfg.input_signed else 'unsigned'} inputs, "
            f"{cfg.weight_bits}-bit {cfg.weight_mapping} weights over {cfg.cell_bits}-bit cells, "
            f"{cfg.adcs} x {cfg.adc_bits}-bit ADCs, {cfg.rows_per_read} rows/read, "
            f"{cfg.schedule}\n")
    return 0


def cmd_verilog(args):
    from .generate import generate

    cfg = _config(args)
    manifest = generate(cfg, args.output)
    for path in manifest["files"]:
        sys.stdout.write(f"wrote {path}\n")
    return 0


def cmd_simulate(args):
    from .simulation import simulate

    cfg = _config(args)
    weights = _load_array("--weights", args.weights)
    inputs = _load_array("--inputs", args.inputs)
    out = Path(args.output)
    if out.suffix != ".npz":
        raise ImcError("-o", str(out), "must name an .npz file")

    def progress(done, total):
        sys.stderr.write(f"\rsimulating: {done}/{total} vectors ")
        sys.stderr.flush()

    result = simulate(cfg, weights, inputs, seed=args.seed, in_gaps=args.in_gaps,
                      out_stalls=args.out_stalls, waves_dir=args.waves,
                      progress=progress if sys.stderr.isatty() else None)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, y=result.y, cycles=result.cycles, y_golden=result.y_golden,
             cycles_golden=result.cycles_golden, reads=result.reads, clipped=result.clipped,
             seed=result.seed)
    n = len(result.y_golden)
    sys.stderr.write("\r" if sys.stderr.isatty() else "")
    sys.stdout.write(
        f"{n} vectors: values {'match' if result.values_match else 'DIFFER'}, cycles "
        f"{'match' if result.cycles_match else 'DIFFER'} (golden model); "
        f"{result.cycles.mean() if n else 0:.1f} cycles/vector; "
        f"{int(result.clipped.sum())} vectors with clipped reads; seed {result.seed}\n"
        f"build {result.build_seconds:.1f} s, simulation {result.sim_seconds:.1f} s; wrote {out}\n")
    if result.waves:
        gtkw = result.waves.with_name("imc_macro.gtkw")
        sys.stdout.write(f"waves: gtkwave {result.waves} {gtkw}\n")
    if not result.match:
        sys.stdout.write(result.mismatch_report() + "\n")
        return MISMATCH
    return 0


def cmd_demo(args):
    from .demo import run_demo

    report = run_demo(out_dir=args.out, seed=args.seed)
    return 0 if report.rtl_matches_golden else MISMATCH


def _probability(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a probability in [0, 1)")
    return value


def build_parser():
    parser = _Parser(prog="imcgen", description="Generate and verify IMC macro periphery RTL.",
                     epilog="exit status: 0 done (and RTL == golden), 1 RTL differs from the "
                            "golden model or a build failed, 2 bad input")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    config = commands.add_parser("config", help="show configurations")
    config_commands = config.add_subparsers(dest="config_command", required=True,
                                            parser_class=_Parser)
    show = config_commands.add_parser("show", help="print the resolved configuration as TOML")
    _config_args(show)
    show.set_defaults(run=cmd_config_show)
    presets = config_commands.add_parser("presets", help="list the built-in presets")
    presets.set_defaults(run=cmd_config_presets)

    verilog = commands.add_parser("verilog", help="write Verilog, .vlt, .gtkw and manifest.json")
    _config_args(verilog)
    verilog.add_argument("-o", "--output", required=True, metavar="DIR")
    verilog.set_defaults(run=cmd_verilog)

    sim = commands.add_parser("simulate", help="run the RTL (Verilator) and the golden model")
    _config_args(sim)
    sim.add_argument("--weights", required=True, metavar="W.npy",
                     help="int array (rows*tiles, outputs)")
    sim.add_argument("--inputs", required=True, metavar="X.npy",
                     help="int array (vectors, rows*tiles)")
    sim.add_argument("-o", "--output", required=True, metavar="OUT.npz")
    sim.add_argument("--waves", metavar="DIR", help="trace: dump.vcd, Verilog and .gtkw in DIR")
    sim.add_argument("--seed", type=int, help="seed of the stimulus timing (printed when drawn)")
    sim.add_argument("--in-gaps", type=_probability, default=0.0, metavar="P",
                     help="probability of an idle gap before each input vector")
    sim.add_argument("--out-stalls", type=_probability, default=0.0, metavar="P",
                     help="probability that the output is not ready in a cycle")
    sim.set_defaults(run=cmd_simulate)

    demo = commands.add_parser("demo", help="digits classifier: float vs golden vs RTL")
    demo.add_argument("--out", default="out/demo", metavar="DIR", help="where files go")
    demo.add_argument("--seed", type=int, default=0, help="train/test split and stimulus seed")
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ImcError as err:
        sys.stderr.write(f"imcgen: error: {err}\n")
        return USAGE_ERROR
    except SimulationError as err:  # a build or simulation failed: not the user's input
        sys.stderr.write(f"imcgen: simulation failed: {err}\n")
        return MISMATCH
    except KeyboardInterrupt:
        sys.stderr.write("imcgen: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
