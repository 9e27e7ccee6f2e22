"""Soak the macro: random configurations, random MVMs, stalls on every stream, random resets.

Prints its seed, every configuration's counts and a summary (duration, MVMs, mismatches, lost
and duplicated results); exits 0 only when all are zero. Rerun a soak with --seed.
"""

import argparse
import secrets
import sys

from imcgen.apps.soak import soak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="exit status: 0 every MVM matched, 1 a mismatch, "
                                            "a lost or duplicated result or a failed run")
    parser.add_argument("--mvms", type=int, default=100_000, help="MVMs to check (default 1e5)")
    parser.add_argument("--seed", type=int, help="seed of everything (drawn and printed if not)")
    parser.add_argument("--jobs", type=int, default=2, help="configurations run in parallel")
    args = parser.parse_args()
    seed = secrets.randbelow(2**32) if args.seed is None else args.seed
    report = soak(seed, args.mvms, jobs=args.jobs, out=sys.stdout)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
