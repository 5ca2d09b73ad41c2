"""`Model`: parameters as leaves, input validation, jit/grad/vmap, x64 policy, summary, errors."""

from __future__ import annotations

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import onnx
import optax
import pytest
from models_helpers import TORCH_DIR, assert_close, mlp, ort_run
from onnx import TensorProto, helper, numpy_helper

import scimlkit.models as sm
from scimlkit.models import dtypes


@pytest.fixture(scope="module")
def model() -> sm.Model:
    return sm.load(mlp().SerializeToString())


X = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)


def test_float_initializers_are_params_and_ints_stay_static(model):
    assert set(model.params) == {"W1", "b1", "W2", "b2"}
    assert all(isinstance(v, jax.Array) for v in model.params.values())
    assert model.num_params == 4 * 8 + 8 + 8 * 3 + 3
    leaves = jax.tree_util.tree_leaves(model)
    assert len(leaves) == 4
    static = model.graph.initializers
    assert static["zero"].dtype == np.int64 and isinstance(static["zero"], np.ndarray)


def test_call_positional_named_numpy_and_jax(model):
    (expected,) = ort_run(mlp(), {"x": X})
    assert_close(model(X), expected)
    assert_close(model(x=jnp.asarray(X)), expected)
    assert isinstance(model(X), jax.Array)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((X, X), {}, "takes 1 input"),
        ((), {}, "missing input"),
        ((), {"z": X}, "no input named 'z'"),
        ((X,), {"x": X}, "both positionally and by name"),
        ((X[None],), {}, "expects rank 2"),
        ((X[:, :3],), {}, "dimension 1 differs"),
        ((X > 0,), {}, "expects dtype float32, got bool"),
    ],
)
def test_bad_inputs_raise_model_input_error(model, args, kwargs, match):
    with pytest.raises(sm.ModelInputError, match=match):
        model(*args, **kwargs)


def test_compatible_dtypes_are_cast(model):
    assert_close(model(X.astype(np.float64)), model(X))


def test_jit_vmap_and_no_retracing(model):
    expected = np.asarray(model(X))
    f = jax.jit(model)
    assert_close(f(X), expected)
    f(X + 1)
    assert f._cache_size() == 1  # same signature: traced once
    g = eqx.filter_jit(model)
    assert_close(g(X), expected)
    assert_close(jax.vmap(model)(X[:, None, :])[:, 0, :], expected)


def test_grad_matches_finite_differences():
    model = sm.load(TORCH_DIR / "lstm_tagger.onnx")
    x = np.load(TORCH_DIR / "lstm_tagger.npz")["input:input"]
    weights = jnp.asarray(np.random.default_rng(1).standard_normal(np.asarray(model(x)).shape), jnp.float32)

    def loss(m):
        return jnp.sum(m(x) * weights)

    grads = eqx.filter_jit(jax.grad(loss))(model)
    assert set(grads.params) == set(model.params)
    rng = np.random.default_rng(2)
    direction = {k: jnp.asarray(rng.standard_normal(v.shape), v.dtype) for k, v in model.params.items()}
    eps = 1e-3

    def shifted(sign):
        return eqx.tree_at(lambda m: m.params, model, {k: v + sign * eps * direction[k] for k, v in model.params.items()})

    fd = (float(loss(shifted(1))) - float(loss(shifted(-1)))) / (2 * eps)
    analytic = sum(float(jnp.vdot(grads.params[k], direction[k])) for k in model.params)
    assert abs(analytic) > 1e-2
    np.testing.assert_allclose(analytic, fd, rtol=2e-2)


def _one_optax_step(model, x, labels) -> tuple[float, float]:
    @eqx.filter_jit
    @eqx.filter_value_and_grad
    def loss(m):
        return optax.softmax_cross_entropy_with_integer_labels(m(x), labels).mean()

    opt = optax.sgd(1e-2)
    state = opt.init(eqx.filter(model, eqx.is_array))
    before, grads = loss(model)
    updates, state = opt.update(grads, state)
    after, _ = loss(eqx.apply_updates(model, updates))
    return float(before), float(after)


def test_one_optax_step_lowers_the_loss_mlp(model):
    before, after = _one_optax_step(model, X, jnp.asarray([0, 1, 2, 0, 1]))
    assert after < before


@pytest.mark.slow
def test_one_optax_step_lowers_the_loss_mobilenet():
    model = sm.load(TORCH_DIR / "mobilenetv2_w025.onnx")
    x = np.load(TORCH_DIR / "mobilenetv2_w025.npz")["input:input"]
    before, after = _one_optax_step(model, x, jnp.asarray([3, 7]))
    assert after < before


def _nonzero_model() -> bytes:
    graph = helper.make_graph(
        [helper.make_node("NonZero", ["x"], ["y"])], "nz",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [1, None])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def test_data_dependent_shapes_work_eagerly_and_explain_under_jit():
    model = sm.load(_nonzero_model())
    x = np.float32([0, 2, 0, 3])
    np.testing.assert_array_equal(model(x), [[1, 3]])
    with pytest.raises(sm.DynamicShapeError, match="NonZero"):
        jax.jit(model)(x)


def _float64_model() -> bytes:
    w = numpy_helper.from_array(np.array([1 + 1e-12, 2.0]), "w")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "w"], ["y"])], "f64",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [2])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [2])], initializer=[w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def test_importing_models_leaves_x64_alone():
    import subprocess
    import sys

    code = "import jax, scimlkit.models; print(jax.config.read('jax_enable_x64'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_x64_policy(monkeypatch):
    # Other test modules (scimlkit.fit) turn x64 on for the whole process: pin it off here.
    with jax.enable_x64(False):
        monkeypatch.setattr(dtypes, "_warned", False)
        with pytest.warns(UserWarning, match="jax_enable_x64"):
            narrow = sm.load(_float64_model())
        assert narrow.params["w"].dtype == jnp.float32
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sm.load(_float64_model())  # warned once per process only
    with jax.enable_x64(True):
        exact = sm.load(_float64_model())
        assert exact.params["w"].dtype == jnp.float64
        y = exact(np.array([1.0, 1.0]))
        assert y.dtype == jnp.float64 and float(y[0]) == 1 + 1e-12


def test_summary_lists_interface_ops_and_params(model):
    text = model.summary(show=False)
    assert "x: float32[N,4]" in text and "y: float32[N,3]" in text
    assert "MatMul" in text and "parameters: 67" in text


def test_large_float_constants_become_params():
    value = numpy_helper.from_array(np.arange(20, dtype=np.float32), "c")
    small = numpy_helper.from_array(np.float32(2.0), "s")
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["c"], value=value),
         helper.make_node("Constant", [], ["s"], value=small),
         helper.make_node("Mul", ["x", "c"], ["m"]), helper.make_node("Mul", ["m", "s"], ["y"])], "c",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [20])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [20])],
    )
    model = sm.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())
    assert set(model.params) == {"c"}
    np.testing.assert_allclose(model(np.ones(20, np.float32)), 2 * np.arange(20))


def test_load_rejects_unknown_format(tmp_path):
    path = tmp_path / "model.xyz"
    path.write_bytes(b"\x00\x01junk")
    with pytest.raises(sm.ModelFormatError, match="cannot tell the model format"):
        sm.load(path)
    with pytest.raises(sm.ModelFormatError, match="unknown model format"):
        sm.load(path, format="nope")


def test_onnx_checker_accepts_fixture():
    onnx.checker.check_model(str(TORCH_DIR / "unet.onnx"))
