"""SBML -> JAX: read a model with python-libsbml and build its ODE right-hand side.

Species are simulated in the units their symbols denote: concentrations for species with
`hasOnlySubstanceUnits="false"` (reaction fluxes divided by the compartment size, which
must be constant), amounts otherwise. Supported: compartments, species, parameters,
reactions (with local parameters), assignment rules, rate rules, initial assignments,
function definitions, piecewise and time-dependent math. Events, algebraic rules, delays
and variable stoichiometry raise `UnsupportedSBMLError`, all found ones named at once.

Example:
    >>> model = read_sbml("model.xml")                       # doctest: +SKIP
    >>> fns = model.compile(overridden=set())                # doctest: +SKIP
    >>> fns.rhs(0.0, fns.x0(fns.default_p()), fns.default_p())   # doctest: +SKIP
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jax.numpy as jnp
import libsbml
import numpy as np

from scimlkit.fit.petab.errors import SBMLError, UnsupportedSBMLError
from scimlkit.fit.petab.mathml import Expr, MathTranslator, check_unsupported


@dataclass
class Species:
    """One SBML species."""

    id: str
    compartment: str
    only_substance_units: bool
    boundary: bool
    constant: bool
    initial: float | None  # in the species' own units (concentration or amount)
    initial_is_amount: bool


@dataclass
class Reaction:
    """A reaction: its rate (an extent per time) and net stoichiometry per species."""

    id: str
    rate: Expr
    stoichiometry: dict[str, float]


@dataclass
class SBMLModel:
    """The parts of an SBML model that define its ODE (see `read_sbml`)."""

    path: str
    species: dict[str, Species]
    compartments: dict[str, float]
    parameters: dict[str, float]
    assignment_rules: dict[str, Expr]
    rate_rules: dict[str, Expr]
    initial_assignments: dict[str, Expr]
    reactions: list[Reaction]
    function_source: str
    constant_ids: set[str] = field(default_factory=set)

    @property
    def state_ids(self) -> list[str]:
        """Simulated quantities: non-constant species without assignment rules, rate-rule targets."""
        out = [
            s.id
            for s in self.species.values()
            if s.id not in self.assignment_rules
            and not (s.constant and s.id not in self.rate_rules)
        ]
        out += [r for r in self.rate_rules if r not in self.species]
        return out

    @property
    def parameter_ids(self) -> list[str]:
        """Quantities constant in time: parameters and compartments without rules."""
        ids = list(self.parameters) + list(self.compartments)
        ids += [s.id for s in self.species.values() if s.constant and s.id not in self.rate_rules]
        return [i for i in ids if i not in self.assignment_rules and i not in self.rate_rules]

    def default_value(self, ident: str) -> float:
        """Value of a parameter or compartment as written in the SBML file."""
        if ident in self.parameters:
            return self.parameters[ident]
        if ident in self.compartments:
            return self.compartments[ident]
        sp = self.species[ident]
        return float("nan") if sp.initial is None else self._species_initial_value(sp)

    def _species_initial_value(self, sp: Species) -> float:
        assert sp.initial is not None
        size = self.compartments.get(sp.compartment, 1.0)
        if sp.initial_is_amount and not sp.only_substance_units:
            return sp.initial / size
        if not sp.initial_is_amount and sp.only_substance_units:
            return sp.initial * size
        return sp.initial

    def compile(self, overridden: set[str] | frozenset[str] = frozenset()) -> ModelFunctions:
        """Generate the model's functions; initial assignments to `overridden` ids are dropped."""
        return _generate(self, set(overridden))


@dataclass
class ModelFunctions:
    """Generated JAX functions of a model.

    - `rhs(t, x, p)`: time derivative of the states `x` given constants `p`;
    - `x0(p)`: initial states (initial assignments evaluated at t = 0);
    - `env(t, x, p)`: dict of every named quantity (states, constants, rule targets);
    - `jumps(p)`: times where piecewise math switches (for step-size control);
    - `state_ids`, `parameter_ids`: order of `x` and `p`.
    """

    rhs: Callable
    x0: Callable
    env: Callable
    jumps: Callable
    state_ids: list[str]
    parameter_ids: list[str]
    defaults: np.ndarray
    source: str

    def default_p(self) -> jnp.ndarray:
        """The constants as written in the SBML file."""
        return jnp.asarray(self.defaults)


def read_sbml(path: str | Path) -> SBMLModel:
    """Read an SBML file; raise `UnsupportedSBMLError` naming every unsupported construct."""
    path = str(path)
    if not Path(path).is_file():
        raise SBMLError(f"SBML file {path} does not exist")
    doc = libsbml.readSBMLFromFile(path)
    errors = [
        doc.getError(i).getMessage().strip()
        for i in range(doc.getNumErrors())
        if doc.getError(i).getSeverity() >= libsbml.LIBSBML_SEV_ERROR
    ]
    model = doc.getModel()
    if errors or model is None:
        raise SBMLError(f"libsbml could not read {path}: " + " | ".join(errors[:5] or ["no model"]))

    unsupported: list[str] = []
    if model.getNumEvents():
        unsupported.append(
            f"{model.getNumEvents()} event(s) ({model.getEvent(0).getId() or 'unnamed'}...)"
        )
    for ext in ("comp", "fbc", "qual", "arrays", "distrib", "spatial", "multi"):
        if doc.isPackageEnabled(ext) and doc.getPackageRequired(ext):
            unsupported.append(f"required SBML package {ext!r}")

    functions: dict[str, list[str]] = {}
    fdef_nodes = []
    for i in range(model.getNumFunctionDefinitions()):
        fd = model.getFunctionDefinition(i)
        args = [fd.getArgument(j).getName() for j in range(fd.getNumArguments())]
        functions[fd.getId()] = args
        fdef_nodes.append((fd.getId(), args, fd.getBody()))
    tr = MathTranslator(functions)
    fsrc = []
    for fid, args, body in fdef_nodes:
        local = {a: f"a_{k}" for k, a in enumerate(args)}
        expr = tr.translate(
            body,
            f"functionDefinition {fid}",
            lambda n, local=local, fid=fid: _local(n, local, fid, tr),
        )
        fsrc.append(f"def _fd_{fid}({', '.join(local.values())}):\n    return {expr.code}\n")

    compartments = {}
    for i in range(model.getNumCompartments()):
        c = model.getCompartment(i)
        compartments[c.getId()] = c.getSize() if c.isSetSize() else 1.0
    species = {}
    for i in range(model.getNumSpecies()):
        s = model.getSpecies(i)
        if s.isSetInitialConcentration():
            init, is_amount = s.getInitialConcentration(), False
        elif s.isSetInitialAmount():
            init, is_amount = s.getInitialAmount(), True
        else:
            init, is_amount = None, s.getHasOnlySubstanceUnits()
        species[s.getId()] = Species(
            s.getId(),
            s.getCompartment(),
            s.getHasOnlySubstanceUnits(),
            s.getBoundaryCondition(),
            s.getConstant(),
            init,
            is_amount,
        )
    parameters = {}
    for i in range(model.getNumParameters()):
        p = model.getParameter(i)
        parameters[p.getId()] = p.getValue() if p.isSetValue() else float("nan")

    assignment_rules: dict[str, Expr] = {}
    rate_rules: dict[str, Expr] = {}
    for i in range(model.getNumRules()):
        r = model.getRule(i)
        if r.isAlgebraic():
            unsupported.append("algebraic rule")
            continue
        var = r.getVariable()
        target = assignment_rules if r.isAssignment() else rate_rules
        target[var] = tr.translate(r.getMath(), f"rule for {var}")
    for var in rate_rules:
        if var in compartments:
            unsupported.append(f"rate rule changing compartment {var!r}")
    for var in assignment_rules:
        if var in compartments:
            used = [s.id for s in species.values() if s.compartment == var]
            if used:
                unsupported.append(f"assignment rule changing the size of compartment {var!r}")

    initial_assignments = {}
    for i in range(model.getNumInitialAssignments()):
        ia = model.getInitialAssignment(i)
        initial_assignments[ia.getSymbol()] = tr.translate(
            ia.getMath(), f"initialAssignment {ia.getSymbol()}"
        )

    reactions = []
    for i in range(model.getNumReactions()):
        rx = model.getReaction(i)
        if rx.isSetFast() and rx.getFast():
            unsupported.append(f"fast reaction {rx.getId()!r}")
        kl = rx.getKineticLaw()
        if kl is None:
            unsupported.append(f"reaction {rx.getId()!r} without kinetic law")
            continue
        local = {}
        for j in range(kl.getNumParameters()):
            lp = kl.getParameter(j)
            local[lp.getId()] = lp.getValue()
        for j in range(kl.getNumLocalParameters()):
            lp = kl.getLocalParameter(j)
            local[lp.getId()] = lp.getValue()
        rate = tr.translate(
            kl.getMath(),
            f"kinetic law of {rx.getId()}",
            (lambda n, local=local: repr(float(local[n])) if n in local else f"e[{n!r}]"),
        )
        rate.names -= set(local)
        stoich: dict[str, float] = {}
        for lst, sign in ((rx.getListOfReactants(), -1.0), (rx.getListOfProducts(), 1.0)):
            for ref in lst:
                if (
                    ref.isSetStoichiometryMath()
                    if hasattr(ref, "isSetStoichiometryMath")
                    else False
                ):
                    unsupported.append(f"stoichiometryMath in reaction {rx.getId()!r}")
                if ref.isSetId() and (
                    ref.getId() in initial_assignments or ref.getId() in assignment_rules
                ):
                    unsupported.append(
                        f"variable stoichiometry {ref.getId()!r} in reaction {rx.getId()!r}"
                    )
                st = ref.getStoichiometry() if ref.isSetStoichiometry() else 1.0
                if st != st:
                    st = 1.0
                stoich[ref.getSpecies()] = stoich.get(ref.getSpecies(), 0.0) + sign * st
        reactions.append(Reaction(rx.getId(), rate, stoich))

    reaction_ids = {r.id for r in reactions}
    for what, exprs in (
        ("assignment rule", assignment_rules),
        ("rate rule", rate_rules),
        ("initial assignment", initial_assignments),
    ):
        for var, ex in exprs.items():
            if ex.names & reaction_ids:
                unsupported.append(
                    f"{what} for {var!r} reads reaction rate(s) {sorted(ex.names & reaction_ids)}"
                )
    unsupported += tr.unsupported
    if unsupported:
        raise UnsupportedSBMLError(sorted(set(unsupported)), path)
    check_unsupported(tr, path)
    return SBMLModel(
        path,
        species,
        compartments,
        parameters,
        assignment_rules,
        rate_rules,
        initial_assignments,
        reactions,
        "\n".join(fsrc),
    )


def _local(name: str, local: dict[str, str], fid: str, tr: MathTranslator) -> str:
    if name not in local:
        tr.unsupported.append(
            f"function definition {fid!r} reads {name!r}, which is not an argument"
        )
        return "jnp.nan"
    return local[name]


# -- code generation --------------------------------------------------------------------


def _toposort(exprs: dict[str, Expr], known: set[str], path: str) -> list[str]:
    """Order `exprs` so that each comes after the ones it reads."""
    order: list[str] = []
    done = set(known)
    pending = dict(exprs)
    keys = set(exprs)
    while pending:
        ready = [k for k, v in pending.items() if not ((v.names & keys) - done)]
        if not ready:
            raise UnsupportedSBMLError(
                [f"cyclic rules/initial assignments among {sorted(pending)}"], path
            )
        for k in ready:
            order.append(k)
            done.add(k)
            del pending[k]
    return order


def _pow(a, b):
    if isinstance(b, float) and b.is_integer() and abs(b) < 64:
        return a ** int(b)
    return a**b


def _all(*xs):
    return functools.reduce(jnp.logical_and, xs)


def _generate(model: SBMLModel, overridden: set[str]) -> ModelFunctions:
    states = model.state_ids
    params = model.parameter_ids
    p_set = set(params)
    # initial assignments to constants act as derived constants unless a table sets them
    derived = {
        k: v
        for k, v in model.initial_assignments.items()
        if k in p_set and k not in overridden and k not in model.species
    }
    params_free = [p for p in params if p not in derived]
    lines = ["def env(t, x, p):", "    e = {}"]
    lines += [f"    e[{k!r}] = p[{i}]" for i, k in enumerate(params)]
    lines += [f"    e[{k!r}] = x[{i}]" for i, k in enumerate(states)]
    body_exprs = {**derived, **model.assignment_rules}
    for k in _toposort(body_exprs, set(params_free) | set(states), model.path):
        lines.append(f"    e[{k!r}] = {body_exprs[k].code}")
    lines.append("    return e")

    # right-hand side
    lines += ["", "def rhs(t, x, p):", "    e = env(t, x, p)"]
    flux: dict[str, list[str]] = {s: [] for s in states}
    for j, rx in enumerate(model.reactions):
        lines.append(f"    r{j} = {rx.rate.code}")
        for sid, st in rx.stoichiometry.items():
            if sid in flux and sid not in model.rate_rules:
                sp = model.species[sid]
                if sp.boundary or sp.constant:
                    continue
                flux[sid].append(f"({st!r} * r{j})")
    dx = []
    for s in states:
        if s in model.rate_rules:
            dx.append(model.rate_rules[s].code)
            continue
        terms = flux[s]
        if not terms:
            dx.append("0.0 * t")
            continue
        total = " + ".join(terms)
        sp = model.species[s]
        dx.append(f"({total})" if sp.only_substance_units else f"({total}) / e[{sp.compartment!r}]")
    lines.append(
        "    return jnp.stack([" + ", ".join(f"jnp.asarray({d}, dtype=float)" for d in dx) + "])"
    )

    # initial states
    init_exprs: dict[str, Expr] = dict(derived)
    for k, v in model.assignment_rules.items():
        init_exprs[k] = v
    for s in states:
        if s in model.initial_assignments:
            init_exprs[s] = model.initial_assignments[s]
        elif s in model.species:
            sp = model.species[s]
            if sp.initial is None:
                raise UnsupportedSBMLError([f"species {s!r} has no initial value"], model.path)
            code = repr(float(sp.initial))
            size = f"e[{sp.compartment!r}]"
            if sp.initial_is_amount and not sp.only_substance_units:
                init_exprs[s] = Expr(f"({code} / {size})", {sp.compartment})
            elif not sp.initial_is_amount and sp.only_substance_units:
                init_exprs[s] = Expr(f"({code} * {size})", {sp.compartment})
            else:
                init_exprs[s] = Expr(code)
        else:
            init_exprs[s] = Expr(repr(float(model.parameters.get(s, float("nan")))))
    lines += ["", "def x0(p):", "    t = 0.0", "    e = {}"]
    lines += [f"    e[{k!r}] = p[{i}]" for i, k in enumerate(params) if k not in derived]
    for k in _toposort(init_exprs, set(params_free), model.path):
        lines.append(f"    e[{k!r}] = {init_exprs[k].code}")
    lines.append(
        "    return jnp.stack(["
        + ", ".join(f"jnp.asarray(e[{s!r}], dtype=float)" for s in states)
        + "])"
        if states
        else "    return jnp.zeros(0)"
    )

    # discontinuity times
    triggers: list[str] = []
    constants = set(params)
    for ex in (
        list(model.assignment_rules.values())
        + [r.rate for r in model.reactions]
        + list(model.rate_rules.values())
    ):
        for trg in ex.time_triggers:
            if trg.names <= constants and trg.code not in triggers:
                triggers.append(trg.code)
    lines += ["", "def jumps(p):", "    t = 0.0", "    e = {}"]
    lines += [f"    e[{k!r}] = p[{i}]" for i, k in enumerate(params) if k not in derived]
    for k in _toposort(derived, set(params_free), model.path):
        lines.append(f"    e[{k!r}] = {derived[k].code}")
    lines.append(
        "    return jnp.stack(["
        + ", ".join(f"jnp.asarray({c}, dtype=float)" for c in triggers)
        + "])"
        if triggers
        else "    return jnp.zeros(0)"
    )

    source = model.function_source + "\n" + "\n".join(lines) + "\n"
    namespace: dict = {"jnp": jnp, "_pow": _pow, "_all": _all}
    exec(compile(source, f"<sbml:{Path(model.path).name}>", "exec"), namespace)
    defaults = np.array([model.default_value(k) for k in params], dtype=float)
    return ModelFunctions(
        namespace["rhs"],
        namespace["x0"],
        namespace["env"],
        namespace["jumps"],
        states,
        params,
        defaults,
        source,
    )
