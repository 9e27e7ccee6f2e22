# amaranth: UnusedElaboratable=no
"""FPGA flow: the UART echo to a real bitstream, synthesis statistics, one-line errors.

The iCE40 build (iCEBreaker, the smallest real bitstream) runs by default; ECP5 builds are
opt-in (``IMCGEN_SLOW=1``). The first YoWASP run of a machine compiles the tools' WebAssembly
(about a minute, cached in ``~/.cache/YoWASP``).
"""

import fcntl
from pathlib import Path

import pytest

from imcgen import fpga
from imcgen.hdl.uart import Uart, UartEcho, baud_divisor
from imcgen.toolchain import cache_dir


@pytest.fixture(autouse=True)
def one_fpga_test_at_a_time():
    """Serialise these tests across xdist workers: on a fresh machine the first two would
    both compile the same WebAssembly (a minute of both cores), and Yosys and nextpnr take
    a few hundred MB each."""
    path = cache_dir() / "fpga-tests.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def uart_ffs(divisor):
    """Register bits of imcgen.hdl.uart.Uart per module, counted by hand from its source."""
    timer = (divisor - 1).bit_length()  # Signal(range(divisor))
    # receiver: synchroniser 2, timer, bit 3, shift 8, 5-state FSM 3, o.valid 1, o.payload 8,
    # two 8-bit error counters; transmitter: tx 1, timer, bit 3, shift 8, 4-state FSM 2.
    return {"receiver": 2 + timer + 3 + 8 + 3 + 1 + 8 + 2 * 8, "receiver_rx_sync": 2,
            "transmitter": 1 + timer + 3 + 8 + 2}


UP5K_BIN_BYTES = 104090  # an iCE40 UP5K bitstream has a fixed size


def _check_echo(report, board, bitstream_suffix):
    bitstream = Path(report["bitstream"])
    assert bitstream.is_file() and bitstream.suffix == bitstream_suffix
    assert report["board"] == board
    used, totals = report["placed"], report["device_totals"]
    for key in ("luts", "ffs", "io"):
        assert 0 < report["resources"][key] <= used[key] < totals[key], key
    assert 0 <= used["brams"] < totals["brams"]
    assert used["dsps"] == report["resources"]["dsps"] == 0 < totals["dsps"]
    assert report["resources"]["io"] == 5  # clock, rx, tx, two LEDs
    assert report["clocks"], "nextpnr reported no clock"
    for clock in report["clocks"].values():
        assert clock["requested_mhz"] == pytest.approx(report["requested_mhz"], rel=1e-4)
        assert clock["achieved_mhz"] >= clock["requested_mhz"]
    assert report["timing_met"] and report["fmax_mhz"] >= report["requested_mhz"]
    modules = {row["module"]: row for row in report["hierarchy"]}
    assert modules["top"]["luts_share"] == 1.0
    assert 0 < modules["top.echo.uart.receiver"]["luts_share"] < 1
    divisor = baud_divisor(report["requested_mhz"] * 1e6, 115200)
    for module, ffs in uart_ffs(divisor).items():
        assert modules[f"top.echo.uart.{module.replace('_', '.', 1)}"]["ffs"] == ffs, module
    assert set(report["stages"]) == {"yosys", "nextpnr", "pack"}
    return bitstream


def test_uart_echo_builds_for_icebreaker(tmp_path):
    lines = []
    report = fpga.build(UartEcho(baud=115200), "icebreaker", tmp_path / "build",
                        progress=lines.append)
    bitstream = _check_echo(report, "icebreaker", ".bin")
    assert bitstream.stat().st_size == UP5K_BIN_BYTES
    assert (report["device"], report["requested_mhz"]) == ("iCE40UP5K", 12.0)
    assert report["device_totals"]["luts"] == 5280
    # Progress streamed every tool's stages, in order.
    assert any(line.startswith("yosys: ") and "SYNTH_ICE40" in line for line in lines)
    assert any(line.startswith("nextpnr-ice40: Max frequency") for line in lines)
    assert lines.index("icepack: start") > lines.index("nextpnr-ice40: start")


@pytest.mark.slow
@pytest.mark.parametrize("board", ["ulx3s-25f", "ulx3s-85f"])
def test_uart_echo_builds_for_ulx3s(board, tmp_path):
    report = fpga.build(UartEcho(baud=115200), board, tmp_path / "build")
    bitstream = _check_echo(report, board, ".bit")
    assert bitstream.stat().st_size > 0
    assert report["requested_mhz"] == 25.0


@pytest.mark.parametrize("family", fpga.FAMILIES)
def test_synth_only_counts_every_register(family, tmp_path):
    report = fpga.synth_only(Uart(divisor=16), family, build_dir=tmp_path)
    expected = uart_ffs(16)
    assert report["top"] == "top"
    assert report["resources"]["ffs"] == expected["receiver"] + expected["transmitter"] == 63
    # clk, rst, rx, tx, two 10-bit streams, clear, two flags, two 8-bit counters, busy
    assert report["resources"]["io"] == 2 + 2 + 2 * 10 + 1 + 2 + 2 * 8 + 1
    assert report["resources"]["brams"] == report["resources"]["dsps"] == 0
    rows = {row["module"]: row for row in report["hierarchy"]}
    assert list(rows) == ["top", "top_receiver", "top_receiver_rx_sync", "top_transmitter"]
    assert [rows[m]["depth"] for m in rows] == [0, 1, 2, 1]
    for module, ffs in expected.items():
        assert rows[f"top_{module}"]["ffs"] == ffs, module
    # The top has no logic of its own: its children's LUTs add up to it.
    assert rows["top_receiver"]["luts"] + rows["top_transmitter"]["luts"] == rows["top"]["luts"]
    assert rows["top_receiver"]["luts_share"] + rows["top_transmitter"]["luts_share"] == \
        pytest.approx(1.0, abs=1e-3)


def test_unknown_board_and_family_are_one_line_errors(tmp_path):
    with pytest.raises(fpga.FpgaError) as error:
        fpga.build(UartEcho(), "arty", tmp_path)
    assert str(error.value) == ("unknown board 'arty': one of ulx3s-25f, ulx3s-45f, ulx3s-85f, "
                                "icebreaker")
    with pytest.raises(fpga.FpgaError) as error:
        fpga.synth_only(Uart(divisor=16), "xc7", build_dir=tmp_path)
    assert str(error.value) == "unknown FPGA family 'xc7': one of ecp5, ice40"


def test_missing_tool_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("YOSYS", str(tmp_path / "no-yosys"))
    with pytest.raises(fpga.FpgaError) as error:
        fpga.synth_only(Uart(divisor=16), build_dir=tmp_path)
    assert str(error.value) == f"yosys: YOSYS={tmp_path / 'no-yosys'} is not an executable"


def test_failing_tool_names_its_log(tmp_path):
    source = tmp_path / "broken.v"
    source.write_text("module broken(input a, output b);\n  assign b = ;\nendmodule\n")
    with pytest.raises(fpga.FpgaError) as error:
        fpga.synth_only(source, build_dir=tmp_path / "build")
    message = str(error.value)
    log = tmp_path / "build" / "broken.yosys.log"
    assert "\n" not in message
    assert message.startswith("yosys failed (exit code 1): broken.v:2: ERROR: syntax error")
    assert message.endswith(f"; log {log}")
    assert log.is_file()
