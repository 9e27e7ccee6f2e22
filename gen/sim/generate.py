"""``imcgen verilog``: the macro's Verilog, its Verilator waiver file, a GTKWave save file and a
manifest (resolved configuration, derived widths, ports, cycle model) in one directory."""

import json
from importlib.metadata import version
from pathlib import Path

from imcgen.core import timing
from imcgen.hdl.common import FSM_STATES
from imcgen.sim.verilog import TOP_NAME, elaborate
from imcgen.sim.waves import write_gtkw

__all__ = ["generate"]


def generate(cfg, directory, *, dump_name="dump.vcd", span_ns=None):
    """Write ``imc_macro.v``, ``imc_macro.vlt``, ``imc_macro.gtkw`` and ``manifest.json``.

    Returns the manifest as a dict (its ``files`` entry lists the paths written).
    """
    directory = Path(directory)
    design = elaborate(cfg, directory)
    gtkw = directory / f"{TOP_NAME}.gtkw"
    traces = write_gtkw(cfg, design.verilog, gtkw, dump_name, top=TOP_NAME, span_ns=span_ns)
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
            **({"q": f"{cfg.outputs} x {cfg.bias_bits}-bit signed biases (LSBs), then "
                     f"{cfg.outputs} x {cfg.requant.scale_bits}-bit unsigned scales; taken "
                     f"between vectors, kept through resets"} if cfg.requant.enabled else {}),
        },
        "timing": {
            "cycles_per_read": timing.read_cycles(cfg),
            "fixed_cycles": timing.fixed_cycles(cfg),
            "block_latency": {**timing.LATENCY, "adder_network": timing.adder_levels(cfg)},
            "cycles_per_vector": f"{timing.fixed_cycles(cfg)} + max over tiles of "
                                 f"(reads * {timing.read_cycles(cfg)}, or 1 with no read)",
            "adc_overlap": cfg.overlap,
            "results_every": (f"max over tiles of (reads * {timing.read_cycles(cfg)}, or 1) "
                              "back to back" if cfg.overlap else "cycles_per_vector"),
            "max_cycles_per_vector": timing.max_vector_cycles(cfg),
        },
        "digest": design.digest,
        "gtkw_traces": traces,
        "files": [str(p) for p in (design.verilog, design.control, gtkw,
                                   *(directory / f"{name}_states.txt" for name in FSM_STATES))],
        "fsm_states": {name: dict(states) for name, states in FSM_STATES.items()},
    }
    path = directory / "manifest.json"
    manifest["files"].append(str(path))
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
