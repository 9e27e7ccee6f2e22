"""``[write_verify]``: program-and-verify of each cell (docs/write_verify.md)."""

from dataclasses import dataclass

from imcgen.core.config.schema import Table, key, table
from imcgen.core.errors import ImcError


@table("write_verify")
@dataclass(frozen=True)
class WriteVerifyConfig(Table):
    """Program-and-verify of each cell (``device.kind`` rram or pcm): docs/write_verify.md."""

    tolerance: int = key(1, "verify codes a cell may sit from its target", limits=(0, 255))
    amp_bits: int = key(4, "bits of the pulse amplitude code", limits=(1, 8))
    amp_start: int = key(1, "amplitude of the first pulse in a direction", limits=(1, 255))
    amp_step: int = key(1, "amplitude added by each further pulse in the same direction "
                        "(incremental step pulse programming)",
                        limits=(0, 255))
    amp_max: int = key(15, "largest amplitude code", limits=(1, 255))
    max_pulses: int = key(64, "pulses per cell before giving up", limits=(1, 1023))
    stuck_pulses: int = key(3, "pulses at amp_max that leave the verify code unchanged at a "
                            "rail (0 or adc_max), in a row, before a cell is reported "
                            "stuck",
                            limits=(1, 64))
    pulse_cycles: int = key(8, "clock cycles one pulse lasts", limits=(1, 1024))

    def check(self, cfg):
        top = (1 << self.amp_bits) - 1
        if self.amp_max > top:
            raise ImcError("write_verify.amp_max", self.amp_max,
                           f"must be an amplitude code in 1..{top} (amp_bits = {self.amp_bits})")
        if self.amp_start > self.amp_max:
            raise ImcError("write_verify.amp_start", self.amp_start,
                           f"must be in 1..{self.amp_max} (amp_max)")
        if not cfg.device.programmable:
            return
        if cfg.adc_max < cfg.cell_max:
            raise ImcError("adc_bits", cfg.adc_bits,
                           f"write-verify needs at least one verify code per level: adc_bits "
                           f">= cell_bits = {cfg.cell_bits}")
        spacing = min(b - a for a, b in zip(cfg.verify_targets, cfg.verify_targets[1:],
                                            strict=False)) if cfg.cell_max else cfg.adc_max + 1
        if spacing < 1:  # rounding put two levels on one code
            raise ImcError("adc_bits", cfg.adc_bits,
                           f"two levels of the {cfg.cell_bits}-bit cells share a verify code "
                           f"(the state range spans {cfg.state_max + 1} states); raise adc_bits "
                           f"to at least {cfg.cell_bits + 1}")
        if 2 * self.tolerance + 1 > spacing:
            raise ImcError("write_verify.tolerance", self.tolerance,
                           f"a band of +/-{self.tolerance} codes overlaps the next level "
                           f"({spacing} codes apart); allowed: 0..{(spacing - 1) // 2}")
        need = cfg.device.rng_latency + 1
        if self.pulse_cycles < need:
            raise ImcError("write_verify.pulse_cycles", self.pulse_cycles,
                           f"must be at least {need}: the device draws its noise during the "
                           f"pulse ({cfg.device.rng_rounds} Threefry rounds at "
                           f"{cfg.device.rng_rounds_per_cycle} per cycle)")

    def derived(self, cfg):
        if not cfg.device.programmable:
            return {}
        return {"verify_targets": list(cfg.verify_targets), "count_bits": self.count_bits}

    @property
    def count_bits(self):
        """Width of the reads and pulses counters of a result."""
        return (self.max_pulses + 1).bit_length()
