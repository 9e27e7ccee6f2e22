"""``imcgen cache info|prune|clear``: the bounded build cache (:mod:`imcgen.sim.cache`)."""

import sys

from imcgen.cli.common import OK

__all__ = ["add_parser"]


def add_parser(commands, command):
    from imcgen.cli.common import Parser

    parser = command("cache", "show, prune or clear the build cache")
    actions = parser.add_subparsers(dest="cache_command", required=True, parser_class=Parser)
    info = actions.add_parser("info", help="where the cache is, its size against its limit")
    info.set_defaults(run=cmd_info)
    prune = actions.add_parser("prune", help="remove least recently used builds down to the "
                                             "limit (or --max-size)")
    prune.add_argument("--max-size", metavar="SIZE",
                       help="bound to prune to, e.g. 2G or 500M (default: $IMCGEN_CACHE_SIZE "
                            "or 5G)")
    prune.set_defaults(run=cmd_prune)
    clear = actions.add_parser("clear", help="remove every build no other process is using")
    clear.set_defaults(run=cmd_clear)


def _say(text):
    sys.stdout.write(text + "\n")


def cmd_info(args):
    from imcgen.sim import cache

    found = cache.entries()
    total = sum(e.size for e in found)
    _say(f"cache: {cache.cache_dir()}")
    _say(f"{len(found)} builds, {cache.format_size(total)} of {cache.format_size(cache.limit())} "
         f"(IMCGEN_CACHE_SIZE; the compiler cache in ccache/ keeps its own bound)")
    return OK


def cmd_prune(args):
    from imcgen.sim import cache

    bound = cache.limit() if args.max_size is None else \
        cache.parse_size(args.max_size, "--max-size")
    removed, left = cache.prune(bound)
    _say(f"removed {len(removed)} builds ({cache.format_size(sum(e.size for e in removed))}); "
         f"{cache.format_size(left)} left of {cache.format_size(bound)}")
    return OK


def cmd_clear(args):
    from imcgen.sim import cache

    removed, busy = cache.clear()
    _say(f"removed {len(removed)} builds ({cache.format_size(sum(e.size for e in removed))})"
         + (f"; {len(busy)} in use by another process kept" if busy else ""))
    return OK
