"""Property-based tests over the configuration space (hypothesis).

Every configuration either is refused with one clear error (naming field, value and what is
allowed, exit 2 from the CLI) or is accepted; an accepted one round-trips through TOML and
``replace``, its golden model equals ``X @ W`` when no read can clip, it elaborates, and a
sample of them builds and matches the golden model on Verilator. Nothing else may happen: any
other exception fails the test. Shrunk failing cases found while developing are kept below as
``@example`` regressions.

Budgets: CI runs bounded examples; IMCGEN_SLOW=1 multiplies them.
"""

import contextlib
import io
import os

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from imcgen import cli
from imcgen.core.config import MacroConfig, load_config
from imcgen.core.errors import ImcError
from imcgen.golden import macro_top

SCALE = 10 if os.environ.get("IMCGEN_SLOW") else 1

# Legal ranges for every key; a third of the draws then push one key past its limit (or to a
# wrong type), so that refusals are exercised as much as acceptances.
BAD = {
    "rows": [0, 1025, -3, "32", 2.5], "tiles": [0, 17], "outputs": [0, 1025],
    "input_bits": [0, 33], "input_signed": [1, "yes"], "weight_bits": [0, 33, 1],
    "cell_bits": [0, 9], "weight_mapping": ["signed", 3], "adc_bits": [0, 17],
    "adcs": [0, -1, 10**6], "rows_per_read": [-1, 10**4], "schedule": ["sparse"],
    "out_shift": [-1, 63, 40], "out_relu": [0], "out_bits": [1, 65, -2],
    "crossbar": ["fpga"],
}


@st.composite
def config_values(draw, max_rows=40, max_outputs=6):
    rows = draw(st.integers(1, max_rows))
    mapping = draw(st.sampled_from(["differential", "offset"]))
    cell_bits = draw(st.integers(1, 3))
    values = {
        "rows": rows,
        "tiles": draw(st.integers(1, 3)),
        "outputs": draw(st.integers(1, max_outputs)),
        "input_bits": draw(st.integers(1, 8)),
        "input_signed": draw(st.booleans()),
        "weight_bits": draw(st.integers(2 if mapping == "differential" else 1, 10)),
        "cell_bits": cell_bits,
        "weight_mapping": mapping,
        "adc_bits": draw(st.integers(1, 8)),
        "adcs": draw(st.integers(1, 12)),
        "rows_per_read": draw(st.one_of(st.just(0), st.integers(1, rows))),
        "schedule": draw(st.sampled_from(["dense", "zero_skip"])),
        "out_shift": draw(st.sampled_from([0, 0, 1, 3])),
        "out_relu": draw(st.booleans()),
        "out_bits": draw(st.sampled_from([0, 0, 2, 5, 17])),
        "crossbar": draw(st.sampled_from(["stub", "external"])),
    }
    if draw(st.integers(0, 2)) == 0:
        key = draw(st.sampled_from(sorted(BAD)))
        values[key] = draw(st.sampled_from(BAD[key]))
    return values


VALUES = config_values()


def accepted(values):
    """The configuration, or None after checking that the refusal is one clear error."""
    try:
        return MacroConfig(**values)
    except ImcError as err:
        assert err.field and err.allowed and str(err).count("\n") == 0, str(err)
        return None


def as_set(values):
    """``--set`` arguments for ``values`` (text, as a user would type them)."""
    def text(v):
        return str(v).lower() if isinstance(v, bool) else str(v)

    return [f"{k}={text(v)}" for k, v in values.items()]


def cli_code(values):
    """Exit code and stderr of ``imcgen config show --set k=v ...`` run in this process."""
    args = ["config", "show"] + [x for item in as_set(values) for x in ("--set", item)]
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = cli.main(args)
        except SystemExit as exit_:
            code = exit_.code
    return code, err.getvalue()


@settings(max_examples=300 * SCALE, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(values=VALUES, seed=st.integers(0, 2**32 - 1))
@example(values=dict(rows=1, tiles=1, outputs=1, input_bits=1, input_signed=True, weight_bits=2,
                     cell_bits=1, weight_mapping="differential", adc_bits=1, adcs=1,
                     rows_per_read=0, schedule="dense", out_shift=0, out_relu=False, out_bits=0,
                     crossbar="stub"), seed=0)
@example(values=dict(rows=1, tiles=1, outputs=1, input_bits=1, input_signed=False,
                     weight_bits=1, cell_bits=1, weight_mapping="offset", adc_bits=1, adcs=1,
                     rows_per_read=0, schedule="zero_skip", out_shift=1, out_relu=False,
                     out_bits=0, crossbar="stub"), seed=0)
def test_every_configuration_is_refused_clearly_or_works_in_the_golden_model(values, seed):
    cfg = accepted(values)
    # The command line refuses exactly what the API refuses from the same text ("0" is a
    # valid boolean on the command line, 0 is not one in a TOML file or the API).
    code, err = cli_code(values)
    try:
        from_text = load_config(overrides=as_set(values))
    except ImcError:
        from_text = None
    if from_text is None:
        assert code == 2 and err.count("\n") == 1 and err.startswith("imcgen: error: "), err
    else:
        assert code == 0 and "Traceback" not in err, err
    if cfg is None:
        return
    assert from_text == cfg
    # Cache and sweep keys: equal exactly when they behave the same.
    again = MacroConfig.from_dict(cfg.to_dict())
    assert again == cfg and hash(again) == hash(cfg)
    assert cfg.replace() == cfg
    assert load_config(overrides=values) == cfg
    # The golden model equals the product when no read can clip.
    rng = np.random.default_rng(seed)
    W = rng.integers(cfg.weight_min, cfg.weight_max + 1, size=(cfg.input_rows, cfg.outputs))
    X = rng.integers(cfg.input_min, cfg.input_max + 1, size=(6, cfg.input_rows))
    X[0], X[1] = cfg.input_max, cfg.input_min
    result = macro_top.run(cfg, W, X)
    lo, hi = cfg.sum_range
    assert (result.sums >= lo).all() and (result.sums <= hi).all()
    if not cfg.reads_may_clip:
        np.testing.assert_array_equal(result.sums, X @ W)
        assert not result.clipped.any()
    assert (result.cycles <= cfg.max_cycles).all()


SMALL = config_values(max_rows=24, max_outputs=4)


@settings(max_examples=6 * SCALE, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(values=SMALL)
def test_every_accepted_configuration_elaborates(values, tmp_path_factory):
    from imcgen.sim.verilog import elaborate

    cfg = accepted(values)
    if cfg is None:
        return
    design = elaborate(cfg, tmp_path_factory.mktemp("rtl"))
    assert design.port("o__payload").width == cfg.outputs * cfg.out_width + cfg.cycle_bits


@settings(max_examples=2 * SCALE, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(values=SMALL.filter(lambda v: accepted(v) is not None), seed=st.integers(0, 2**32 - 1))
def test_a_sample_of_accepted_configurations_matches_on_verilator(values, seed, tmp_path_factory):
    from imcgen import simulate
    from imcgen.apps.soak import stimulus

    cfg = MacroConfig(**values)
    rng = np.random.default_rng(seed)
    W, X = stimulus(cfg, rng, 5)
    result = simulate(cfg, W, X, seed=seed, in_gaps=0.2, out_stalls=0.2,
                      work_dir=tmp_path_factory.mktemp("sim"))
    assert result.match, result.mismatch_report()
