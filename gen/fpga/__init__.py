"""The FPGA flow (``flow``), its resource model and per-block Fmax, the host driver of a
board and the simulated board. Stands on ``sim`` and below.
"""
