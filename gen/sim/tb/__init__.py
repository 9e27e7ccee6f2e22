"""cocotb-side test benches, split by job.

- :mod:`imcgen.sim.tb.streams`: clock, reset, valid/ready stream drivers and monitors, payloads
  packed and unpacked through the hardware's own Amaranth layouts.
- :mod:`imcgen.sim.tb.analog`: the Python crossbar behind the analog boundary
  (``crossbar = "external"``), an adapter to the shared NumPy crossbar/device model.
- :mod:`imcgen.sim.tb.macro`: the whole macro driven from a job file (``imcgen simulate``).

Only the processes that run a simulator import these (they need cocotb); ``imcgen verilog``
and the golden model never do.
"""
