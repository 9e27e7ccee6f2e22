"""A simulated board on a pseudo-terminal: the board top on Verilator behind ``/dev/pts/N``.

::

    with simulated_board(cfg) as sim:
        with Board(sim.port, cfg, timeout=sim.timeout) as macro:
            ...

The board top (:class:`imcgen.hdl.board_top.BoardCore`, UART divisor :data:`SIM_DIVISOR`) is
built once (cached like every Verilator build) and run by cocotb in a thread; the cocotb test
:func:`imcgen.fpga.tb_board.board_pty` relays the pseudo-terminal to its UART pins. No board, no
serial hardware: any program that opens the port (pyserial, ``imcgen board --port``) talks to
the simulation as it would to a board. The baud rate set on the port means nothing here; the
simulated line runs at ``SIM_DIVISOR`` cycles per bit.
"""

import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from imcgen.core.errors import SimulationError

__all__ = ["SIM_DIVISOR", "SIM_TIMEOUT_CYCLES", "SimulatedBoard", "simulated_board",
           "sim_core"]

#: Clock cycles per bit of the simulated UART (fast: the protocol is what is simulated).
SIM_DIVISOR = 8
#: A frame idle this long mid-way is answered as truncated (50 byte times).
SIM_TIMEOUT_CYCLES = 4000


def sim_core(cfg):
    """The board top a simulated board runs for ``cfg``: INFO reports the simulated clocks
    (the link's :data:`imcgen.sim.engine.CLOCK_NS`, the macro's
    :data:`imcgen.fpga.tb_board.MACRO_CLOCK_NS`), so on-chip rates are in simulated time."""
    from imcgen.fpga.tb_board import MACRO_CLOCK_NS
    from imcgen.hdl.board_top import BoardCore
    from imcgen.sim.engine import CLOCK_NS

    return BoardCore(config=cfg, divisor=SIM_DIVISOR, timeout_cycles=SIM_TIMEOUT_CYCLES,
                     clk_hz=round(1e9 / CLOCK_NS), macro_hz=round(1e9 / MACRO_CLOCK_NS),
                     macro_timeout_cycles=round(SIM_TIMEOUT_CYCLES * CLOCK_NS / MACRO_CLOCK_NS))


@dataclass
class SimulatedBoard:
    port: str            # /dev/pts/N
    work: Path           # simulator log and files
    build_seconds: float
    timeout: float = 60.0  # seconds a host should wait for a response from a simulation


@contextmanager
def simulated_board(cfg, *, work_dir=None, progress=None, start_timeout=120.0):
    """Build and start the simulated board; yield a :class:`SimulatedBoard`; stop it at exit.

    Raises :class:`SimulationError` if the build fails or the simulation does not come up.
    """
    from imcgen.sim.runner import build, run
    from imcgen.sim.verilog import write_design

    keep = work_dir is not None
    work = Path(work_dir).resolve() if keep else Path(tempfile.mkdtemp(prefix="imcgen-board-"))
    work.mkdir(parents=True, exist_ok=True)
    name_file, stop_file = work / "pty", work / "stop"
    name_file.unlink(missing_ok=True)
    stop_file.unlink(missing_ok=True)
    try:
        t0 = time.perf_counter()
        if progress:
            progress("building the simulated board (Verilator)")
        design = write_design(sim_core(cfg), "board_top", work / "rtl")
        build_dir = build(design)
        build_seconds = time.perf_counter() - t0
        failure = []

        def target():
            import json

            try:
                run(design, build_dir, "imcgen.fpga.tb_board", test_dir=work / "sim",
                    env={"IMCGEN_CONFIG": json.dumps(cfg.to_dict()),
                         "IMCGEN_UART_DIVISOR": str(SIM_DIVISOR),
                         "IMCGEN_PTY_FILE": str(name_file), "IMCGEN_PTY_STOP": str(stop_file),
                         "COCOTB_TEST_FILTER": r"\.board_pty$"})
            except Exception as err:  # reported from the calling thread
                failure.append(err)

        worker = threading.Thread(target=target, daemon=True)
        worker.start()
        deadline = time.monotonic() + start_timeout
        while not (name_file.exists() and name_file.read_text().strip()):
            if failure or not worker.is_alive():
                raise failure[0] if failure else SimulationError(
                    f"the simulated board stopped before opening its port; see "
                    f"{work / 'sim' / 'sim.log'}", work / "sim" / "sim.log")
            if time.monotonic() > deadline:
                stop_file.touch()
                raise SimulationError(f"the simulated board did not open its port within "
                                      f"{start_timeout:g} s; see {work / 'sim' / 'sim.log'}",
                                      work / "sim" / "sim.log")
            time.sleep(0.05)
        board = SimulatedBoard(port=name_file.read_text().strip(), work=work,
                               build_seconds=build_seconds)
        try:
            yield board
        finally:
            stop_file.touch()
            worker.join(30)
        if failure:
            raise failure[0]
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
