"""Plots with matplotlib (object API; no pyplot state, works with the Agg backend).

Each function returns a `matplotlib.figure.Figure`; save it with `fig.savefig(path)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import MissingDependencyError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .identifiability import ProfileResult, Uncertainty
    from .result import FitResult


def _figure(nrows: int, ncols: int, size: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib is in the fit extra
        raise MissingDependencyError("matplotlib", "fit", "plots") from exc
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = np.atleast_2d(fig.subplots(nrows, ncols, squeeze=False))
    return fig, axes


def plot_fit(result: FitResult, t: Any = None, n_points: int = 200) -> Figure:
    """Data and fitted trajectories: a row per experiment, a panel per measured observable."""
    p = result.problem
    exps = p.experiments
    ncols = max(len(e.observables) for e in exps)  # type: ignore[arg-type]
    fig, axes = _figure(len(exps), ncols, (4.2, 3.0))
    names = [o.name for o in p.observables]
    for k, e in enumerate(exps):
        grid = np.asarray(t, float) if t is not None else np.linspace(float(e.t0), float(e.t[-1]), n_points)  # type: ignore[arg-type]
        sim = p.simulate(result.x, t=grid, experiments=[k])[0]
        for j, oname in enumerate(e.observables):  # type: ignore[arg-type]
            ax = axes[k, j]
            i = names.index(oname)
            ax.plot(grid, sim["observables"][:, i], color="C0", label="fit")
            ax.plot(e.t, e.data[:, j], "o", color="C1", ms=4, label="data")
            ax.set_title(f"{e.name}: {oname}", fontsize=9)
            ax.set_xlabel("t")
            if k == 0 and j == 0:
                ax.legend(fontsize=8)
        for j in range(len(e.observables), ncols):  # type: ignore[arg-type]
            axes[k, j].set_visible(False)
    fig.suptitle(f"{p.name}: objective {result.objective:.5g}", fontsize=10)
    return fig


def plot_waterfall(result: FitResult) -> Figure:
    """Sorted start objectives relative to the best (log scale): plateaus are clusters."""
    fig, axes = _figure(1, 1, (5.0, 3.2))
    ax = axes[0, 0]
    f = np.array([s.objective for s in result.starts])
    ok = np.isfinite(f)
    rel = f[ok] - result.objective + 1.0
    ax.semilogy(np.arange(1, ok.sum() + 1), rel, "o-", ms=4)
    if (~ok).any():
        ax.text(0.98, 0.05, f"{int((~ok).sum())} failed start(s)", transform=ax.transAxes, ha="right")
    ax.set_xlabel("start (sorted)")
    ax.set_ylabel("objective - best + 1")
    ax.set_title(f"{result.problem.name}: {result.converged_starts()}/{len(result.starts)} at the best", fontsize=10)
    return fig


def plot_profiles(pr: ProfileResult) -> Figure:
    """Profile likelihoods with the threshold and the confidence interval."""
    n = len(pr.profiles)
    ncols = min(n, 3)
    nrows = -(-n // ncols)
    fig, axes = _figure(nrows, ncols, (3.6, 2.9))
    scales = dict(zip(pr.result.problem.parameter_names, pr.result.problem.scales, strict=True)) if pr.result is not None else {}
    for ax, (name, prof) in zip(axes.ravel(), pr.profiles.items(), strict=False):
        ax.plot(prof.values, prof.objective - pr.optimum, "o-", ms=3)
        ax.axhline(pr.threshold, color="C3", ls="--", lw=1)
        lo, hi = prof.interval
        ax.axvspan(lo if np.isfinite(lo) else prof.values.min(), hi if np.isfinite(hi) else prof.values.max(),
                   color="C2", alpha=0.15)
        if scales.get(name, "lin") != "lin" and prof.values.max() > 10 * prof.values.min() > 0:
            ax.set_xscale("log")
        ax.set_xlabel(name)
        ax.set_ylabel("objective - optimum")
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig


def plot_correlation(u: Uncertainty) -> Figure:
    """Parameter correlation matrix (Fisher information) as an annotated heat map."""
    n = len(u.names)
    fig, axes = _figure(1, 1, (1.0 + 0.6 * n, 0.8 + 0.6 * n))
    ax = axes[0, 0]
    im = ax.imshow(u.correlation, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(n), u.names, rotation=45, ha="right")
    ax.set_yticks(range(n), u.names)
    for i in range(n):
        for j in range(n):
            v = u.correlation[i, j]
            ax.text(j, i, "nan" if not np.isfinite(v) else f"{v:.2f}", ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig
