"""``imcgen verilog``: the macro's Verilog, its Verilator waiver file, a GTKWave save file and a
manifest (resolved configuration, derived widths, ports, cycle model) in one directory."""

import json
from importlib.metadata import version
from pathlib import Path

from .simulation import TOP_NAME, elaborate
from .waves import write_gtkw

__all__ = ["generate"]


def generate(cfg, directory, *, dump_name="dump.vcd", span_ns=None):
    """Write ``imc_macro.v``, ``imc_macro.vlt``, ``imc_macro.gtkw`` and ``manifest.json``.

    Returns the manifest as a dict (its ``files`` entry lists the paths written).
    """
    directory = Path(directory)
    design = elaborate(cfg, directory)
    gtkw = directory / f"{TOP_NAME}.gtkw"
    traces = write_gtkw(cfg, design.verilog, gtkw, dump_name, top=TOP_NAME, span_ns=span_ns)
    per_read = cfg.conversion_cycles
    manifest = {
        "top": TOP_NAME,
        "generator": {pkg: version(pkg) for pkg in ("imcgen", "amaranth", "verilator", "cocotb")},
        "config": cfg.to_dict(),
        "derived": cfg.derived(),
        "ports": [dict(name=p.name, width=p.width, direction=p.direction) for p in design.ports],
        "streams": {
            "i": f"{cfg.input_rows} x {cfg.input_bits}-bit "
                 f"{'signed' if cfg.input_signed else 'unsigned'} inputs, element 0 in the LSBs",
            "w": f"row index (low bits), then {cfg.outputs} x {cfg.weight_bits}-bit signed weights",
            "o": f"{cfg.outputs} x {cfg.out_width}-bit signed outputs (LSBs), "
                 f"then a {cfg.cycle_bits}-bit cycle count",
        },
        "timing": {
            "cycles_per_read": per_read,
            "cycles_per_vector": "6 + adder_levels + max(1, max over tiles of reads * "
                                 f"{per_read})",
            "dense_reads_per_tile": cfg.input_bits * cfg.groups_per_plane,
        },
        "digest": design.digest,
        "gtkw_traces": traces,
        "files": [str(p) for p in (design.verilog, design.control, gtkw)],
    }
    path = directory / "manifest.json"
    manifest["files"].append(str(path))
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
