"""Simulation: Verilog elaboration, the bounded build cache, the engine interface
(``engine``) with its two engines (``cocotb_engine``, ``fast``) and the testbench pieces
(``tb``). Stands on ``core``, ``link``, ``hdl`` and ``golden``.
"""
