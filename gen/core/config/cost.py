"""``[cost]``: energy per event, area per block, leakage and clock of an ASIC macro, for the
cost model (:mod:`imcgen.apps.cost`, docs/cost.md).

Not hardware: the RTL does not depend on these keys, so they are left out of the board's
configuration digest and of every build's identity (changing them rebuilds nothing).

Defaults (32 nm) come from ISAAC's component table (Shafiee et al., "ISAAC: a convolutional
neural network accelerator with in-situ analog arithmetic in crossbars", ISCA 2016), per
event at its 10 MHz crossbar read rate: an 8-bit ADC at 1.28 GS/s draws 16 mW (12.5 pJ per
conversion) on 0.0096 mm^2; 8 x 128 one-bit DACs 4 mW (0.39 pJ per row pulse) on 0.00017 mm^2;
eight 128x128 arrays 2.4 mW (1.83 fJ per cell read) on 0.0002 mm^2; sample-and-hold 10 uW
per 1024; four shift-and-add units 0.2 mW on 0.00024 mm^2. Programming pulses from the seeds:
PCM RESET about 30 pJ ("Brain-inspired computing using phase-change memory devices", 2018),
RRAM switching below 100 fJ ("Resistive memory-based in-memory computing", Yan et al.). The
ADC's scaling with its bits and the digital figures are our choices (docs/cost.md).
"""

from dataclasses import dataclass

from imcgen.core.config.schema import Table, key, table

_E = (0.0, 1e6)      # energies (pJ or fJ), areas (um^2 or mm^2): non-negative, finite
_POSITIVE = (1e-9, 1e6)


@table("cost")
@dataclass(frozen=True)
class CostConfig(Table):
    """Per-event energies, per-block areas, leakage and clock for :mod:`imcgen.apps.cost`."""

    HARDWARE = False  # no RTL depends on it: not in the configuration digest or build keys

    adc_energy_pj: float = key(12.5, "energy of one conversion of an ADC of adc_ref_bits bits "
                               "(pJ; ISAAC: 16 mW at 1.28 GS/s, 8 bits)", limits=_POSITIVE)
    adc_area_mm2: float = key(0.0096, "area of one ADC of adc_ref_bits bits (mm^2; ISAAC)",
                              limits=_POSITIVE)
    adc_ref_bits: int = key(8, "resolution the ADC figures are for", limits=(1, 16))
    adc_scaling: str = key("walden", "how ADC energy and area scale with adc_bits: walden "
                           "(x2 per bit, a constant Walden figure of merit) or linear "
                           "(proportional to the bits, SAR compares dominating)",
                           choices=("walden", "linear"))
    row_pulse_pj: float = key(0.39, "energy of one input-bit pulse on a row (pJ; ISAAC's 1-bit "
                              "DACs: 4 mW for 1024 at 10 MHz)", limits=_E)
    cell_read_fj: float = key(1.83, "energy of one cell conducting in a read (fJ; ISAAC: "
                              "2.4 mW for eight 128x128 arrays at 10 MHz)", limits=_E)
    sample_pj: float = key(0.001, "energy of one column sample-and-hold (pJ; ISAAC: 10 uW for "
                           "1024 at 10 MHz)", limits=_E)
    shift_add_pj: float = key(0.04, "energy of one shift-and-add of an ADC code (pJ; ISAAC: "
                              "0.2 mW for four units at 1.28 GHz)", limits=_E)
    add_pj: float = key(0.05, "energy of one addition in the adder network or output stage "
                        "(pJ; choice: a 16- to 32-bit add in 32 nm)", limits=_E)
    pcm_pulse_pj: float = key(30.0, "energy of one PCM programming pulse (pJ; RESET, "
                              "Sebastian et al. 2018)", limits=_E)
    rram_pulse_pj: float = key(0.1, "energy of one RRAM programming pulse (pJ; Yan et al.: "
                               "below 100 fJ)", limits=_E)
    cell_area_um2: float = key(0.0015, "area of one cell (um^2; ISAAC: 0.0002 mm^2 for eight "
                               "128x128 arrays)", limits=_E)
    driver_area_um2: float = key(0.17, "area of one row driver (um^2; ISAAC: 0.00017 mm^2 for "
                                 "1024 1-bit DACs)", limits=_E)
    sample_area_um2: float = key(0.04, "area of one column sample-and-hold (um^2; ISAAC: "
                                 "0.00004 mm^2 for 1024)", limits=_E)
    shift_add_area_um2: float = key(60.0, "area of one shift-and-add unit, one per ADC (um^2; "
                                    "ISAAC: 0.00024 mm^2 for four)", limits=_E)
    adder_area_um2: float = key(25.0, "area of one adder of the adder network or output "
                                "stage, one per output and stage (um^2; choice)", limits=_E)
    control_area_um2: float = key(400.0, "area of a tile's scheduler, SAR and shift-and-add "
                                  "control (um^2; choice, about 300 flip-flops)", limits=_E)
    leakage_mw_per_mm2: float = key(0.5, "leakage power per area (mW/mm^2; choice)", limits=_E)
    clock_mhz: float = key(1000.0, "clock of the digital periphery and the SAR comparators "
                           "(MHz; choice: 1 GHz in 32 nm)", limits=(1e-3, 1e5))

    def adc_scale(self, bits):
        """Energy and area of a ``bits``-bit ADC relative to the reference one."""
        if self.adc_scaling == "walden":
            return 2.0 ** (bits - self.adc_ref_bits)
        return bits / self.adc_ref_bits
