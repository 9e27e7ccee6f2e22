"""``imcgen demo``: the digits classifier, float vs golden vs RTL."""


from imcgen.cli import common
from imcgen.cli.common import MISMATCH, OK


def add_parser(commands, command):
    demo = command("demo", "digits classifier: float vs golden vs RTL")
    demo.add_argument("--out", default="out/demo", metavar="DIR", help="where files go")
    demo.add_argument("--seed", type=common.seed, default=0,
                      help="train/test split and stimulus seed")
    demo.add_argument("--program", action="store_true",
                      help="also program the weights by write-verify (rram device) and report "
                           "the accuracy with programmed against ideally loaded weights")
    common.engine_arg(demo, "the test images (both schedules)",
                "programming (--program) and the waves stay on cocotb")
    demo.set_defaults(run=cmd_demo)


def cmd_demo(args):
    from imcgen.apps.demo import run_demo
    from imcgen.core.checks import check_output_dir

    check_output_dir("--out", args.out)
    report = run_demo(out_dir=args.out, seed=args.seed, program=args.program,
                      engine=args.engine)
    return OK if report.rtl_matches_golden else MISMATCH
