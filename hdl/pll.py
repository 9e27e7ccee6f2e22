"""PLL: a clock domain of its own, made by the FPGA's PLL from the board clock (``sync``).

:func:`pll_setting` picks the dividers of the PLL primitive for the output closest to a
requested frequency, by an exhaustive search of the divider space; :class:`Pll` instantiates
the primitive and creates the new clock domain, its reset held until the PLL locks.

ECP5 (``EHXPLLL``, as Project Trellis' ``ecppll`` configures it)
    ``PFD = in / CLKI_DIV`` (3.125..400 MHz), ``VCO = PFD * CLKFB_DIV * CLKOP_DIV``
    (400..800 MHz), ``out = VCO / CLKOP_DIV`` (10..400 MHz), with ``CLKI_DIV`` 1..128,
    ``CLKFB_DIV`` 1..80 and ``CLKOP_DIV`` 1..128; feedback from ``CLKOP``. Among settings
    equally close to the request the VCO nearest 600 MHz wins, then the first in the search
    order (``CLKI_DIV``, ``CLKFB_DIV``, ``CLKOP_DIV`` ascending), as in ``ecppll``.
    ``CLKOP_CPHASE`` shifts CLKOP by half its period (``CLKOP_DIV // 2`` VCO cycles), as
    ``ecppll`` intends; ``ecppll`` computes it in single precision, which truncates some even
    dividers to one less (2 instead of 3 for 25 -> 100 MHz). With CLKOP as the feedback the
    loop cancels that shift either way. The loop-filter attributes (``ICP_CURRENT``,
    ``LPF_RESISTOR``, ``MFG_ENABLE_FILTEROPAMP``, ``MFG_GMCREF_SEL``) and the
    ``FREQUENCY_PIN_*`` annotations are ``ecppll``'s.
iCE40 (``SB_PLL40_CORE`` or ``SB_PLL40_2_PAD``, as IceStorm's ``icepll`` configures them)
    ``PFD = in / (DIVR + 1)`` (10..133 MHz), ``VCO = PFD * (DIVF + 1)`` (533..1066 MHz),
    ``out = VCO / 2**DIVQ`` (16..275 MHz), with ``DIVR`` 0..15, ``DIVF`` 0..127 and ``DIVQ``
    1..6, feedback ``SIMPLE``; the first closest setting in the search order (``DIVR``,
    ``DIVF``, ``DIVQ`` ascending) wins, and ``FILTER_RANGE`` follows the PFD as in ``icepll``.
    The reference: ``sync``'s clock network (``SB_PLL40_CORE``), except where the board clock
    arrives on the PLL's own pad, as the iCEBreaker's 12 MHz does on the UP5K's one PLL: there
    nextpnr-ice40 refuses the core variant next to the pin's input buffer, and :class:`Pll`
    takes the pin with ``SB_PLL40_2_PAD`` and makes ``sync`` from its pass-through output.

A request that no setting comes within :data:`TOLERANCE` (1 %) of, or one outside the outputs
reachable from the reference clock, is refused with a one-line ``ValueError`` naming the
reachable range or the closest achievable frequency.
"""

import math
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

from amaranth import (
    ClockDomain,
    ClockSignal,
    Const,
    Elaboratable,
    Instance,
    Module,
    ResetSignal,
    Signal,
)
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

__all__ = ["FAMILIES", "LIMITS", "TOLERANCE", "ICE40_PLL_PADS", "ICE40_POR_SECONDS", "PllSetting",
           "pll_setting", "fastest_setting", "reachable", "family_of", "Pll"]

FAMILIES = ("ecp5", "ice40")

#: Frequency limits in Hz per family: the reference input, the phase detector, the VCO and the
#: output (``ecppll``'s and ``icepll``'s tables).
LIMITS = {
    "ecp5": {"in": (8e6, 400e6), "pfd": (3.125e6, 400e6), "vco": (400e6, 800e6),
             "out": (10e6, 400e6)},
    "ice40": {"in": (10e6, 133e6), "pfd": (10e6, 133e6), "vco": (533e6, 1066e6),
              "out": (16e6, 275e6)},
}

#: Largest relative distance between the requested and the achieved output that is accepted.
TOLERANCE = 0.01

#: iCE40 device and package -> the pin of the PLL's own pad. nextpnr-ice40 refuses
#: ``SB_PLL40_CORE`` while that pin is used as an input (the PLL's output takes the pad's input
#: path: "PLL bel 'X12/Y31/pll_3' cannot be used as it conflicts with input ... on pin '35'"),
#: so a reference clock on it goes through ``SB_PLL40_2_PAD`` instead.
ICE40_PLL_PADS = {("iCE40UP5K", "SG48"): "35"}
#: Seconds the iCE40 ``sync`` reset is held after configuration when :class:`Pll` creates
#: ``sync``, as amaranth's platform does (block RAMs read zeroes for about 3 us after
#: configuration).
ICE40_POR_SECONDS = 15e-6

_ECP5_VCO_TARGET = 600_000_000  # ecppll prefers the VCO nearest this among equal outputs
# ecppll's loop-filter settings, written as attributes on the instance.
_ECP5_ATTRIBUTES = {"ICP_CURRENT": "12", "LPF_RESISTOR": "8", "MFG_ENABLE_FILTEROPAMP": "1",
                    "MFG_GMCREF_SEL": "2"}


@dataclass(frozen=True)
class PllSetting:
    """One configuration of a family's PLL.

    Attributes
    ----------
    family : str
        ``"ecp5"`` or ``"ice40"``.
    in_hz : float
        The reference clock.
    out_hz : float
        The requested output.
    achieved_hz : float
        The output this setting makes.
    pfd_hz, vco_hz : float
        The phase detector's and the VCO's frequencies.
    params : dict
        The primitive's parameters (names as in the vendor library).
    attributes : dict
        Attributes on the instance (the ECP5's loop filter and frequency annotations).
    """

    family: str
    in_hz: float
    out_hz: float
    achieved_hz: float
    pfd_hz: float
    vco_hz: float
    params: dict = field(hash=False)
    attributes: dict = field(default_factory=dict, hash=False)

    @property
    def error(self):
        """Relative distance of the achieved output from the request (signed)."""
        return (self.achieved_hz - self.out_hz) / self.out_hz


def _mhz(hz):
    return f"{float(hz) / 1e6:.6g}"


def _check_family(family):
    if family not in FAMILIES:
        raise ValueError(f"PLL family must be one of {', '.join(FAMILIES)}, not {family!r}")


def _check_hz(label, value):
    if isinstance(value, bool) or not isinstance(value, int | float | Fraction) or \
            not math.isfinite(value) or not value > 0:
        raise ValueError(f"PLL {label} must be a positive number of Hz, not {value!r}")
    return Fraction(value)


def _within(value, limits):
    return limits[0] <= value <= limits[1]


@lru_cache(maxsize=16)
def _candidates(family, in_hz):
    """The valid settings from ``in_hz`` (a Fraction) in the search order, as
    ``(out, vco_penalty, order, pfd, vco, dividers)``: on the ECP5 one per ``CLKI_DIV`` and
    ``CLKFB_DIV`` (which set the output), with the ``CLKOP_DIV`` the search would keep (VCO
    nearest 600 MHz, the smallest on a tie); on the iCE40 every one."""
    limits = LIMITS[family]
    found = []
    if family == "ecp5":
        lo_vco, hi_vco = (Fraction(v) for v in limits["vco"])
        for clki in range(1, 129):
            pfd = in_hz / clki
            if not _within(pfd, limits["pfd"]):
                continue
            for clkfb in range(1, 81):
                out = pfd * clkfb
                if not _within(out, limits["out"]):
                    continue
                # CLKOP_DIV only moves the VCO: the one nearest 600 MHz, the smallest on a tie.
                first, last = max(1, math.ceil(lo_vco / out)), min(128, math.floor(hi_vco / out))
                if first > last:
                    continue
                ideal = Fraction(_ECP5_VCO_TARGET) / out
                clkop = min({min(max(math.floor(ideal), first), last),
                             min(max(math.ceil(ideal), first), last)},
                            key=lambda d: (abs(out * d - _ECP5_VCO_TARGET), d))
                vco = out * clkop
                found.append((out, abs(vco - _ECP5_VCO_TARGET), (clki, clkfb, clkop), pfd, vco,
                              (clki, clkfb, clkop)))
    else:
        for divr in range(16):
            pfd = in_hz / (divr + 1)
            if not _within(pfd, limits["pfd"]):
                continue
            for divf in range(128):
                vco = pfd * (divf + 1)
                if not _within(vco, limits["vco"]):
                    continue
                for divq in range(1, 7):
                    out = vco / 2**divq
                    if _within(out, limits["out"]):
                        found.append((out, 0, (divr, divf, divq), pfd, vco, (divr, divf, divq)))
    return tuple(found)


def reachable(family, in_hz):
    """``(lowest, highest)`` output in Hz the family's PLL makes from ``in_hz``.

    Raises
    ------
    ValueError
        Unknown family, or a reference clock outside the family's input range.
    """
    _check_family(family)
    ref = _check_hz("reference clock", in_hz)
    lo, hi = LIMITS[family]["in"]
    if not _within(ref, (lo, hi)):
        raise ValueError(f"the {family} PLL takes a reference clock of {_mhz(lo)}..{_mhz(hi)} "
                         f"MHz, not {_mhz(ref)} MHz")
    outs = [c[0] for c in _candidates(family, ref)]
    if not outs:
        raise ValueError(f"the {family} PLL makes no output from {_mhz(ref)} MHz")
    return float(min(outs)), float(max(outs))


def _setting(family, in_hz, out_hz, candidate):
    out, _, _, pfd, vco, dividers = candidate
    achieved = float(out)
    if family == "ecp5":
        clki, clkfb, clkop = dividers
        params = {
            "PLLRST_ENA": "DISABLED", "INTFB_WAKE": "DISABLED", "STDBY_ENABLE": "DISABLED",
            "DPHASE_SOURCE": "DISABLED",
            "OUTDIVIDER_MUXA": "DIVA", "OUTDIVIDER_MUXB": "DIVB", "OUTDIVIDER_MUXC": "DIVC",
            "OUTDIVIDER_MUXD": "DIVD",
            "CLKI_DIV": clki, "CLKFB_DIV": clkfb,
            "CLKOP_ENABLE": "ENABLED", "CLKOP_DIV": clkop, "CLKOP_CPHASE": clkop // 2,
            "CLKOP_FPHASE": 0, "FEEDBK_PATH": "CLKOP",
        }
        attributes = {"FREQUENCY_PIN_CLKI": _mhz(in_hz), "FREQUENCY_PIN_CLKOP": _mhz(out),
                      **_ECP5_ATTRIBUTES}
    else:
        divr, divf, divq = dividers
        mhz = pfd / 1_000_000
        filter_range = 1 if mhz < 17 else 2 if mhz < 26 else 3 if mhz < 44 else \
            4 if mhz < 66 else 5 if mhz < 101 else 6
        params = {"FEEDBACK_PATH": "SIMPLE", "DIVR": divr, "DIVF": divf, "DIVQ": divq,
                  "FILTER_RANGE": filter_range}
        attributes = {}
    return PllSetting(family=family, in_hz=float(in_hz), out_hz=float(out_hz),
                      achieved_hz=achieved, pfd_hz=float(pfd), vco_hz=float(vco),
                      params=params, attributes=attributes)


def _closest(family, ref, want):
    return min(_candidates(family, ref), key=lambda c: (abs(c[0] - want), c[1], c[2]))


def pll_setting(family, in_hz, out_hz):
    """The setting of ``family``'s PLL whose output from ``in_hz`` is closest to ``out_hz``.

    Parameters
    ----------
    family : str
        ``"ecp5"`` (``EHXPLLL``) or ``"ice40"`` (``SB_PLL40_CORE``, ``SB_PLL40_2_PAD``).
    in_hz, out_hz : int or float
        Reference clock and requested output, in Hz.

    Returns
    -------
    PllSetting

    Raises
    ------
    ValueError
        One line: an unknown family, a frequency that is not a positive number, a reference
        outside the family's input range, a request outside the reachable outputs (the message
        names them), or no setting within :data:`TOLERANCE` of it (the message names the
        closest achievable output).
    """
    _check_family(family)
    want = _check_hz("output", out_hz)
    lo, hi = reachable(family, in_hz)
    ref = Fraction(in_hz)
    if not lo * (1 - TOLERANCE) <= want <= hi * (1 + TOLERANCE):
        raise ValueError(f"{_mhz(want)} MHz is outside what the {family} PLL makes from "
                         f"{_mhz(ref)} MHz: {_mhz(lo)}..{_mhz(hi)} MHz")
    best = _closest(family, ref, want)
    if abs(best[0] - want) > TOLERANCE * want:
        raise ValueError(f"the {family} PLL cannot make {_mhz(want)} MHz from {_mhz(ref)} MHz "
                         f"within {100 * TOLERANCE:g} %: the closest is {_mhz(best[0])} MHz")
    return _setting(family, ref, want, best)


def fastest_setting(family, in_hz, at_most_hz):
    """The setting with the fastest output at or below ``at_most_hz`` (Hz).

    Its ``out_hz`` is the output it achieves. Raises ``ValueError`` (one line, naming the
    lowest reachable output) when every output is faster.
    """
    _check_family(family)
    limit = _check_hz("output", at_most_hz)
    lo, _ = reachable(family, in_hz)
    ref = Fraction(in_hz)
    slower = [c[0] for c in _candidates(family, ref) if c[0] <= limit]
    if not slower:
        raise ValueError(f"the {family} PLL makes nothing at or below {_mhz(limit)} MHz from "
                         f"{_mhz(ref)} MHz: its slowest output is {_mhz(lo)} MHz")
    out = max(slower)
    return _setting(family, ref, out, _closest(family, ref, out))


def family_of(platform):
    """``"ecp5"`` or ``"ice40"`` for an amaranth Lattice platform instance; ValueError else."""
    from amaranth.vendor import LatticePlatform, SiliconBluePlatform

    if isinstance(platform, LatticePlatform) and platform.family == "ecp5":
        return "ecp5"
    if isinstance(platform, SiliconBluePlatform) and platform.family == "iCE40":
        return "ice40"
    raise ValueError(f"no PLL for platform {type(platform).__name__}: an ECP5 or iCE40 "
                     f"platform is needed")


class Pll(Elaboratable):
    """A clock domain driven by the FPGA's PLL, from the board clock of the ``sync`` domain.

    Parameters
    ----------
    family : str
        ``"ecp5"`` or ``"ice40"``.
    in_hz : int or float
        The ``sync`` clock (the board's oscillator), in Hz.
    out_hz : int or float
        The requested clock of the new domain, in Hz: the closest setting
        (:func:`pll_setting`) is used, and refused beyond 1 %.
    domain : str
        Name of the new clock domain (not ``"sync"``, the reference).

    Attributes
    ----------
    setting : PllSetting
        The PLL's configuration; ``setting.achieved_hz`` is the new domain's clock.
    domain : str
        The new domain, created by this module. Its clock is the PLL's output, constrained to
        ``setting.achieved_hz`` on a platform (on the net ``<domain>_clk`` of this module, the
        name :func:`imcgen.fpga.flow.build` reports the clock under); its reset is asserted
        until the PLL locks and while ``sync``'s reset is, and released synchronously to its
        own clock (:class:`amaranth.lib.cdc.ResetSynchronizer`). Its flip-flops reset
        asynchronously: an iCE40 flip-flop with an enable resets only when enabled
        (``SB_DFFESR``), which a synchronous reset that wins over the enable contradicts, so
        Yosys moved enables into LUTs (docs/board.md section 5).
    locked : Signal
        The PLL's lock output (asynchronous to both domains).

    Primitives and the reference clock
    ----------------------------------
    ECP5: ``EHXPLLL`` with ``CLKI`` from ``sync``'s clock, feedback from ``CLKOP``.
    iCE40: ``SB_PLL40_CORE`` with ``REFERENCECLK`` from ``sync``'s clock, unless the platform's
    default clock arrives on the PLL's own pad (:data:`ICE40_PLL_PADS`: the iCEBreaker's 12 MHz
    on pin 35), which nextpnr-ice40 does not let the PLL share with an input buffer. Then the
    PLL is an ``SB_PLL40_2_PAD`` on that pin, and this module creates ``sync`` too, in place of
    the platform: port A passes the pad's clock through, unchanged, to ``sync``; its reset is
    the platform's power-on reset (held :data:`ICE40_POR_SECONDS` after configuration, or the
    board's reset button where the platform has one). Port B is the new domain's clock.

    The domains are defined here, for the design around: the parent instantiates the
    :class:`Pll` and then uses ``m.d.macro``. Amaranth 0.5 accepts that with a
    ``DeprecationWarning`` (0.6 will want a domain defined where it is used, or above).
    """

    def __init__(self, *, family, in_hz, out_hz, domain="macro"):
        if not isinstance(domain, str) or not domain.isidentifier() or domain == "sync":
            raise ValueError(f"PLL domain must be a name other than 'sync', not {domain!r}")
        self._setting = pll_setting(family, in_hz, out_hz)
        self._domain = domain
        self.locked = Signal()

    @classmethod
    def for_platform(cls, platform, *, out_hz, domain="macro"):
        """A :class:`Pll` from a platform's default clock, for the platform's family."""
        return cls(family=family_of(platform), in_hz=platform.default_clk_frequency,
                   out_hz=out_hz, domain=domain)

    @property
    def setting(self):
        return self._setting

    @property
    def domain(self):
        return self._domain

    @staticmethod
    def primitive(family, platform=None):
        """The primitive :class:`Pll` instantiates for ``family`` on ``platform``."""
        if family == "ecp5":
            return "EHXPLLL"
        return "SB_PLL40_2_PAD" if _ice40_pad(platform) is not None else "SB_PLL40_CORE"

    def elaborate(self, platform):
        m = Module()
        setting = self._setting
        domain = ClockDomain(self._domain, async_reset=True)
        # The PLL's output is the domain's clock, kept under its name ("macro_clk") through
        # synthesis: the constraint names it in whichever module amaranth meets it first
        # ("pll.reset_sync.macro_clk"), and Yosys otherwise drops such aliases of a net.
        domain.clk = clk = Signal(name=domain.clk.name, attrs={"keep": 1})
        m.domains += domain
        params = {f"p_{key}": value for key, value in setting.params.items()}
        if setting.family == "ecp5":
            attrs = {f"a_{key}": value for key, value in setting.attributes.items()}
            m.submodules.pll = Instance(
                "EHXPLLL", **attrs, **params,
                i_CLKI=ClockSignal("sync"), i_CLKFB=clk, o_CLKOP=clk, o_LOCK=self.locked,
                i_RST=0, i_STDBY=0, i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1,
                i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0)
        else:
            widths = {"DIVR": 4, "DIVF": 7, "DIVQ": 3, "FILTER_RANGE": 3}
            for key, width in widths.items():  # icepll writes them as sized binary constants
                params[f"p_{key}"] = Const(setting.params[key], width)
            pad = _ice40_pad(platform)
            if pad is None:
                m.submodules.pll = Instance(
                    "SB_PLL40_CORE", **params,
                    i_REFERENCECLK=ClockSignal("sync"), o_PLLOUTGLOBAL=clk, o_LOCK=self.locked,
                    i_RESETB=1, i_BYPASS=0)
            else:
                board_clk = Signal()
                m.submodules.pll = Instance(
                    "SB_PLL40_2_PAD", **params, p_PLLOUT_SELECT_PORTB="GENCLK",
                    i_PACKAGEPIN=platform.request(platform.default_clk, dir="-").io,
                    o_PLLOUTGLOBALA=board_clk, o_PLLOUTGLOBALB=clk, o_LOCK=self.locked,
                    i_RESETB=1, i_BYPASS=0)
                self._ice40_sync(m, platform, board_clk)
        # amaranth's ECP5 platform makes `sync` reset-less (the global set/reset starts it):
        # there the PLL's lock alone holds the new domain's reset.
        sync_reset = ResetSignal("sync", allow_reset_less=True)
        m.submodules.reset_sync = ResetSynchronizer(~self.locked | sync_reset,
                                                    domain=self._domain)
        if platform is not None:
            platform.add_clock_constraint(clk, setting.achieved_hz)
        return m

    @staticmethod
    def _ice40_sync(m, platform, board_clk):
        """``sync`` on the pad's clock with the power-on reset amaranth's iCE40 platform
        gives it (``create_missing_domain``)."""
        delay = int(ICE40_POR_SECONDS * platform.default_clk_frequency)
        m.domains += ClockDomain("por", reset_less=True, local=True)
        m.d.comb += ClockSignal("por").eq(board_clk)
        timer = Signal(range(delay + 1))
        ready = Signal()
        with m.If(timer == delay):
            m.d.por += ready.eq(1)
        with m.Else():
            m.d.por += timer.eq(timer + 1)
        m.domains += ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(board_clk)
        if platform.default_rst is not None:
            button = platform.request(platform.default_rst, dir="-")
            m.submodules.rst_buf = rst_buf = io.Buffer("i", button)
            m.submodules.por_sync = ResetSynchronizer(~ready | rst_buf.i, domain="sync")
        else:
            m.d.comb += ResetSignal("sync").eq(~ready)


def _ice40_pad(platform):
    """The pin of the iCE40 PLL's pad when ``platform``'s default clock arrives on it."""
    if platform is None or getattr(platform, "default_clk", None) is None:
        return None
    pad = ICE40_PLL_PADS.get((platform.device, platform.package))
    if pad is None:
        return None
    resource = platform.lookup(platform.default_clk)
    pins = getattr(resource.ios[0], "names", None) if resource.ios else None
    return pad if pins == [pad] else None
