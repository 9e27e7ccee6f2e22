"""``imcgen program``: write-verify programming (golden model, or the RTL too)."""

import sys

from imcgen.cli import common
from imcgen.cli.common import MISMATCH, OK
from imcgen.core.errors import ImcError


def add_parser(commands, command):
    prog = command("program", "program cells by write-verify (golden model, or the RTL too)")
    common.config_args(prog)
    prog.add_argument("--weights", metavar="W.npy",
                      help="int array (rows*tiles, outputs): program every cell (array mode)")
    prog.add_argument("--requests", metavar="R.npy",
                      help="int array (N, 3): global row, physical column, target verify code")
    prog.add_argument("-o", "--output", required=True, metavar="OUT.npz")
    prog.add_argument("--rtl", action="store_true",
                      help="also program the RTL on Verilator and check it against the golden "
                           "model")
    prog.add_argument("--passes", type=common.int_in(1, 10**6, "a positive integer (at most 10^6)"),
                      default=1,
                      help="array passes over the weight matrix (a second pass re-verifies)")
    prog.add_argument("--stuck-test", action="store_true",
                      help="first drive every cell to the top and the bottom level, so that "
                           "every stuck cell shows")
    prog.add_argument("--plots", metavar="DIR", help="relative-error and pulse histograms (PNG)")
    prog.add_argument("--seed", type=common.seed, help="seed of the stimulus timing (--rtl)")
    common.allow_long_arg(prog)
    prog.set_defaults(run=cmd_program)


def _load_requests(cfg, path):
    """Single-cell requests from an (N, 3) int array: global row, physical column, target."""
    from imcgen.core.checks import load_array

    array = load_array("--requests", path)
    if array.ndim != 2 or array.shape[1] != 3:
        raise ImcError("requests.shape", array.shape,
                       "must be (N, 3): global row, physical column, target verify code")
    if len(array) == 0:  # would "program" nothing and report every cell in tolerance
        raise ImcError("--requests", str(path), "holds no requests (shape (0, 3))")
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

    from imcgen.core.checks import (
        check_output_dir,
        check_output_file,
        check_weights,
        load_array,
        written_whole,
    )
    from imcgen.core.progress import Progress
    from imcgen.golden.programming import program_golden, summary

    cfg = common.load(args)
    common.programmable(cfg)
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
        from imcgen.golden.write_verify import Requests

        single = Requests.of(requests[:, 0] // cfg.rows, requests[:, 0] % cfg.rows,
                             requests[:, 1], requests[:, 2])
    cells = (0 if single is None else len(single)) + \
        passes * cfg.input_rows * cfg.physical_columns + \
        (2 * cfg.tiles * cfg.rows * cfg.physical_columns if args.stuck_test else 0)
    from imcgen.sim.budget import check_programming

    check_programming(cfg, cells, args.rtl, allow_long=args.allow_long,
                      field="--passes" if passes else "--requests",
                      value=args.passes if passes else args.requests)
    where = "the RTL and the golden model" if args.rtl else "the golden model"
    sys.stderr.write(f"programming {cells} cells ({cfg.device.kind}, tolerance "
                     f"+/-{cfg.write_verify.tolerance} codes) on {where}\n")
    if args.rtl:
        from imcgen.golden.programming import stuck_test_requests
        from imcgen.sim.api import simulate

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
    from imcgen.golden.programming import readback

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
    with written_whole(out) as partial:
        np.savez(partial, **arrays)
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
        from imcgen.apps.plots import program_plots

        for path in program_plots(cfg, report, figures, args.plots):
            sys.stdout.write(f"wrote {path}\n")
    sys.stdout.write(f"wrote {out}\n")
    return OK if match else MISMATCH
