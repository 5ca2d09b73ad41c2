"""RNN, GRU and LSTM kernels against ONNX Runtime, under jax.jit, and their gradients."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import onnx
import pytest
from _node_check import reference
from onnx import TensorProto, helper

import scimlkit.models as sm

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def rnn_case(op: str, *, direction="forward", layout=0, seq_lens=False, init=True, peepholes=False,
             seed=0, dtype=np.float32, **attrs):
    """A one-node recurrent model and its inputs (weights as graph inputs, so gradients reach them)."""
    rng = np.random.default_rng(seed)
    T, B, n_in, H = 5, 3, 4, 6
    D = 2 if direction == "bidirectional" else 1
    G = GATES[op]
    feeds = {
        "X": rng.standard_normal((T, B, n_in) if layout == 0 else (B, T, n_in)),
        "W": 0.5 * rng.standard_normal((D, G * H, n_in)),
        "R": 0.5 * rng.standard_normal((D, G * H, H)),
        "B": 0.5 * rng.standard_normal((D, 2 * G * H)),
    }
    names = ["X", "W", "R", "B"]
    if seq_lens:
        feeds["seq"] = np.array([5, 2, 4], np.int32)
    names.append("seq" if seq_lens else "")
    h_shape = (D, B, H) if layout == 0 else (B, D, H)
    states = ["h0", "c0"] if op == "LSTM" else ["h0"]
    for s in states:
        if init:
            feeds[s] = rng.standard_normal(h_shape)
        names.append(s if init else "")
    if peepholes:
        feeds["P"] = rng.standard_normal((D, 3 * H))
        names.append("P")
    feeds = {k: (v if k == "seq" else v.astype(dtype)) for k, v in feeds.items()}
    outs = ["Y", "Y_h", "Y_c"][: len(states) + 1]
    node = helper.make_node(op, names, outs, hidden_size=H, direction=direction,
                            **({"layout": 1} if layout else {}), **attrs)
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    inputs = [helper.make_tensor_value_info(k, TensorProto.INT32 if k == "seq" else elem, v.shape)
              for k, v in feeds.items()]
    graph = helper.make_graph([node], "rnn", inputs, [helper.make_tensor_value_info(o, elem, None) for o in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])
    model.ir_version = 10
    return model, feeds


def ort(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    return reference(model, list(feeds.values()), ref="ort")


def ours(model: onnx.ModelProto, feeds: dict, jit: bool = False) -> list[np.ndarray]:
    m = sm.load(model.SerializeToString(), format="onnx")
    args = list(feeds.values())
    out = jax.jit(lambda *a: m(*a))(*args) if jit else m(*args)
    return [np.asarray(o) for o in out]


CASES = [
    pytest.param(op, dict(direction=d, seq_lens=s), marks=[pytest.mark.slow] if d == "forward" and s else [])
    for op in ("RNN", "GRU", "LSTM")
    for d in ("forward", "reverse", "bidirectional")
    for s in (False, True)
] + [
    ("GRU", dict(linear_before_reset=1)),
    ("GRU", dict(linear_before_reset=1, direction="bidirectional", seq_lens=True)),
    ("LSTM", dict(peepholes=True)),
    ("LSTM", dict(peepholes=True, direction="bidirectional", clip=0.7, seq_lens=True)),
    ("LSTM", dict(input_forget=1)),
    ("RNN", dict(init=False, activations=["LeakyRelu"], activation_alpha=[0.3])),
    ("GRU", dict(activations=["HardSigmoid", "ScaledTanh"], activation_alpha=[0.3, 0.9], activation_beta=[0.4, 1.1])),
    ("LSTM", dict(init=False, direction="bidirectional",
                  activations=["Sigmoid", "Affine", "Elu", "HardSigmoid", "Softsign", "Softplus"],
                  activation_alpha=[0.7, 0.8, 0.2], activation_beta=[0.1, 0.6])),
]


def _case_id(case) -> str:
    op, kw = case.values if hasattr(case, "values") else case
    return f"{op}-" + "-".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize(("op", "kw"), CASES, ids=[_case_id(c) for c in CASES])
def test_matches_onnxruntime(op, kw):
    model, feeds = rnn_case(op, **kw)
    expected = ort(model, feeds)
    for got, want in zip(ours(model, feeds), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_layout_1_is_the_batch_major_transpose(op):
    """ONNX Runtime has no layout=1; its layout=0 result, transposed, is the reference."""
    model1, feeds1 = rnn_case(op, layout=1, direction="bidirectional", seq_lens=True, seed=3)
    feeds0 = dict(feeds1)
    feeds0["X"] = feeds1["X"].transpose(1, 0, 2)
    for s in ("h0", "c0"):
        if s in feeds0:
            feeds0[s] = feeds1[s].transpose(1, 0, 2)
    model0, _ = rnn_case(op, layout=0, direction="bidirectional", seq_lens=True, seed=3)
    expected = ort(model0, feeds0)
    got = ours(model1, feeds1, jit=True)
    np.testing.assert_allclose(got[0], expected[0].transpose(2, 0, 1, 3), rtol=1e-4, atol=1e-5)
    for g, e in zip(got[1:], expected[1:]):
        np.testing.assert_allclose(g, e.transpose(1, 0, 2), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op", ["GRU", "LSTM"])
def test_jit_matches_onnxruntime(op):
    model, feeds = rnn_case(op, direction="bidirectional", seq_lens=True, seed=5)
    for got, want in zip(ours(model, feeds, jit=True), ort(model, feeds), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.fixture
def x64():
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


@pytest.mark.parametrize("op", ["GRU", "LSTM"])
def test_gradient_matches_finite_differences(op, x64):
    model, feeds = rnn_case(op, direction="bidirectional", seq_lens=True, peepholes=op == "LSTM",
                            seed=7, dtype=np.float64)
    m = sm.load(model.SerializeToString(), format="onnx")
    names = list(feeds)
    rng = np.random.default_rng(1)
    probe = rng.standard_normal(ours(model, feeds)[0].shape)

    def loss(w, r):
        args = {**feeds, "W": w, "R": r}
        y = m(*[args[n] for n in names])[0]
        return jnp.sum(jnp.tanh(y) * probe)

    grad_w, grad_r = jax.jit(jax.grad(loss, argnums=(0, 1)))(feeds["W"], feeds["R"])
    for arg, grad in ((0, grad_w), (1, grad_r)):
        base = [feeds["W"], feeds["R"]]
        direction = rng.standard_normal(base[arg].shape)
        eps = 1e-6
        plus = list(base)
        minus = list(base)
        plus[arg] = base[arg] + eps * direction
        minus[arg] = base[arg] - eps * direction
        fd = (loss(*plus) - loss(*minus)) / (2 * eps)
        np.testing.assert_allclose(float(jnp.sum(grad * direction)), float(fd), rtol=1e-6, atol=1e-8)


def test_bad_direction_is_a_model_error():
    model, feeds = rnn_case("RNN")
    next(a for a in model.graph.node[0].attribute if a.name == "direction").s = b"sideways"
    with pytest.raises(sm.ModelError, match="direction"):
        ours(model, feeds)


TORCH_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "models" / "recurrent_control"


@pytest.mark.parametrize("name", ["gru_bidir", "rnn_relu"])
def test_pytorch_exported_model_matches_pytorch(name):
    """Models exported by PyTorch (make_fixtures.py there); PyTorch's own outputs are the reference."""
    data = np.load(TORCH_FIXTURES / f"{name}.npz")
    model = sm.load(TORCH_FIXTURES / f"{name}.onnx")
    inputs = [data[k] for k in data if k.startswith("input:")]
    for out in (model(*inputs), jax.jit(lambda *a: model(*a))(*inputs)):
        for i, got in enumerate(out):
            np.testing.assert_allclose(np.asarray(got), data[f"torch:{i}"], rtol=1e-5, atol=1e-6)
