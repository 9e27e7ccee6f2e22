"""PNG plots for the reports (matplotlib, drawn off-screen)."""

from pathlib import Path

import numpy as np

__all__ = ["program_plots"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def program_plots(cfg, report, figures, directory):
    """Relative-error and iteration histograms of a programming run; returns the paths."""
    plt = _pyplot()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    from .golden.write_verify import readback_levels
    from .program import final_requests

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
