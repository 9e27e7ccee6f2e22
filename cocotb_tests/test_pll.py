# amaranth: UnusedElaboratable=no
"""The PLL block (hdl/pll.py) and ``imcgen fpga --clock``: divider settings against the tools'
published outputs and a brute-force search written here, exact refusals, the primitive in the
elaborated design with its clock constraints, the clock report per domain, and the CLI's
choice of the macro clock. Plain pytest: no tool runs (the real builds are in docs/board.md
section 3)."""

import json
import math
import re
import subprocess
import sys
from fractions import Fraction

import pytest
from amaranth import Elaboratable, Module, Signal
from amaranth.back import rtlil
from amaranth.lib import io

from imcgen.core.config import load_config
from imcgen.fpga import flow
from imcgen.hdl.pll import LIMITS, TOLERANCE, Pll, fastest_setting, pll_setting, reachable

MHZ = 1_000_000

# A Pll defines its domain (and on the iCEBreaker `sync`) for the design above it: amaranth 0.5
# warns that 0.6 will want domains defined where they are used or above (hdl/pll.py).
pytestmark = pytest.mark.filterwarnings(
    r"ignore:Domain '\w+' is used in '\w+', but defined in '[\w.]*pll':DeprecationWarning")


# -- reference searches, written from the tools' loops ------------------------------------------

def ecppll_reference(in_hz, out_hz):
    """``ecppll``'s ``calc_pll_params`` loop in exact arithmetic: a setting replaces the best
    one when it is strictly closer, or equally close with its VCO nearer 600 MHz."""
    best, best_key = None, None
    for clki in range(1, 129):
        pfd = Fraction(in_hz, clki)
        if not 3_125_000 <= pfd <= 400 * MHZ:
            continue
        for clkfb in range(1, 81):
            for clkop in range(1, 129):
                vco = pfd * clkfb * clkop
                if not 400 * MHZ <= vco <= 800 * MHZ:
                    continue
                out = vco / clkop
                if not 10 * MHZ <= out <= 400 * MHZ:  # ecppll only warns; Pll refuses
                    continue
                key = (abs(out - out_hz), abs(vco - 600 * MHZ))
                if best_key is None or key < best_key:
                    best, best_key = (clki, clkfb, clkop), key
    return best


def icepll_reference(in_hz, out_hz):
    """``icepll``'s ``analyze`` loop (SIMPLE feedback): the first strictly closest wins."""
    best, best_error = None, None
    for divr in range(16):
        pfd = Fraction(in_hz, divr + 1)
        if not 10 * MHZ <= pfd <= 133 * MHZ:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533 * MHZ <= vco <= 1066 * MHZ:
                continue
            for divq in range(1, 7):
                out = vco / 2**divq
                if not 16 * MHZ <= out <= 275 * MHZ:
                    continue
                if best_error is None or abs(out - out_hz) < best_error:
                    best, best_error = (divr, divf, divq), abs(out - out_hz)
    return best


def dividers(setting):
    keys = ("CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV") if setting.family == "ecp5" else \
        ("DIVR", "DIVF", "DIVQ")
    return tuple(setting.params[k] for k in keys)


def output_of(setting):
    """The output frequency recomputed from the parameters alone (the primitives' formulas)."""
    p = setting.params
    if setting.family == "ecp5":
        return Fraction(int(setting.in_hz), p["CLKI_DIV"]) * p["CLKFB_DIV"]
    return Fraction(int(setting.in_hz), p["DIVR"] + 1) * (p["DIVF"] + 1) / 2**p["DIVQ"]


# -- settings -----------------------------------------------------------------------------------

def test_ecp5_settings_for_the_ulx3s_clock():
    s = pll_setting("ecp5", 25 * MHZ, 100 * MHZ)
    assert (s.achieved_hz, s.pfd_hz, s.vco_hz) == (100e6, 25e6, 600e6)
    assert s.params == {
        "PLLRST_ENA": "DISABLED", "INTFB_WAKE": "DISABLED", "STDBY_ENABLE": "DISABLED",
        "DPHASE_SOURCE": "DISABLED", "OUTDIVIDER_MUXA": "DIVA", "OUTDIVIDER_MUXB": "DIVB",
        "OUTDIVIDER_MUXC": "DIVC", "OUTDIVIDER_MUXD": "DIVD", "CLKI_DIV": 1, "CLKFB_DIV": 4,
        "CLKOP_ENABLE": "ENABLED", "CLKOP_DIV": 6, "CLKOP_CPHASE": 3, "CLKOP_FPHASE": 0,
        "FEEDBK_PATH": "CLKOP"}
    assert s.attributes == {"FREQUENCY_PIN_CLKI": "25", "FREQUENCY_PIN_CLKOP": "100",
                            "ICP_CURRENT": "12", "LPF_RESISTOR": "8",
                            "MFG_ENABLE_FILTEROPAMP": "1", "MFG_GMCREF_SEL": "2"}
    s = pll_setting("ecp5", 25 * MHZ, 50 * MHZ)
    assert (s.achieved_hz, s.pfd_hz, s.vco_hz) == (50e6, 25e6, 600e6)
    assert dividers(s) == (1, 2, 12) and s.params["CLKOP_CPHASE"] == 6
    assert s.error == 0.0


@pytest.mark.parametrize("in_mhz, out_mhz, expected", [
    # Files ecppll generated, as published: olofk/serv servant/ecp5_evn_pll.v ("ecppll -i 12
    # -o 16") and dan-rodrigues/icestation-32 hardware/ulx3s/generated_pll_33_75.v (25 MHz in,
    # 168.75 MHz on CLKOP): CLKI_DIV, CLKFB_DIV, CLKOP_DIV, CLKOP_CPHASE.
    (12, 16, (3, 4, 37, 18)),
    (25, 168.75, (4, 27, 4, 2)),
])
def test_ecp5_settings_match_published_ecppll_output(in_mhz, out_mhz, expected):
    s = pll_setting("ecp5", in_mhz * MHZ, out_mhz * MHZ)
    assert (*dividers(s), s.params["CLKOP_CPHASE"]) == expected
    assert s.achieved_hz == out_mhz * MHZ


def test_ice40_settings_for_the_icebreaker_clock():
    s = pll_setting("ice40", 12 * MHZ, 48 * MHZ)
    assert s.params == {"FEEDBACK_PATH": "SIMPLE", "DIVR": 0, "DIVF": 63, "DIVQ": 4,
                        "FILTER_RANGE": 1}
    assert (s.achieved_hz, s.pfd_hz, s.vco_hz) == (48e6, 12e6, 768e6)
    assert s.attributes == {}
    s = pll_setting("ice40", 12 * MHZ, 24 * MHZ)
    assert s.params == {"FEEDBACK_PATH": "SIMPLE", "DIVR": 0, "DIVF": 63, "DIVQ": 5,
                        "FILTER_RANGE": 1}
    assert (s.achieved_hz, s.vco_hz) == (24e6, 768e6)
    # "icepll -i 12 -o 60", as its output is quoted in many projects: DIVR 0, DIVF 79, DIVQ 4,
    # FILTER_RANGE 1, VCO 960 MHz.
    s = pll_setting("ice40", 12 * MHZ, 60 * MHZ)
    assert (*dividers(s), s.params["FILTER_RANGE"], s.vco_hz) == (0, 79, 4, 1, 960e6)


@pytest.mark.parametrize("in_mhz, out_mhz, filter_range", [
    (12, 48, 1), (25, 100, 2), (40, 80, 3), (50, 100, 4), (100, 100, 5), (120, 120, 6)])
def test_ice40_filter_range_follows_the_phase_detector(in_mhz, out_mhz, filter_range):
    # icepll's table: PFD below 17, 26, 44, 66, 101 MHz, else 6.
    s = pll_setting("ice40", in_mhz * MHZ, out_mhz * MHZ)
    assert s.params["DIVR"] == 0 and s.pfd_hz == in_mhz * MHZ
    assert s.params["FILTER_RANGE"] == filter_range


REQUESTS = {
    ("ecp5", 25): [10, 33.333, 37.5, 50, 56.25, 64, 99.9, 130, 166.667, 250, 400],
    ("ecp5", 12): [16, 48, 72, 100, 200],
    ("ice40", 12): [16.2, 24, 31.5, 33, 48, 50, 66, 100, 133, 200, 270],
}


@pytest.mark.parametrize("family, in_mhz, out_mhz",
                         [(f, i, o) for (f, i), outs in REQUESTS.items() for o in outs])
def test_settings_are_the_tools_choice_within_every_limit(family, in_mhz, out_mhz):
    in_hz, out_hz = round(in_mhz * MHZ), round(out_mhz * MHZ)
    s = pll_setting(family, in_hz, out_hz)
    reference = ecppll_reference if family == "ecp5" else icepll_reference
    assert dividers(s) == reference(in_hz, out_hz)
    limits = LIMITS[family]
    assert limits["pfd"][0] <= s.pfd_hz <= limits["pfd"][1]
    assert limits["vco"][0] <= s.vco_hz <= limits["vco"][1]
    assert limits["out"][0] <= s.achieved_hz <= limits["out"][1]
    assert s.achieved_hz == pytest.approx(float(output_of(s)), abs=1e-6)
    assert abs(s.achieved_hz - out_hz) <= TOLERANCE * out_hz


def test_reachable_outputs_from_the_board_clocks():
    # iCE40 from 12 MHz: PFD 12 MHz only (6 MHz is below 10), VCO 12 * 45..88 MHz, so the
    # fastest is 540 / 2 and the slowest 12 * 43 / 32 (16 MHz at least).
    assert reachable("ice40", 12 * MHZ) == (16.125e6, 270e6)
    assert reachable("ecp5", 25 * MHZ) == (10e6, 400e6)


def test_fastest_setting_at_or_below_a_limit():
    s = fastest_setting("ice40", 12 * MHZ, 31.578e6)  # 33.24 MHz less 5 %
    assert s.achieved_hz == s.out_hz == 31.5e6 and dividers(s) == (0, 83, 5)
    # ECP5 from 25 MHz: 25 / CLKI_DIV * CLKFB_DIV at or below 47.5 MHz, CLKI_DIV <= 8 (the
    # PFD's 3.125 MHz floor): 25 / 8 * 15 = 46.875 beats 25 / 7 * 13 = 46.43 and 25 / 6 * 11.
    s = fastest_setting("ecp5", 25 * MHZ, 47.5e6)
    assert s.achieved_hz == 46.875e6 and dividers(s)[:2] == (8, 15)
    assert fastest_setting("ecp5", 25 * MHZ, 50e6).achieved_hz == 50e6


# -- refusals -----------------------------------------------------------------------------------

@pytest.mark.parametrize("call, message", [
    (lambda: pll_setting("ice40", 12e6, 300e6),
     "300 MHz is outside what the ice40 PLL makes from 12 MHz: 16.125..270 MHz"),
    (lambda: pll_setting("ice40", 12e6, 10e6),
     "10 MHz is outside what the ice40 PLL makes from 12 MHz: 16.125..270 MHz"),
    # Between 264 (DIVF 87, DIVQ 2) and 270 (DIVF 44, DIVQ 1), both 1.1 % off: icepll keeps
    # the first it finds.
    (lambda: pll_setting("ice40", 12e6, 267e6),
     "the ice40 PLL cannot make 267 MHz from 12 MHz within 1 %: the closest is 270 MHz"),
    (lambda: pll_setting("ice40", 12e6, 16.7e6),
     "the ice40 PLL cannot make 16.7 MHz from 12 MHz within 1 %: the closest is 16.875 MHz"),
    # From 25 MHz the ECP5's PFD (3.125 MHz at least) allows CLKI_DIV up to 8 only: outputs
    # 25 / CLKI_DIV * CLKFB_DIV leave gaps, 46.875 (15/8) and 50 (2) around 47.5 MHz.
    (lambda: pll_setting("ecp5", 25e6, 47.5e6),
     "the ecp5 PLL cannot make 47.5 MHz from 25 MHz within 1 %: the closest is 46.875 MHz"),
    # 64 and 66 MHz are both 1.5 % off 65: the VCO nearer 600 MHz wins (66 * 9 = 594).
    (lambda: pll_setting("ecp5", 12e6, 65e6),
     "the ecp5 PLL cannot make 65 MHz from 12 MHz within 1 %: the closest is 66 MHz"),
    (lambda: pll_setting("ecp5", 25e6, 5e6),
     "5 MHz is outside what the ecp5 PLL makes from 25 MHz: 10..400 MHz"),
    (lambda: pll_setting("ecp5", 25e6, 500e6),
     "500 MHz is outside what the ecp5 PLL makes from 25 MHz: 10..400 MHz"),
    (lambda: pll_setting("ecp5", 2e6, 50e6),
     "the ecp5 PLL takes a reference clock of 8..400 MHz, not 2 MHz"),
    (lambda: pll_setting("ice40", 200e6, 50e6),
     "the ice40 PLL takes a reference clock of 10..133 MHz, not 200 MHz"),
    (lambda: pll_setting("xilinx", 25e6, 50e6),
     "PLL family must be one of ecp5, ice40, not 'xilinx'"),
    (lambda: pll_setting("ecp5", 25e6, math.nan),
     "PLL output must be a positive number of Hz, not nan"),
    (lambda: pll_setting("ecp5", 25e6, True),
     "PLL output must be a positive number of Hz, not True"),
    (lambda: pll_setting("ecp5", -25e6, 50e6),
     "PLL reference clock must be a positive number of Hz, not -25000000.0"),
    (lambda: fastest_setting("ice40", 12e6, 16e6),
     "the ice40 PLL makes nothing at or below 16 MHz from 12 MHz: its slowest output is "
     "16.125 MHz"),
    (lambda: Pll(family="ecp5", in_hz=25e6, out_hz=50e6, domain="sync"),
     "PLL domain must be a name other than 'sync', not 'sync'"),
    (lambda: Pll(family="ice40", in_hz=12e6, out_hz=300e6),
     "300 MHz is outside what the ice40 PLL makes from 12 MHz: 16.125..270 MHz"),
])
def test_refusals_are_one_exact_line(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


# -- the block in a design ------------------------------------------------------------------------

class Blinky(Elaboratable):
    """A counter per domain to a LED each: the scratch top of the real builds."""

    def __init__(self, out_hz):
        self.out_hz = out_hz

    def elaborate(self, platform):
        m = Module()
        m.submodules.pll = Pll.for_platform(platform, out_hz=self.out_hz)
        fast, slow = Signal(24), Signal(24)
        m.d.macro += fast.eq(fast + 1)
        m.d.sync += slow.eq(slow + 1)
        for n, bit in enumerate((fast[-1], slow[-1])):
            m.submodules[f"led{n}"] = led = io.Buffer("o", platform.request("led", n, dir="-"))
            m.d.comb += led.o.eq(bit)
        return m


def _plan(board, out_hz):
    plat = flow.platform(board)
    plan = plat.prepare(Blinky(out_hz), name="top")  # the build plan only: no tool runs
    return plat, {name: plan.files[name] for name in plan.files}


def test_ecp5_board_gets_an_ehxplll_and_both_clock_constraints():
    plat, files = _plan("ulx3s-25f", 100 * MHZ)
    il = files["top.il"]
    assert "cell \\EHXPLLL \\pll" in il
    for line in ("parameter \\CLKI_DIV 1", "parameter \\CLKFB_DIV 4", "parameter \\CLKOP_DIV 6",
                 "parameter \\FEEDBK_PATH \"CLKOP\"", "attribute \\ICP_CURRENT \"12\"",
                 "connect \\CLKOP \\macro_clk", "connect \\CLKFB \\macro_clk"):
        assert line in il, line
    lpf = files["top.lpf"]
    assert re.search(r'FREQUENCY NET "[\w.]*macro_clk" 100000000\.0 HZ;', lpf), lpf
    assert 'FREQUENCY PORT "clk25_0__io" 25000000.0 HZ;' in lpf
    assert "cd_sync" in il  # the platform still makes sync (GSR reset)


def test_icebreaker_pll_takes_the_clock_pad_and_keeps_sync_at_12_mhz():
    plat, files = _plan("icebreaker", 48 * MHZ)
    il = files["top.il"]
    assert "cell \\SB_PLL40_2_PAD \\pll" in il and "SB_PLL40_CORE" not in il
    for line in ("parameter \\DIVR 4'0000", "parameter \\DIVF 7'0111111",
                 "parameter \\DIVQ 3'100", "parameter \\FILTER_RANGE 3'001",
                 "parameter \\FEEDBACK_PATH \"SIMPLE\"", "connect \\PLLOUTGLOBALB \\macro_clk"):
        assert line in il, line
    # sync is the pad's clock passed through port A, with the platform's power-on reset
    # (15 us at 12 MHz: 180 cycles) in place of amaranth's, which no longer runs.
    assert "connect \\PLLOUTGLOBALA" in il and "cd_sync" not in il
    assert re.search(r"wire width 8 \\timer", il)
    pcf = files["top.pcf"]
    assert "set_io clk12_0__io 35" in pcf
    assert re.search(r"set_frequency [\w.]*macro_clk 48\.0\n", pcf), pcf
    assert "set_frequency clk12_0__io 12.0" in pcf


def test_without_a_platform_the_ice40_pll_is_a_core_on_the_sync_clock():
    pll = Pll(family="ice40", in_hz=12 * MHZ, out_hz=24 * MHZ)
    il = rtlil.convert(pll, ports=[pll.locked])
    assert "cell \\SB_PLL40_CORE \\pll" in il
    assert "connect \\REFERENCECLK \\clk" in il and "connect \\PLLOUTGLOBAL \\macro_clk" in il
    assert pll.setting.achieved_hz == 24e6 and pll.domain == "macro"


def test_clock_report_names_the_domains():
    plat, _ = _plan("icebreaker", 48 * MHZ)
    report = {"fmax": {  # nextpnr's --report: net names, MHz, constraints from periods
        "clk": {"achieved": 52.41, "constraint": 12.00004768371582},
        "core.clear_pulse.macro_clk": {"achieved": 47.5, "constraint": 48.00076675415039},
        "other": {"achieved": 90.0},
    }}
    assert flow.clock_domains(report, plat) == {
        "link": {"net": "clk", "requested_mhz": 12.0, "achieved_mhz": 52.41, "met": True},
        "macro": {"net": "core.clear_pulse.macro_clk", "requested_mhz": 48.0,
                  "achieved_mhz": 47.5, "met": False},
        "other": {"net": "other", "requested_mhz": 12.0, "achieved_mhz": 90.0, "met": True},
    }
    plat, _ = _plan("ulx3s-25f", 50 * MHZ)
    report = {"fmax": {"$glbnet$cd_sync.clk": {"achieved": 305.06, "constraint": 25.0},
                       "$glbnet$macro_clk": {"achieved": 286.04, "constraint": 50.0}}}
    assert {k: v["net"] for k, v in flow.clock_domains(report, plat).items()} == \
        {"link": "$glbnet$cd_sync.clk", "macro": "$glbnet$macro_clk"}


# -- imcgen fpga --clock ----------------------------------------------------------------------

def imcgen(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "imcgen.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("args, message", [
    (["--board", "icebreaker", "--preset", "small", "--clock", "300"],
     "--clock = 300.0: 300 MHz is outside what the ice40 PLL makes from 12 MHz: 16.125..270 MHz"),
    (["--board", "icebreaker", "--preset", "small", "--clock", "267"],
     "--clock = 267.0: the ice40 PLL cannot make 267 MHz from 12 MHz within 1 %: the closest is "
     "270 MHz"),
    (["--board", "ulx3s-25f", "--preset", "small", "--clock", "5"],
     "--clock = 5.0: 5 MHz is outside what the ecp5 PLL makes from 25 MHz: 10..400 MHz"),
    (["--synth-only", "--clock", "50"],
     "--clock = 50.0: needs --board (--synth-only has no PLL; with --fmax, --freq MHZ is the "
     "clock to meet)"),
])
def test_cli_refuses_a_clock_the_pll_cannot_make(args, message, tmp_path):
    result = imcgen("fpga", *args, "-o", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"imcgen: error: {message}\n" and result.stdout == ""
    assert not (tmp_path / "out").exists()


class _FakeTop:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


def _fake_build(achieved, seen):
    """``flow.build`` as nextpnr would report a link at 12 MHz and the macro at its clock."""

    def build(top, board, out, **kwargs):
        out.mkdir(parents=True, exist_ok=True)
        seen.append(top.kwargs)
        macro = top.kwargs["macro_hz"] / MHZ
        clocks = {"link": {"net": "clk", "requested_mhz": 12.0, "achieved_mhz": 50.0,
                           "met": True},
                  "macro": {"net": "macro_clk", "requested_mhz": macro,
                            "achieved_mhz": achieved, "met": achieved >= macro}}
        zero = dict.fromkeys(("luts", "ffs", "brams", "dsps", "io"), 1)
        return {"board": board, "device": "iCE40UP5K", "package": "SG48", "family": "ice40",
                "bitstream": str(out / "top.bin"), "resources": zero, "placed": zero,
                "device_totals": zero, "clocks": clocks, "worst_clock": "macro",
                "requested_mhz": macro, "fmax_mhz": achieved, "timing_met": achieved >= macro,
                "hierarchy": [], "critical_path": None, "seconds": 1.0,
                "stages": {"yosys": {"seconds": 1.0, "peak_mb": 1.0}}}

    return build


def _fpga(monkeypatch, capsys, out, achieved, *args):
    from imcgen import cli
    from imcgen.hdl import board_top

    seen = []
    monkeypatch.setattr(board_top, "BoardTop", _FakeTop)  # the top is not what this tests
    monkeypatch.setattr(flow, "build", _fake_build(achieved, seen))
    code = cli.main(["fpga", "--preset", "small", "--board", "icebreaker", "--no-hierarchy",
                     "-o", str(out), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err, seen[0]["macro_hz"] if seen else None


def test_cli_default_clock_comes_from_the_board_then_from_the_last_build(tmp_path,
                                                                          monkeypatch, capsys):
    out = tmp_path / "ice"
    code, stdout, _, macro_hz = _fpga(monkeypatch, capsys, out, 33.24)
    assert (code, macro_hz) == (0, 24_000_000)  # flow.BOARDS["icebreaker"].macro_mhz
    report = json.loads((out / "report.json").read_text())
    assert report["macro_clock"]["source"] == "default for icebreaker"
    assert report["command"] == (f"imcgen fpga --preset small --board icebreaker --clock 24 "
                                 f"--no-hierarchy -o {out}")
    assert "Fmax link 50.00 MHz for a 12 MHz clock: met, margin +38.00 MHz (+317 %)" in stdout
    assert "Fmax macro 33.24 MHz for a 24 MHz clock: met, margin +9.24 MHz (+39 %)" in stdout
    assert "macro clock 24 MHz from the 12 MHz board clock (DIVR 0, DIVF 63, DIVQ 5; VCO 768 " \
           "MHz): default for icebreaker" in stdout
    # The same configuration again: the fastest PLL output at or below 33.24 MHz less 5 %.
    code, stdout, _, macro_hz = _fpga(monkeypatch, capsys, out, 33.0)
    assert (code, macro_hz) == (0, 31_500_000)
    report = json.loads((out / "report.json").read_text())
    assert report["macro_clock"]["source"] == \
        f"the macro's Fmax 33.24 MHz in {out / 'report.json'}, less 5 %"
    assert "--clock 31.5 " in report["command"]
    # Another configuration: the earlier build says nothing about it.
    report["configuration"] = load_config("default").to_dict()
    (out / "report.json").write_text(json.dumps(report))
    assert _fpga(monkeypatch, capsys, out, 30.0)[3] == 24_000_000
    # --clock wins, and a domain that misses its clock fails the command, naming it.
    code, stdout, stderr, macro_hz = _fpga(monkeypatch, capsys, out, 40.0, "--clock", "48")
    assert (code, macro_hz) == (1, 48_000_000)
    assert "Fmax macro 40.00 MHz for a 48 MHz clock: MISSED" in stdout
    assert stderr.splitlines()[-1] == \
        "imcgen: timing: the macro domain's Fmax 40.00 MHz misses its 48 MHz clock"


def test_critical_path_of_the_worst_clock():
    def path(delay, cell):
        return [{"type": "logic", "delay": delay, "from": {"cell": f"{cell}.a"},
                 "to": {"cell": f"{cell}.b"}}]

    report = {"critical_paths": [
        {"from": "posedge clk", "to": "posedge clk", "path": path(30.0, "link")},
        {"from": "posedge macro_clk", "to": "posedge macro_clk", "path": path(20.0, "macro")},
        {"from": "posedge clk", "to": "posedge macro_clk", "path": path(40.0, "cross")},
    ]}
    # The link's 30 ns at 12 MHz is not what limits a macro at 48 MHz (20.8 ns).
    assert flow.critical_path(report, clock="macro_clk")["delay_ns"] == 20.0
    assert flow.critical_path(report, clock="clk")["delay_ns"] == 30.0
    assert flow.critical_path(report)["delay_ns"] == 40.0  # one clock: the longest, as before
    assert flow.critical_path(report, clock="other")["delay_ns"] == 40.0


def test_cli_default_clock_after_a_build_slower_than_the_pll(tmp_path, monkeypatch, capsys):
    out = tmp_path / "ice"
    assert _fpga(monkeypatch, capsys, out, 10.0, "--clock", "24")[0] == 1  # missed
    code, stdout, _, macro_hz = _fpga(monkeypatch, capsys, out, 17.0)
    assert (code, macro_hz) == (0, 16_125_000)  # 10 MHz less 5 %: the slowest output
    assert "the PLL's slowest: the macro's Fmax 10.00 MHz in " in stdout
