"""Single-node ONNX models run through `scimlkit.models.load` and checked against a reference.

References are independent implementations: ONNX's own reference evaluator
(`onnx.reference.ReferenceEvaluator`, default, knows every opset) or ONNX Runtime (`ref="ort"`).
Every check runs the model eagerly and under `jax.jit`.

```python
check("Add", [x, y])                                 # both graph inputs
check("Reshape", [x, Static(np.array([2, -1]))])     # second input is an initializer
check("Softmax", [x], attrs={"axis": 1}, opset=11)
```
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import scimlkit.models as sm


@dataclass
class Static:
    """An input given as an initializer (known at trace time)."""

    value: Any


@pytest.fixture(autouse=True, scope="module")
def x64():
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def _elem_type(arr: np.ndarray) -> int:
    if arr.dtype.kind in "OUS":
        return onnx.TensorProto.STRING
    return helper.np_dtype_to_tensor_dtype(arr.dtype)


def node_model(
    op: str,
    args: Sequence[Any],
    *,
    attrs: dict[str, Any] | None = None,
    opset: int = 21,
    n_out: int = 1,
) -> onnx.ModelProto:
    """A model with one `op` node; numpy args become graph inputs, `Static` args initializers."""
    inputs, inits, names = [], [], []
    for i, arg in enumerate(args):
        if arg is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        if isinstance(arg, Static):
            arr = np.asarray(arg.value)
            inits.append(numpy_helper.from_array(arr, name))
        else:
            arr = np.asarray(arg)
            inputs.append(helper.make_tensor_value_info(name, _elem_type(arr), arr.shape))
    outs = [f"out{i}" for i in range(n_out)]
    outputs = [helper.make_empty_tensor_value_info(o) for o in outs]
    node = helper.make_node(op, names, outs, **(attrs or {}))
    graph = helper.make_graph([node], "g", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7 if opset < 15 else 8 if opset < 19 else 10
    try:  # typed outputs (ONNX's checker wants them); keep them untyped where inference cannot tell
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        return model
    for out, typed in zip(model.graph.output, inferred.graph.output):
        if typed.type.tensor_type.elem_type:
            out.type.tensor_type.elem_type = typed.type.tensor_type.elem_type
    return model


def feeds(args: Sequence[Any]) -> list[np.ndarray]:
    return [np.asarray(a) for a in args if a is not None and not isinstance(a, Static)]


def reference(
    model: onnx.ModelProto, args: Sequence[Any], *, ref: str = "onnx"
) -> list[np.ndarray]:
    """Outputs of ONNX Runtime (ref="ort") or ONNX's reference evaluator (ref="onnx")."""
    names = [i.name for i in model.graph.input]
    data = dict(zip(names, feeds(args)))
    if ref == "onnx":
        from onnx.reference import ReferenceEvaluator

        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return [np.asarray(o) for o in ReferenceEvaluator(model).run(None, data)]
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in sess.run(None, data)]


def ours(model: onnx.ModelProto, args: Sequence[Any], *, jit: bool = False) -> list[Any]:
    """scimlkit's outputs: op by op through the ONNX backend, or `scimlkit.models.load` + `jax.jit`."""
    data = feeds(args)
    if not jit:
        from scimlkit.models.backend import ScimlkitBackendRep
        from scimlkit.models.formats.onnx import read_onnx

        return list(ScimlkitBackendRep(read_onnx(model)).run(data))
    m = sm.load(model.SerializeToString(), format="onnx")
    out = jax.jit(lambda *a: m(*a))(*data)
    return list(out) if isinstance(out, tuple) else [out]


def assert_same(
    actual: Any, expected: np.ndarray, *, rtol: float, atol: float, what: str = ""
) -> None:
    expected = np.asarray(expected)
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if expected.dtype.kind in "OUS":
        assert actual.tolist() == expected.astype(object).tolist(), what
        return
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    if expected.dtype.kind in "biu":
        np.testing.assert_array_equal(actual, expected, err_msg=what)
    else:
        np.testing.assert_allclose(
            actual.astype(np.float64),
            expected.astype(np.float64),
            rtol=rtol,
            atol=atol,
            err_msg=what,
            equal_nan=True,
        )


def check(
    op: str,
    args: Sequence[Any],
    *,
    attrs: dict[str, Any] | None = None,
    opset: int = 21,
    n_out: int = 1,
    ref: str = "onnx",
    jit: bool = True,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> list[Any]:
    """Run `op` on `args` with scimlkit (eagerly and, if `jit`, under jax.jit) and compare to a reference."""
    model = node_model(op, args, attrs=attrs, opset=opset, n_out=n_out)
    expected = reference(model, args, ref=ref)
    got = ours(model, args)
    for i, (a, e) in enumerate(zip(got, expected, strict=True)):
        assert_same(a, e, rtol=rtol, atol=atol, what=f"{op} output {i} (eager)")
    if jit:
        got = ours(model, args, jit=True)
        for i, (a, e) in enumerate(zip(got, expected, strict=True)):
            assert_same(a, e, rtol=rtol, atol=atol, what=f"{op} output {i} (jit)")
    return got
