"""The board protocol for one configuration: everything of :mod:`imcgen.link.protocol` (the
wire format, re-exported) and the payload layouts of a macro built from a configuration, which
come from the hardware (:mod:`imcgen.hdl.board_top`).
"""

from imcgen.hdl.board_top import (
    error_layout,
    layouts_macro,
    request_layouts,
    response_layouts,
    supported,
)
from imcgen.link.codec import nbytes, pack, unpack
from imcgen.link.protocol import *  # noqa: F403  (one import for the host side)
from imcgen.link.protocol import Command, ProtocolError
from imcgen.link.protocol import __all__ as _wire

__all__ = [*_wire, "request_length", "Codec"]


def request_length(cfg, command):
    """Payload bytes of ``command`` for a macro built from ``cfg`` (the board checks it)."""
    layout = request_layouts(cfg).get(Command(command))
    return 0 if layout is None else nbytes(layout)


# -- payloads of one configuration -------------------------------------------------------------


class Codec:
    """Payloads of every command for the macro of ``cfg``, packed through its layouts.

    Parameters
    ----------
    cfg : MacroConfig
    macro : imcgen.hdl.macro_top.MacroTop, optional
        The macro whose port layouts to use (one is made from ``cfg`` when omitted); its TRNG
        ports, when it has them, give the TRNG payloads.
    """

    def __init__(self, cfg, macro=None):
        self.cfg = cfg
        macro = macro or layouts_macro(cfg)
        self.requests = request_layouts(cfg, macro)
        self.responses = response_layouts(cfg, macro)
        self.supported = supported(cfg, macro)
        self.error_layout = error_layout()

    def request_length(self, command):
        layout = self.requests.get(Command(command))
        return 0 if layout is None else nbytes(layout)

    # requests

    def weights(self, row, values, program=False):
        value = {"row": int(row), "weights": [int(v) for v in values]}
        if self.cfg.programmable:
            value["program"] = int(bool(program))
        return pack(self.requests[Command.WEIGHTS], value)

    def vector(self, x):
        return pack(self.requests[Command.MVM], [int(v) for v in x])

    def program(self, row, column, target):
        return pack(self.requests[Command.PROGRAM],
                    {"row": int(row), "column": int(column), "target": int(target)})

    # responses

    def items(self, command, payload):
        """The items of a response payload, each decoded through its layout."""
        layout = self.responses[Command(command)]
        size = nbytes(layout)
        if size == 0 or len(payload) % size:
            raise ProtocolError(f"{Command(command).name} response of {len(payload)} bytes "
                                f"is not a whole number of {size}-byte items")
        return [unpack(layout, payload[n:n + size]) for n in range(0, len(payload), size)]

    def one(self, command, payload):
        items = self.items(command, payload)
        if len(items) != 1:
            raise ProtocolError(f"{Command(command).name} response holds {len(items)} items, "
                                f"not 1")
        return items[0]

    def result(self, payload):
        """``(y list, cycles)`` of an MVM response."""
        value = self.one(Command.MVM, payload)
        return value["y"], value["cycles"]

    def program_results(self, command, payload):
        """``[row, column, code, reads, pulses, status]`` rows of a WEIGHTS/PROGRAM response."""
        fields = ("row", "column", "code", "reads", "pulses", "status")
        if not payload:
            return []
        return [[item[k] for k in fields] for item in self.items(command, payload)]

    def error(self, payload):
        value = unpack(self.error_layout, payload)
        return value["error"], value["command"]
