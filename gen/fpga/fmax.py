"""Per-block Fmax: each block of the periphery placed and routed alone on an ECP5, so a block
that limits the clock (or a change that slows one) shows by name.

A block's ports are registered behind a thin wrapper (:class:`RegisteredPorts`): in the macro
every port of a block meets a neighbour's register within a few levels of logic, and nextpnr's
out-of-context flow times register-to-register paths only, so without the wrapper a path that
starts at an input port (the SAR's ``col_sel`` into the crossbar's column sums) would not be
timed at all. Paths that run through several blocks combinationally show in the whole macro
(``macro``) and the board top (``board``) instead.

    from imcgen.fpga.fmax import block_fmax
    block_fmax(load_config("small"), "shift_add")   # {"fmax_mhz": ..., "critical_path": ...}

``scripts/bench --suite fmax`` runs every block of the chosen presets (minutes each for the
large ones); the default test suite places one small block so the flow cannot rot.
"""

import tempfile
import time

from amaranth import Module, Signal
from amaranth.lib import wiring

__all__ = ["BLOCKS", "RegisteredPorts", "block", "block_fmax"]


class RegisteredPorts(wiring.Component):
    """``inner`` with a register on every port bit: same signature, one cycle later each way."""

    def __init__(self, inner):
        self._inner = inner
        super().__init__(inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.block = inner = self._inner
        ours = {path: value for path, _, value in self.signature.flatten(self)}
        for path, member, inside in inner.signature.flatten(inner):
            outer = ours[path]
            reg = Signal.like(inside, name="reg_" + "_".join(map(str, path)))
            if member.flow == wiring.In:
                m.d.sync += reg.eq(outer)
                m.d.comb += inside.eq(reg)
            else:
                m.d.sync += reg.eq(inside)
                m.d.comb += outer.eq(reg)
        return m


def _board(cfg):
    from imcgen.hdl.board_top import BoardCore

    # A 100 MHz clock and 3 Mbaud: the divisor only sizes counters.
    return BoardCore(config=cfg, divisor=33, timeout_cycles=5_000_000, clk_hz=100_000_000)


def _blocks():
    from imcgen.hdl import (
        adder_network,
        crossbar_stub,
        input_driver,
        macro_top,
        output_stage,
        row_scheduler,
        sar_adc,
        shift_add,
        weight_mapper,
    )

    return {
        "input_driver": lambda c: input_driver.InputDriver(config=c),
        "row_scheduler": lambda c: row_scheduler.RowScheduler(config=c),
        "sar_adc": lambda c: sar_adc.SarAdcController(config=c),
        "crossbar_stub": lambda c: crossbar_stub.CrossbarStub(config=c),
        "shift_add": lambda c: shift_add.ShiftAdd(config=c),
        "adder_network": lambda c: adder_network.AdderNetwork(config=c),
        "output_stage": lambda c: output_stage.OutputStage(config=c),
        "weight_mapper": lambda c: weight_mapper.WeightMapper(config=c),
        "macro": lambda c: macro_top.MacroTop(config=c),
        "board": _board,
    }


#: Block names, in datapath order; ``macro`` is the whole macro, ``board`` the UART board core.
BLOCKS = ("input_driver", "row_scheduler", "sar_adc", "crossbar_stub", "shift_add",
          "adder_network", "output_stage", "weight_mapper", "macro", "board")


def block(cfg, name):
    """The component ``name`` of :data:`BLOCKS` for ``cfg``, its ports registered."""
    if name not in BLOCKS:
        raise ValueError(f"unknown block {name!r}: one of {', '.join(BLOCKS)}")
    return RegisteredPorts(_blocks()[name](cfg))


def block_fmax(cfg, name, *, freq=100.0, seed=1, build_dir=None, progress=None):
    """Synthesize ``name`` alone, place and route it out of context on an ECP5.

    Returns
    -------
    dict
        ``block``, ``fmax_mhz``, ``requested_mhz``, ``luts``, ``ffs``, ``critical_path``
        (:func:`imcgen.fpga.flow.critical_path`), ``seconds`` and ``build_dir``.
    """
    from imcgen.fpga import flow as fpga

    start = time.monotonic()
    build_dir = build_dir or tempfile.mkdtemp(prefix=f"imcgen-fmax-{name}-")
    report = fpga.synth_only(block(cfg, name), "ecp5", build_dir=build_dir, name="top",
                             progress=progress, hierarchy=False,
                             fmax={"freq": freq, "seed": seed})
    return {
        "block": name,
        "fmax_mhz": report["fmax_mhz"],
        "requested_mhz": freq,
        "luts": report["resources"].get("luts"),
        "ffs": report["resources"].get("ffs"),
        "critical_path": report.get("critical_path"),
        "seconds": round(time.monotonic() - start, 1),
        "build_dir": str(build_dir),
    }
