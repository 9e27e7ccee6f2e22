"""``[device]``: the memory device behind each cell and how a programming pulse moves it."""

import math
from dataclasses import dataclass

from imcgen.core.config.schema import Table, key, table
from imcgen.core.errors import ImcError

IRWIN_HALL_SD = math.sqrt(4 * (256**2 - 1) / 12)
NOISE_SHIFT = 12  # noise = (z * noise_code) >> NOISE_SHIFT, rounded
GAIN_SHIFT = 8    # pulse gains are Q1.8 codes: 256 = 1.0


@table("device")
@dataclass(frozen=True)
class DeviceConfig(Table):
    """The memory device behind each cell and how a programming pulse moves it.

    ``ideal`` cells hold their level exactly (weights are loaded, not programmed). ``rram`` and
    ``pcm`` cells hold a conductance state in fixed point, ``frac_bits`` finer than a level, and
    are programmed by pulses (``[write_verify]``): docs/write_verify.md.
    """

    kind: str = key("ideal", "ideal (levels loaded exactly), rram (bipolar, gradual both ways) "
                    "or pcm (gradual SET up, abrupt RESET)",
                    choices=("ideal", "rram", "pcm"))
    seed: int = key(1, "device instance: stuck cells and programming noise draw from it",
                    limits=(0, 2**32 - 1))
    frac_bits: int = key(4, "state bits below one level (state = level << frac_bits "
                         "when exact)",
                         limits=(1, 8))
    stuck_fraction: float = key(0.0, "fraction of cells stuck at minimum or maximum "
                                "(they ignore pulses and writes)",
                                limits=(0.0, 1.0))
    stuck_on_share: float = key(0.5, "share of the stuck cells stuck at maximum (on)",
                                limits=(0.0, 1.0))
    set_gain: float = key(0.25, "SET step at full amplitude, as a fraction of the distance "
                          "to the maximum state",
                          limits=(0.0, 1.0))
    reset_gain: float = key(0.5, "rram RESET step at full amplitude, as a fraction of the "
                            "distance to the minimum state",
                            limits=(0.0, 1.0))
    noise: float = key(0.5, "cycle-to-cycle noise of one pulse, standard deviation in "
                       "state LSBs",
                       limits=(0.0, 64.0))
    pcm_reset_state: int = key(0, "pcm: state a RESET returns the cell to (before noise)",
                               limits=(0, 2**16 - 1))
    wear_bits: int = key(16, "bits of each cell's pulse counter (the noise draw's 'when'; "
                         "wraps around)",
                         limits=(4, 32))
    rng_rounds: int = key(20, "Threefry-2x32 rounds of the noise generator",
                          choices=(8, 12, 16, 20, 24, 28, 32))
    rng_rounds_per_cycle: int = key(4, "rounds the hardware generator runs per clock",
                                    choices=(1, 2, 4))

    @property
    def programmable(self):
        return self.kind != "ideal"

    @property
    def stuck_threshold(self):
        """A cell is stuck when the low 32 bits of its stuck draw are below this."""
        return round(self.stuck_fraction * 2**32)

    @property
    def stuck_on_threshold(self):
        """A stuck cell is stuck on when the high 32 bits of its draw are below this."""
        return round(self.stuck_on_share * 2**32)

    @property
    def set_gain_code(self):
        return round(self.set_gain * (1 << GAIN_SHIFT))

    @property
    def reset_gain_code(self):
        return round(self.reset_gain * (1 << GAIN_SHIFT))

    @property
    def noise_code(self):
        """noise = round(z * noise_code / 2^NOISE_SHIFT), z the centred Irwin-Hall sum."""
        return round(self.noise * (1 << NOISE_SHIFT) / IRWIN_HALL_SD)

    @property
    def rng_latency(self):
        """Cycles the hardware generator takes (``imcgen.hdl.rng.Threefry2x32.latency``)."""
        return self.rng_rounds // self.rng_rounds_per_cycle

    def check(self, cfg):
        if self.programmable and self.pcm_reset_state > cfg.state_max:
            raise ImcError("device.pcm_reset_state", self.pcm_reset_state,
                           f"must be a state in 0..{cfg.state_max}")

    def derived(self, cfg):
        if not self.programmable:
            return {}
        return {"state_bits": cfg.state_bits, "state_max": cfg.state_max,
                "set_gain_code": self.set_gain_code, "reset_gain_code": self.reset_gain_code,
                "noise_code": self.noise_code, "rng_latency": self.rng_latency}
