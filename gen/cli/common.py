"""What every subcommand shares: the exit-code table, argument types, the configuration
options, and the refusal of what an engine cannot run, spelled as command-line options.

Bad input (a configuration, a file, a path or an option) is one line naming the field, the value
and what is allowed, exit code 2, and it is found before any long work starts.
"""

import argparse
import sys

from imcgen.core.config import PRESETS, load_config
from imcgen.core.options import (  # noqa: F401 (the commands' argument types)
    int_in,
    number_in,
    positive_float,
    positive_int,
    probability,
    seed,
)
from imcgen.core.requirements import require

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
    "fpga": "exit status: 0 bitstream or synthesis report written and timing met, 1 a tool "
            "failed or the design misses the clock (the report says by how much), 2 bad "
            "configuration, option, board or output path, or a configuration that cannot fit "
            "the board",
    "board": "exit status: 0 every result equals the golden model, 1 a result differs or the "
             "link failed, 2 bad configuration, option or port, or a board built for another "
             "configuration",
    "cache": "exit status: 0 done, 2 bad option",
    "formal": "exit status: 0 every property proved or held to its depth and every cover "
              "reached (with --planted: every planted bug caught), 1 a property failed (its "
              "counterexample written), 2 bad option or path, or the tools missing",
    "workload": "exit status: 0 report and plot written (and the RTL subset equals the golden "
                "model), 1 the RTL differs or a build/simulation failed, 2 bad configuration, "
                "model file, option or path",
    "cost": "exit status: 0 report written, 2 bad configuration, input file, option or path",
    "sweep": "exit status: 0 every point evaluated or recorded with its error, 1 the cluster "
             "failed, 2 bad specification, option, scheduler address or path",
}


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage + message by default)
        sys.stderr.write(f"imcgen: error: {message} (see {self.prog} --help)\n")
        sys.exit(USAGE_ERROR)


def config_args(parser):
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", help=f"built-in configuration: {', '.join(PRESETS)}")
    source.add_argument("--config", metavar="FILE", help="TOML file (may name a base preset)")
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append",
                        default=[], help="override one key (repeatable); table keys are dotted "
                                         "(table.key=value)")


def allow_long_arg(parser):
    parser.add_argument("--allow-long", action="store_true",
                        help="run even when the estimate says hours or more memory than the "
                             "machine has")


def load(args):
    cfg = load_config(args.preset, args.config, args.overrides)
    for line in cfg.warnings():
        sys.stderr.write(f"imcgen: warning: {line}\n")
    return cfg


def check_engine(cfg, engine, program=False, waves=None):
    """:func:`imcgen.sim.api.check_engine`, imported when a command needs it."""
    from imcgen.sim.api import check_engine as check

    check(cfg, engine, program, waves)


def engine_arg(parser, what, limits):
    parser.add_argument("--engine", choices=("cocotb", "fast"), default="cocotb",
                        help=f"how {what} run: cocotb (default; Python drives every stream) "
                             "or fast (a generated C++ driver runs the whole batch, with the "
                             "same gaps, stalls and exact checks against the golden model; "
                             f"{limits})")


def programmable(cfg):
    require("programming", cfg)



