"""PEtab math strings (observable and noise formulas) -> Python source over `jax.numpy`.

Formulas are parsed with sympy (every identifier becomes a plain symbol, so ids such as
`E`, `I`, `beta` or `lambda`-like names are never mistaken for sympy's constants) and
printed by our own small printer.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import sympy as sp
from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations

from scimlkit.fit.petab.errors import PEtabError

_FUNCS = {
    "exp": sp.exp,
    "log": sp.log,
    "ln": sp.log,
    "log10": lambda x: sp.log(x, 10),
    "log2": lambda x: sp.log(x, 2),
    "sqrt": sp.sqrt,
    "abs": sp.Abs,
    "sin": sp.sin,
    "cos": sp.cos,
    "tan": sp.tan,
    "sinh": sp.sinh,
    "cosh": sp.cosh,
    "tanh": sp.tanh,
    "min": sp.Min,
    "max": sp.Max,
    "pow": lambda a, b: a**b,
    "piecewise": lambda *a: _piecewise(*a),
    "pi": sp.pi,
}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PRINT_FN = {
    sp.exp: "jnp.exp",
    sp.log: "jnp.log",
    sp.Abs: "jnp.abs",
    sp.sin: "jnp.sin",
    sp.cos: "jnp.cos",
    sp.tan: "jnp.tan",
    sp.sinh: "jnp.sinh",
    sp.cosh: "jnp.cosh",
    sp.tanh: "jnp.tanh",
}


def _piecewise(*args: sp.Expr) -> sp.Expr:
    pairs = [(args[i], args[i + 1]) for i in range(0, len(args) - 1, 2)]
    if len(args) % 2:
        pairs.append((args[-1], True))
    return sp.Piecewise(*pairs)


def parse_formula(text: object, where: str) -> sp.Expr:
    """Parse a PEtab formula (a number or a math string) into a sympy expression."""
    if isinstance(text, int | float):
        return sp.Float(float(text))
    src = str(text).strip()
    if not src:
        raise PEtabError(f"empty formula in {where}")
    local: dict[str, object] = {}
    for name in set(_IDENT.findall(src)):
        local[name] = _FUNCS[name] if name in _FUNCS else sp.Symbol(name)
    src = src.replace("&&", "&").replace("||", "|")
    try:
        return sp.sympify(
            parse_expr(
                src,
                local_dict=local,
                transformations=(*standard_transformations, convert_xor),
                evaluate=True,
            )
        )
    except Exception as exc:  # sympy raises many kinds
        raise PEtabError(f"cannot parse formula {src!r} in {where}: {exc}") from exc


def free_names(expr: sp.Expr) -> set[str]:
    """Identifiers a parsed formula reads."""
    return {s.name for s in expr.free_symbols}


def to_code(expr: sp.Basic, name: Callable[[str], str]) -> str:
    """Print a sympy expression as JAX source; `name` maps an identifier to source."""

    def p(e: sp.Basic) -> str:
        if isinstance(e, sp.Symbol):
            return name(e.name)
        if e is sp.true or e == sp.true:
            return "True"
        if e is sp.false or e == sp.false:
            return "False"
        if e is sp.pi:
            return "3.141592653589793"
        if e is sp.E:
            return "2.718281828459045"
        if e.is_Number:
            if e in (sp.oo, -sp.oo, sp.zoo, sp.nan):
                return {sp.oo: "jnp.inf", -sp.oo: "(-jnp.inf)"}.get(e, "jnp.nan")
            return repr(float(e))
        if isinstance(e, sp.Add):
            return "(" + " + ".join(p(a) for a in e.args) + ")"
        if isinstance(e, sp.Mul):
            return "(" + " * ".join(p(a) for a in e.args) + ")"
        if isinstance(e, sp.Pow):
            base, ex = e.args
            if ex == sp.Rational(1, 2):
                return f"jnp.sqrt({p(base)})"
            if ex.is_Integer:
                return f"({p(base)} ** {int(ex)})"
            return f"({p(base)} ** {p(ex)})"
        if isinstance(e, sp.log) and len(e.args) == 1:
            return f"jnp.log({p(e.args[0])})"
        if e.func in _PRINT_FN:
            return f"{_PRINT_FN[e.func]}({', '.join(p(a) for a in e.args)})"
        if isinstance(e, sp.Min | sp.Max):
            fn = "jnp.minimum" if isinstance(e, sp.Min) else "jnp.maximum"
            acc = p(e.args[0])
            for a in e.args[1:]:
                acc = f"{fn}({acc}, {p(a)})"
            return acc
        if isinstance(e, sp.Piecewise):
            acc = "jnp.nan"
            for val, cond in reversed(e.args):
                acc = p(val) if cond == sp.true else f"jnp.where({p(cond)}, {p(val)}, {acc})"
            return acc
        if isinstance(e, sp.core.relational.Relational):
            return f"({p(e.lhs)} {e.rel_op} {p(e.rhs)})"
        if isinstance(e, sp.And | sp.Or):
            fn = "jnp.logical_and" if isinstance(e, sp.And) else "jnp.logical_or"
            acc = p(e.args[0])
            for a in e.args[1:]:
                acc = f"{fn}({acc}, {p(a)})"
            return acc
        if isinstance(e, sp.Not):
            return f"jnp.logical_not({p(e.args[0])})"
        raise PEtabError(f"formula element {e.func.__name__} ({e}) is not supported")

    return p(expr)
