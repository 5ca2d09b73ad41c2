"""Translate SBML math (libsbml ASTs) to Python source over `jax.numpy`.

The generated code reads named quantities from a dict `e` (`e["k1"]`), the model time
from `t`, and calls SBML function definitions as Python functions `_fd_<id>`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import libsbml

from scimlkit.fit.petab.errors import UnsupportedSBMLError

_UNARY = {
    libsbml.AST_FUNCTION_EXP: "jnp.exp",
    libsbml.AST_FUNCTION_LN: "jnp.log",
    libsbml.AST_FUNCTION_ABS: "jnp.abs",
    libsbml.AST_FUNCTION_FLOOR: "jnp.floor",
    libsbml.AST_FUNCTION_CEILING: "jnp.ceil",
    libsbml.AST_FUNCTION_SIN: "jnp.sin",
    libsbml.AST_FUNCTION_COS: "jnp.cos",
    libsbml.AST_FUNCTION_TAN: "jnp.tan",
    libsbml.AST_FUNCTION_ARCSIN: "jnp.arcsin",
    libsbml.AST_FUNCTION_ARCCOS: "jnp.arccos",
    libsbml.AST_FUNCTION_ARCTAN: "jnp.arctan",
    libsbml.AST_FUNCTION_SINH: "jnp.sinh",
    libsbml.AST_FUNCTION_COSH: "jnp.cosh",
    libsbml.AST_FUNCTION_TANH: "jnp.tanh",
    libsbml.AST_FUNCTION_ARCSINH: "jnp.arcsinh",
    libsbml.AST_FUNCTION_ARCCOSH: "jnp.arccosh",
    libsbml.AST_FUNCTION_ARCTANH: "jnp.arctanh",
}
_RELATIONAL = {
    libsbml.AST_RELATIONAL_EQ: "==",
    libsbml.AST_RELATIONAL_NEQ: "!=",
    libsbml.AST_RELATIONAL_LT: "<",
    libsbml.AST_RELATIONAL_LEQ: "<=",
    libsbml.AST_RELATIONAL_GT: ">",
    libsbml.AST_RELATIONAL_GEQ: ">=",
}
_LOGICAL = {
    libsbml.AST_LOGICAL_AND: "jnp.logical_and",
    libsbml.AST_LOGICAL_OR: "jnp.logical_or",
    libsbml.AST_LOGICAL_XOR: "jnp.logical_xor",
}


@dataclass
class Expr:
    """Generated source of one expression, with the names it reads."""

    code: str
    names: set[str] = field(default_factory=set)
    uses_time: bool = False
    #: sources of expressions `s` that appear as `time <op> s` (discontinuities in time)
    time_triggers: list[Expr] = field(default_factory=list)


class MathTranslator:
    """Turn libsbml `ASTNode`s into `Expr`s.

    `functions` maps SBML function-definition ids to their argument names; calls to them
    become `_fd_<id>(...)`. `where` names the element being translated (for errors).
    """

    def __init__(self, functions: dict[str, list[str]] | None = None) -> None:
        self.functions = functions or {}
        self.unsupported: list[str] = []

    def translate(
        self,
        node: libsbml.ASTNode | None,
        where: str,
        name: Callable[[str], str] | None = None,
    ) -> Expr:
        """Translate `node`; `name` maps an identifier to source (default `e["id"]`)."""
        if node is None:
            self.unsupported.append(f"missing math in {where}")
            return Expr("jnp.nan")
        out = Expr("")
        resolve = name or (lambda n: f"e[{n!r}]")
        out.code = self._walk(node, where, resolve, out)
        return out

    # -- the recursive walk ------------------------------------------------------------
    def _walk(
        self, node: libsbml.ASTNode, where: str, name: Callable[[str], str], out: Expr
    ) -> str:
        t = node.getType()
        kids = [node.getChild(i) for i in range(node.getNumChildren())]

        def sub(k: libsbml.ASTNode) -> str:
            return self._walk(k, where, name, out)

        if t == libsbml.AST_INTEGER:
            return f"{float(node.getInteger())!r}"
        if t in (libsbml.AST_REAL, libsbml.AST_REAL_E):
            return _num(node.getReal())
        if t == libsbml.AST_RATIONAL:
            return f"({float(node.getNumerator())!r} / {float(node.getDenominator())!r})"
        if t == libsbml.AST_NAME:
            ident = node.getName()
            out.names.add(ident)
            return name(ident)
        if t == libsbml.AST_NAME_TIME:
            out.uses_time = True
            return "t"
        if t == libsbml.AST_NAME_AVOGADRO:
            return "6.02214076e23"
        if t == libsbml.AST_CONSTANT_E:
            return "2.718281828459045"
        if t == libsbml.AST_CONSTANT_PI:
            return "3.141592653589793"
        if t == libsbml.AST_CONSTANT_TRUE:
            return "True"
        if t == libsbml.AST_CONSTANT_FALSE:
            return "False"
        if t == libsbml.AST_PLUS:
            return "(" + " + ".join(sub(k) for k in kids) + ")" if kids else "0.0"
        if t == libsbml.AST_TIMES:
            return "(" + " * ".join(sub(k) for k in kids) + ")" if kids else "1.0"
        if t == libsbml.AST_MINUS:
            if len(kids) == 1:
                return f"(-{sub(kids[0])})"
            return f"({sub(kids[0])} - {sub(kids[1])})"
        if t == libsbml.AST_DIVIDE:
            return f"({sub(kids[0])} / {sub(kids[1])})"
        if t in (libsbml.AST_POWER, libsbml.AST_FUNCTION_POWER):
            return f"_pow({sub(kids[0])}, {sub(kids[1])})"
        if t == libsbml.AST_FUNCTION_ROOT:
            if len(kids) == 1:
                return f"jnp.sqrt({sub(kids[0])})"
            return f"_pow({sub(kids[1])}, 1.0 / {sub(kids[0])})"
        if t == libsbml.AST_FUNCTION_LOG:
            if len(kids) == 1:
                return f"jnp.log10({sub(kids[0])})"
            return f"(jnp.log({sub(kids[1])}) / jnp.log({sub(kids[0])}))"
        if t in _UNARY:
            return f"{_UNARY[t]}({sub(kids[0])})"
        if t in _RELATIONAL:
            op = _RELATIONAL[t]
            self._note_trigger(kids, where, name, out)
            parts = [f"({sub(a)} {op} {sub(b)})" for a, b in itertools.pairwise(kids)]
            return parts[0] if len(parts) == 1 else "_all(" + ", ".join(parts) + ")"
        if t in _LOGICAL:
            fn = _LOGICAL[t]
            acc = sub(kids[0])
            for k in kids[1:]:
                acc = f"{fn}({acc}, {sub(k)})"
            return acc
        if t == libsbml.AST_LOGICAL_NOT:
            return f"jnp.logical_not({sub(kids[0])})"
        if t == libsbml.AST_FUNCTION_PIECEWISE:
            return self._piecewise(kids, sub)
        if t == libsbml.AST_FUNCTION:
            fid = node.getName()
            if fid not in self.functions:
                self.unsupported.append(f"call of unknown function {fid!r} in {where}")
                return "jnp.nan"
            return f"_fd_{fid}(" + ", ".join(sub(k) for k in kids) + ")"
        if t == libsbml.AST_FUNCTION_DELAY:
            self.unsupported.append(f"delay() in {where}")
            return "jnp.nan"
        if t == libsbml.AST_FUNCTION_RATE_OF:
            self.unsupported.append(f"rateOf() in {where}")
            return "jnp.nan"
        self.unsupported.append(f"MathML element {node.getName() or t!r} in {where}")
        return "jnp.nan"

    @staticmethod
    def _piecewise(kids: list[libsbml.ASTNode], sub: Callable[[libsbml.ASTNode], str]) -> str:
        otherwise = sub(kids[-1]) if len(kids) % 2 == 1 else "jnp.nan"
        pairs = [(kids[i], kids[i + 1]) for i in range(0, len(kids) - 1, 2)]
        acc = otherwise
        for value, cond in reversed(pairs):
            acc = f"jnp.where({sub(cond)}, {sub(value)}, {acc})"
        return acc

    def _note_trigger(
        self, kids: list[libsbml.ASTNode], where: str, name: Callable[[str], str], out: Expr
    ) -> None:
        """Record `s` for comparisons like `time < s` or `time - s < 0` (a jump in time)."""
        if len(kids) != 2:
            return
        for lhs, rhs in ((kids[0], kids[1]), (kids[1], kids[0])):
            shift = _time_shift(lhs)
            if shift is None:
                continue
            probe = Expr("")
            code = self._walk(rhs, where, name, probe)
            if probe.uses_time:
                continue
            if shift is not True:  # time - s <op> rhs  ->  jump at rhs + s
                probe2 = Expr("")
                code = f"({code} + {self._walk(shift, where, name, probe2)})"
                if probe2.uses_time:
                    continue
                probe.names |= probe2.names
            probe.code = code
            out.time_triggers.append(probe)


def _time_shift(node: libsbml.ASTNode) -> libsbml.ASTNode | bool | None:
    """`True` for `time`; the subtrahend `s` for `time - s`; None otherwise."""
    if node.getType() == libsbml.AST_NAME_TIME:
        return True
    if (
        node.getType() == libsbml.AST_MINUS
        and node.getNumChildren() == 2
        and node.getChild(0).getType() == libsbml.AST_NAME_TIME
    ):
        return node.getChild(1)
    return None


def _num(x: float) -> str:
    if x != x:
        return "jnp.nan"
    if x in (float("inf"), float("-inf")):
        return "jnp.inf" if x > 0 else "(-jnp.inf)"
    return repr(float(x))


def check_unsupported(translator: MathTranslator, path: str) -> None:
    """Raise one `UnsupportedSBMLError` naming everything the translator could not handle."""
    if translator.unsupported:
        raise UnsupportedSBMLError(sorted(set(translator.unsupported)), path)
