"""The bad-input battery, generated from the schema: every configuration key (as ``--set`` text
and as a TOML value) and every numeric or path option of every subcommand, under the values a
user gets wrong (nan, infinities, wrong types, integers beyond 64 bits, values just outside the
allowed set or range, empty text...). Each must end with exit 2 and one line that names the
field, with nothing on stdout, no traceback and nothing written. Extreme values inside the
declared domain (the smallest positive float, the limits themselves) may be accepted, but never
with a traceback. A key or option joins the battery by being declared (hand-written cases stay
in test_bad_input.py, the catalogue)."""

import argparse
import math
import os

import pytest

from imcgen import cli
from imcgen.cli.parser import build_parser
from imcgen.core.config import _FIELDS, TABLES

KEYS = {**_FIELDS, **{f"{t}.{k}": spec for t, cls in TABLES.items()
                      for k, spec in cls.FIELDS.items()}}
#: What turns a table on, so that its keys' checks and derived values run.
CONTEXT = {"device": ["device.kind=rram"], "write_verify": ["device.kind=rram"],
           "trng": ["trng.enabled=true"], "analog": ["analog.device=pcm", "crossbar=external"],
           "stub": [], "cost": [], "requant": ["requant.enabled=true"], "": []}
MAX_LINE = 240  # "about 200": the longest real explanations run a little over
HUGE = 2**70        # beyond 64 bits
VAST = 2**1100      # beyond a float


def _toml(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {math.inf: "inf", -math.inf: "-inf"}.get(value, "nan" if value != value
                                                        else repr(value))
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def refused_values(spec):
    """``[(--set text or None, TOML value or None)]`` outside the key's declared domain."""
    cases = [("", ""), ("x", "x"), (None, [1])]
    if spec.type is bool:
        return cases + [("maybe", None), ("2", 2), (None, "true"), (None, 1.0)]
    if spec.type is str:
        bad = [("nonsense", "nonsense"), (None, 1), (None, True), (" ", " ")]
        if spec.choices:
            bad.append((spec.choices[0].upper() + "!", spec.choices[0].upper() + "!"))
        return cases + bad
    out = cases + [("nan", math.nan), ("inf", math.inf), ("-inf", -math.inf), (None, True),
                   ("1e400", None)]
    lo, hi = spec.limits or (None, None)
    if spec.type is int:
        out += [("1.5", 1.5), (str(HUGE), None), (str(-HUGE), None), ("-1", -1)]
        if spec.choices:
            out += [(str(max(spec.choices) + 1), max(spec.choices) + 1),
                    (str(min(spec.choices) - 1), min(spec.choices) - 1)]
            gaps = [v for v in range(min(spec.choices), max(spec.choices))
                    if v not in spec.choices]
            if gaps:
                out.append((str(gaps[0]), gaps[0]))
    else:
        out += [(str(VAST), VAST)]
    if lo is not None:
        below = lo - 1 if spec.type is int else lo - max(1.0, abs(lo))
        above = hi + 1 if spec.type is int else hi + max(1.0, abs(hi))
        out += [(repr(below), below), (repr(above), above)]
    if spec.type is float and lo is None:
        raise AssertionError("a float key needs limits")
    return out


def extreme_values(spec):
    """Values inside the declared domain that stress derived quantities."""
    if spec.type is bool or spec.type is str:
        return list(spec.choices or [True, False] if spec.type is bool else spec.choices or [])
    out = list(spec.choices or [])
    if spec.limits:
        out += list(spec.limits)
        if spec.type is float and spec.limits[0] <= 5e-324 <= spec.limits[1]:
            out.append(5e-324)
    else:
        out += [0, 1, 2**31]
    return out


def run(args, capsys, cwd):
    before = set(cwd.rglob("*"))
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    written = set(cwd.rglob("*")) - before
    return code, out, err, written


def assert_refused(code, out, err, written, names, what):
    lines = err.splitlines()
    assert code == 2, (what, code, err)
    assert len(lines) == 1 and lines[0].startswith("imcgen: error: "), (what, err)
    assert len(lines[0]) <= MAX_LINE, (what, len(lines[0]), lines[0])
    assert any(name in lines[0] for name in names), (what, lines[0])
    assert out == "" and "Traceback" not in err, (what, out, err)
    assert not written, (what, written)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IMCGEN_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.mark.parametrize("key", KEYS)
def test_every_configuration_key_refuses_what_is_outside_its_domain(key, workdir, capsys):
    spec = KEYS[key]
    table = key.partition(".")[0] if "." in key else ""
    context = [f"--set={c}" for c in CONTEXT[table] if not c.startswith(key + "=")]
    count = 0
    for text, value in refused_values(spec):
        if text is not None:
            result = run(["config", "show", *context, f"--set={key}={text}"], capsys, workdir)
            assert_refused(*result, [key, "--set"], f"--set {key}={text!r}")
            count += 1
        if value is not None:
            toml = workdir / "bad.toml"
            name, _, sub = key.rpartition(".")
            lines = [f"[{name}]\n{sub} = {_toml(value)}\n"] if name else \
                [f"{key} = {_toml(value)}\n"]
            toml.write_text("".join(lines))
            result = run(["config", "show", "--config", toml, *context], capsys, workdir)
            toml.unlink()
            assert_refused(*result[:3], set(), [key, sub or key, "--config"],
                           f"TOML {key} = {_toml(value)}")
            count += 1
    assert count >= 4


@pytest.mark.parametrize("key", KEYS)
def test_extreme_values_inside_the_domain_never_end_in_a_traceback(key, workdir, capsys):
    spec = KEYS[key]
    table = key.partition(".")[0] if "." in key else ""
    context = [f"--set={c}" for c in CONTEXT[table] if not c.startswith(key + "=")]
    for value in extreme_values(spec):
        text = str(value).lower() if isinstance(value, bool) else repr(value) \
            if isinstance(value, float) else str(value)
        code, out, err, _ = run(["config", "show", *context, f"--set={key}={text}"], capsys,
                                workdir)
        if code == 2:
            assert_refused(code, "", err, set(), [key, "--set", "="], f"{key}={text}")
        else:
            assert code == 0 and f"{key.rpartition('.')[2]} = " in out, (key, text, err)


def _options():
    """``(command words, option, type)`` of every option with a value type, and
    ``(command words, option)`` of every path option, walking the real parser."""
    numeric, paths = [], []

    def walk(parser, words):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, words + [name])
            elif action.option_strings and action.type is not None:
                numeric.append((tuple(words), action.option_strings[-1], action.type))
            elif action.option_strings and action.nargs is None and action.dest != "config" \
                    and (action.metavar in ("DIR", "FILE") or str(action.metavar).endswith(
                        (".npz", ".npy"))):  # output paths (--config is read: the catalogue)
                paths.append((tuple(words), tuple(action.option_strings)))

    walk(build_parser(), [])
    return numeric, paths


NUMERIC, PATHS = _options()


def bad_numbers(kind):
    out = ["nan", "inf", "-inf", "1e400", "x", "", "-1", str(HUGE), "0x", "1,5"]
    lo, hi = getattr(kind, "lo", None), getattr(kind, "hi", None)
    if hi is not None:
        out.append(str(hi + 1) if isinstance(hi, int) else repr(hi * 2 + 1))
    if lo is not None and isinstance(lo, int):
        out.append(str(lo - 1))
    elif lo is not None:
        out.append(repr(lo))  # open below
    return out


@pytest.mark.parametrize("words, option, kind", NUMERIC,
                         ids=[" ".join(w) + " " + o for w, o, _ in NUMERIC])
def test_every_numeric_option_refuses_bad_numbers(words, option, kind, workdir, capsys):
    if kind is int:  # argparse's own int: "invalid int value"; bounds are checked later
        values = ["nan", "inf", "x", "", "1.5", "1e400"]
    else:
        values = bad_numbers(kind)
    for text in values:
        code, out, err, written = run([*words, f"{option}={text}"], capsys, workdir)
        assert_refused(code, out, err, written, [option], f"{' '.join(words)} {option}={text!r}")


#: A valid command line per subcommand with path options, so that only the path is wrong.
def base_args(words, workdir):
    import numpy as np

    W = workdir / "W.npy"
    X = workdir / "X.npy"
    spec = workdir / "spec.toml"
    model, npz, X8 = workdir / "m.toml", workdir / "m.npz", workdir / "X8.npy"
    if not model.exists():  # a one-layer model on 64 pixels
        model.write_text('input_shape = [64]\n[[layers]]\nkind = "dense"\nweights = "w"\n'
                         'bias = "b"\nrelu = false\n')
        np.savez(npz, w=np.ones((64, 10)), b=np.zeros(10))
        np.save(X8, np.ones((2, 64), dtype=np.int64))
    if not W.exists():
        np.save(W, np.zeros((64, 10), dtype=np.int64))
        np.save(X, np.zeros((2, 64), dtype=np.int64))
        spec.write_text("[grid]\nadc_bits = [5, 6]\n")
    return {
        ("verilog",): ["verilog", "-o", "ok"],
        ("simulate",): ["simulate", "--weights", W, "--inputs", X, "-o", "ok.npz"],
        ("trng",): ["trng", "--bits", "8", "-o", "ok.bin"],
        ("accuracy",): ["accuracy", "--device", "ideal"],
        ("program",): ["program", "--set", "device.kind=rram", "--weights", W, "-o", "ok.npz"],
        ("demo",): ["demo"],
        ("fpga",): ["fpga", "--synth-only"],
        ("cost",): ["cost", "--inputs", X, "--weights", W, "--json", "ok.json"],
        ("sweep",): ["sweep", spec, "-o", "ok"],
        ("formal",): ["formal", "--block", "pipe", "--depth", "2", "-o", "ok"],
        ("workload", "mlp"): ["workload", "mlp", "--rtl", "0", "--hidden", "2", "-o", "ok"],
        ("workload", "cnn"): ["workload", "cnn", "--rtl", "0", "--steps", "1", "-o", "ok"],
        ("workload", "model"): ["workload", "model", "--model", model, "--weights", npz,
                                "--inputs", X8, "--rtl", "0", "-o", "ok"],
        ("workload", "dpe"): ["workload", "dpe", "--rtl", "0", "-o", "ok"],
        ("workload", "backprop"): ["workload", "backprop", "--rtl", "0", "--hidden", "4",
                                   "--batch", "8", "--iterations", "1", "-o", "ok"],
        ("workload", "edges"): ["workload", "edges", "--rtl", "0", "--size", "32", "-o", "ok"],
        ("workload", "dct"): ["workload", "dct", "--rtl", "0", "--size", "32", "-o", "ok"],
        ("workload", "refine"): ["workload", "refine", "--rtl", "0", "--sweep", "none", "-o",
                                 "ok"],
    }[words]


def bad_paths(workdir):
    link = workdir / "dangling"
    if not link.is_symlink():
        os.symlink(workdir / "nowhere" / "at-all", link)
    return ["", "-", "out\nput", str(link)]


@pytest.mark.parametrize("words, names", PATHS,
                         ids=[" ".join(w) + " " + n[-1] for w, n in PATHS])
def test_every_path_option_refuses_what_cannot_be_meant(words, names, workdir, capsys):
    option = names[-1]
    for text in bad_paths(workdir):
        args = base_args(words, workdir)
        for name in names:
            if name in args:
                args = list(args)
                del args[args.index(name):args.index(name) + 2]
        code, out, err, written = run([*args, option, text], capsys, workdir)
        written = {p for p in written if p.name not in ("W.npy", "X.npy", "dangling",
                                                        "spec.toml", "m.toml", "m.npz",
                                                        "X8.npy")}
        assert_refused(code, out, err, written, names, f"{' '.join(words)} {option} {text!r}")


def test_the_battery_covers_every_key_and_option():
    # The closing note of the bad-input issue reports these counts.
    assert len(KEYS) >= 60 and len(NUMERIC) >= 15 and len(PATHS) >= 8
    cases = sum(len([c for c in refused_values(KEYS[k]) for c in c if c is not None])
                for k in KEYS)
    cases += sum(len(bad_numbers(t)) for _, _, t in NUMERIC) + 4 * len(PATHS)
    assert cases >= 1000, cases


def test_a_planted_unchecked_key_fails_the_battery(monkeypatch):
    # A key declared without limits where its derived use needs them: the battery's generated
    # negative value must be refused, and is not.
    from dataclasses import dataclass

    from imcgen.core.config.schema import Table, key, table

    @dataclass(frozen=True)
    class Planted(Table):
        count: int = key(3, "a count with no limits declared")

    monkeypatch.setitem(TABLES, "planted", Planted)
    table("planted")(Planted)
    from imcgen.core.config import load_config

    accepted = []
    for text, _ in refused_values(Planted.FIELDS["count"]):
        if text is None:
            continue
        try:
            load_config(overrides=[f"planted.count={text}"])
            accepted.append(text)
        except Exception:
            pass
    assert "-1" in accepted and str(HUGE) in accepted, accepted  # the battery reports it

