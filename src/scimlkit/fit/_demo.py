"""`scimlkit demo fit`: Lotka-Volterra fitted to the Hudson's Bay lynx-hare data (shipped)."""

from __future__ import annotations

import time
from pathlib import Path


def run(out: Path) -> None:
    """Fit, print the summary and Fisher intervals, write the fit and waterfall plots."""
    from scimlkit import fit

    out.mkdir(parents=True, exist_ok=True)
    entry = fit.zoo.lynx_hare()
    problem = entry.problem
    print(problem.describe())
    t = time.perf_counter()
    result = fit.estimate(problem, "lm", starts=20, seed=0)
    print(result.summary())
    print(fit.fisher(result).summary())
    print("Stan case study posterior means (Carpenter 2018) for comparison: "
          + ", ".join(f"{k}={v}" for k, v in entry.true.items()))
    fig_path = out / "lotka_volterra_fit.png"
    result.plot().savefig(fig_path, dpi=110)
    result.plot_waterfall().savefig(out / "lotka_volterra_waterfall.png", dpi=110)
    print(f"fit plot written to {fig_path} ({time.perf_counter() - t:.1f} s incl. compilation)")
