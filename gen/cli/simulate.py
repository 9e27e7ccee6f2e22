"""``imcgen simulate``: the RTL on an engine next to the golden model."""

import sys

from imcgen.cli import common
from imcgen.cli.common import MISMATCH, OK
from imcgen.core.errors import ImcError


def add_parser(commands, command):
    sim = command("simulate", "run the RTL (Verilator) and the golden model")
    common.config_args(sim)
    sim.add_argument("--weights", required=True, metavar="W.npy",
                     help="int array (rows*tiles, outputs)")
    sim.add_argument("--inputs", required=True, metavar="X.npy",
                     help="int array (vectors, rows*tiles); with --transposed (vectors, outputs)")
    sim.add_argument("--transposed", action="store_true",
                     help="backward vectors: x = W y through the same cells (columns driven, "
                          "rows sensed); builds with transposed = true")
    sim.add_argument("-o", "--output", required=True, metavar="OUT.npz")
    sim.add_argument("--waves", metavar="DIR", help="trace: dump.vcd, Verilog and .gtkw in DIR")
    sim.add_argument("--work", metavar="DIR",
                     help="keep the job files, Verilog and simulator log in DIR (by default a "
                          "temporary directory, removed at the end)")
    sim.add_argument("--seed", type=common.seed,
                     help="seed of the stimulus timing (printed when drawn)")
    sim.add_argument("--program", action="store_true",
                     help="program the weights by write-verify (array mode) instead of loading "
                          "them; needs a programmable device (--set device.kind=rram)")
    sim.add_argument("--in-gaps", type=common.probability, default=0.0, metavar="P",
                     help="probability of an idle gap before each input vector")
    sim.add_argument("--out-stalls", type=common.probability, default=0.0, metavar="P",
                     help="probability that the output is not ready in a cycle")
    sim.add_argument("--requant", metavar="Q.npz",
                     help="arrays bias and scale (one per output) loaded through the q port "
                          "before the vectors; needs --set requant.enabled=true")
    common.engine_arg(sim, "the vectors", "stub crossbar only, no --program or --waves")
    common.allow_long_arg(sim)
    sim.set_defaults(run=cmd_simulate)


def cmd_simulate(args):
    from imcgen.core.checks import (
        check_back_inputs,
        check_inputs,
        check_output_dir,
        check_output_file,
        check_weights,
        load_array,
        written_whole,
    )
    from imcgen.core.progress import Progress
    from imcgen.sim.budget import check_affordable

    cfg = common.load(args)
    if args.transposed and not cfg.transposed:
        cfg = cfg.replace(transposed=True)
    if args.program:
        common.programmable(cfg)
    common.check_engine(cfg, args.engine, program=args.program, waves=args.waves)
    out = check_output_file("-o", args.output, suffix=".npz")
    if args.waves is not None:
        check_output_dir("--waves", args.waves)
    if args.work is not None:
        check_output_dir("--work", args.work)
    weights = check_weights(cfg, load_array("--weights", args.weights))
    check = check_back_inputs if args.transposed else check_inputs
    inputs = check(cfg, load_array("--inputs", args.inputs))
    if len(inputs) == 0:  # would check nothing and report a match
        width = cfg.outputs if args.transposed else cfg.input_rows
        raise ImcError("--inputs", str(args.inputs), f"holds no vectors (shape (0, {width}))")
    requant = None if args.requant is None else _requant(cfg, args.requant)
    check_affordable(cfg, inputs, allow_long=args.allow_long,
                     what=f"simulating {len(inputs)} vectors", in_gaps=args.in_gaps,
                     out_stalls=args.out_stalls, backward=args.transposed)

    import numpy as np

    from imcgen.sim.api import simulate

    progress = Progress("simulating: vectors")
    try:
        result = simulate(cfg, weights, inputs, seed=args.seed, in_gaps=args.in_gaps,
                          out_stalls=args.out_stalls, waves_dir=args.waves, work_dir=args.work,
                          progress=progress, program="array" if args.program else None,
                          requant=requant, engine=args.engine,
                          direction="backward" if args.transposed else "forward")
    finally:
        progress.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    extra = {}
    if args.program:  # [row, column, code, reads, pulses, status] per cell, RTL and golden
        extra = dict(program_results=result.program_rtl,
                     program_results_golden=result.program_expected)
    with written_whole(out) as partial:
        np.savez(partial, y=result.y, cycles=result.cycles, y_golden=result.y_golden,
                 cycles_golden=result.cycles_golden, reads=result.reads,
                 clipped=result.clipped, seed=result.seed, **extra)
    n = len(result.y_golden)
    kind = "backward vectors" if args.transposed else "vectors"
    sys.stdout.write(
        f"{n} {kind}: values {'match' if result.values_match else 'DIFFER'}, cycles "
        f"{'match' if result.cycles_match else 'DIFFER'} (golden model); "
        f"{result.cycles.mean() if n else 0:.1f} cycles/vector; "
        f"{int(result.clipped.sum())} vectors with clipped reads; seed {result.seed}\n"
        f"build {result.build_seconds:.1f} s, simulation {result.sim_seconds:.1f} s; wrote {out}\n")
    if args.program:
        from imcgen.golden import run as golden_run
        from imcgen.golden import transpose

        ideal = transpose.run(cfg, weights, inputs).x if args.transposed else \
            golden_run(cfg, weights, inputs).y
        differ = (result.y_golden != ideal)
        err = np.abs(result.y_golden - ideal)
        n_prog = len(result.program_rtl)
        sys.stdout.write(
            f"programmed {n_prog} cells (results {'match' if result.program_match else 'DIFFER'}"
            f"); against ideally loaded weights {int(differ.any(axis=1).sum())} of {n} vectors "
            f"and {int(differ.sum())} of {differ.size} outputs differ (mean |difference| "
            f"{err.mean() if err.size else 0:.3f}, max {err.max() if err.size else 0})\n")
    if result.waves:
        gtkw = result.waves.with_name("imc_macro.gtkw")
        sys.stdout.write(f"waves: gtkwave {result.waves} {gtkw}\n")
    if not result.match:
        sys.stdout.write(result.mismatch_report() + "\n")
        return MISMATCH
    return OK


def _requant(cfg, path):
    """``(bias, scale)`` from an ``.npz`` holding both, checked against the configuration."""
    import numpy as np

    from imcgen.core.checks import check_input_file
    from imcgen.golden.output_stage import requant_params

    path = check_input_file("--requant", path, "an .npz with arrays bias and scale")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in ("bias", "scale") if k in archive}
    except (OSError, ValueError, AttributeError):
        raise ImcError("--requant", str(path), "is not an .npz of arrays (numpy.savez)") from None
    if set(arrays) != {"bias", "scale"}:
        raise ImcError("--requant", str(path), "must hold two arrays, bias and scale "
                                               "(numpy.savez(path, bias=..., scale=...))")
    if not cfg.requant.enabled:
        raise ImcError("--requant", str(path), "needs a configuration with "
                                               "requant.enabled = true")
    return requant_params(cfg, (arrays["bias"], arrays["scale"]))
