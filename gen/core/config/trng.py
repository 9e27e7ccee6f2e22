"""``[trng]``: the true random number generator (docs/trng.md)."""

import math
from dataclasses import dataclass
from functools import cached_property

from imcgen.core import timing
from imcgen.core.config.schema import Table, key, table
from imcgen.core.errors import ImcError
from imcgen.core.stats import critbinom

TRNG_TABLE_BITS = 8    # the delay table has 2^8 + 1 quantiles per voltage code
TRNG_FRAC_BITS = 8     # interpolation between quantiles, from the draw
TRNG_DELAY_FRAC = 4    # table entries in 1/16 clock periods
TRNG_DELAY_CAP = 1023  # clock periods: "never switches" for any pulse (pulse_cycles <= 255)
#: The repetition count test's cutoff beyond which it is refused (a 16-bit run counter).
MAX_RCT_CUTOFF = 1 << 16
TRNG_VOLTAGES = 4      # write-voltage codes 0..3


@table("trng")
@dataclass(frozen=True)
class TrngConfig(Table):
    """True random number generator from stochastic switching delays: docs/trng.md."""

    enabled: bool = key(False, "build the TRNG (entropy sources in the crossbar, the TRNG block "
                        "and its byte stream)")
    sources: int = key(8, "entropy devices pulsed in parallel, a bit each per round",
                       limits=(1, 16))
    seed: int = key(1, "entropy devices of the stub: the switching delays draw from it",
                    limits=(0, 2**32 - 1))
    pulse_cycles: int = key(12, "write pulse length in clock periods", limits=(1, 255))
    reset_cycles: int = key(2, "reset pulse length in clock periods", limits=(1, 64))
    voltage: int = key(2, "write-voltage code (a higher code switches faster)",
                       limits=(0, TRNG_VOLTAGES - 1))
    delay_median: float = key(20.0, "median switching delay at voltage code 0, in clock "
                              "periods",
                              limits=(0.5, 1000.0))
    voltage_speedup: float = key(2.0, "median delay divides by this per voltage code",
                                 limits=(1.0, 10.0))
    delay_sigma: float = key(0.5, "spread of the log-normal delay (sigma of its log)",
                             limits=(0.01, 2.0))
    fault: str = key("none", "injected fault: none, stuck_never (never switches), stuck_always "
                     "(switches at once), biased (spread well below a clock period)",
                     choices=("none", "stuck_never", "stuck_always", "biased"))
    debias: bool = key(False, "von Neumann debiasing of each source's bits")
    min_entropy: float = key(0.5, "claimed min-entropy per raw bit, in (0, 1] (sets the "
                             "health-test cutoffs)",
                             limits=(0.0, 1.0))
    false_alarm: float = key(2.0**-20, "false-alarm probability of each health test, in (0, 1)",
                             limits=(0.0, 1.0))
    apt_window: int = key(1024, "adaptive proportion test window (SP 800-90B: 1024 for binary "
                          "sources)",
                          choices=(512, 1024))

    def check(self, cfg):
        if self.min_entropy <= 0:
            raise ImcError("trng.min_entropy", self.min_entropy, "must be a number in (0, 1]")
        if not 0 < self.false_alarm < 1:
            raise ImcError("trng.false_alarm", self.false_alarm, "must be a number in (0, 1)")
        if self.enabled:
            need = timing.trng_draw_cycles(cfg)
            if self.round_cycles < need:
                raise ImcError("trng.pulse_cycles", self.pulse_cycles,
                               f"a round (pulse + reset + 2 = {self.round_cycles} cycles) must "
                               f"cover the {need} cycles the stub takes to draw the next delays "
                               f"of {self.sources} sources: allowed "
                               f"{need - self.reset_cycles - 2}..255")
            # Health tests that could never fire defeat their purpose: refused, naming the
            # setting that decides the cutoff (SP 800-90B 4.4).
            rct = -math.log2(self.false_alarm) / self.min_entropy
            if not math.isfinite(rct) or 1 + math.ceil(rct) > MAX_RCT_CUTOFF:
                raise ImcError("trng.min_entropy", self.min_entropy,
                               f"puts the repetition count cutoff beyond {MAX_RCT_CUTOFF} "
                               f"equal bits in a row (a test that would practically never "
                               f"fire): allowed "
                               f"{-math.log2(self.false_alarm) / (MAX_RCT_CUTOFF - 1):.3g}..1")

    def warnings(self, cfg):
        # Legal (a way to switch the test off) but it defeats the health tests' purpose.
        if self.enabled and self.apt_cutoff > self.apt_window:
            return [f"trng.min_entropy = {self.min_entropy}, trng.false_alarm = "
                    f"{self.false_alarm:.3g}: the adaptive proportion cutoff ({self.apt_cutoff}) "
                    f"is above its window of {self.apt_window} bits, so that health test can "
                    f"never fire"]
        return []

    @property
    def draws(self):
        """Counter-based draws per round: one 64-bit draw serves four sources."""
        return -(-self.sources // 4)

    @property
    def rct_cutoff(self):
        """SP 800-90B 4.4.1: C = 1 + ceil(-log2(alpha) / H)."""
        return 1 + math.ceil(-math.log2(self.false_alarm) / self.min_entropy)

    @cached_property
    def apt_cutoff(self):
        """SP 800-90B 4.4.2: C = 1 + CRITBINOM(W, 2^-H, 1 - alpha), the smallest k whose
        binomial CDF reaches 1 - alpha, computed exactly (rational arithmetic)."""
        return 1 + critbinom(self.apt_window, 2.0 ** -self.min_entropy, 1 - self.false_alarm)

    def delay_median_at(self, voltage):
        return self.delay_median / self.voltage_speedup ** voltage

    @cached_property
    def delay_table(self):
        """Per voltage code, the switching delay's quantiles at i / 2^8 (i = 0..256), in 1/16
        clock periods: the piecewise-linear inverse CDF the stub and the golden model both
        interpolate. Log-normal with median ``delay_median_at(v)`` and log-spread
        ``delay_sigma``; the faults replace it (docs/trng.md section 2)."""
        from statistics import NormalDist

        scale, cap = 1 << TRNG_DELAY_FRAC, TRNG_DELAY_CAP << TRNG_DELAY_FRAC
        steps = 1 << TRNG_TABLE_BITS
        edge = 2.0 ** -(TRNG_TABLE_BITS + 8)  # the end quantiles, clipped off 0 and 1
        tables = []
        for voltage in range(TRNG_VOLTAGES):
            median, sigma = self.delay_median_at(voltage), self.delay_sigma
            if self.fault == "biased":  # a spread of 0.38 periods around the middle of one
                median = math.floor(median) + 0.5  # period: the count's parity is ~81 % one way
                sigma = 0.38 / median
            row = []
            for i in range(steps + 1):
                p = min(max(i / steps, edge), 1 - edge)
                delay = median * math.exp(sigma * NormalDist().inv_cdf(p))
                row.append(min(cap, round(delay * scale)))
            if self.fault == "stuck_always":
                row = [0] * (steps + 1)
            elif self.fault == "stuck_never":
                row = [cap] * (steps + 1)
            tables.append(tuple(row))
        return tuple(tables)

    @property
    def round_cycles(self):
        """Clock cycles of one TRNG round (imcgen.core.timing.trng_round_cycles)."""
        return timing.trng_round_cycles(self)

    def derived(self, cfg):
        if not self.enabled:
            return {}
        return {"rct_cutoff": self.rct_cutoff, "apt_cutoff": self.apt_cutoff,
                "round_cycles": self.round_cycles,
                "median_delay_cycles": round(self.delay_median_at(self.voltage), 3)}
