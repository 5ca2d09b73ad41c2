"""Derivatives through the solver against central finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from scimlkit import fit


def _fd_grad(f, x, h=1e-5):
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


@pytest.mark.parametrize("name", ["lotka_volterra", "sir", "pk_two_compartment"])
def test_residual_jacobian_matches_finite_differences(zoo, name):
    entry = zoo(name)
    pr = entry.problem
    x = pr.from_natural({**pr.to_natural(pr.x0), **entry.true}) + 0.05
    jac = pr.compiled.jacobian(x)
    fd = np.stack([_fd_grad(lambda z, i=i: pr.compiled.residuals(z)[i], x) for i in range(jac.shape[0])])
    np.testing.assert_allclose(jac, fd, rtol=1e-4, atol=1e-5 * np.abs(fd).max())


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_objective_gradient_matches_finite_differences(zoo, mode):
    base = zoo("michaelis_menten").problem  # "auto" is forward mode for 2 parameters
    pr = base if mode == "forward" else fit.Problem(
        base.model, base.experiments, base.parameters, base.observables, gradient=mode)
    assert pr.use_forward_mode() is (mode == "forward")
    x = pr.from_natural({"vmax": 0.9, "km": 2.0})
    f, g = pr.compiled.value_and_gradient(x)
    assert f == pytest.approx(pr.compiled.objective(x), rel=1e-12)
    np.testing.assert_allclose(g, _fd_grad(pr.compiled.objective, x), rtol=1e-5)


def test_hessian_matches_finite_differences_of_the_gradient(zoo):
    pr = zoo("michaelis_menten").problem
    x = pr.from_natural({"vmax": 1.1, "km": 1.3})
    hess = pr.compiled.hessian(x)
    fd = np.stack([_fd_grad(lambda z, i=i: pr.compiled.gradient(z)[i], x) for i in range(x.size)])
    np.testing.assert_allclose(hess, fd, rtol=1e-4, atol=1e-6 * np.abs(fd).max())
    v = np.array([0.3, -0.7])
    np.testing.assert_allclose(pr.compiled.hessian_vector(x, v), hess @ v, rtol=1e-8)
