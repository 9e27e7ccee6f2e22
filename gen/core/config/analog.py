"""``[analog]``: device physics in the compute reads (docs/analog.md)."""

from dataclasses import dataclass

from imcgen.core.config.schema import Table, key, table
from imcgen.core.errors import ImcError

G_BITS = 16            # analog model: conductances in units of g_max / 2^16
IR_BITS = 16           # IR-drop row weights in Q0.16


@table("analog")
@dataclass(frozen=True)
class AnalogConfig(Table):
    """Device physics in the compute reads (docs/analog.md): conductances, programming error,
    read noise, drift, stuck cells, off-state leakage, IR drop, comparator offset and noise.

    ``device = "none"`` keeps the digital model (levels summed exactly). The physical models
    run in the golden model and in the Python crossbar (``crossbar = "external"``), identical
    bit for bit; the synthesizable stub stays digital.
    """

    device: str = key("none", "none (digital levels), ideal (exact conductances), pcm (the "
                      "aihwkit PCM statistics) or rram (Yan et al. 2019, RRAM review)",
                      choices=("none", "ideal", "pcm", "rram"))
    seed: int = key(11, "analog noise instance (programming error, drift, read and "
                    "comparator noise)",
                    limits=(0, 2**32 - 1))
    g_max_us: float = key(25.0, "maximum conductance in microsiemens", limits=(0.01, 1e4))
    g_min_us: float = key(0.25, "minimum conductance (off-state leakage) in microsiemens",
                          limits=(0.0, 1e4))
    prog_noise: float = key(1.0, "scale of the device's programming error (1 = the model)",
                            limits=(0.0, 100.0))
    read_noise: float = key(1.0, "scale of the device's read noise (1 = the model)",
                            limits=(0.0, 100.0))
    drift: float = key(1.0, "scale of the device's drift exponents (1 = the model)",
                       limits=(0.0, 100.0))
    time: float = key(20.0, "seconds since programming at which the reads happen (drift)",
                      limits=(0.0, 1e12))
    ir_drop: float = key(0.0, "first-order IR drop: current lost at the farthest row for a "
                         "full-scale line current",
                         limits=(0.0, 0.9))
    comparator_offset: float = key(0.0, "comparator offset in ADC LSBs", limits=(-8.0, 8.0))
    comparator_noise: float = key(0.0, "comparator noise (standard deviation) in ADC LSBs",
                                  limits=(0.0, 8.0))
    adc_range: str = key("ideal", "ideal (one level step per code) or calibrated (full scale from "
                         "the programmed array's largest read)",
                         choices=("ideal", "calibrated"))
    drift_compensation: bool = key(False, "scale the ADC reference by a (noisy) reference read "
                                   "of the array's total conductance")
    v_read: float = key(0.2, "read voltage across a cell in volts (currents in amperes)",
                        limits=(0.001, 5.0))

    @property
    def physical(self):
        return self.device != "none"

    def check(self, cfg):
        if self.physical and self.g_min_us >= self.g_max_us:
            raise ImcError("analog.g_min_us", self.g_min_us,
                           f"must be below analog.g_max_us = {self.g_max_us}")

    def derived(self, cfg):
        if not self.physical:
            return {}
        g_min = 0.0 if self.device == "ideal" else self.g_min_us
        return {"on_off_ratio": round(self.g_max_us / g_min, 3) if g_min else "infinite",
                "level_current_ua": round((self.g_max_us - g_min) / cfg.cell_max * self.v_read,
                                          6),
                "read_max_ua": round(cfg.rows_per_read * self.g_max_us * self.v_read, 6)}
