"""PNG plots for the reports (matplotlib, drawn off-screen)."""

from pathlib import Path

import numpy as np

__all__ = ["pyplot", "program_plots", "accuracy_plots"]


def pyplot():
    """matplotlib.pyplot on the off-screen Agg backend (files only: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def program_plots(cfg, report, figures, directory):
    """Relative-error and iteration histograms of a programming run; returns the paths."""
    plt = pyplot()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    from imcgen.golden.programming import final_requests
    from imcgen.golden.write_verify import readback_levels

    req = report.requests
    final = final_requests(report)
    t, r, c = req.tile[final], req.row[final], req.column[final]
    healthy = ~report.stuck[t, r, c]
    states = report.states[t, r, c]
    target = readback_levels(cfg, req.target[final]) << cfg.state_frac
    nonzero = healthy & (target > 0)
    rel = 100 * (states - target)[nonzero] / target[nonzero]
    paths = []

    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.hist(rel, bins=61, color="tab:blue")
    ax.set_xlabel("programmed state error relative to target (%)")
    ax.set_ylabel("cells")
    ax.set_title(f"{cfg.device.kind}: {len(rel)} healthy cells with a non-zero target, "
                 f"mean |error| {100 * figures['mean_relative_error']:.2f} %")
    ax.grid(alpha=0.3)
    paths.append(directory / "relative_error.png")
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.2))
    counts = np.asarray(figures["pulse_histogram"])
    ax.bar(np.arange(len(counts)), counts, color="tab:orange")
    ax.set_xlabel("pulses per cell")
    ax.set_ylabel("cells")
    ax.set_yscale("log")
    ax.set_title(f"{figures['requests']} requests, mean {figures['mean_pulses']:.2f} pulses, "
                 f"{figures['stuck_found']} stuck found, {figures['gave_up']} gave up")
    ax.grid(alpha=0.3, which="both")
    paths.append(directory / "pulses.png")
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def accuracy_plots(report, device, directory):
    """Precision and accuracy against drift time (with and without compensation) and against
    the swept key, and error histograms; returns the paths."""
    from imcgen.apps.accuracy import format_time

    plt = pyplot()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    rows = report["times"]
    if rows:
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        times = [max(r["time"], 1e-3) for r in rows]
        for key, style, label in (("plain", "o-", "no compensation"),
                                  ("compensated", "s--", "drift compensation")):
            ax.plot(times, [r[key].bits for r in rows], style, label=f"precision, {label}")
        ax.set_xscale("log")
        ax.set_xlabel("time since programming (s)")
        ax.set_ylabel("effective precision (bits)")
        ax.grid(alpha=0.3, which="both")
        if rows[0]["plain"].accuracy is not None:
            twin = ax.twinx()
            for key, style, label in (("plain", "o:", "accuracy, no comp."),
                                      ("compensated", "s:", "accuracy, comp.")):
                twin.plot(times, [100 * r[key].accuracy for r in rows], style, color="gray",
                          alpha=0.7, label=label)
            twin.set_ylabel("classification accuracy (%)")
            twin.legend(loc="lower right", fontsize=8)
        ax.legend(loc="lower left", fontsize=8)
        ax.set_title(f"{device}: {report['workload']}", fontsize=9)
        fig.tight_layout()
        paths.append(directory / "accuracy_vs_time.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    if report["sweep"]:
        key = report.get("sweep_key", "value")
        values = [v for v, _ in report["sweep"]]
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        ax.plot(values, [e.bits for _, e in report["sweep"]], "o-", label="precision (bits)")
        ax.set_xlabel(key)
        ax.set_ylabel("effective precision (bits)")
        ax.grid(alpha=0.3)
        if report["sweep"][0][1].accuracy is not None:
            twin = ax.twinx()
            twin.plot(values, [100 * e.accuracy for _, e in report["sweep"]], "s--",
                      color="tab:red", label="accuracy (%)")
            twin.set_ylabel("classification accuracy (%)")
            twin.legend(loc="lower right", fontsize=8)
        ax.legend(loc="upper left", fontsize=8)
        ax.set_title(f"{device}: precision against {key}", fontsize=9)
        fig.tight_layout()
        paths.append(directory / f"accuracy_vs_{key.replace('.', '_')}.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    if rows:
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        for r in (rows[0], rows[-1]):
            errors = r["plain"].errors
            ax.hist(errors, bins=81, alpha=0.55,
                    label=f"t = {format_time(r['time'])}: RMS {r['plain'].rms:.1f}")
        ax.set_xlabel("MVM error against the exact product (output units)")
        ax.set_ylabel("outputs")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        ax.set_title(f"{device}: error histograms (no drift compensation)", fontsize=9)
        fig.tight_layout()
        paths.append(directory / "error_histograms.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths
