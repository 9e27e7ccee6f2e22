"""Workloads from the papers, each one command: ``imcgen workload NAME`` (docs/workloads.md).

A workload module (one per name in :data:`WORKLOADS`) defines

- ``SUMMARY``: one line for ``imcgen workload --help``;
- ``add_arguments(parser)``: its own options (the common ones, ``-o``, ``--seed``, ``--rtl``
  and the configuration options where it takes them, are added by the CLI);
- ``check(args)``: refuses bad options with an :class:`imcgen.core.errors.ImcError` before
  any work;
- ``run(args, out_dir, progress)``: runs it on the golden model (the whole data set) and on
  the RTL for ``args.rtl`` vectors (every output and cycle count checked exactly), writes its
  plot into ``out_dir`` and returns a :class:`Report`.
"""

import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

from imcgen.core.errors import ImcError
from imcgen.core.options import int_in, number_in  # the options' types (module docstring)

__all__ = ["WORKLOADS", "Report", "RtlCheck", "get", "check_rtl", "load", "check_engine",
           "int_in", "number_in"]

#: Workload name -> module, in the order of ``imcgen workload --help``.
WORKLOADS = {
    "mlp": "imcgen.apps.workloads.mlp",
    "cnn": "imcgen.apps.workloads.cnn",
    "model": "imcgen.apps.workloads.model",
    "dpe": "imcgen.apps.workloads.dpe",
    "edges": "imcgen.apps.workloads.edges",
    "dct": "imcgen.apps.workloads.dct",
    "refine": "imcgen.apps.workloads.refine",
    "backprop": "imcgen.apps.workloads.backprop",
}


def load(args):
    """The configuration the options name (``--preset``, ``--config``, ``--set``); its
    warnings on stderr."""
    from imcgen.core.config import load_config

    cfg = load_config(args.preset, args.config, args.overrides)
    for line in cfg.warnings():
        sys.stderr.write(f"imcgen: warning: {line}\n")
    return cfg


def check_engine(cfg, engine):
    """Refuse, before any work, what ``--engine`` cannot run on ``cfg``."""
    from imcgen.sim.api import check_engine as check

    check(cfg, engine)


def get(name):
    """The workload module called ``name``."""
    if name not in WORKLOADS:
        raise ImcError("workload", name, "must be one of " + ", ".join(WORKLOADS))
    return importlib.import_module(WORKLOADS[name])


@dataclass
class RtlCheck:
    """The RTL subset of a workload: vectors run, and whether every output and every cycle
    count equalled the golden model's."""

    vectors: int
    macros: int
    values_match: bool
    cycles_match: bool
    seconds: float
    seed: int | None = None

    @property
    def ok(self):
        return self.values_match and self.cycles_match

    def line(self):
        verdict = "RTL == golden (values and cycles)" if self.ok else \
            f"RTL DIFFERS (values {'ok' if self.values_match else 'differ'}, cycles " \
            f"{'ok' if self.cycles_match else 'differ'}; seed {self.seed})"
        return f"RTL subset: {self.vectors} vectors through {self.macros} macro run(s): " \
               f"{verdict}, {self.seconds:.1f} s"


@dataclass
class Report:
    """What a workload prints and writes.

    ``figures``: ``(what, ours, the paper's)`` rows, ours already formatted; ``lines``: any
    further lines (the mapping plan, a table); ``data``: everything as JSON-able values.
    """

    name: str
    title: str
    figures: list = field(default_factory=list)
    lines: list = field(default_factory=list)
    plot: Path | None = None
    rtl: RtlCheck | None = None
    data: dict = field(default_factory=dict)

    def format(self):
        out = [self.title, ""]
        out += self.lines + ([""] if self.lines else [])
        if self.figures:
            wide = max(len(w) for w, _, _ in self.figures)
            ours = max(len(o) for _, o, _ in self.figures)
            out.append(f"{'':<{wide}}  {'here':<{ours}}  paper")
            out += [f"{w:<{wide}}  {o:<{ours}}  {p}" for w, o, p in self.figures]
        if self.rtl is not None:
            out.append(self.rtl.line())
        if self.plot is not None:
            out.append(f"wrote {self.plot}")
        return "\n".join(out)

    @property
    def ok(self):
        return self.rtl is None or self.rtl.ok


def check_rtl(runs, seed=None, engine="cocotb", progress=None):
    """Run ``[(cfg, W, X)]`` or ``[(cfg, W, X, requant)]`` (int arrays each macro takes; the
    requantization its ``q`` port loads) on the RTL; one :class:`RtlCheck` for them all. Each
    run is exact against the golden model or the check says it is not."""
    import time

    from imcgen.sim.api import simulate

    start = time.perf_counter()
    values = cycles = True
    vectors = 0
    used = None
    for n, (cfg, W, X, *requant) in enumerate(runs):
        result = simulate(cfg, W, X, seed=None if seed is None else seed + n, engine=engine,
                          requant=requant[0] if requant else None)
        used = result.seed if used is None else used
        values &= result.values_match
        cycles &= result.cycles_match
        vectors += len(X)
        if progress:
            progress(n + 1, len(runs))
    return RtlCheck(vectors, len(runs), values, cycles, time.perf_counter() - start,
                    seed if seed is not None else used)
