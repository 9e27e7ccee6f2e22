"""Named requirements of a configuration: what a feature needs before it can run, decided here
once and used by the command line, the board top and the engines alike.

:func:`unmet` gives the refusal (an unraised :class:`ImcError` naming the key, its value and
what would do) or None; :func:`require` raises it.
"""

from imcgen.core.errors import ImcError

__all__ = ["REQUIREMENTS", "unmet", "require"]


def _board(cfg):
    if cfg.crossbar != "stub":
        return ImcError("crossbar", cfg.crossbar,
                        "a board top needs the synthesizable stub: crossbar = 'stub'")
    if cfg.transposed:  # the executor has no backward command (docs/architecture.md s. 13)
        return ImcError("transposed", True, "the board link carries forward vectors only "
                                            "yet: transposed = false")
    if cfg.requant.enabled:  # the executor has no command for the q port (docs/board.md)
        return ImcError("requant.enabled", True, "the board link cannot load requantization "
                                                 "parameters yet: requant.enabled = false")
    return None


def _programmable(cfg):
    if not cfg.programmable:
        return ImcError("device.kind", cfg.device.kind, "programming needs a programmable "
                                                        "device: --set device.kind=rram or pcm")
    return None


def _trng(cfg):
    if not cfg.trng.enabled:
        return ImcError("trng.enabled", False, "the TRNG needs --set trng.enabled=true")
    return None


def _physics_in_python(cfg):
    if cfg.analog.physical and cfg.crossbar == "stub":
        return ImcError("analog.device", cfg.analog.device,
                        "the physical analog model runs in the Python crossbar; the "
                        "synthesizable stub is digital: set crossbar = \"external\"")
    return None


#: name -> check; each gives the refusal or None.
REQUIREMENTS = {
    "board": _board,                  # a board top: the stub inside, every port on the link
    "programming": _programmable,     # write-verify: a programmable device
    "trng": _trng,                    # TRNG runs: the TRNG built
    "analog_physics": _physics_in_python,  # a physical analog model: the Python crossbar
}


def unmet(name, cfg):
    """The refusal of requirement ``name`` for ``cfg``, or None when it is met."""
    return REQUIREMENTS[name](cfg)


def require(name, cfg):
    """Raise the refusal of requirement ``name`` for ``cfg``, if any."""
    refusal = unmet(name, cfg)
    if refusal is not None:
        raise refusal
