"""Activation-family kernels against ONNX's reference evaluator / ONNX Runtime, eagerly and under jit."""

from __future__ import annotations

import numpy as np
import pytest
from _node_check import check, node_model, ours, x64  # noqa: F401  (x64: autouse fixture)

import scimlkit.models as sm

rng = np.random.default_rng(2)
X = (rng.normal(size=(2, 3, 4)) * 3).astype(np.float32)

CASES = [
    ("Relu", {}, 14),
    ("Relu", {}, 6),
    ("LeakyRelu", {"alpha": 0.1}, 16),
    ("LeakyRelu", {}, 6),
    ("Elu", {"alpha": 0.7}, 22),
    ("Selu", {}, 6),
    ("Selu", {"alpha": 2.0, "gamma": 3.0}, 22),
    ("Celu", {"alpha": 1.5}, 12),
    ("Gelu", {}, 20),
    ("Gelu", {"approximate": "tanh"}, 20),
    ("Sigmoid", {}, 13),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, 22),
    ("HardSwish", {}, 14),
    ("Softplus", {}, 22),
    ("Softsign", {}, 22),
    ("ThresholdedRelu", {"alpha": 0.5}, 10),
    ("Mish", {}, 18),
    ("Shrink", {"bias": 0.5, "lambd": 1.0}, 9),
    ("Shrink", {}, 9),
    ("Swish", {"alpha": 0.8}, 24),
]


@pytest.mark.parametrize(
    ("op", "attrs", "opset"), CASES, ids=[f"{c[0]}-{c[2]}-{len(c[1])}" for c in CASES]
)
def test_elementwise(op: str, attrs: dict, opset: int) -> None:
    check(op, [X], attrs=attrs, opset=opset, rtol=1e-5, atol=1e-6)


def test_float64_and_integer_relu() -> None:
    check("Relu", [X.astype(np.float64)], opset=14)
    check("Relu", [np.array([-3, 0, 4], np.int32)], opset=14, ref="ort")


@pytest.mark.parametrize("opset", [7, 9, 16])
def test_prelu_broadcasts_slope(opset: int) -> None:
    check("PRelu", [X, rng.normal(size=(3, 1)).astype(np.float32)], opset=opset)
    check("PRelu", [X, rng.normal(size=(4,)).astype(np.float32)], opset=opset)


def test_swiglu_is_swish_times_value() -> None:
    a, b = X, rng.normal(size=X.shape).astype(np.float32)
    (y,) = ours(node_model("SwiGLU", [a, b], attrs={"alpha": 1.3}, opset=28), [a, b])
    expected = a / (1 + np.exp(-1.3 * a.astype(np.float64))) * b  # the spec's formula
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(sm.ModelError, match="same shape"):
        ours(node_model("SwiGLU", [a, b[:1]], opset=28), [a, b[:1]])


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_normalizers_old_2d_coercion_and_new_axis(op: str, opset: int, axis: int | None) -> None:
    # before opset 13 the input is flattened to 2-D at `axis` (default 1); from 13 on, one axis (default -1)
    attrs = {} if axis is None else {"axis": axis}
    x = X.copy()
    x[0, 1, :2] = 7.0  # a tie for Hardmax: the first index wins
    # ONNX's reference evaluator ignores the old 2-D coercion; ONNX Runtime implements it
    check(op, [x], attrs=attrs, opset=opset, rtol=1e-5, atol=1e-6, ref="ort")


def test_softmax_is_stable_for_large_inputs() -> None:
    x = np.array([[1000.0, 1001.0, 1002.0]], np.float32)
    (y,) = check("Softmax", [x], opset=13, ref="ort")
    assert np.isfinite(np.asarray(y)).all()


def test_gelu_rejects_unknown_approximation() -> None:
    with pytest.raises(sm.ModelError, match="approximate"):
        ours(node_model("Gelu", [X], attrs={"approximate": "erf"}, opset=20), [X])
