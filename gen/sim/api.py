"""``simulate``: the RTL and the golden model on the same weights and inputs, on an engine."""

from imcgen.core.errors import ImcError
from imcgen.sim.cocotb_engine import CocotbEngine, run_job, simulate_trng
from imcgen.sim.engine import RunSpec, SimResult
from imcgen.sim.fast import FastEngine

__all__ = ["ENGINES", "simulate", "simulate_trng", "run_job", "SimResult", "RunSpec", "get_engine",
           "check_engine"]

#: Engines by name, the default first.
ENGINES = {e.name: e for e in (CocotbEngine(), FastEngine())}


def get_engine(name, option="engine"):
    """The engine called ``name``; an :class:`ImcError` naming ``option`` otherwise."""
    if name not in ENGINES:
        raise ImcError(option, name, "must be one of " + ", ".join(ENGINES))
    return ENGINES[name]


def simulate(cfg, weights, inputs, *, seed=None, in_gaps=0.0, out_stalls=0.0, w_gaps=0.0,
             reset_after=None, weight_reset_after=None, raw_rows=None, waves_dir=None,
             work_dir=None, progress=None, program=None, program_reset_after=None,
             p_gaps=0.0, r_stalls=0.0, load_weights=None, requant=None, engine="cocotb",
             direction="forward"):
    """Run ``inputs`` through the RTL and the golden model.

    Parameters
    ----------
    cfg : MacroConfig
    weights : array_like of int, shape (rows*tiles, outputs)
    inputs : array_like of int, shape (vectors, rows*tiles)
        Forward vectors; backward ones (``direction``) have ``outputs`` elements each, and a
        mixed stream gives a sequence of vectors, each of its direction's length.
    seed : int, optional
        Seeds the stimulus timing (gaps, stalls); drawn at random and recorded when omitted.
    in_gaps, w_gaps, out_stalls : float
        Probability of an idle gap before an input vector / a weight row, and of ``o.ready``
        low in a cycle.
    reset_after : int or list of int, optional
        Assert reset once this many results have arrived (each of them), then resend the
        vectors not answered.
    weight_reset_after : int, optional
        Assert reset once this many weight rows were taken, then resend from the row in flight.
    raw_rows : list of (int, list of int), optional
        Weight rows sent as given after loading (e.g. out-of-range indices, which the macro
        drops and flags in ``status``).
    waves_dir : path, optional
        Build with tracing and leave ``dump.vcd``, the Verilog and a ``.gtkw`` file there.
    work_dir : path, optional
        Keep the job files, the RTL and the simulator log there. By default they go to a
        temporary directory that is removed at the end, failed or not (the simulator log is
        then kept in the cache's ``logs`` directory and named by the error).
    progress : callable(done, total), optional
        Called from the calling thread while the simulation runs.
    program : "array", list of (row, column, target), or dict, optional
        Programmable devices: before the vectors, write-verify ``weights`` in array mode, or
        the given single-cell requests (global row, physical column, target verify code); a
        dict ``{"requests": [...], "passes": n}`` sends the requests, then ``n`` array passes.
    program_reset_after : int, optional
        Reset once this many programming results arrived; the host resends every cell it has
        no result for as a single request.
    p_gaps, r_stalls : float
        Idle gaps before program requests, backpressure on programming results.
    load_weights : bool, optional
        Load ``weights`` exactly (default: unless ``program`` is given).
    requant : (bias, scale), optional
        ``requant.enabled``: every output's bias and scale, loaded through the ``q`` port
        after the weights (default: nothing loaded, bias 0 and scale 1).
    engine : "cocotb" or "fast"
        ``"fast"``: a C++ driver runs the whole batch (:mod:`imcgen.sim.fast`); stub crossbar
        and plain MVM runs only, anything else is refused with an :class:`ImcError`.
    direction : "forward", "backward", or one of them per vector
        ``transposed`` configurations: backward vectors compute ``x = W y`` through the same
        cells (docs/architecture.md section 13). The result's ``y`` then holds ``x`` (``rows *
        tiles`` elements); for a mixed stream every row is padded with zeros to the longer of
        the two lengths and ``extra["backward"]`` flags the backward ones.

    Returns
    -------
    SimResult
    """
    chosen = get_engine(engine)
    options = {k: v for k, v in locals().items()
               if k not in ("cfg", "weights", "inputs", "progress", "engine", "chosen")}
    spec = RunSpec.make(cfg, weights, inputs, **options)
    refusal = chosen.supports(cfg, spec)
    if refusal is not None:
        raise refusal
    return chosen.run(cfg, spec, progress)


#: Keywords of imcgen.simulate whose command-line option has another name.
_OPTIONS = {"engine": "--engine", "program": "--program", "waves_dir": "--waves"}


def check_engine(cfg, engine, program=False, waves=None):
    """Refuse what the engine ``--engine`` names cannot run (its ``supports``), before any
    work, naming the command-line option."""
    from imcgen.sim.engine import USE_COCOTB, RunSpec

    chosen = get_engine(engine, "--engine")
    spec = RunSpec(weights=None, inputs=None, seed=0,
                   program={"requests": [], "passes": 1} if program else None,
                   waves_dir=waves)
    refusal = chosen.supports(cfg, spec)
    if refusal is not None:
        value = True if refusal.field == "program" else refusal.value
        raise ImcError(_OPTIONS.get(refusal.field, refusal.field), value,
                       refusal.allowed.replace(USE_COCOTB, "--engine cocotb"))
