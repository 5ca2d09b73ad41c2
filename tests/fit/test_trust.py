"""`NewtonTrustRegion` on closed-form targets: the structured secant of `hessian="hybrid"`."""

from __future__ import annotations

import numpy as np
import pytest

from scimlkit.fit.petab.trust import NewtonTrustRegion, _StructuredSR1

T = np.array([1.0, 2.0, 3.0])


class LargeResidual:
    """`f = |r|^2 / 2`, `r_i = exp(x t_i) - y_i` with `y = (2, 4, -4)`: the one-parameter
    exponential fit that Dennis & Schnabel (1983, ch. 10) use to show Gauss-Newton's linear
    convergence on large residuals. Exact derivatives in closed form."""

    lower = np.array([-2.0])
    upper = np.array([2.0])
    y = np.array([2.0, 4.0, -4.0])

    def _parts(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        e = np.exp(x[0] * T)
        r = e - self.y
        jac = (T * e)[:, None]
        curv = np.array([[np.sum(r * T**2 * e)]])  # sum r_i * r_i''
        return 0.5 * float(r @ r), r, jac, curv

    def fisher(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        f, r, jac, _ = self._parts(x)
        return f, jac.T @ r, jac.T @ jac

    def newton(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        f, r, jac, curv = self._parts(x)
        return f, jac.T @ r, jac.T @ jac + curv


def test_structured_sr1_satisfies_the_secant_condition() -> None:
    rng = np.random.default_rng(0)
    fisher_new = np.diag([2.0, 1.0, 0.5])
    sr1 = _StructuredSR1(3)
    for _ in range(3):
        s, y = rng.normal(size=3), rng.normal(size=3)
        sr1.update(s, y, fisher_new)
        np.testing.assert_allclose((fisher_new + sr1.a) @ s, y, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(sr1.a, sr1.a.T)


def test_the_model_that_predicted_the_actual_decrease_is_kept() -> None:
    sr1 = _StructuredSR1(1)
    sr1.a[:] = 2.0
    g, fisher, p = np.array([-1.0]), np.array([[1.0]]), np.array([0.5])
    # F predicts 0.5 - 0.125 = 0.375, F + A predicts 0.375 - 0.25 = 0.125
    sr1.choose(0.1, g, fisher, p)
    assert sr1.active and np.allclose(sr1.model(fisher), 3.0)
    sr1.choose(0.4, g, fisher, p)
    assert not sr1.active and np.allclose(sr1.model(fisher), 1.0)


def test_hybrid_reaches_the_optimum_in_fewer_iterations_than_fisher() -> None:
    from scipy.optimize import brentq

    target = LargeResidual()
    # the minimizer: the root of the gradient (one-dimensional, bracketed), independent of the method
    x_star = brentq(lambda a: target.newton(np.array([a]))[1][0], -1.0, 0.0, xtol=1e-14)
    runs = {
        hessian: NewtonTrustRegion(hessian=hessian, fatol=1e-12, frtol=0.0).run(
            target, np.array([1.0]), 0
        )
        for hessian in ("exact", "fisher", "hybrid")
    }
    for outcome in runs.values():
        assert outcome.status.value.startswith("converged")
        assert outcome.x[0] == pytest.approx(x_star, abs=1e-5)
    assert runs["hybrid"].iterations < runs["fisher"].iterations


def test_an_unknown_hessian_model_is_a_method_error() -> None:
    from scimlkit.fit.errors import MethodError

    with pytest.raises(MethodError, match="hessian must be"):
        NewtonTrustRegion(hessian="bfgs").check(LargeResidual())


class CoupledQuadratic:
    """`f = x.H.x / 2 - b.x` on `x >= 0` with strongly coupled `H`: the unconstrained
    minimizer has `x_0 < 0`; the bounded one is `(0, b_1 / H_11) = (0, 1)` (KKT: the
    gradient there, `(0.4, 0)`, points out of the box along `x_0` only)."""

    lower = np.array([0.0, 0.0])
    upper = np.array([10.0, 10.0])
    h = np.array([[1.0, 0.9], [0.9, 1.0]])
    b = np.array([0.5, 1.0])

    def newton(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        return 0.5 * x @ self.h @ x - self.b @ x, self.h @ x - self.b, self.h

    fisher = newton


@pytest.mark.parametrize("hessian", ["exact", "hybrid"])
def test_a_bound_variable_the_step_pushes_out_is_held(hessian: str) -> None:
    # at (0, 0.5) the gradient (-0.05, -0.5) points into the box, but the Newton step on
    # both variables leaves it along x_0: holding x_0 gives the bounded minimizer in one step
    target = CoupledQuadratic()
    outcome = NewtonTrustRegion(hessian=hessian, delta0=10.0).run(target, np.array([0.0, 0.5]), 0)
    np.testing.assert_allclose(outcome.x, [0.0, 1.0], atol=1e-12)
    assert outcome.iterations == 2  # the step, then the gradient test at the minimizer
