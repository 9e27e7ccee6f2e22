"""``imcgen formal``: prove the blocks' stream contracts and own contracts (SymbiYosys)."""

import sys

from imcgen.cli import common
from imcgen.cli.common import MISMATCH, OK


def add_parser(commands, command):
    formal = command("formal", "prove every block's stream contracts and its own contracts "
                               "with SymbiYosys (bounded model checking and k-induction)")
    formal.add_argument("--block", action="append", metavar="NAME",
                        help="a block (repeatable; default: every one, imcgen.sim.formal."
                             "BLOCKS)")
    formal.add_argument("--depth", type=common.int_in(2, 200), default=10,
                        help="cycles of bounded model checking, and the induction's depth "
                             "(default 10)")
    formal.add_argument("-o", "--output", default="out/formal", metavar="DIR",
                        help="one directory per block: the RTLIL, the .sby file, the tools' "
                             "logs and, on a failure, trace.vcd with trace.gtkw")
    formal.add_argument("--planted", action="store_true",
                        help="prove each block with its planted bug instead "
                             "(imcgen.sim.formal.PLANTED): every proof must fail")
    formal.set_defaults(run=cmd_formal)


def cmd_formal(args):
    from imcgen.core.checks import check_output_dir
    from imcgen.core.errors import ImcError
    from imcgen.sim import formal

    blocks = args.block or list(formal.PLANTED if args.planted else formal.BLOCKS)
    for name in blocks:
        if name not in formal.BLOCKS:
            raise ImcError("--block", name, "must be one of " + ", ".join(formal.BLOCKS))
        if args.planted and name not in formal.PLANTED:
            raise ImcError("--block", name, "has no planted bug; those with one: " +
                           ", ".join(formal.PLANTED))
    check_output_dir("-o", args.output)
    formal.check_tools()
    rows = []
    sys.stdout.write(f"{'block':<16} {'mode':<9} {'depth':>5} {'result':<9} {'time':>7}  "
                     f"properties / failed\n")
    runs = [(name, which) for name in blocks for which in
            (range(len(formal.planted_bugs(name))) if args.planted else [None])]
    for name, which in runs:
        factory = formal.planted(name, which) if args.planted else None
        modes = ("prove",) if args.planted else ("streams", "contracts", "cover")
        depth = max(args.depth, formal.PLANTED_DEPTH.get(name, 0)) if args.planted \
            else args.depth
        where = f"{args.output}/{name}" + (f"-{which}" if which else "")
        for r in formal.run_block(name, depth, where, factory, modes):
            rows.append(r)
            what = r.failed or f"{r.properties} {'covers' if r.mode == 'cover' else 'asserts'}"
            sys.stdout.write(f"{r.block:<16} {r.mode:<9} {r.depth:>5} {r.status:<9} "
                             f"{r.seconds:6.1f}s  {what}\n")
            if r.trace:
                sys.stdout.write(f"{'':<16} counterexample: gtkwave {r.trace} "
                                 f"{r.trace[:-4]}.gtkw\n")
    bad = [r for r in rows if r.status in ("FAIL", "UNREACHED", "ERROR")]
    if args.planted:
        missed = [r for r in rows if r.status != "FAIL"]
        sys.stdout.write(f"planted bugs: {len(rows) - len(missed)} of {len(rows)} caught\n")
        return MISMATCH if missed else OK
    sys.stdout.write(f"{len(rows) - len(bad)} of {len(rows)} passed ("
                     f"{sum(r.status == 'proved' for r in rows)} proved by induction, "
                     f"{sum(r.status == 'bounded' for r in rows)} bounded to their depth)\n")
    return MISMATCH if bad else OK
