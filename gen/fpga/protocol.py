"""The board protocol for one configuration: everything of :mod:`imcgen.link.protocol` (the
wire format, re-exported) and the payload layouts of a macro built from a configuration, which
come from the hardware (:mod:`imcgen.hdl.board_top`).
"""

from imcgen.hdl.board_top import (
    BATCH_DEPTH,
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

__all__ = [*_wire, "request_length", "Codec", "layout_rows", "payload_tables"]


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
    batch_depth : int
        Vectors the board's batch memories hold (INFO ``batch_depth``; 0: none).
    """

    def __init__(self, cfg, macro=None, batch_depth=BATCH_DEPTH):
        self.cfg = cfg
        macro = macro or layouts_macro(cfg)
        self.batch_depth = batch_depth
        self.requests = request_layouts(cfg, macro, batch_depth)
        self.responses = response_layouts(cfg, macro, batch_depth)
        self.supported = supported(cfg, macro, batch_depth)
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

    def batch_write(self, index, x):
        return pack(self.requests[Command.BATCH_WRITE],
                    {"index": int(index), "vector": [int(v) for v in x]})

    def batch_run(self, count):
        """Run vectors ``0..count-1`` of the batch memory (``1 <= count <= batch_depth``)."""
        return pack(self.requests[Command.BATCH_RUN], {"last": int(count) - 1})

    def batch_read(self, start, count):
        return pack(self.requests[Command.BATCH_READ], {"start": int(start), "count": int(count)})

    def results(self, command, payload):
        """``[(y list, cycles)]`` of a response holding results (MVM, BATCH_READ)."""
        return [(item["y"], item["cycles"]) for item in self.items(command, payload)] \
            if payload else []

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


# -- the payload tables of docs/board.md -------------------------------------------------------


def layout_rows(layout, name="", base=0):
    """``[(field, first bit, stride, width, signed)]`` of a layout, nested fields dotted; an
    array of scalars is one row ``name[i]`` whose element ``i`` starts at ``first + stride*i``
    (``stride`` None for a single field)."""
    from amaranth.hdl import Shape
    from amaranth.lib import data

    if not isinstance(layout, data.Layout):
        shape = Shape.cast(layout)
        return [(name or "value", base, None, shape.width, shape.signed)]
    if isinstance(layout, data.ArrayLayout) and not isinstance(layout.elem_shape, data.Layout):
        elem = Shape.cast(layout.elem_shape)
        return [(f"{name or 'value'}[i], i = 0..{layout.length - 1}", base, elem.width,
                 elem.width, elem.signed)]
    rows = []
    for key, field in layout:
        rows += layout_rows(field.shape, f"{name}.{key}" if name else str(key),
                            base + field.offset)
    return rows


def payload_tables(cfg):
    """Markdown tables of every payload of a board built from ``cfg``: each command's request
    and response items, and the error payload (docs/board.md, generated: it cannot drift)."""
    codec = Codec(cfg)
    out = []
    # Payloads that are a bare array or number, named as the docs name them.
    names = {(Command.MVM, "request"): "x", (Command.TRNG_READ, "request"): "count",
             (Command.BATCH_WRITE, "request"): "", (Command.BATCH_READ, "response"): "",
             (Command.TRNG_ENABLE, "request"): "enable", (Command.TRNG_READ, "response"): "byte"}

    def table(title, layout, name=""):
        size = nbytes(layout)
        out.append(f"{title} ({size} byte{'s' if size != 1 else ''})\n\n")
        out.append("| field | bits from | width | signed |\n|---|---|---|---|\n")
        for field, first, stride, width, signed in layout_rows(layout, name):
            at = str(first) if stride is None else f"{first} + {stride}i" if first else \
                f"{stride}i"
            out.append(f"| `{field}` | {at} | {width} | {'yes' if signed else 'no'} |\n")
        out.append("\n")

    for command in Command:
        for kind, layouts in (("request", codec.requests), ("response", codec.responses)):
            if command in layouts:
                table(f"**{command.name}** (0x{command.value:02x}) {kind}"
                      f"{' item' if kind == 'response' else ''}", layouts[command],
                      names.get((command, kind), ""))
    table("**Error** response", codec.error_layout)
    return "".join(out)
