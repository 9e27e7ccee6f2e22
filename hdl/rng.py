"""Shared counter-based random generator: an iterative Threefry-2x32 core.

Every stochastic draw of the project is a pure function of ``(seed, what, where, when)``:
``key = (seed mod 2**32, what)``, ``counter = (where, when)``, 64 bits out as ``x0 | x1 << 32``
(``imcgen.golden.rng`` is the NumPy model). Threefry-2x32-R is from Salmon, Moraes, Dror and
Shaw, "Parallel random numbers: as easy as 1, 2, 3" (SC'11), bit-compatible with Random123's
``threefry2x32_R``.

The core is iterative, not pipelined: it takes a request when idle, runs ``rounds_per_cycle``
rounds (and the key injections that fall among them) per clock, then holds the result until it
is taken. Its area is ``rounds_per_cycle`` pairs of 32-bit adders plus the injection adders;
a table indexed by the cycle count picks each round's rotation and key word, so any divisor of
``rounds`` works and a constant table costs no mux.

:func:`threefry2x32_reference` is a scalar pure-Python model that generators may call at
elaboration time (e.g. for memory contents); it is written apart from ``golden/rng.py``.
"""

from amaranth import Module, Signal
from amaranth.hdl import Const, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from imcgen.hdl.common import record_fsm

__all__ = ["Threefry2x32", "request_layout", "result_layout", "threefry2x32_reference"]

ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)  # Random123 R_32x2_0_0 .. R_32x2_7_0
PARITY = 0x1BD11BDA  # Skein key-schedule parity, SKEIN_KS_PARITY32
MAX_ROUNDS = 32  # Random123 asserts Nrounds <= 32
WORD = 32
_MASK = (1 << WORD) - 1

request_layout = data.StructLayout({
    "key0": unsigned(WORD),  # seed mod 2**32
    "key1": unsigned(WORD),  # what
    "ctr0": unsigned(WORD),  # where
    "ctr1": unsigned(WORD),  # when
})

result_layout = data.StructLayout({
    "x0": unsigned(WORD),  # bits 0..31 of the draw
    "x1": unsigned(WORD),  # bits 32..63 of the draw
})


def threefry2x32_reference(key0, key1, ctr0, ctr1, rounds=20):
    """Threefry-2x32 of one key and counter, in plain Python integers.

    Parameters
    ----------
    key0, key1, ctr0, ctr1 : int
        32-bit unsigned words.
    rounds : int
        ``0..32``, as in Random123.

    Returns
    -------
    tuple of int
        ``(x0, x1)``, 32-bit unsigned words.
    """
    words = {"key0": key0, "key1": key1, "ctr0": ctr0, "ctr1": ctr1}
    for name, value in words.items():
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MASK:
            raise ValueError(f"{name} must be an integer in 0..{_MASK}, not {value!r}")
    if not isinstance(rounds, int) or isinstance(rounds, bool) or not 0 <= rounds <= MAX_ROUNDS:
        raise ValueError(f"rounds must be an integer in 0..{MAX_ROUNDS}, not {rounds!r}")

    def inject(x, s):  # key injection s: x0 += ks[s % 3], x1 += ks[(s + 1) % 3] + s
        ks = (key0, key1, key0 ^ key1 ^ PARITY)
        return (x[0] + ks[s % 3]) & _MASK, (x[1] + ks[(s + 1) % 3] + s) & _MASK

    x = inject((ctr0, ctr1), 0)
    for r in range(rounds):
        a = (x[0] + x[1]) & _MASK
        n = ROTATIONS[r % 8]
        b = ((x[1] << n) | (x[1] >> (WORD - n))) & _MASK
        x = (a, a ^ b)
        if r % 4 == 3:
            x = inject(x, r // 4 + 1)
    return x


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def _by_cycle(m, cycle, keys, build, name, shape=WORD):
    """``build(keys[cycle])``: ``build(key)`` itself when every cycle has the same key, else a
    signal driven by a ``Switch`` on ``cycle`` over the distinct keys (equal keys share a case)."""
    distinct = list(dict.fromkeys(keys))
    if len(distinct) == 1:
        return build(distinct[0])
    value = Signal(shape, name=name)
    with m.Switch(cycle):
        for key in distinct:
            with m.Case(*(n for n, k in enumerate(keys) if k == key)):
                m.d.comb += value.eq(build(key))
    return value


class Threefry2x32(wiring.Component):
    """Threefry-2x32-``rounds``: one 64-bit draw per request, ``rounds_per_cycle`` rounds a clock.

    Parameters
    ----------
    rounds : int
        Threefry rounds, a multiple of 4 from 4 to 32, so that the result follows a key
        injection as in Threefish; 20 is Random123's default.
    rounds_per_cycle : int
        Rounds computed per clock, a divisor of ``rounds``: 1 gives the smallest core,
        ``rounds`` a single-cycle one. The rotation and injection for each of these rounds are
        picked by the cycle count where they differ from cycle to cycle.

    Attributes
    ----------
    i : In(stream.Signature(request_layout))
        ``key0`` (seed mod 2**32), ``key1`` (what), ``ctr0`` (where), ``ctr1`` (when).
    o : Out(stream.Signature(result_layout))
        ``x0``, ``x1``: the draw is ``x0 | x1 << 32``.
    rounds, rounds_per_cycle : int
        The parameters, read-only.
    latency : int
        ``rounds // rounds_per_cycle``: ``o.valid`` is high after the ``latency``-th rising edge
        that follows the edge accepting the request (the accepting edge loads the counter with
        the first key injection; each of the next ``latency`` edges applies
        ``rounds_per_cycle`` rounds). With ``o.ready`` high the result is taken on the next edge,
        which also accepts the next request: one draw every ``latency + 1`` cycles.

    Raises
    ------
    ValueError
        If ``rounds`` or ``rounds_per_cycle`` is not one of the values above; the message lists
        the divisors allowed.
    """

    def __init__(self, *, rounds=20, rounds_per_cycle=4):
        if (not isinstance(rounds, int) or isinstance(rounds, bool) or rounds % 4
                or not 4 <= rounds <= MAX_ROUNDS):
            raise ValueError(f"Threefry rounds must be a multiple of 4 from 4 to {MAX_ROUNDS}, "
                             f"not {rounds!r}")
        if (not isinstance(rounds_per_cycle, int) or isinstance(rounds_per_cycle, bool)
                or rounds_per_cycle < 1 or rounds % rounds_per_cycle):
            allowed = ", ".join(map(str, _divisors(rounds)))
            raise ValueError(f"Threefry rounds_per_cycle must divide rounds ({rounds}): one of "
                             f"{allowed}, not {rounds_per_cycle!r}")
        self._rounds = rounds
        self._rounds_per_cycle = rounds_per_cycle
        super().__init__({
            "i": In(stream.Signature(request_layout)),
            "o": Out(stream.Signature(result_layout)),
        })

    @property
    def rounds(self):
        return self._rounds

    @property
    def rounds_per_cycle(self):
        return self._rounds_per_cycle

    @property
    def latency(self):
        return self._rounds // self._rounds_per_cycle

    def elaborate(self, platform):
        m = Module()
        per_cycle, cycles = self._rounds_per_cycle, self.latency

        x0 = Signal(WORD)  # the counter block being encrypted, then the result
        x1 = Signal(WORD)
        ks = [Signal(WORD, name=f"ks{n}") for n in range(3)]  # key schedule
        cycle = Signal(range(cycles))  # round cycles done so far in RUN
        m.d.comb += [self.o.payload.x0.eq(x0), self.o.payload.x1.eq(x1)]

        def word(index):  # key schedule word, or nothing to inject
            return Const(0, WORD) if index is None else ks[index]

        # One clock of rounds: round j of this clock is round cycle * per_cycle + j overall.
        a, b = x0, x1
        for j in range(per_cycle):
            numbers = [n * per_cycle + j for n in range(cycles)]  # this round, by cycle
            rotated = _by_cycle(m, cycle, [ROTATIONS[r % 8] for r in numbers],
                                lambda n, b=b: b.rotate_left(n), f"rot{j}")
            a_next, b_next = Signal(WORD, name=f"x0_r{j}"), Signal(WORD, name=f"x1_r{j}")
            m.d.comb += [a_next.eq(a + b), b_next.eq(rotated ^ a_next)]
            a, b = a_next, b_next
            # Key injection s follows round 4s - 1; None where this round is not such a round.
            # Word and count are picked apart, so the "+ s" costs one adder whatever the cycle.
            inject = [(r + 1) // 4 if r % 4 == 3 else None for r in numbers]
            if any(s is not None for s in inject):
                add0 = _by_cycle(m, cycle, [None if s is None else s % 3 for s in inject],
                                 word, f"inj{j}_x0")
                add1 = _by_cycle(m, cycle, [None if s is None else (s + 1) % 3 for s in inject],
                                 word, f"inj{j}_x1")
                count = _by_cycle(m, cycle, [s or 0 for s in inject], lambda s: Const(s),
                                  f"inj{j}_s", range(MAX_ROUNDS // 4 + 1))
                a_inj, b_inj = Signal(WORD, name=f"x0_k{j}"), Signal(WORD, name=f"x1_k{j}")
                m.d.comb += [a_inj.eq(a + add0), b_inj.eq(b + add1 + count)]
                a, b = a_inj, b_inj

        # A request is taken in IDLE, or in DONE on the edge that hands the result over.
        with m.If(self.i.valid & self.i.ready):
            req = self.i.payload
            m.d.sync += [
                ks[0].eq(req.key0), ks[1].eq(req.key1), ks[2].eq(req.key0 ^ req.key1 ^ PARITY),
                x0.eq(req.ctr0 + req.key0), x1.eq(req.ctr1 + req.key1),  # key injection 0
                cycle.eq(0),
            ]

        with m.FSM(init="IDLE", name="rng") as fsm:
            with m.State("IDLE"):
                with m.If(self.i.valid):
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.sync += [x0.eq(a), x1.eq(b), cycle.eq(cycle + 1)]
                with m.If(cycle == cycles - 1):
                    m.next = "DONE"
            with m.State("DONE"):
                with m.If(self.o.ready):
                    with m.If(self.i.valid):
                        m.next = "RUN"
                    with m.Else():
                        m.next = "IDLE"
        record_fsm("rng", fsm)
        m.d.comb += [
            self.o.valid.eq(fsm.ongoing("DONE")),
            self.i.ready.eq(fsm.ongoing("IDLE") | (fsm.ongoing("DONE") & self.o.ready)),
        ]
        return m
