"""Fixtures for scimlkit.fit tests: zoo problems are built (and compiled) once per session."""

from __future__ import annotations

import pytest

from scimlkit import fit

_CACHE: dict[str, fit.zoo.ZooProblem] = {}


def zoo_problem(name: str) -> fit.zoo.ZooProblem:
    """A zoo entry shared by every test of the session (its compiled functions too)."""
    if name not in _CACHE:
        _CACHE[name] = fit.zoo.get(name)
    return _CACHE[name]


@pytest.fixture(scope="session")
def zoo():
    return zoo_problem
