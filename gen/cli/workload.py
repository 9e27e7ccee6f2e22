"""``imcgen workload NAME``: the seeds' applications on the macro (imcgen.apps.workloads)."""

import sys

from imcgen.cli import common
from imcgen.cli.common import MISMATCH, OK


def add_parser(commands, command):
    from imcgen.apps import workloads

    parser = command("workload", "run an application from the papers on the macro: the golden "
                                 "model on the whole data set, the RTL exact on a subset, the "
                                 "figure beside the paper's, and a plot")
    names = parser.add_subparsers(dest="workload", required=True, parser_class=common.Parser,
                                  metavar="NAME")
    for name in workloads.WORKLOADS:
        module = workloads.get(name)
        sub = names.add_parser(name, help=module.SUMMARY.replace("%", "%%"),
                               description=module.SUMMARY,
                               epilog=common.EXIT_CODES["workload"])
        if getattr(module, "CONFIG", False):
            common.config_args(sub)
        sub.add_argument("-o", "--output", metavar="DIR", default=f"workload-{name}",
                         help=f"where the plot and report.json go (default workload-{name})")
        sub.add_argument("--seed", type=common.seed, default=0,
                         help="seeds the workload: its data, training and device model")
        rtl = getattr(module, "RTL_DEFAULT", 8)
        sub.add_argument("--rtl", type=common.int_in(0, 100_000), default=rtl, metavar="N",
                         help=f"vectors checked exactly on the RTL (default {rtl}; 0: golden "
                              "model only)")
        common.engine_arg(sub, "the RTL vectors", "stub crossbar only")
        module.add_arguments(sub)
        sub.set_defaults(run=cmd_workload)


def cmd_workload(args):
    import json

    from imcgen.apps import workloads
    from imcgen.core.checks import check_output_dir, written_whole
    from imcgen.core.progress import Progress

    module = workloads.get(args.workload)
    out = check_output_dir("-o", args.output)
    module.check(args)  # every option refused before any work
    progress = Progress(args.workload)
    try:
        report = module.run(args, out, progress)
    finally:
        progress.close()
    sys.stdout.write(report.format() + "\n")
    out.mkdir(parents=True, exist_ok=True)
    data = {"workload": report.name, "title": report.title,
            "figures": [{"what": w, "here": o, "paper": p} for w, o, p in report.figures],
            "rtl": None if report.rtl is None else vars(report.rtl), **report.data}
    with written_whole(out / "report.json") as tmp:
        tmp.write_text(json.dumps(data, indent=1, default=float) + "\n")
    return OK if report.ok else MISMATCH
