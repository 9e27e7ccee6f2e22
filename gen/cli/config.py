"""``imcgen config`` (show, presets, keys) and ``imcgen verilog``."""

import sys

from imcgen.cli import common
from imcgen.cli.common import EXIT_CODES, OK
from imcgen.core.config import PRESETS, allowed_keys, load_config


def add_parser(commands, command):
    config = command("config", "show configurations")
    config_commands = config.add_subparsers(dest="config_command", required=True,
                                            parser_class=common.Parser)
    show = config_commands.add_parser("show", help="print the resolved configuration as TOML",
                                      epilog=EXIT_CODES["config"])
    common.config_args(show)
    show.set_defaults(run=cmd_config_show)
    presets = config_commands.add_parser("presets", help="list the built-in presets",
                                         epilog=EXIT_CODES["config"])
    presets.set_defaults(run=cmd_config_presets)
    keys = config_commands.add_parser("keys", help="list every key --set takes",
                                      epilog=EXIT_CODES["config"])
    keys.set_defaults(run=cmd_config_keys)
    verilog = command("verilog", "write Verilog, .vlt, .gtkw and manifest.json")
    common.config_args(verilog)
    verilog.add_argument("-o", "--output", required=True, metavar="DIR")
    common.allow_long_arg(verilog)
    verilog.set_defaults(run=cmd_verilog)


def cmd_config_show(args):
    cfg = common.load(args)
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
    from imcgen.core.checks import check_output_dir
    from imcgen.sim.budget import check_affordable
    from imcgen.sim.generate import generate

    cfg = common.load(args)
    check_output_dir("-o", args.output)
    check_affordable(cfg, rtl=False, allow_long=args.allow_long, what="generating this macro")
    manifest = generate(cfg, args.output)
    for path in manifest["files"]:
        sys.stdout.write(f"wrote {path}\n")
    return OK
