"""Reduce-family kernels against ONNX's reference evaluator / ONNX Runtime, eagerly and under jit."""

from __future__ import annotations

import numpy as np
import pytest
from _node_check import Static, check, node_model, ours, x64  # noqa: F401  (x64: autouse fixture)

import scimlkit.models as sm

rng = np.random.default_rng(1)
X = rng.uniform(0.5, 2.0, size=(2, 3, 4)).astype(np.float32)

REDUCE = [
    "ReduceSum",
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceSumSquare",
]
# the opset where `axes` moved from attribute to input
AXES_INPUT = {op: 13 if op == "ReduceSum" else 18 for op in REDUCE}


@pytest.mark.parametrize("op", REDUCE)
@pytest.mark.parametrize("axes", [None, [1], [0, -1]])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_axes_attribute_and_input(op: str, axes: list[int] | None, keepdims: int) -> None:
    old = AXES_INPUT[op] - 2
    attrs = {"keepdims": keepdims} | ({} if axes is None else {"axes": axes})
    check(op, [X], attrs=attrs, opset=old, rtol=1e-5)
    args = [X] if axes is None else [X, Static(np.array(axes, np.int64))]
    check(op, args, attrs={"keepdims": keepdims}, opset=AXES_INPUT[op], rtol=1e-5)


@pytest.mark.parametrize("op", REDUCE)
def test_noop_with_empty_axes(op: str) -> None:
    opset = AXES_INPUT[op]
    check(op, [X, Static(np.array([], np.int64))], attrs={"noop_with_empty_axes": 1}, opset=opset)
    check(
        op,
        [X, Static(np.array([], np.int64))],
        attrs={"noop_with_empty_axes": 0},
        opset=opset,
        rtol=1e-5,
    )


@pytest.mark.parametrize(
    "op", ["ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceLogSumExp"]
)
def test_empty_set_gives_identity(op: str) -> None:
    empty = np.zeros((2, 0, 4), np.float32)
    check(op, [empty, Static(np.array([1], np.int64))], attrs={"keepdims": 1}, opset=18)


def test_integer_reductions() -> None:
    xi = rng.integers(-5, 6, size=(3, 4)).astype(np.int64)
    for op in ("ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceSumSquare"):
        check(op, [xi, Static(np.array([1], np.int64))], opset=18)
    check("ReduceMax", [rng.random((3, 4)) > 0.5, Static(np.array([0], np.int64))], opset=20)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("select_last_index", [0, 1])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_arg_reductions(op: str, select_last_index: int, keepdims: int) -> None:
    x = np.array([[2, 2, 1, 3], [3, 0, 3, 0], [1, 1, 1, 1]], np.float32)
    for axis in (0, 1, -1):
        attrs = {"axis": axis, "keepdims": keepdims, "select_last_index": select_last_index}
        check(op, [x], attrs=attrs, opset=13, ref="ort")
    check(op, [X], attrs={"axis": 2, "keepdims": keepdims}, opset=11)


def test_traced_axes_raise_dynamic_shape_error_under_jit() -> None:
    import jax

    model = node_model("ReduceSum", [X, np.array([1], np.int64)], opset=13)
    m = sm.load(model.SerializeToString(), format="onnx")
    np.testing.assert_allclose(
        np.asarray(m(X, np.array([1]))), X.sum(axis=1, keepdims=True), rtol=1e-6
    )
    with pytest.raises(sm.DynamicShapeError, match="axes"):
        jax.jit(lambda a, b: m(a, b))(X, np.array([1]))
