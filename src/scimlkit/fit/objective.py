"""The compiled, NumPy-facing objective that every estimation method calls.

Compiled once per `Problem` (on first use) and reused by every start, profile step and
method: parameters are arguments of the jitted functions, never closed-over constants, so a
new start costs no recompilation. Derivatives go forward through the solver
(`diffrax.ForwardMode`, one pass carrying `n` tangents) for few parameters and backward
(`diffrax.RecursiveCheckpointAdjoint`) for many; see `Problem.use_forward_mode`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from .simulate import forward_adjoint, reverse_adjoint

if TYPE_CHECKING:
    from .problem import Problem


@dataclass
class Counts:
    """How often each compiled function ran, and the ODE steps they took."""

    objective: int = 0
    gradient: int = 0
    residuals: int = 0
    jacobian: int = 0
    hessian: int = 0
    steps: int = 0

    def copy(self) -> Counts:
        return Counts(**self.__dict__)

    def minus(self, other: Counts) -> Counts:
        return Counts(**{k: v - getattr(other, k) for k, v in self.__dict__.items()})


class CompiledProblem:
    """Jitted `objective`, `gradient`, `residuals`, `jacobian`, `hessian` of a `Problem`.

    Inputs and outputs are NumPy float64; a failed solve gives `inf` values (and the
    derivative calls then return whatever propagated; callers check the value first).

    Example:
        >>> # problem.compiled is built on first access and cached
        >>> # f = problem.compiled.objective(problem.x0); J = problem.compiled.jacobian(problem.x0)
    """

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self._local = threading.local()
        n = len(problem.parameter_names)
        fwd, rev = forward_adjoint(), reverse_adjoint()
        self._objective = jax.jit(lambda x: problem.objective_fn(x, adjoint=rev))
        if getattr(problem, "least_squares_only", False):
            # objective = 0.5 |r|^2: reuse the residual and Jacobian compilations
            self._objective = lambda x: 0.5 * jnp.sum(self._residuals(x)[0] ** 2)  # type: ignore[misc]

            def vg(x: Any) -> tuple[Any, Any]:
                r = self._residuals(x)[0]  # type: ignore[misc]
                return 0.5 * jnp.sum(r**2), self._jacobian(x)[0].T @ r  # type: ignore[misc]

            self._value_and_grad = vg
        elif problem.use_forward_mode():
            def both(x: Any) -> tuple[Any, Any]:
                v = problem.objective_fn(x, adjoint=fwd)
                return v, v

            self._value_and_grad = jax.jit(lambda x: jax.jacfwd(both, has_aux=True)(x)[::-1])
        else:
            self._value_and_grad = jax.jit(
                jax.value_and_grad(lambda x: problem.objective_fn(x, adjoint=rev))
            )
        self._residuals = None
        self._jacobian = None
        if problem.residual_form is None:
            self._residuals = jax.jit(lambda x: problem._residuals_aux(x, rev))
            n_res = jax.eval_shape(self._residuals, jnp.zeros(n)).__getitem__(0).shape[0]
            self.n_residuals = int(n_res)
            if problem.use_forward_mode(self.n_residuals):
                self._jacobian = jax.jit(
                    jax.jacfwd(lambda x: problem._residuals_aux(x, fwd), has_aux=True)
                )
            else:
                self._jacobian = jax.jit(
                    jax.jacrev(lambda x: problem._residuals_aux(x, rev), has_aux=True)
                )
        if getattr(problem, "least_squares_only", False):
            return
        # second derivatives forward-over-forward (checkpointed reverse mode has no jvp rule)
        grad_fwd = jax.jacfwd(lambda z: problem.objective_fn(z, adjoint=fwd))
        self._hvp = jax.jit(lambda x, v: jax.jvp(grad_fwd, (x,), (v,))[1])
        self._hessian = jax.jit(jax.jacfwd(grad_fwd))

    @property
    def counts(self) -> Counts:
        """Calls made by this thread (each thread of `engine="threads"` counts its own starts)."""
        counts = getattr(self._local, "counts", None)
        if counts is None:
            counts = self._local.counts = Counts()
        return counts

    @counts.setter
    def counts(self, value: Counts) -> None:
        self._local.counts = value

    @staticmethod
    def _x(x: Any) -> Any:
        return np.asarray(x, dtype=np.float64)  # jit takes NumPy directly: no extra dispatch

    def objective(self, x: Any) -> float:
        """Objective value (`inf` if a solve failed)."""
        self.counts.objective += 1
        v = float(self._objective(self._x(x)))
        return v if np.isfinite(v) else np.inf

    def value_and_gradient(self, x: Any) -> tuple[float, np.ndarray]:
        """Objective and its gradient with respect to `x`."""
        self.counts.gradient += 1
        v, g = jax.device_get(self._value_and_grad(self._x(x)))
        v = float(v)
        return (v if np.isfinite(v) else np.inf), np.asarray(g, dtype=float)

    def gradient(self, x: Any) -> np.ndarray:
        """Gradient of the objective."""
        return self.value_and_gradient(x)[1]

    def residuals(self, x: Any) -> np.ndarray:
        """Residual vector (all `inf` if a solve failed)."""
        if self._residuals is None:
            self.problem.residuals(x)  # raises the explanatory MethodError
        self.counts.residuals += 1
        r, steps = jax.device_get(self._residuals(self._x(x)))  # type: ignore[misc]
        self.counts.steps += int(steps)
        return np.array(r)  # a writable copy: callers may modify it in place

    def jacobian(self, x: Any) -> np.ndarray:
        """Jacobian `d residuals / d x`, shape `(n_residuals, n_parameters)`."""
        if self._jacobian is None:
            self.problem.residuals(x)
        self.counts.jacobian += 1
        jac, steps = jax.device_get(self._jacobian(self._x(x)))  # type: ignore[misc]
        self.counts.steps += int(steps)
        return np.array(jac)

    def hessian(self, x: Any) -> np.ndarray:
        """Hessian of the objective (forward-over-forward through the solver)."""
        self.counts.hessian += 1
        return np.asarray(self._hessian(self._x(x)), dtype=float)

    def hessian_vector(self, x: Any, v: Any) -> np.ndarray:
        """Hessian-vector product of the objective."""
        return np.asarray(self._hvp(self._x(x), self._x(v)), dtype=float)

    def objective_offset(self, x: Any) -> float:
        """`objective(x) - 0.5 * sum(residuals(x)**2)` (a constant of the problem)."""
        r = self.residuals(x)
        return self.objective(x) - 0.5 * float(r @ r)
