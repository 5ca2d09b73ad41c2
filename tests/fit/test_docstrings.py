"""The Examples in scimlkit.fit's docstrings run (slow: each compiles a small problem)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["problem", "noise", "priors", "methods", "optimize", "zoo", "shooting", "twostage",
           "identifiability"]


@pytest.mark.slow
@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(f"scimlkit.fit.{name}")
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0
