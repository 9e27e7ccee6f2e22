"""Named requirements (gen/core/requirements.py): one decision, the same one-line refusal from
the command line, the board top, the write-verify block and the engines."""

import numpy as np
import pytest

from imcgen import cli
from imcgen.core.config import load_config
from imcgen.core.errors import ImcError
from imcgen.core.requirements import REQUIREMENTS, require, unmet

FAILING = {
    "board": ["crossbar=external"],
    "programming": [],
    "trng": [],
    "analog_physics": ["analog.device=pcm"],
}
PASSING = {
    "board": [],
    "programming": ["device.kind=rram"],
    "trng": ["trng.enabled=true"],
    "analog_physics": ["analog.device=pcm", "crossbar=external"],
}


@pytest.mark.parametrize("name", REQUIREMENTS)
def test_each_requirement_refuses_in_one_line_or_passes(name):
    refusal = unmet(name, load_config(overrides=FAILING[name]))
    assert isinstance(refusal, ImcError) and "\n" not in str(refusal)
    with pytest.raises(ImcError) as raised:
        require(name, load_config(overrides=FAILING[name]))
    assert str(raised.value) == str(refusal)
    assert unmet(name, load_config(overrides=PASSING[name])) is None


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")  # refused ones
def test_the_hardware_refuses_as_the_command_line_does(capsys, tmp_path):
    from imcgen.hdl.board_top import BoardCore
    from imcgen.hdl.write_verify import WriteVerify

    external = load_config(overrides=FAILING["board"])
    with pytest.raises(ImcError) as raised:
        BoardCore(config=external, divisor=8, timeout_cycles=10)
    assert cli.main(["board", "--sim", "--set", "crossbar=external"]) == 2
    assert capsys.readouterr().err == f"imcgen: error: {raised.value}\n"
    with pytest.raises(ImcError) as raised:
        WriteVerify(config=load_config())
    assert str(raised.value) == str(unmet("programming", load_config()))


def test_the_engines_refuse_through_the_requirements():
    from imcgen import simulate
    from imcgen.sim.api import simulate_trng

    cfg = load_config(overrides=FAILING["analog_physics"])
    zeros = np.zeros((1, cfg.input_rows), dtype=np.int64)
    with pytest.raises(ImcError) as raised:
        simulate(cfg, np.zeros((cfg.input_rows, cfg.outputs), dtype=np.int64), zeros)
    assert str(raised.value) == str(unmet("analog_physics", cfg))
    with pytest.raises(ImcError) as raised:
        simulate_trng(load_config(), 8)
    assert str(raised.value) == str(unmet("trng", load_config()))
