"""PEtab import on small hand-written problems whose likelihood is known in closed form.

These cover what the benchmark collection does not: amounts vs concentrations, rate rules,
pre-equilibration to a steady state, measurements at `inf`, Laplace noise, log10
observables, condition overrides of species, and the errors for unsupported input.
"""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("libsbml")
from scimlkit.cli import main
from scimlkit.fit.petab import PEtabError, PEtabProblem, UnsupportedSBMLError, from_petab

SBML = """<?xml version="1.0" encoding="UTF-8"?>
<sbml xmlns="http://www.sbml.org/sbml/level3/version2/core" level="3" version="2">
  <model id="toy">
    <listOfFunctionDefinitions>
      <functionDefinition id="twice">
        <math xmlns="http://www.w3.org/1998/Math/MathML">
          <lambda><bvar><ci> v </ci></bvar><apply><times/><cn> 2 </cn><ci> v </ci></apply></lambda>
        </math>
      </functionDefinition>
    </listOfFunctionDefinitions>
    <listOfCompartments>
      <compartment id="cell" size="2" constant="true" spatialDimensions="3"/>
    </listOfCompartments>
    <listOfSpecies>
      <species id="A" compartment="cell" initialConcentration="1" hasOnlySubstanceUnits="false"
               boundaryCondition="false" constant="false"/>
      <species id="B" compartment="cell" initialAmount="0" hasOnlySubstanceUnits="true"
               boundaryCondition="false" constant="false"/>
    </listOfSpecies>
    <listOfParameters>
      <parameter id="k" value="0.5" constant="true"/>
      <parameter id="a0" value="3" constant="true"/>
      <parameter id="prod" value="1" constant="true"/>
      <parameter id="kd" value="0.7" constant="true"/>
      <parameter id="C" value="0" constant="false"/>
      <parameter id="D" value="1" constant="false"/>
      <parameter id="g" value="0.2" constant="true"/>
    </listOfParameters>
    <listOfInitialAssignments>
      <initialAssignment symbol="A">
        <math xmlns="http://www.w3.org/1998/Math/MathML"><ci> a0 </ci></math>
      </initialAssignment>
    </listOfInitialAssignments>
    <listOfRules>
      <assignmentRule variable="C">
        <math xmlns="http://www.w3.org/1998/Math/MathML"><apply><ci> twice </ci><ci> A </ci></apply></math>
      </assignmentRule>
      <rateRule variable="D">
        <math xmlns="http://www.w3.org/1998/Math/MathML"><apply><times/><ci> g </ci><apply><minus/><cn> 2 </cn><ci> D </ci></apply></apply></math>
      </rateRule>
    </listOfRules>
    <listOfReactions>
      <reaction id="degA" reversible="false">
        <listOfReactants><speciesReference species="A" stoichiometry="1" constant="true"/></listOfReactants>
        <kineticLaw><math xmlns="http://www.w3.org/1998/Math/MathML">
          <apply><times/><ci> k </ci><ci> A </ci><ci> cell </ci></apply></math></kineticLaw>
      </reaction>
      <reaction id="prodB" reversible="false">
        <listOfProducts><speciesReference species="B" stoichiometry="1" constant="true"/></listOfProducts>
        <kineticLaw><math xmlns="http://www.w3.org/1998/Math/MathML"><ci> prod </ci></math></kineticLaw>
      </reaction>
      <reaction id="degB" reversible="false">
        <listOfReactants><speciesReference species="B" stoichiometry="1" constant="true"/></listOfReactants>
        <kineticLaw><math xmlns="http://www.w3.org/1998/Math/MathML">
          <apply><times/><ci> kd </ci><ci> B </ci></apply></math></kineticLaw>
      </reaction>
    </listOfReactions>
  </model>
</sbml>
"""

# truth used for the data and the closed-form likelihood
K, A0, KD, P_PRE, P_SIM, SCALE, SIGMA_A, G = 0.5, 3.0, 0.7, 1.0, 2.5, 2.0, 0.3, 0.2


def _write(tmp: Path, sbml: str = SBML, measurements: str | None = None) -> Path:
    files = {
        "model.xml": sbml,
        "conditions.tsv": "conditionId\tprod\tA\npre\t1.0\t\nsim\tp_sim\ta0\nsimA\tp_sim\ta_alt\n",
        "observables.tsv": (
            "observableId\tobservableFormula\tnoiseFormula\tobservableTransformation\tnoiseDistribution\n"
            "obsA\tobservableParameter1_obsA * C / 2\tnoiseParameter1_obsA\tlin\tnormal\n"
            "obsB\tB\t0.1\tlog10\tlaplace\n"
            "obsD\tD\t0.05\tlin\tnormal\n"
        ),
        "parameters.tsv": (
            "parameterId\tparameterScale\tlowerBound\tupperBound\tnominalValue\testimate\t"
            "objectivePriorType\tobjectivePriorParameters\n"
            f"k\tlog10\t0.01\t10\t{K}\t1\tnormal\t0.5;0.1\n"
            f"kd\tlog\t0.01\t10\t{KD}\t1\t\t\n"
            f"a0\tlin\t0\t10\t{A0}\t1\t\t\n"
            f"p_sim\tlin\t0\t10\t{P_SIM}\t1\t\t\n"
            f"scale_A\tlog10\t0.1\t10\t{SCALE}\t1\t\t\n"
            f"sigma_A\tlog10\t0.01\t10\t{SIGMA_A}\t1\t\t\n"
            "a_alt\tlin\t0\t10\t5\t0\t\t\n"
        ),
        "measurements.tsv": measurements
        or (
            "observableId\tpreequilibrationConditionId\tsimulationConditionId\tmeasurement\ttime\t"
            "observableParameters\tnoiseParameters\n"
            "obsA\tpre\tsim\t2.9\t0.5\tscale_A\tsigma_A\n"
            "obsA\tpre\tsim\t1.2\t2\tscale_A\tsigma_A\n"
            "obsA\t\tsimA\t4.0\t1\t1.5\t0.2\n"
            "obsB\tpre\tsim\t1.9\t1\t\t\n"
            "obsB\tpre\tsim\t3.3\tinf\t\t\n"
            "obsB\t\tsimA\t0.8\t2\t\t\n"
            "obsD\t\tsimA\t1.3\t1\t\t\n"
        ),
    }
    for name, text in files.items():
        (tmp / name).write_text(text)
    (tmp / "problem.yaml").write_text(
        textwrap.dedent(
            """\
            format_version: 1
            parameter_file: parameters.tsv
            problems:
            - condition_files: [conditions.tsv]
              measurement_files: [measurements.tsv]
              observable_files: [observables.tsv]
              sbml_files: [model.xml]
            """
        )
    )
    return tmp / "problem.yaml"


def _expected_llh(
    k: float, kd: float, a0: float, p_sim: float, scale: float, sigma: float
) -> float:
    """Closed-form solution of the toy model and PEtab's log densities."""
    # A is a concentration: d[A]/dt = -(k [A] V) / V = -k [A]; the observable is scale * C / 2 = scale * A
    a = lambda t, a_init: a_init * math.exp(-k * t)  # noqa: E731
    # B is an amount with production prod and decay kd: after pre-equilibration B = P_PRE / kd
    b = lambda t, b0, pr: pr / kd + (b0 - pr / kd) * math.exp(-kd * t)  # noqa: E731

    def normal(y: float, h: float, s: float) -> float:
        return -0.5 * math.log(2 * math.pi * s**2) - 0.5 * ((y - h) / s) ** 2

    def laplace_log10(y: float, h: float, s: float) -> float:
        return (
            -math.log(2 * s) - abs(math.log10(y) - math.log10(h)) / s - math.log(y * math.log(10))
        )

    b_pre = P_PRE / kd
    # after pre-equilibration "sim" resets A to a0; B keeps its pre-equilibrated amount
    llh = normal(2.9, scale * a(0.5, a0), sigma) + normal(1.2, scale * a(2.0, a0), sigma)
    llh += normal(4.0, 1.5 * a(1.0, 5.0), 0.2)  # simA resets A to a_alt = 5 (no pre-equilibration)
    llh += laplace_log10(1.9, b(1.0, b_pre, p_sim), 0.1)
    llh += laplace_log10(3.3, p_sim / kd, 0.1)
    llh += laplace_log10(0.8, b(2.0, 0.0, p_sim), 0.1)
    llh += normal(1.3, 2.0 - math.exp(-G * 1.0), 0.05)  # rate rule dD/dt = g (2 - D), D(0) = 1
    return llh


@pytest.fixture(scope="module")
def problem(tmp_path_factory: pytest.TempPathFactory) -> PEtabProblem:
    """One toy problem shared by the tests (compiled once)."""
    return from_petab(_write(tmp_path_factory.mktemp("toy")))


def test_closed_form_likelihood(problem: PEtabProblem) -> None:
    assert problem.names == ["k", "kd", "a0", "p_sim", "scale_A", "sigma_A"]
    assert problem.nominal["kd"] == pytest.approx(KD)
    got = float(problem.log_likelihood(problem.nominal))
    want = _expected_llh(K, KD, A0, P_SIM, SCALE, SIGMA_A)
    assert got == pytest.approx(want, rel=1e-6, abs=1e-6)
    # another point, given as an array in parameter order
    theta = np.array([0.8, 0.4, 2.0, 1.7, 1.1, 0.5])
    assert float(problem.log_likelihood(theta)) == pytest.approx(
        _expected_llh(*theta), rel=1e-6, abs=1e-6
    )


def test_a_solve_that_exhausts_max_steps_gives_minus_infinity(tmp_path: Path) -> None:
    # the default budget is AMICI's (10,000 steps per solve); past it the simulation fails
    # and the log-likelihood is -inf (an optimizer treats the point as infeasible), no error
    assert PEtabProblem.__init__.__kwdefaults__["max_steps"] == 10_000
    tight = from_petab(_write(tmp_path), max_steps=2)
    assert float(tight.log_likelihood(tight.nominal)) == -np.inf
    f, g, _h = tight.newton(tight.x0)
    assert f == np.inf and np.all(g == 0)


def test_gradient_matches_finite_differences(problem: PEtabProblem) -> None:
    # the gradient estimate() uses (forward mode through the solver, estimation scale) against
    # central differences of the log-likelihood; the only prior (on k) is flat at x0 (k = its mean)
    x = problem.x0
    _v, g = problem.compiled.value_and_gradient(x)
    llh = lambda z: float(problem.log_likelihood(problem.to_natural(z)))  # noqa: E731
    h = 1e-5
    fd = np.array([-(llh(x + h * e) - llh(x - h * e)) / (2 * h) for e in np.eye(len(x))])
    np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-5)


def test_priors_and_scales_come_from_the_parameter_table(problem: PEtabProblem) -> None:
    assert problem.scales == ["log10", "log", "lin", "lin", "log10", "log10"]
    np.testing.assert_allclose(problem.lower, [-2, math.log(0.01), 0, 0, -1, -2])
    x = problem.x0
    # normal(0.5, 0.1) prior on k's natural value; the others have none
    want = -0.5 * math.log(2 * math.pi * 0.01) - 0.5 * ((K - 0.5) / 0.1) ** 2
    assert float(problem.log_prior(x)) == pytest.approx(want)
    # the objective is -llh - log prior
    llh = float(problem.log_likelihood(problem.nominal))
    v, _ = problem.compiled.value_and_gradient(x)
    assert v == pytest.approx(-llh - want, rel=1e-9)


def test_unsupported_constructs_are_all_named(tmp_path: Path) -> None:
    bad = SBML.replace(
        "</listOfReactions>",
        """</listOfReactions>
    <listOfEvents>
      <event id="kick" useValuesFromTriggerTime="true">
        <trigger initialValue="false" persistent="true"><math xmlns="http://www.w3.org/1998/Math/MathML">
          <apply><gt/><csymbol encoding="text" definitionURL="http://www.sbml.org/sbml/symbols/time"> t </csymbol>
          <cn> 1 </cn></apply></math></trigger>
        <listOfEventAssignments><eventAssignment variable="A">
          <math xmlns="http://www.w3.org/1998/Math/MathML"><cn> 1 </cn></math></eventAssignment>
        </listOfEventAssignments>
      </event>
    </listOfEvents>""",
    ).replace(
        '<rateRule variable="D">',
        '<algebraicRule><math xmlns="http://www.w3.org/1998/Math/MathML"><apply><minus/><ci> g </ci>'
        '<cn> 0.2 </cn></apply></math></algebraicRule><rateRule variable="D">',
    )
    with pytest.raises(UnsupportedSBMLError) as info:
        from_petab(_write(tmp_path, sbml=bad))
    msg = str(info.value)
    assert "event" in msg and "algebraic rule" in msg
    assert len(info.value.constructs) == 2


def test_bad_tables_give_petab_errors(tmp_path: Path) -> None:
    wrong_count = (
        "observableId\tsimulationConditionId\tmeasurement\ttime\tobservableParameters\tnoiseParameters\n"
        "obsA\tsim\t1.0\t1\tscale_A;2\tsigma_A\n"
    )
    with pytest.raises(PEtabError, match="placeholder"):
        from_petab(_write(tmp_path, measurements=wrong_count))
    unknown = (
        "observableId\tsimulationConditionId\tmeasurement\ttime\tobservableParameters\tnoiseParameters\n"
        "obsA\tsim\t1.0\t1\tnot_a_parameter\tsigma_A\n"
    )
    with pytest.raises(PEtabError, match="not_a_parameter"):
        from_petab(_write(tmp_path, measurements=unknown))
    with pytest.raises(PEtabError, match="does not exist"):
        from_petab(tmp_path / "missing.yaml")


# -- `scimlkit fit petab PROBLEM.yaml` ------------------------------------------------------

# the toy problem without pre-equilibration: A decays from a_alt = 5 with rate k
MEASUREMENTS = (
    "observableId\tsimulationConditionId\tmeasurement\ttime\tobservableParameters\tnoiseParameters\n"
    + "".join(
        f"obsA\tsimA\t{v}\t{t}\t1.0\t0.05\n"
        for t, v in [(0.5, 3.9), (1, 3.03), (2, 1.84), (3, 1.12)]
    )
)


def test_cli_fits_and_writes_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    yaml_path = _write(tmp_path, measurements=MEASUREMENTS)
    out = tmp_path / "res" / "result.json"
    code = main(
        ["fit", "petab", str(yaml_path), "--starts", "3", "--method", "lbfgs", "--out", str(out)]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "log-likelihood at nominal parameters" in text and "FitResult" in text
    data = json.loads(out.read_text())
    assert len(data["starts"]) == 3
    # data were made with k = 0.5 (A = 5 exp(-0.5 t), rounded); k is the only identifiable rate here
    assert data["parameters"]["k"] == pytest.approx(0.5, rel=0.02)
    assert out.with_suffix(".waterfall.png").stat().st_size > 1000
    assert out.with_suffix(".fit.png").stat().st_size > 1000


def test_cli_reports_bad_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["fit", "petab", str(tmp_path / "nope.yaml")])
    assert code == 1
    assert "does not exist" in capsys.readouterr().err


def test_trust_subproblem_is_the_constrained_minimizer() -> None:
    from scimlkit.fit.petab.trust import _subproblem

    rng = np.random.default_rng(0)
    for h in (np.diag([4.0, 1.0, 0.5]), np.diag([2.0, -1.0, 0.3])):  # convex and indefinite
        g = np.array([1.0, -0.5, 0.2])
        for delta in (0.1, 1.0, 10.0):
            p = _subproblem(g, h, delta)
            assert np.linalg.norm(p) <= delta * (1 + 1e-8)
            model = lambda q: g @ q + 0.5 * q @ h @ q  # noqa: E731, B023
            q = rng.normal(size=(2000, 3))
            q = (
                q
                / np.linalg.norm(q, axis=1, keepdims=True)
                * delta
                * rng.random((2000, 1)) ** (1 / 3)
            )
            assert model(p) <= min(model(v) for v in q) + 1e-9
    # interior: the Newton step
    h = np.diag([4.0, 1.0, 0.5])
    np.testing.assert_allclose(_subproblem(np.ones(3), h, 100.0), -np.ones(3) / np.diag(h))


def test_newton_and_fisher_models_agree_with_the_compiled_derivatives(
    problem: PEtabProblem,
) -> None:
    # newton() takes second-order sensitivities along the parameters the solves depend on
    # (here with a pre-equilibration) and differentiates the rest through their Taylor model
    assert [problem.names[i] for i in problem.dynamic_indices()] == ["k", "kd", "a0", "p_sim"]
    x = problem.x0 + 0.05
    v, g = problem.compiled.value_and_gradient(x)
    f1, g1, h1 = problem.newton(x)
    f2, g2, fim = problem.fisher(x)
    assert f1 == pytest.approx(v, rel=1e-10) and f2 == pytest.approx(v, rel=1e-10)
    np.testing.assert_allclose(g1, g, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(g2, g, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(h1, problem.compiled.hessian(x), rtol=1e-8, atol=1e-8)
    assert np.all(np.linalg.eigvalsh(fim) > -1e-10)  # the Fisher information is semidefinite
    # fisher() also takes sensitivities along the dynamic parameters only: the same matrix as
    # the Jacobian of its rows through the full simulation, sensitivities along everything
    from scimlkit.fit.petab.problem import _from_scale
    from scimlkit.fit.simulate import forward_adjoint

    def rows(z):
        xs, x_inf, _, ok = problem._simulate_all(
            problem._full(_from_scale(z, problem.scales)), forward_adjoint()
        )
        return problem._fisher_rows(z, xs, x_inf, ok)[0]

    jac = np.asarray(jax.jacfwd(rows)(jnp.asarray(x)))
    np.testing.assert_allclose(fim, jac.T @ jac, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("method", ["trust-newton", "trust-fisher", "trust-hybrid"])
def test_trust_region_methods_reach_a_stationary_point(problem: PEtabProblem, method: str) -> None:
    # the toy problem has Laplace noise (no least-squares form), which LM cannot take
    from scimlkit import fit

    start = np.clip(problem.x0 + 0.3, problem.lower, problem.upper)
    res = fit.estimate(problem, method, starts=start[None], seed=0)
    best = res.starts[0]
    assert best.status.value.startswith("converged")
    assert best.objective <= problem.compiled.objective(start)
    ref = fit.estimate(problem, fit.LBFGS(gtol=1e-10), starts=best.x[None])
    assert best.objective == pytest.approx(ref.objective, abs=1e-6)


def test_a_runtime_check_inside_the_solve_is_a_failed_evaluation_not_a_crash() -> None:
    from scimlkit.fit.petab.problem import _solver_check_failed

    # what XLA:CPU raises through its callback when Lineax meets a non-finite linear solve
    callback = ValueError(
        "INTERNAL: CpuCallback error calling callback: Traceback (most recent call last):\n"
        "_EquinoxRuntimeError: A linear solver received non-finite (NaN or inf) input"
    )
    assert _solver_check_failed(callback)
    assert not _solver_check_failed(ValueError("could not broadcast shapes (3,) and (4,)"))
