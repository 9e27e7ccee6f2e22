"""Amaranth component -> clean Verilog, a scoped Verilator control file and port list.

Yosys names internal nets with escaped identifiers (``\\$12``, ``\\i__payload[0] ``,
``\\imc_macro.tile0_sar ``). GTKWave rejects ``$`` in VCD names, and ``[0]`` in a name reads as
a bit select, so every escaped identifier becomes a plain one: Yosys internals start with ``_``
(Verilator then does not trace them: ~40x fewer traced signals, faster tracing), named nets
keep their names with ``[``, ``.`` and ``$`` turned into ``_``.
"""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

__all__ = ["Port", "Design", "TOP_NAME", "convert", "elaborate", "write_design"]

TOP_NAME = "imc_macro"

_ESCAPED = re.compile(r"\\(\S+)(\s)")
_IDENT = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")


@dataclass(frozen=True)
class Port:
    name: str
    width: int
    direction: str  # "in" or "out"


@dataclass(frozen=True)
class Design:
    """Generated files of one design; ``digest`` keys the Verilator build cache."""

    name: str
    verilog: Path
    control: Path
    ports: tuple
    digest: str

    def port(self, name):
        for port in self.ports:
            if port.name == name:
                return port
        raise KeyError(name)


def sanitize(text):
    """Replace every escaped identifier by a legal, unique plain one."""
    used = set(_IDENT.findall(text))
    mapping = {}

    def plain(match):
        name = match.group(1)
        if name not in mapping:
            base = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "n"
            if name.startswith("$") or base[0].isdigit():
                base = "_" + base
            candidate, n = base, 0
            while candidate in used:
                n += 1
                candidate = f"{base}_{n}"
            used.add(candidate)
            mapping[name] = candidate
        return mapping[name] + match.group(2)

    return _ESCAPED.sub(plain, text)


def ports_of(component):
    ports = [Port("clk", 1, "in"), Port("rst", 1, "in")]
    for path, member, value in component.signature.flatten(component):
        direction = "in" if member.flow == wiring.In else "out"
        width = len(value.as_value()) if hasattr(value, "as_value") else len(value)
        if width:
            ports.append(Port("__".join(map(str, path)), width, direction))
    return tuple(ports)


def _domain_ports(text, name):
    """The clock and reset inputs of domains other than ``sync`` (``macro_clk``...): the
    top module's own, which the signature does not list."""
    top = re.search(rf"^module {re.escape(name)}\((.*?)^endmodule", text, re.M | re.S)
    found = re.findall(r"^\s*input (?:wire )?(\w+_(?:clk|rst));", top.group(1) if top else "",
                       re.M)
    return tuple(Port(port, 1, "in") for port in sorted(set(found)))


def convert(component, name):
    """Verilog text of ``component`` as module ``name``."""
    text = verilog.convert(component, name=name, emit_src=False, strip_internal_attrs=True)
    return sanitize(text)


def control_file(name, ports):
    """Verilator control file: lint waivers scoped to this file, only the ports public."""
    lines = [
        "`verilator_config",
        # Yosys writes comparisons and cases this way; these are not source-style issues.
        f'lint_off -rule WIDTH -file "*/{name}.v"',
        f'lint_off -rule CASEINCOMPLETE -file "*/{name}.v"',
        f'lint_off -rule UNOPTFLAT -file "*/{name}.v"',
    ]
    lines += [f'public_flat_rw -module "{name}" -var "{port.name}"' for port in ports]
    return "\n".join(lines) + "\n"


def write_design(component, name, directory):
    """Write ``<name>.v`` and ``<name>.vlt`` into ``directory``; return the :class:`Design`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    text = convert(component, name)
    ports = ports_of(component) + _domain_ports(text, name)
    control = control_file(name, ports)
    v_path, vlt_path = directory / f"{name}.v", directory / f"{name}.vlt"
    v_path.write_text(text)
    vlt_path.write_text(control)
    digest = hashlib.sha256((text + control).encode()).hexdigest()[:20]
    return Design(name=name, verilog=v_path, control=vlt_path, ports=ports, digest=digest)


def elaborate(cfg, directory):
    """Write the macro's Verilog and control file into ``directory``; return the Design."""
    from imcgen.hdl.common import FSM_STATES
    from imcgen.hdl.macro_top import MacroTop

    FSM_STATES.clear()  # filled again by this elaboration (GTKWave state names)
    return write_design(MacroTop(config=cfg), TOP_NAME, directory)
