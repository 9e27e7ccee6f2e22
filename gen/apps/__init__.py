"""Applications built on the engines: the demo, write-verify programming, TRNG reports,
accuracy studies, soaks and plots. Stand on ``fpga``, ``sim`` and below; only ``cli`` imports
them.
"""
