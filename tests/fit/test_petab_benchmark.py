"""The key acceptance test of the PEtab importer: published log-likelihoods at nominal values.

`../shared/petab/` holds problems of the PEtab benchmark collection and `REFERENCE.tsv`, the
log-likelihood at the nominal parameters from AMICI's benchmark table (checked there with
`np.isclose(rtol=1e-3, atol=1e-3)` at solver tolerances 1e-8, priors excluded). Our
simulations use Kvaerno4 at rtol = atol = 1e-8.

The five cheapest problems run by default; the other five (more conditions, pre-equilibration,
bigger models: 20-40 s of compilation each on an idle core) are marked slow.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("libsbml")
from scimlkit.fit.petab import from_petab

FAST = [
    "Boehm_JProteomeRes2014",
    "Crauste_CellSystems2017",
    "Fiedler_BMCSystBiol2016",
    "Bruno_JExpBot2016",
    "Elowitz_Nature2000",
]
SLOW = [
    "Bachmann_MSB2011",
    "Brannmark_JBC2010",
    "Fujita_SciSignal2010",
    "Weber_BMC2015",
    "Zheng_PNAS2012",
]
CASES = [*FAST, *(pytest.param(n, marks=pytest.mark.slow) for n in SLOW)]


def _reference(shared: Path) -> dict[str, float]:
    with open(shared / "petab" / "REFERENCE.tsv") as fh:
        return {
            row["problem"]: float(row["llh_at_nominal"])
            for row in csv.DictReader(fh, delimiter="\t")
        }


def _yaml(shared: Path, name: str) -> Path:
    path = shared / "petab" / name / f"{name}.yaml"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


@pytest.mark.parametrize("name", CASES)
def test_log_likelihood_at_nominal_matches_reference(shared_dir: Path, name: str) -> None:
    problem = from_petab(_yaml(shared_dir, name))
    got = float(problem.log_likelihood(problem.nominal))
    want = _reference(shared_dir)[name]
    assert np.isclose(got, want, rtol=1e-3, atol=1e-3), f"{name}: ours {got} vs reference {want}"


def test_boehm_gradient_matches_finite_differences(shared_dir: Path) -> None:
    problem = from_petab(_yaml(shared_dir, "Boehm_JProteomeRes2014"))
    theta = np.array([problem.nominal[k] for k in problem.names])
    g = np.asarray(problem.gradient(theta))  # reverse mode, natural scale
    fd = []
    for i in range(theta.size):
        h = 1e-4 * theta[i]
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        fd.append(
            (float(problem.log_likelihood(up)) - float(problem.log_likelihood(down))) / (2 * h)
        )
    np.testing.assert_allclose(g, fd, rtol=2e-3, atol=1e-3 * np.max(np.abs(fd)))


def test_boehm_residuals_are_the_objective_in_least_squares_form(shared_dir: Path) -> None:
    # Gauss-Newton methods need objective(x) = 0.5 |r(x)|^2 + const, estimated noise scales included
    problem = from_petab(_yaml(shared_dir, "Boehm_JProteomeRes2014"))
    rng = np.random.default_rng(0)
    offsets = [
        problem.compiled.objective_offset(problem.x0 + 0.3 * rng.standard_normal(problem.x0.size))
        for _ in range(3)
    ]
    np.testing.assert_allclose(offsets, offsets[0], rtol=1e-9, atol=1e-8)
