"""If, Loop and Scan against ONNX Runtime: eagerly, under jax.jit, and through jax.grad."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import scimlkit.models as sm
from scimlkit.models.errors import DynamicShapeError

F = TensorProto.FLOAT


def vi(name, elem=F, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def const(name, value):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name))


def model_of(nodes, inputs, outputs, *, opset=17, inits=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=[numpy_helper.from_array(v, k) for k, v in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def ort(model, *args):
    import onnxruntime as rt

    sess = rt.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {i.name: a for i, a in zip(sess.get_inputs(), args)})


def load(model):
    return sm.load(model.SerializeToString(), format="onnx")


def outputs(result):
    return [np.asarray(r) for r in (result if isinstance(result, tuple) else (result,))]


def assert_matches(model, *args, jit=True):
    expected = ort(model, *args)
    m = load(model)
    runs = [m(*args)] + ([jax.jit(lambda *a: m(*a))(*args)] if jit else [])
    for result in runs:
        for got, want in zip(outputs(result), expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- If


def if_model(same_shapes=True):
    then_graph = helper.make_graph([helper.make_node("Mul", ["x", "x"], ["t"])], "then", [], [vi("t")])
    other = [helper.make_node("Neg", ["x"], ["e"])] if same_shapes else [
        const("k", np.array([0], np.int64)),
        helper.make_node("Gather", ["x", "k"], ["e"], axis=0),
    ]
    else_graph = helper.make_graph(other, "else", [], [vi("e")])
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
        const("zero", np.float32(0)),
        helper.make_node("Greater", ["s", "zero"], ["c"]),
        helper.make_node("If", ["c"], ["y"], then_branch=then_graph, else_branch=else_graph),
    ]
    return model_of(nodes, [vi("x", F, [3])], [vi("y")])


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_if_with_data_dependent_condition(sign):
    x = sign * np.array([1.0, 2.0, 3.0], np.float32)
    assert_matches(if_model(), x)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_gradient_through_if_is_the_taken_branch_derivative(sign):
    m = load(if_model())
    x = sign * np.array([1.0, 2.0, 3.0], np.float32)
    grad = jax.grad(lambda a: jnp.sum(m(a)))(x)
    expected = 2 * x if sign > 0 else -np.ones_like(x)  # d/dx sum(x*x) or sum(-x)
    np.testing.assert_allclose(np.asarray(grad), expected)


def test_if_with_branches_of_different_shapes_runs_eagerly_not_under_jit():
    model = if_model(same_shapes=False)
    x = -np.array([1.0, 2.0, 3.0], np.float32)
    assert_matches(model, x, jit=False)
    m = load(model)
    with pytest.raises(DynamicShapeError, match="different shapes"):
        jax.jit(lambda a: m(a))(x)


# --------------------------------------------------------------------------- Loop


def loop_body(scan_output=True, condition="keep"):
    """y <- y + x[i]; optional scan output 2*y; the condition either passes through or is sum(y) < 20."""
    nodes = [
        helper.make_node("Unsqueeze", ["i", "ax0"], ["i1"]),
        helper.make_node("Gather", ["x", "i1"], ["xi"], axis=0),
        helper.make_node("Add", ["y_in", "xi"], ["y_out"]),
        helper.make_node("Mul", ["y_out", "two"], ["z"]),
    ]
    if condition == "keep":
        nodes.append(helper.make_node("Identity", ["cond_in"], ["cond_out"]))
    else:
        nodes += [helper.make_node("ReduceSum", ["y_out"], ["s"], keepdims=0),
                  helper.make_node("Less", ["s", "limit"], ["cond_out"])]
    outs = [vi("cond_out", TensorProto.BOOL, []), vi("y_out", F, [1, 2])] + ([vi("z", F, [1, 2])] if scan_output else [])
    return helper.make_graph(
        nodes, "body", [vi("i", TensorProto.INT64, []), vi("cond_in", TensorProto.BOOL, []), vi("y_in", F, [1, 2])], outs
    )


LOOP_INITS = [("ax0", np.array([0], np.int64)), ("two", np.float32(2)), ("limit", np.float32(20)),
              ("y0", np.zeros((1, 2), np.float32))]
X = np.arange(12, dtype=np.float32).reshape(6, 2) / 3


def test_loop_with_static_trip_count_and_scan_outputs():
    inits = [*LOOP_INITS, ("M", np.array(5, np.int64))]
    node = helper.make_node("Loop", ["M", "", "y0"], ["y", "zs"], body=loop_body())
    assert_matches(model_of([node], [vi("x", F, [6, 2])], [vi("y"), vi("zs")], inits=inits), X)


def test_loop_with_data_dependent_stop_is_a_while_loop_under_jit():
    inits = [*LOOP_INITS, ("M", np.array(6, np.int64)), ("c0", np.array(True))]
    node = helper.make_node("Loop", ["M", "c0", "y0"], ["y"], body=loop_body(scan_output=False, condition="sum"))
    assert_matches(model_of([node], [vi("x", F, [6, 2])], [vi("y")], inits=inits), 3 * X)


def test_loop_trip_count_from_input_with_scan_outputs_is_eager_only():
    node = helper.make_node("Loop", ["M", "", "y0"], ["y", "zs"], body=loop_body())
    model = model_of([node], [vi("x", F, [6, 2]), vi("M", TensorProto.INT64, [])], [vi("y"), vi("zs")], inits=LOOP_INITS)
    M = np.array(4, np.int64)
    assert_matches(model, X, M, jit=False)
    m = load(model)
    with pytest.raises(DynamicShapeError):
        jax.jit(lambda a, b: m(a, b))(X, M)


def test_loop_whose_carried_value_grows_falls_back_to_eager():
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Concat", ["acc_in", "x"], ["acc_out"], axis=0)],
        "grow",
        [vi("i", TensorProto.INT64, []), vi("cond_in", TensorProto.BOOL, []), vi("acc_in", F, None)],
        [vi("cond_out", TensorProto.BOOL, []), vi("acc_out", F, None)],
    )
    node = helper.make_node("Loop", ["M", "", "x"], ["acc"], body=body)
    model = model_of([node], [vi("x", F, [2])], [vi("acc")], inits=[("M", np.array(3, np.int64))])
    assert_matches(model, np.array([1.0, 2.0], np.float32), jit=False)


def test_loop_zero_iterations_gives_empty_scan_outputs():
    inits = [*LOOP_INITS, ("M", np.array(0, np.int64))]
    node = helper.make_node("Loop", ["M", "", "y0"], ["y", "zs"], body=loop_body())
    model = model_of([node], [vi("x", F, [6, 2])], [vi("y"), vi("zs")], inits=inits)
    y, zs = outputs(load(model)(X))
    np.testing.assert_array_equal(y, np.zeros((1, 2)))
    assert zs.shape == (0, 1, 2)


def test_gradient_through_loop_matches_finite_differences():
    inits = [*LOOP_INITS, ("M", np.array(5, np.int64))]
    node = helper.make_node("Loop", ["M", "", "y0"], ["y", "zs"], body=loop_body())
    m = load(model_of([node], [vi("x", F, [6, 2])], [vi("y"), vi("zs")], inits=inits))

    def loss(x):
        y, zs = m(x)
        return jnp.sum(jnp.sin(zs)) + jnp.sum(y**2)

    g = jax.grad(loss)(X)
    d = np.random.default_rng(0).standard_normal(X.shape).astype(np.float32)
    eps = 1e-2
    fd = (loss(X + eps * d) - loss(X - eps * d)) / (2 * eps)
    np.testing.assert_allclose(float(jnp.sum(g * d)), float(fd), rtol=2e-3)


# --------------------------------------------------------------------------- Scan


def scan_body():
    """state += a_t * b_t (elementwise); outputs the running state and a_t - b_t."""
    return helper.make_graph(
        [helper.make_node("Mul", ["a", "b"], ["ab"]),
         helper.make_node("Add", ["s_in", "ab"], ["s_out"]),
         helper.make_node("Sub", ["a", "b"], ["d"]),
         helper.make_node("Identity", ["s_out"], ["s_copy"])],
        "scan_body",
        [vi("s_in", F, [3]), vi("a", F, [3]), vi("b", F, [3])],
        [vi("s_out", F, [3]), vi("s_copy", F, [3]), vi("d", F, [3])],
    )


def test_scan_with_axes_and_directions():
    node = helper.make_node(
        "Scan", ["s0", "A", "B"], ["s", "running", "diff"], body=scan_body(), num_scan_inputs=2,
        scan_input_axes=[1, 0], scan_input_directions=[1, 0], scan_output_axes=[0, 1], scan_output_directions=[0, 1],
    )
    model = model_of([node], [vi("s0", F, [3]), vi("A", F, [3, 4]), vi("B", F, [4, 3])],
                     [vi("s"), vi("running"), vi("diff")], opset=16)
    rng = np.random.default_rng(0)
    assert_matches(model, rng.standard_normal(3).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32),
                   rng.standard_normal((4, 3)).astype(np.float32))


@pytest.mark.parametrize("lengths", [None, np.array([4, 2], np.int64)], ids=["full", "sequence_lens"])
def test_scan_opset8_with_batch_axis(lengths):
    node = helper.make_node("Scan", ["" if lengths is None else "lens", "s0", "A", "B"], ["s", "running", "diff"],
                            body=scan_body(), num_scan_inputs=2, directions=[0, 1])
    inputs = [vi("s0", F, [2, 3]), vi("A", F, [2, 4, 3]), vi("B", F, [2, 4, 3])]
    if lengths is not None:
        inputs.insert(0, vi("lens", TensorProto.INT64, [2]))
    model = model_of([node], inputs, [vi("s"), vi("running"), vi("diff")], opset=8)
    model.ir_version = 3
    rng = np.random.default_rng(1)
    args = [rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((2, 4, 3)).astype(np.float32),
            rng.standard_normal((2, 4, 3)).astype(np.float32)]
    assert_matches(model, *([] if lengths is None else [lengths]), *args, jit=lengths is None)


def test_loop_with_static_inputs_reading_a_traced_outer_value_under_jit():
    """All Loop inputs are constants (folded), but the body captures the traced graph input."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["k_in", "one"], ["k_out"]),
         helper.make_node("Mul", ["x", "x"], ["z"])],
        "body", [vi("i", TensorProto.INT64, []), vi("cond_in", TensorProto.BOOL, []), vi("k_in", TensorProto.INT64, [])],
        [vi("cond_out", TensorProto.BOOL, []), vi("k_out", TensorProto.INT64, []), vi("z", F, [2])],
    )
    node = helper.make_node("Loop", ["M", "", "k0"], ["k", "zs"], body=body)
    inits = [("M", np.array(3, np.int64)), ("k0", np.array(0, np.int64)), ("one", np.array(1, np.int64))]
    model = model_of([node], [vi("x", F, [2])], [vi("k", TensorProto.INT64, None), vi("zs", F, None)], inits=inits)
    assert_matches(model, np.array([1.0, -2.0], np.float32))


TORCH_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "models" / "recurrent_control"


@pytest.mark.parametrize("name", ["cond", "for_loop", "while_loop"])
def test_pytorch_exported_control_flow_matches_pytorch(name):
    """torch.cond (If), a TorchScript for loop with the trip count as an input, and a while loop
    with a data-dependent stop and an INT64_MAX trip count (Loop); PyTorch's outputs are the reference."""
    data = np.load(TORCH_FIXTURES / f"{name}.npz")
    model = sm.load(TORCH_FIXTURES / f"{name}.onnx")
    inputs = [data[k] for k in data if k.startswith("input:")]
    inputs = inputs[: len(model.inputs)]  # the exporter drops inputs it folded away
    for out in (model(*inputs), jax.jit(lambda *a: model(*a))(*inputs)):
        for i, got in enumerate(out if isinstance(out, tuple) else (out,)):
            np.testing.assert_allclose(np.asarray(got), data[f"torch:{i}"], rtol=1e-5, atol=1e-5)
