"""``imcgen cost``: energy, area, latency and throughput from the golden model's exact counts."""

import json
import sys

from imcgen.cli import common
from imcgen.cli.common import OK
from imcgen.core.errors import ImcError


def add_parser(commands, command):
    cost = command("cost", "energy, area, latency and throughput of a configuration on a "
                           "workload, from the golden model's exact event counts")
    common.config_args(cost)
    cost.add_argument("--inputs", metavar="X.npy",
                      help="int array (V, inputs): the vectors to cost (default: the digits "
                           "classifier's test images where the macro has their shape, else "
                           "--vectors random ones)")
    cost.add_argument("--weights", metavar="W.npy",
                      help="int array (inputs, outputs) for --program (default: the "
                           "workload's)")
    cost.add_argument("--vectors", type=common.int_in(1, 10**6), default=500,
                      help="random vectors when the workload is random (default 500)")
    cost.add_argument("--program", action="store_true",
                      help="also the energy of write-verify programming the weights "
                           "(programmable devices)")
    cost.add_argument("--json", metavar="OUT.json", help="every figure as JSON")
    cost.add_argument("--seed", type=common.seed, default=0, help="workload seed")
    cost.set_defaults(run=cmd_cost)


def cmd_cost(args):
    from imcgen.apps import accuracy
    from imcgen.apps.cost import cost, format_report
    from imcgen.core.checks import (
        check_inputs,
        check_output_file,
        check_weights,
        load_array,
        written_whole,
    )

    cfg = common.load(args)
    if args.program:
        common.programmable(cfg)
    out = check_output_file("--json", args.json, suffix=".json") if args.json is not None \
        else None
    X = None if args.inputs is None else check_inputs(cfg, load_array("--inputs", args.inputs))
    W = None if args.weights is None else check_weights(cfg, load_array("--weights",
                                                                          args.weights))
    if X is not None and not len(X):
        raise ImcError("--inputs", args.inputs, "holds no vectors")
    work = accuracy.workload(cfg, args.seed, args.vectors) if X is None or W is None else None
    X = work.X if X is None else X
    W = work.W if W is None else W
    name = work.name if args.inputs is None else f"{len(X)} vectors from {args.inputs}"
    report = cost(cfg, X, W, program=args.program)
    if args.inputs is None and work.labels is not None:
        report.accuracy = {"golden_accuracy": accuracy.evaluate(cfg, work).accuracy}
    sys.stdout.write(format_report(report, name) + "\n")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        data = {"workload": name, "vectors": report.vectors, "events": report.events,
                **report.as_row(), "energy_pj_per_block": report.energy,
                "area_mm2_per_block": report.area, "programming": report.programming,
                "config": cfg.to_dict()}
        with written_whole(out) as tmp:
            tmp.write_text(json.dumps(data, indent=1, default=float) + "\n")
        sys.stdout.write(f"wrote {out}\n")
    return OK
