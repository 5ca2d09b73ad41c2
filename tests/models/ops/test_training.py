"""Optimizer updates of `ai.onnx.preview.training` against ONNX's reference evaluator, eagerly and under jit."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from _node_check import assert_same, ours, reference, x64  # noqa: F401  (x64: autouse fixture)
from onnx import TensorProto, helper

import scimlkit.models as sm

rng = np.random.default_rng(11)


def _optimizer_model(op: str, n_states: int, shapes: list[tuple[int, ...]], **attrs) -> onnx.ModelProto:
    """`op` updating len(shapes) tensors: inputs R, T, X_i, G_i, then `n_states` state groups."""
    kinds = ["X", "G"] + [f"S{j}" for j in range(n_states)]
    names = [f"{k}{i}" for k in kinds for i in range(len(shapes))]
    inputs = [helper.make_tensor_value_info("R", TensorProto.FLOAT, []),
              helper.make_tensor_value_info("T", TensorProto.INT64, [])]
    inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, shapes[int(n[-1])]) for n in names]
    outs = [f"new_{k}{i}" for k in ["X", *kinds[2:]] for i in range(len(shapes))]
    node = helper.make_node(op, ["R", "T", *names], outs, domain="ai.onnx.preview.training", **attrs)
    graph = helper.make_graph([node], op, inputs, [helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                                                   for o in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("ai.onnx.preview.training", 1)])
    model.ir_version = 8
    return model


CASES = {
    "adagrad": ("Adagrad", 1, {"decay_factor": 0.1, "norm_coefficient": 0.01}),
    "adam": ("Adam", 2, {"alpha": 0.8, "beta": 0.95, "norm_coefficient": 0.01, "norm_coefficient_post": 0.02}),
    "momentum": ("Momentum", 1, {"alpha": 0.9, "beta": 0.5, "mode": "standard", "norm_coefficient": 0.01}),
    "nesterov": ("Momentum", 1, {"alpha": 0.9, "beta": 0.5, "mode": "nesterov", "norm_coefficient": 0.01}),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("step", [0, 3])
def test_two_tensors_updated_at_once(case: str, step: int) -> None:
    op, n_states, attrs = CASES[case]
    shapes = [(3,), (2, 2)]
    model = _optimizer_model(op, n_states, shapes, **attrs)
    args = [np.float32(0.1), np.int64(step)]
    for _kind in range(2 + n_states):
        args += [np.abs(rng.normal(size=s)).astype(np.float32) for s in shapes]
    expected = reference(model, args)
    for jit in (False, True):
        for got, want in zip(ours(model, args, jit=jit), expected, strict=True):
            assert_same(got, want, rtol=1e-5, atol=1e-6, what=f"{case} jit={jit}")


def test_momentum_with_an_unknown_mode_is_an_error() -> None:
    model = _optimizer_model("Momentum", 1, [(2,)], alpha=0.9, beta=1.0, mode="heavy", norm_coefficient=0.0)
    args = [np.float32(0.1), np.int64(1)] + [np.ones(2, np.float32)] * 3
    with pytest.raises(sm.ModelError, match="standard"):
        ours(model, args)
