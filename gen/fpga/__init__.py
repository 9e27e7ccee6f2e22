"""The FPGA flow (``flow``), its resource model and per-block Fmax, the host driver of a
board and the simulated board. Stands on ``sim`` and below.
"""


def __getattr__(name):
    # ``from imcgen import fpga; fpga.build(...)``: scripts from before the layers, when this
    # package was the flow module, keep working (the flow loads only when asked for).
    import importlib

    if name.startswith("__"):
        raise AttributeError(name)
    flow = importlib.import_module("imcgen.fpga.flow")
    try:
        return getattr(flow, name)
    except AttributeError:
        raise AttributeError(f"module 'imcgen.fpga' has no attribute {name!r}") from None
