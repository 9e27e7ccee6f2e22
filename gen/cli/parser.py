"""The ``imcgen`` parser: one subparser per subcommand, each added by its own module, and
:func:`main`, which maps every outcome to the one exit-code table (:mod:`imcgen.cli.common`).
"""

import sys

from imcgen.cli import (
    accuracy,
    board,
    cache,
    config,
    cost,
    demo,
    formal,
    fpga,
    program,
    simulate,
    sweep,
    trng,
    workload,
)
from imcgen.cli.common import EXIT_CODES, MISMATCH, USAGE_ERROR, Parser
from imcgen.core.errors import ImcError, SimulationError

__all__ = ["build_parser", "main"]

#: Subcommand modules in the order of ``imcgen --help``.
COMMANDS = (config, simulate, trng, accuracy, program, cost, sweep, formal, workload, demo,
            fpga, board, cache)


def build_parser():
    parser = Parser(prog="imcgen", description="Generate and verify IMC macro periphery RTL.",
                     epilog="exit status: 0 done (and RTL == golden), 1 RTL differs from the "
                            "golden model or a build failed, 2 bad input (one line naming the "
                            "field, the value and what is allowed)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    def command(name, help_, epilog_key=None):
        return commands.add_parser(name, help=help_, description=help_,
                                   epilog=EXIT_CODES[epilog_key or name])

    for module in COMMANDS:
        module.add_parser(commands, command)
    return parser


def main(argv=None):
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
