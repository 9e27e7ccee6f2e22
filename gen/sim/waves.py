"""GTKWave save files grouping the signals that matter, from the generated Verilog.

The save file is written next to the Verilog (before any simulation) and again next to a dump.
Signal names and widths come from the Verilog declarations, so the file always matches the
design it was generated with; the VCD scope of module ``imc_macro_<instance>`` is
``imc_macro.<instance>``. Every FSM's state register gets a GTKWave translate filter file
(``<fsm>_states.txt`` beside the save file), so its states read as names (IDLE, PROGRAM...).
"""

import math
import re
from pathlib import Path

from vcd.gtkw import GTKWSave

__all__ = ["declarations", "write_gtkw"]

_MODULE = re.compile(r"^module (\S+)\s*\(", re.M)
_DECL = re.compile(r"^\s*(?:input|output|wire|reg)\s+(?:\[(\d+):0\]\s+)?([A-Za-z_][\w]*)\s*[;=]",
                   re.M)


def declarations(verilog_text):
    """``{module: {signal: width}}`` of every named signal in the Verilog."""
    modules = {}
    starts = [(m.start(), m.group(1)) for m in _MODULE.finditer(verilog_text)]
    for n, (start, name) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(verilog_text)
        body = verilog_text[start:end]
        modules[name] = {sig: int(msb) + 1 if msb else 1 for msb, sig in _DECL.findall(body)}
    return modules


def _groups(cfg):
    """(title, closed, [(instance or "", signal, format)]) in display order."""
    lanes, outputs = range(cfg.adcs), range(cfg.outputs)
    groups = [("Host streams", False, [
        ("", "mode_state", "hex"),
        ("", "i__valid", "hex"), ("", "i__ready", "hex"), ("", "i__payload", "hex"),
        ("", "w__valid", "hex"), ("", "w__ready", "hex"), ("", "busy", "hex"),
        ("", "o__valid", "hex"), ("", "o__ready", "hex"), ("", "result_cycles", "dec"),
        *[("", f"result_y_{j}", "signed") for j in outputs],
        ("", "status", "bin"),
    ])]
    if cfg.programmable:
        wv = "write_verify"
        groups.append(("Write-verify", False, [
            ("", "p__valid", "hex"), ("", "p__ready", "hex"), ("", "p__payload", "hex"),
            (wv, "wv_state", "hex"), (wv, "row", "dec"), (wv, "column", "dec"),
            (wv, "target", "dec"), (wv, "code", "dec"), (wv, "pulses", "dec"),
            (wv, "amp", "dec"), (wv, "direction", "hex"), (wv, "prog__pulse", "hex"),
            (wv, "still", "dec"),
            ("", "r__valid", "hex"), ("", "r__ready", "hex"), ("", "r__payload", "hex"),
        ]))
    if cfg.trng.enabled:
        groups.append(("TRNG", False, [
            ("trng", "trng_state", "hex"), ("trng", "entropy__pulse", "hex"),
            ("trng", "entropy__reset", "hex"), ("trng", "entropy__switched", "bin"),
            *[("trng", f"count{s}", "dec") for s in range(cfg.trng.sources)],
            ("trng", "fill", "dec"), ("", "t__valid", "hex"), ("", "t__ready", "hex"),
            ("", "t__payload", "hex"), ("", "trng_ctl", "bin"),
        ]))
    for t in range(cfg.tiles):
        closed = t > 0
        driver, sched, sar = f"tile{t}_driver", f"tile{t}_scheduler", f"tile{t}_sar"
        crossbar, shift_add = f"tile{t}_crossbar", f"tile{t}_shift_add"
        groups += [
            (f"Tile {t}: bit planes", closed, [
                (driver, "o__valid", "hex"), (driver, "o__payload_index", "dec"),
                (driver, "o__payload_neg", "hex"), (driver, "o__payload_bits", "bin"),
            ]),
            (f"Tile {t}: reads (active rows)", closed, [
                (sched, "o__payload_rows", "bin"), (sched, "o__payload_count", "dec"),
                (sar, "sar_state", "hex"), (sar, "xbar__sample", "hex"),
                (sar, "xbar__row_en", "bin"), (sar, "xbar__col_sel", "dec"),
            ]),
            (f"Tile {t}: SAR DAC codes and comparators", closed, [
                *[(sar, f"xbar__dac_{a}", "dec") for a in lanes],
                (sar, "xbar__cmp", "bin"),
                *[(crossbar, f"column{a}", "dec") for a in lanes],
            ]),
            (f"Tile {t}: ADC codes", closed, [
                (sar, "o__valid", "hex"), (sar, "o__payload_group", "dec"),
                *[(sar, f"o__payload_codes_{a}", "dec") for a in lanes],
            ]),
            (f"Tile {t}: read values and partial sums", closed, [
                *[(shift_add, f"read{j}", "signed") for j in outputs],
                (shift_add, "o__valid", "hex"),
                *[(shift_add, f"o__payload_{j}", "signed") for j in outputs],
            ]),
        ]
    groups.append(("Adder network and output stage", False, [
        ("adder", "o__valid", "hex"), *[("adder", f"o__payload_{j}", "signed") for j in outputs],
        ("output_stage", "o__valid", "hex"),
        *[("output_stage", f"o__payload_{j}", "signed") for j in outputs],
    ]))
    return groups


def write_state_filters(directory):
    """Translate filter files (``<fsm>_states.txt``: hex value, name) for every FSM of the
    design elaborated last; returns ``{state register name: path}``."""
    from imcgen.hdl.common import FSM_STATES

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    filters = {}
    for name, encoding in FSM_STATES.items():
        path = directory / f"{name}_states.txt"
        path.write_text("".join(f"{value:x} {state}\n" for state, value in encoding.items()))
        filters[f"{name}_state"] = path
    return filters


def write_gtkw(cfg, verilog_path, gtkw_path, dump_path, top="imc_macro", span_ns=None):
    """Write a ``.gtkw`` for the macro in ``verilog_path``; return the number of traces.

    ``span_ns`` sets the initial zoom to show that much time (default: two vectors of the
    slowest kind, so one read's SAR steps are visible).
    """
    decls = declarations(Path(verilog_path).read_text())
    filters = write_state_filters(Path(gtkw_path).parent)
    count = 0
    with open(gtkw_path, "w") as handle:
        save = GTKWSave(handle)
        save.comment(f"imcgen: {top}, grouped signals of the MVM datapath")
        save.dumpfile(str(dump_path), abspath=False)
        if span_ns is None:
            span_ns = 2 * cfg.max_cycles * 10
        # GTKWave shows 2^-zoom time units (ps here) per pixel; ~1200 pixels of wave area.
        save.zoom_markers(zoom=-math.log2(max(span_ns * 1000 / 1200, 1) * 250))
        save.size(1600, 1000)
        save.treeopen(f"{top}.")
        save.signals_width(320)
        for title, closed, signals in _groups(cfg):
            present = []
            for instance, name, fmt in signals:
                module = f"{top}_{instance}" if instance else top
                width = decls.get(module, {}).get(name)
                if width is None:
                    continue  # not in this configuration (e.g. the stub of an external build)
                scope = f"{top}.{instance}" if instance else top
                present.append((f"{scope}.{name}" + (f"[{width - 1}:0]" if width > 1 else ""),
                                fmt, filters.get(name)))
            if not present:
                continue
            with save.group(title, closed=closed):
                for trace, fmt, filter_file in present:
                    save.trace(trace, datafmt=fmt, translate_filter_file=(
                        str(filter_file.resolve()) if filter_file is not None else None))
                    count += 1
    return count
