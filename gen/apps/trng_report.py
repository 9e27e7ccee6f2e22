"""Host side of the TRNG: generation (golden model or RTL), throughput, the NIST SP 800-22
battery (``nistrng``) and the pulse-length sweep a designer chooses the pulse length from.

nistrng is driven test by test on a fresh ``int64`` copy of the bits: some of its tests change
their input in place, and its cumulative sums overflow on ``int8`` input under NumPy 2. Every
battery also runs on the same number of bits from NumPy's PCG64 generator: a test that fails
on those too is a defect of the test's implementation (nistrng's random excursion test fails on
any input), reported as such, not counted against the TRNG.
"""

import time

import numpy as np

from imcgen.golden import trng as golden_trng

__all__ = ["generate", "throughput", "battery", "sweep", "FAST_TESTS"]

FAST_TESTS = ("monobit", "frequency_within_block", "runs", "longest_run_ones_in_a_block",
              "dft", "cumulative sums")


def generate(cfg, bits):
    """At least ``bits`` output bits from the golden model: ``(bits array, run)``."""
    result = golden_trng.bits_for(cfg, bits)
    return result.bits[:bits], result


def throughput(cfg, result):
    """Bits per clock of a golden run: its output bits over the cycles of its rounds."""
    return len(result.bits) / max(1, result.rounds * cfg.trng.round_cycles)


def battery(bits, tests=None, progress=None):
    """SP 800-22 tests that apply to ``bits``: ``[(name, p-value, passed, applies)]``."""
    from nistrng import SP800_22R1A_BATTERY

    out = []
    source = np.asarray(bits, dtype=np.int64)
    for name, test in SP800_22R1A_BATTERY.items():
        if tests is not None and name not in tests:
            continue
        copy = source.copy()
        if not test.is_eligible(copy):
            out.append((name, float("nan"), False, False))
            continue
        t0 = time.perf_counter()
        result, _ = test.run(copy)
        out.append((name, float(result.score), bool(result.passed), True))
        if progress:
            progress(f"{name}: p = {result.score:.4f} ({time.perf_counter() - t0:.0f} s)")
    return out


def reference_bits(count, seed=0):
    """The same number of bits from NumPy's PCG64, to tell test defects from TRNG faults."""
    return np.random.default_rng(seed).integers(0, 2, count)


def sweep(cfg, lengths, bits=100_000):
    """For each pulse length: bits per clock, bias, retry rate and failing fast tests."""
    rows = []
    for length in lengths:
        c = cfg.replace(**{"trng.pulse_cycles": int(length)})
        out, result = generate(c, bits)
        fails = sum(1 for _, _, ok, applies in battery(out, FAST_TESTS) if applies and not ok)
        rows.append({
            "pulse_cycles": int(length),
            "bits_per_clock": throughput(c, result),
            "bias": float(out.mean() - 0.5) if len(out) else float("nan"),
            "retry_rate": result.retries / max(1, result.rounds * c.trng.sources),
            "failing_fast_tests": fails,
            "alarm": result.alarm,
        })
    return rows


def sweep_plot(cfg, rows, path, clock_mhz):
    """Bits per clock against pulse length, with bias and failing tests, as a PNG."""
    from imcgen.apps.plots import pyplot

    plt = pyplot()
    lengths = [r["pulse_cycles"] for r in rows]
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.plot(lengths, [r["bits_per_clock"] for r in rows], "o-", color="tab:blue",
            label="bits per clock")
    ax.set_xlabel("write pulse length (clock periods)")
    ax.set_ylabel(f"bits per clock (x {clock_mhz:g} = Mb/s at {clock_mhz:g} MHz)")
    ax.grid(alpha=0.3)
    twin = ax.twinx()
    twin.plot(lengths, [100 * abs(r["bias"]) for r in rows], "s--", color="tab:red",
              label="|bias| (%)")
    twin.set_ylabel("|bias| (%)")
    for r in rows:
        if r["failing_fast_tests"]:
            ax.annotate(f"{r['failing_fast_tests']} fail", (r["pulse_cycles"],
                                                            r["bits_per_clock"]),
                        textcoords="offset points", xytext=(0, 8), ha="center",
                        color="tab:red", fontsize=8)
    ax.axhline(23 / clock_mhz, color="gray", linestyle=":", label="23 Mb/s CMOS TRNG")
    lines = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper right", fontsize=8)
    t = cfg.trng
    ax.set_title(f"TRNG: {t.sources} sources, median delay {t.delay_median_at(t.voltage):.1f} "
                 f"periods, sigma {t.delay_sigma}; failing fast SP 800-22 tests annotated",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
