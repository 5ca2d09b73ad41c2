"""ODE solves with diffrax: solver choice, tolerances, failure as data.

Every solve runs with `throw=False`: a solve that fails (too many steps, step size
collapse, non-finite values) returns `ok=False` and the objective becomes `inf`, so an
optimizer treats the point as rejected and moves on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from .errors import ProblemDefinitionError

_SOLVERS: dict[str, tuple[type, bool]] = {
    # name: (class, is an IMEX method needing a split into explicit + implicit terms)
    "tsit5": (diffrax.Tsit5, False),
    "dopri5": (diffrax.Dopri5, False),
    "dopri8": (diffrax.Dopri8, False),
    "kvaerno3": (diffrax.Kvaerno3, False),
    "kvaerno5": (diffrax.Kvaerno5, False),
}
# KenCarp (IMEX) is not offered by name: diffrax 0.7's KenCarp3/4/5 stall on Robertson
# (100,000 steps, rtol 1e-8) both with the whole RHS as the implicit part and with a real
# slow/fast split, where Kvaerno5 needs 1,211 steps. A KenCarp instance passed as `solver=`
# still runs (whole RHS implicit).
STIFF_DEFAULT = "kvaerno5"
NONSTIFF_DEFAULT = "tsit5"
#: `max|Re(eig(df/dy))| * horizon` above which `solver="auto"` picks a stiff solver.
STIFFNESS_THRESHOLD = 1.0e3


@dataclass(frozen=True)
class SolverSettings:
    """How every experiment is integrated.

    **Arguments:**
    - `solver`: `"auto"`, a name (`"tsit5"`, `"dopri5"`, `"dopri8"`, `"kvaerno3"`,
      `"kvaerno5"`) or a diffrax solver instance (explicit or fully implicit).
      `"auto"` takes `ODEModel(stiff=...)` when given, else estimates stiffness from the
      Jacobian's spectrum at the initial state times the time horizon.
    - `rtol`, `atol`: tolerances of the PID step-size controller.
    - `max_steps`: steps allowed per solve; more is a failed solve (objective `inf`).

    Example:
        >>> from scimlkit import fit
        >>> fit.SolverSettings("dopri8", rtol=1e-10, atol=1e-12)
        SolverSettings(solver='dopri8', rtol=1e-10, atol=1e-12, max_steps=20000)
    """

    solver: Any = "auto"
    rtol: float = 1e-8
    atol: float = 1e-10
    max_steps: int = 20_000

    def __post_init__(self) -> None:
        if isinstance(self.solver, str) and self.solver != "auto" and self.solver.lower() not in _SOLVERS:
            raise ProblemDefinitionError(
                f"unknown solver {self.solver!r}; choose 'auto', one of {sorted(_SOLVERS)}, "
                "or pass a diffrax solver instance"
            )
        if not (self.rtol > 0 and self.atol > 0 and self.max_steps > 0):
            raise ProblemDefinitionError("rtol, atol and max_steps must be positive")


def resolve_solver(spec: Any) -> tuple[Any, bool]:
    """A diffrax solver instance and whether it needs an explicit/implicit term split."""
    if isinstance(spec, str):
        cls, split = _SOLVERS[spec.lower()]
        return cls(), split
    if isinstance(spec, diffrax.AbstractSolver):
        return spec, isinstance(spec, diffrax.KenCarp3 | diffrax.KenCarp4 | diffrax.KenCarp5)
    raise ProblemDefinitionError(f"solver must be a name or a diffrax solver, not {spec!r}")


def stiffness_ratio(rhs: Callable, t0: float, y0: Any, p: dict, horizon: float) -> float:
    """`max|Re(lambda)| * horizon` of the RHS Jacobian at (t0, y0): a cheap stiffness estimate."""
    jac = np.asarray(jax.jacfwd(lambda y: rhs(t0, y, p))(jnp.asarray(y0, dtype=float)))
    if not np.all(np.isfinite(jac)):
        return 0.0
    eig = np.linalg.eigvals(jac)
    return float(np.max(np.abs(eig.real), initial=0.0) * horizon)


def solve(
    rhs: Callable,
    solver: Any,
    split: bool,
    t0: float,
    t1: float,
    y0: Any,
    ts: np.ndarray | None,
    p: dict,
    settings: SolverSettings,
    adjoint: Any,
) -> tuple[Any, Any, Any]:
    """Integrate from `t0` to `t1`, saving at `ts` (or only at `t1` when `ts` is None).

    Returns `(ys, ok, steps)`: states at the save times, a boolean success flag and the
    number of steps taken. A failed solve gives `ok=False` (values may be inf/nan).
    """
    if split:
        zero = diffrax.ODETerm(lambda t, y, args: jnp.zeros_like(y))
        terms = diffrax.MultiTerm(zero, diffrax.ODETerm(lambda t, y, args: rhs(t, y, args)))
    else:
        terms = diffrax.ODETerm(lambda t, y, args: rhs(t, y, args))
    saveat = diffrax.SaveAt(ts=jnp.asarray(ts)) if ts is not None else diffrax.SaveAt(t1=True)
    sol = diffrax.diffeqsolve(
        terms,
        solver,
        t0,
        t1,
        dt0=None,
        y0=y0,
        args=p,
        saveat=saveat,
        stepsize_controller=diffrax.PIDController(rtol=settings.rtol, atol=settings.atol),
        max_steps=settings.max_steps,
        adjoint=adjoint,
        throw=False,
    )
    ok = sol.result == diffrax.RESULTS.successful
    ok = ok & jnp.all(jnp.isfinite(sol.ys))
    return sol.ys, ok, sol.stats["num_steps"]


def forward_adjoint() -> Any:
    """The adjoint for forward-mode derivatives (`jax.jacfwd`/`jvp`) through a solve."""
    return diffrax.ForwardMode()


def reverse_adjoint() -> Any:
    """The adjoint for reverse-mode derivatives (`jax.grad`/`vjp`): checkpointed backprop."""
    return diffrax.RecursiveCheckpointAdjoint()
