"""The Examples in scimlkit.fit's docstrings run (slow: each compiles a small problem)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["problem", "noise", "priors", "methods", "optimize", "zoo", "shooting", "twostage",
           "identifiability", "engine", "simulate", "result", "explore.design", "explore.ensemble", "explore.properties",
           "explore.classify", "explore.sensitivity", "explore.bands"]


@pytest.mark.slow
@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(f"scimlkit.fit.{name}")
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0


def test_public_functions_have_examples():
    """Every public function of `scimlkit.fit` and `scimlkit.fit.explore` shows an example."""
    import inspect

    from scimlkit import fit
    from scimlkit.fit import explore

    public = [(n, getattr(fit, n)) for n in dir(fit) if not n.startswith("_")]
    public += [(n, getattr(explore, n)) for n in explore.__all__]
    missing = sorted({n for n, obj in public if inspect.isfunction(obj)
                      and "Example" not in (inspect.getdoc(obj) or "")})
    assert not missing, f"public functions without a docstring example: {missing}"
