"""The ONNX backend conformance suite (node tests), run through `scimlkit.models.backend`.

For op authors - run only your ops (the `-k` expression matches case names such as
`test_conv_with_strides_padding`):

    .venv/bin/pytest -m conformance tests/models/test_conformance.py -k "conv or pool" -q
    .venv/bin/pytest -m conformance tests/models/test_conformance.py -k "lstm" -q -x --tb=short

Where the cases come from: onnx 1.23 ships no node-test data files; its own loader
(`onnx.backend.test.loader.load_model_tests(kind="node")`, which `BackendTest` uses too)
builds every case in memory from the generators in `onnx.backend.test.case.node`
(models plus input/output arrays). We use the same loader, so nothing is written to disk.
(`python -m onnx.backend.test.cmd_tools generate-data` only writes the *model* cases,
not node cases.) Outputs are compared with `onnx.backend.test.runner.Runner.assert_similar_outputs`
and each case's own `rtol`/`atol`: ONNX's own tolerance rules.

Expected failures live in `conformance_xfail.py` (case name -> reason), xfail(strict=False),
so lost coverage stays visible. `scripts/conformance_report.py` prints per-op counts and the
same counts for ONNX Runtime.

The cases use float64/int64, so the suite runs with `jax_enable_x64` on.
"""

from __future__ import annotations

import functools
import sys
import unittest
from pathlib import Path

import jax
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conformance_xfail import XFAIL

pytestmark = pytest.mark.conformance


def _selected(config: pytest.Config) -> bool:
    expr = config.getoption("markexpr") or ""
    return "conformance" in expr and "not conformance" not in expr


@functools.cache
def node_cases() -> dict[str, object]:
    from onnx.backend.test.loader import load_model_tests

    with np.errstate(all="ignore"):
        return {case.name: case for case in load_model_tests(kind="node")}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case_name" not in metafunc.fixturenames:
        return
    if not _selected(metafunc.config):  # deselected anyway: skip the 8 s case generation
        metafunc.parametrize("case_name", ["not-collected"])
        return
    params = []
    for name in node_cases():
        marks = [pytest.mark.xfail(reason=XFAIL[name], strict=False)] if name in XFAIL else []
        params.append(pytest.param(name, marks=marks, id=name))
    metafunc.parametrize("case_name", params)


@pytest.fixture(scope="module", autouse=True)
def _x64():
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def _normalize(value):
    import onnx

    if isinstance(value, onnx.TensorProto):
        return onnx.numpy_helper.to_array(value)
    return value


@pytest.mark.timeout(300)
def test_node_case(case_name: str) -> None:
    from onnx.backend.test.runner import Runner

    from scimlkit.models.backend import ScimlkitBackend

    case = node_cases()[case_name]
    rep = ScimlkitBackend.prepare(case.model, "CPU")
    for inputs, expected in case.data_sets:
        outputs = rep.run([_normalize(x) for x in inputs])
        Runner.assert_similar_outputs(
            [_normalize(y) for y in expected], list(outputs), rtol=case.rtol, atol=case.atol
        )


def test_official_runner_drives_the_backend() -> None:
    """ONNX's own `BackendTest` runs cases through our backend (a few ops every kernel set has)."""
    import onnx.backend.test

    from scimlkit.models.backend import ScimlkitBackend

    runner = onnx.backend.test.BackendTest(ScimlkitBackend, __name__)
    wanted = ["test_abs_cpu", "test_add_cpu", "test_relu_cpu", "test_sigmoid_cpu"]
    for name in wanted:
        runner.include(f"^{name}$")
    suite = unittest.TestSuite()
    for case_class in runner.test_cases.values():
        suite.addTests(unittest.defaultTestLoader.loadTestsFromTestCase(case_class))
    result = unittest.TextTestRunner(verbosity=0).run(suite)
    # the runner reports every other case (and other devices) as skipped
    assert result.testsRun - len(result.skipped) == len(wanted)
    assert result.wasSuccessful(), [str(e[1])[-400:] for e in result.errors + result.failures]
