"""Small structural helpers shared by the blocks: index shapes, adder trees, prefix sums, the
register slice, FSM encodings."""

from amaranth import Module
from amaranth.hdl import Const, Mux, Signal, unsigned
from amaranth.lib import stream, wiring

from imcgen.core.config import MacroConfig

# FSM name -> {state name: encoding} of the design elaborated last, for GTKWave translate
# filters (docs: waves show state names). Amaranth numbers states in order of first mention, so
# a block records its FSM after building it.
FSM_STATES = {}


def record_fsm(name, fsm):
    """Remember the state encoding of ``fsm`` (whose register reads ``<name>_state``), and ask
    synthesis to encode it one-hot (:func:`one_hot`)."""
    FSM_STATES[name] = dict(fsm.encoding)
    one_hot(fsm)


def one_hot(fsm):
    """Ask synthesis to encode ``fsm`` one-hot (Yosys ``fsm_encoding``): a flip-flop per
    state, so each state's transitions are decoded from one bit instead of the whole state
    number. Simulation and waves keep Amaranth's encoding."""
    fsm.state.attrs["fsm_encoding"] = "one-hot"


def check_config(config):
    """Blocks take the resolved configuration object, nothing else."""
    if not isinstance(config, MacroConfig):
        raise TypeError(f"config must be an imcgen.core.config.MacroConfig, not {config!r}")
    return config


class Block(wiring.Component):
    """A component built from the macro configuration, which it keeps read-only.

    Parameters
    ----------
    config : MacroConfig
    members : dict
        The signature members, derived from ``config`` by the subclass.
    """

    def __init__(self, config, members):
        self._config = check_config(config)
        super().__init__(members)

    @property
    def config(self):
        return self._config


def index_shape(count):
    """Unsigned shape indexing ``count`` items, at least one bit wide.

    Zero-width signals vanish from the Verilog; a one-bit index keeps every port present (and
    every testbench signal name stable) even when only one item exists.
    """
    return unsigned(max(1, (count - 1).bit_length()))


def adder_tree(terms):
    """Balanced sum: depth log2(n) and width growth log2(n), where a chained sum grows by n."""
    terms = list(terms)
    if not terms:
        return Const(0, 1)
    while len(terms) > 1:
        paired = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            paired.append(terms[-1])
        terms = paired
    return terms[0]


def popcount(value):
    return adder_tree(value[i] for i in range(len(value)))


def prefix_sums(m, terms, width, name="prefix"):
    """Inclusive prefix sums of ``terms`` (Sklansky: log2(n) levels), ``width`` bits each, as
    signals of module ``m``."""
    sums = list(terms)
    span, level = 1, 0
    while span < len(sums):
        updated = list(sums)
        for i in range(len(sums)):
            if (i // span) % 2 == 1:
                total = Signal(width, name=f"{name}{level}_{i}")
                m.d.comb += total.eq(sums[i] + sums[(i // span) * span - 1])
                updated[i] = total
        sums = updated
        span *= 2
        level += 1
    return sums


class Pipe(wiring.Component):
    """Register slice: cuts both a stream's ``valid``/``payload`` path and its ``ready`` path,
    at one cycle of latency and no loss of throughput.

    ``o.valid`` and ``o.payload`` come from the output register, ``i.ready`` from a register
    (the spare slot is empty), so the logic in front of ``i`` and the logic behind ``o`` never
    meet in one cycle. An item that arrives while ``o`` is stalled waits in the spare slot and
    moves to the output register when it frees; order is kept and nothing is dropped.

    Used between the input driver and the row scheduler (its cycle goes through the timing
    model, gen/core/timing.py), and as the output register of the row scheduler and of the SAR,
    where it replaces a plain output register at the same latency: the block offers an item
    combinationally and decides its stall from ``i.ready``, one register bit.

    Parameters
    ----------
    shape : shape-like
        The payload.
    """

    def __init__(self, shape):
        super().__init__({"i": wiring.In(stream.Signature(shape)),
                          "o": wiring.Out(stream.Signature(shape))})
        #: The spare slot is full after this edge (``~i.ready`` on the next cycle), for a
        #: producer that registers its own stall decision.
        self.full_next = Signal()

    def elaborate(self, platform):
        m = Module()
        spare_full = Signal()
        spare = Signal.like(self.i.payload)
        m.d.comb += self.i.ready.eq(~spare_full)
        free = ~self.o.valid | self.o.ready  # the output register frees this cycle
        # The spare loads while empty (read only once full: no enable from o.ready), enabled by
        # a copy of the flag: with `spare_full` itself its feedback multiplexer is the output
        # register's, which synthesis then shares and keeps in the data path (a LUT level
        # between `i.payload` and the spare on the iCE40) instead of using the enable.
        spare_empty = Signal(init=1)
        with m.If(spare_empty):
            m.d.sync += spare.eq(self.i.payload)
        with m.If(free):
            m.d.sync += self.o.payload.eq(Mux(spare_full, spare, self.i.payload))
        # The two flags as one LUT each of (o.valid, o.ready, spare_full, i.valid).
        m.d.comb += self.full_next.eq(~free & (spare_full | self.i.valid))
        m.d.sync += [self.o.valid.eq(Mux(free, spare_full | self.i.valid, 1)),
                     spare_full.eq(self.full_next),
                     spare_empty.eq(free | ~(spare_full | self.i.valid))]
        return m


def check_int(name, value, lo, hi=None):
    """``value`` if an int in ``lo..hi`` (``hi`` None: unbounded), else a ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or \
            (hi is not None and value > hi):
        allowed = f"in {lo}..{hi}" if hi is not None else f"of at least {lo}"
        raise ValueError(f"{name} must be an integer {allowed}, not {value!r}")
    return value
