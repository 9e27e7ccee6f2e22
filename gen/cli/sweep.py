"""``imcgen sweep SPEC.toml``: a grid or an NSGA-II search over configurations, on Dask."""

import re
import sys

from imcgen.cli import common
from imcgen.cli.common import OK
from imcgen.core.errors import ImcError

_ADDRESS = re.compile(r"^(tcp|tls|inproc|ucx)://[^\s/]+(:\d{1,5})?$")


def add_parser(commands, command):
    sweep = command("sweep", "evaluate many configurations (accuracy, energy, area, "
                             "latency, FPGA resources) on a Dask cluster; a grid or NSGA-II")
    sweep.add_argument("spec", metavar="SPEC.toml", help="the sweep (docs/sweep.md)")
    sweep.add_argument("-o", "--output", default="out/sweep", metavar="DIR",
                       help="results.parquet, points.jsonl (resumable), pareto.png "
                            "(default out/sweep)")
    sweep.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="a running Dask scheduler (default: a local cluster, one worker "
                            "per core, on 127.0.0.1)")
    sweep.add_argument("--workers", type=common.int_in(1, 1024), default=None,
                       help="local cluster: worker processes (default: one per core)")
    sweep.set_defaults(run=cmd_sweep)


def cmd_sweep(args):
    from imcgen.apps.sweep import load_spec, run_sweep
    from imcgen.core.checks import check_output_dir

    spec = load_spec(args.spec)
    check_output_dir("-o", args.output)
    if args.scheduler is not None:
        if not _ADDRESS.match(args.scheduler):
            raise ImcError("--scheduler", args.scheduler,
                           "must be a Dask scheduler address such as tcp://127.0.0.1:8786")
        if args.workers is not None:
            raise ImcError("--workers", args.workers, "sizes the local cluster; a running "
                                                      "one (--scheduler) has its own workers")
    try:
        import distributed  # noqa: F401
        import optuna  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError as err:
        raise ImcError("sweep", err.name, "is not installed: pip install 'imcgen[sweep]'") \
            from None
    try:
        run_sweep(spec, args.output, scheduler=args.scheduler, workers=args.workers)
    except OSError as err:  # the scheduler cannot be reached
        if args.scheduler:
            raise ImcError("--scheduler", args.scheduler, f"cannot be reached ({err})") \
                from None
        raise
    sys.stdout.write(f"wrote {args.output}/results.parquet\n")
    return OK
