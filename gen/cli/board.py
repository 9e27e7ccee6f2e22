"""``imcgen board``: the macro on a board (``--port``) or on its simulation (``--sim``: the board
top on Verilator behind a pseudo-terminal), over its UART link: random weights and vectors,
every output and cycle count checked against the golden model.
"""

import os
import stat
import sys
import time
from pathlib import Path

from imcgen.cli import common
from imcgen.cli.common import EXIT_CODES
from imcgen.core.errors import ImcError
from imcgen.core.requirements import require

__all__ = ["add_parser"]


def add_parser(commands, command):
    board = commands.add_parser(
        "board", help="run the macro on a board (or its simulation) over the UART link",
        description="Load random weights and run random vectors through the macro on a board "
                    "built by imcgen fpga (or, --sim, on the board top simulated behind a "
                    "pseudo-terminal), checking every output and cycle count against the "
                    "golden model.",
        epilog=EXIT_CODES["board"])
    common.config_args(board)
    where = board.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", metavar="PORT", help="serial port of the board "
                                                      "(/dev/ttyUSB0, /dev/pts/N...)")
    where.add_argument("--sim", action="store_true",
                       help="simulate the board top (Verilator) behind a pseudo-terminal "
                            "and drive it through that port")
    board.add_argument("--baud", type=common.int_in(1, 12_000_000), default=115200,
                       help="bit rate of the board's UART (default 115200)")
    board.add_argument("--vectors", default=32,
                       type=common.int_in(1, 100_000, "a positive integer (at most 100000)"),
                       help="random input vectors to run (default 32)")
    board.add_argument("--seed", type=common.seed, default=0, help="stimulus seed")
    board.add_argument("--timeout", type=common.number_in(0.0, 3600.0),
                       help="seconds to wait for each response (default 2; 60 with --sim)")
    board.add_argument("--program", action="store_true",
                       help="program the weights by write-verify (array mode) instead of "
                            "loading them, and check every program result")
    board.set_defaults(run=cmd_board)




def _check_port(port):
    text = str(port)
    if not text.strip():
        raise ImcError("--port", text, "must name a serial port, not be empty")
    path = Path(text)
    if not path.exists():
        raise ImcError("--port", text, "no such serial port (a board's USB UART is usually "
                                       "/dev/ttyUSB0 or /dev/ttyACM0; --sim simulates one)")
    mode = path.stat().st_mode
    if not stat.S_ISCHR(mode):
        raise ImcError("--port", text, "is not a serial port (not a character device)")
    if not os.access(path, os.R_OK | os.W_OK):
        raise ImcError("--port", text, "cannot be opened for reading and writing (permission "
                                       "denied: the dialout group?)")
    # A character device that is not a terminal (/dev/null), or the controlling terminal
    # itself, would take the link's bytes without a board behind it.
    import termios

    if path.resolve() == Path("/dev/tty").resolve():
        raise ImcError("--port", text, "is the controlling terminal, not a serial port")
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as err:
        raise ImcError("--port", text, f"cannot be opened ({err.strerror})") from None
    try:
        termios.tcgetattr(fd)
        if os.ttyname(fd) == _own_terminal():
            raise ImcError("--port", text, "is this process's own terminal, not a serial port")
    except termios.error:
        raise ImcError("--port", text, "is not a serial port (a character device that takes "
                                       "no serial settings)") from None
    finally:
        os.close(fd)
    return text


def _own_terminal():
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        try:
            return os.ttyname(stream.fileno())
        except (OSError, ValueError, AttributeError):
            continue
    return None


def cmd_board(args):
    import numpy as np

    from imcgen.core.errors import SimulationError
    from imcgen.fpga.host import Board, BoardError, ConfigMismatch

    cfg = common.load(args)
    require("board", cfg)
    if args.program:
        require("programming", cfg)
    if args.vectors > 100_000:
        raise ImcError("--vectors", args.vectors, "must be at most 100000")
    if args.port is not None:
        _check_port(args.port)
    try:
        import serial  # noqa: F401
    except ImportError:
        raise ImcError("--port", args.port, "needs pyserial: pip install 'imcgen[fpga]'") \
            from None

    from imcgen.apps.soak import stimulus

    rng = np.random.default_rng(args.seed)
    W, X = stimulus(cfg, rng, args.vectors)
    X = X[:args.vectors]

    def run(port, timeout):
        try:
            macro = Board(port, cfg, baud=args.baud, timeout=timeout)
        except ConfigMismatch as error:
            raise ImcError("--preset/--config", port, str(error)) from None
        with macro:
            return _demo(macro, cfg, W, X, program=args.program)

    try:
        if args.sim:
            from imcgen.fpga.board_sim import simulated_board

            sys.stderr.write("imcgen: building and starting the simulated board...\n")
            with simulated_board(cfg) as sim:
                sys.stderr.write(f"imcgen: simulated board on {sim.port} (build "
                                 f"{sim.build_seconds:.1f} s)\n")
                ok = run(sim.port, args.timeout or sim.timeout)
        else:
            ok = run(args.port, args.timeout or 2.0)
    except BoardError as error:
        sys.stderr.write(f"imcgen: link failed: {error}\n")
        return 1
    except SimulationError as error:
        sys.stderr.write(f"imcgen: simulation failed: {error.summary}\n")
        return 1
    return 0 if ok else 1


def _rates(macro, cfg, expected, vectors, seconds, line_bytes):
    """Print the on-chip rate (each batch run's cycles, counted by the board at its macro
    clock, checked against the golden model's) and the link's; False if a run's count
    differs from the prediction."""
    from imcgen.core.timing import batch_cycles

    ok, start = True, 0
    for run in macro.runs:
        reads = expected.reads[start:start + run.vectors]
        predicted = batch_cycles(cfg, reads)
        slack = int((reads == 0).any(axis=1).sum()) if cfg.overlap else 0
        ok &= predicted <= run.cycles <= predicted + slack
        start += run.vectors
    if macro.runs:
        cycles = sum(run.cycles for run in macro.runs)
        hz = macro.runs[0].macro_hz
        rate = f"{vectors * hz / cycles:,.0f} MVM/s at the macro's {hz / 1e6:g} MHz" if hz \
            else "no macro clock reported"
        sys.stdout.write(f"on chip: {len(macro.runs)} batch run(s), {cycles} macro cycles "
                         f"counted by the board ({'as' if ok else 'NOT as'} the golden model "
                         f"predicts): {cycles / vectors:.1f} cycles/MVM, {rate}\n")
    per_vector = line_bytes / vectors
    at_baud = f"; at {macro.baud:,.0f} baud the line carries {macro.baud / 10 / per_vector:,.0f}" \
        f" MVM/s" if macro.baud else ""
    sys.stdout.write(f"over the link: {vectors / seconds:,.1f} MVM/s measured, {per_vector:.1f} "
                     f"bytes on the line per MVM{at_baud}\n")
    return ok


def _demo(macro, cfg, W, X, program=False):
    """The demo over an open link; prints what it checked; True when everything matched."""
    import numpy as np

    from imcgen import golden

    ok = True
    t0 = time.perf_counter()
    info = macro.info
    divisor = info["divisor"] + info["divisor_frac"] / 16
    clock = f", link clock {info['clk_hz'] / 1e6:g} MHz ({macro.baud:,.0f} baud)" \
        if info["clk_hz"] else ""
    if info["macro_hz"]:
        clock += f", macro clock {info['macro_hz'] / 1e6:g} MHz"
    sys.stdout.write(f"board: protocol {info['version']}, configuration digest "
                     f"0x{info['config_digest']:08x} (matches), RX FIFO {info['rx_fifo_depth']} "
                     f"bytes, batch memory {info['batch_depth']} vectors, {divisor:g} "
                     f"cycles/bit{clock}\n")
    macro.clear()
    states = None
    results = macro.load_weights(W, program=program)
    if program:
        from imcgen.golden.programming import program_golden

        report = program_golden(cfg, W)
        req = report.requests
        expected = np.stack([req.tile * cfg.rows + req.row, req.column, report.code,
                             report.reads, report.pulses, report.status], axis=1)
        match = results.shape == expected.shape and bool(np.array_equal(results, expected))
        ok &= match
        states = report.states
        sys.stdout.write(f"programmed {len(results)} cells by write-verify: results "
                         f"{'equal' if match else 'DIFFER from'} the golden model's\n")
    else:
        sys.stdout.write(f"loaded {len(W)} weight rows\n")
    t1 = time.perf_counter()
    sent, got = macro.line_bytes
    Y, cycles = macro.mvm_batch(X)
    t2 = time.perf_counter()
    line = macro.line_bytes[0] - sent + macro.line_bytes[1] - got
    expected = golden.run(cfg, W, X, states=states)
    values = bool(np.array_equal(Y, expected.y))
    timing = bool(np.array_equal(cycles, expected.cycles))
    ok &= values and timing
    sys.stdout.write(f"{len(X)} vectors: values {'match' if values else 'DIFFER'}, cycles "
                     f"{'match' if timing else 'DIFFER'} (golden model); "
                     f"{cycles.mean():.1f} cycles/vector\n")
    ok &= _rates(macro, cfg, expected, len(X), t2 - t1, line)
    if not (values and timing):
        for v in np.flatnonzero((Y != expected.y).any(axis=1) | (cycles != expected.cycles))[:5]:
            sys.stdout.write(f"vector {v}: y {Y[v].tolist()} in {cycles[v]} cycles, golden "
                             f"{expected.y[v].tolist()} in {expected.cycles[v]}\n")
    status = macro.status()
    flags = [name for name, value in status["macro"].items() if value]
    clean = not flags and status["bad_frames"] == 0 and status["framing_errors"] == 0 and \
        status["overruns"] == 0
    ok &= clean
    sys.stdout.write(f"status: {status['commands']} commands, macro flags "
                     f"{', '.join(flags) or 'none'}, {status['bad_frames']} bad frames, "
                     f"{status['framing_errors']} UART framing errors, {status['overruns']} "
                     f"overruns\n")
    if info["trng"]:
        macro.trng_enable(True)
        data = macro.trng_read(64)
        sys.stdout.write(f"TRNG: {len(data)} bytes {data[:16].hex()}...; status "
                         f"{macro.trng_status()}\n")
    sys.stdout.write(f"{'PASS' if ok else 'FAIL'}: {time.perf_counter() - t0:.1f} s over the "
                     f"link\n")
    return ok

