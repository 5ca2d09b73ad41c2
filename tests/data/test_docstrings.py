"""Every public function and class of scimlkit.data and scimlkit.datasets has a docstring with
an example, and the examples written as doctests run and give what they show."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import scimlkit.data
import scimlkit.data.spec as spec
import scimlkit.datasets

PACKAGES = [scimlkit.data, scimlkit.datasets]


def _public():
    for package in PACKAGES:
        for name in package.__all__:
            obj = getattr(package, name)
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                continue  # exceptions: documented by their hierarchy, raised rather than called
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"{package.__name__}.{name}", obj


@pytest.mark.parametrize(("name", "obj"), list(_public()), ids=[n for n, _ in _public()])
def test_public_api_has_a_docstring_example(name, obj):
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{name} has no docstring"
    assert "Example" in doc and (">>>" in doc or "```python" in doc), f"{name}'s docstring shows no example"


def _modules():
    for package in PACKAGES:
        yield package.__name__
        for info in pkgutil.iter_modules(package.__path__):
            yield f"{package.__name__}.{info.name}"


@pytest.mark.parametrize("module", sorted(set(_modules())))
def test_doctests_pass(module, monkeypatch):
    saved = dict(spec._REGISTRY)  # doctests register examples: leave the registry as found
    try:
        mod = importlib.import_module(module)
        result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS, verbose=False)
    finally:
        spec._REGISTRY.clear()
        spec._REGISTRY.update(saved)
    assert result.failed == 0, f"{result.failed} doctest(s) of {module} failed (run with -s to see them)"
