"""Dropout, attention, rotary embedding and loss kernels against references, eagerly and under jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import onnx
import pytest
from _node_check import Static, check, node_model, ours, x64  # noqa: F401  (x64: autouse fixture)

import scimlkit.models as sm

rng = np.random.default_rng(3)


def _x(*shape):
    return rng.normal(size=shape).astype(np.float32)


def test_dropout_inference_is_identity_with_true_mask() -> None:
    x = _x(3, 4)
    check("Dropout", [x], n_out=2, opset=13, ref="ort")
    check("Dropout", [x, Static(np.array(0.3, np.float32))], n_out=2, opset=22, ref="ort")


def test_dropout_training_scales_kept_values() -> None:
    x = np.ones((200, 50), np.float32)
    args = [x, Static(np.array(0.25, np.float32)), Static(np.array(True))]
    model = node_model("Dropout", args, opset=22, n_out=2, attrs={"seed": 5})
    y, mask = (np.asarray(v) for v in ours(model, args))
    assert mask.dtype == np.bool_
    np.testing.assert_allclose(y[mask], 1 / 0.75)
    assert np.all(y[~mask] == 0)
    assert 0.2 < 1 - mask.mean() < 0.3


ATTENTION = {
    "mha_4d": (dict(), (2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 5)),
    "gqa_causal": ({"is_causal": 1}, (1, 4, 5, 8), (1, 2, 5, 8), (1, 2, 5, 8)),
    "scale_softcap": ({"scale": 0.3, "softcap": 2.0}, (2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 4)),
}


@pytest.mark.parametrize("case", sorted(ATTENTION))
def test_attention_4d(case: str) -> None:
    attrs, qs, ks, vs = ATTENTION[case]
    check("Attention", [_x(*qs), _x(*ks), _x(*vs)], attrs=attrs, opset=23, rtol=1e-5, atol=1e-6)


def test_attention_3d_with_mask_and_cache() -> None:
    q, k, v = _x(2, 3, 16), _x(2, 3, 8), _x(2, 3, 8)
    mask = rng.uniform(size=(2, 1, 3, 7)) > 0.3
    mask[..., 0] = True
    past_k, past_v = _x(2, 2, 4, 4), _x(2, 2, 4, 4)
    check("Attention", [q, k, v, mask, past_k, past_v], attrs={"q_num_heads": 4, "kv_num_heads": 2},
          opset=23, n_out=3, rtol=1e-5, atol=1e-6)


def test_attention_float_mask_and_qk_output() -> None:
    q, k, v = _x(1, 2, 3, 4), _x(1, 2, 3, 4), _x(1, 2, 3, 4)
    mask = _x(3, 3)
    model = node_model("Attention", [q, k, v, mask], attrs={"qk_matmul_output_mode": 3}, opset=23, n_out=1)
    # outputs Y, (skip present), qk probabilities
    model.graph.node[0].output.extend(["", "", "qk"])
    from onnx import helper

    model.graph.output.append(helper.make_tensor_value_info("qk", 1, None))
    from _node_check import assert_same, reference

    expected = reference(model, [q, k, v, mask])
    got = ours(model, [q, k, v, mask])
    for a, e in zip(got, expected, strict=True):
        assert_same(a, e, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(got[1]).sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("interleaved", [0, 1])
def test_rotary_embedding(interleaved: int) -> None:
    x = _x(2, 4, 3, 8)  # (B, S, hidden = heads 2 x 4) with num_heads
    cos, sin = _x(10, 2), _x(10, 2)
    pos = rng.integers(0, 10, size=(2, 4)).astype(np.int64)
    check("RotaryEmbedding", [x.reshape(2, 4, 24)[:, :, :16], cos, sin, pos],
          attrs={"interleaved": interleaved, "num_heads": 4}, opset=23, rtol=1e-5, atol=1e-6)
    check("RotaryEmbedding", [x.transpose(0, 2, 1, 3), _x(2, 4, 2), _x(2, 4, 2)],
          attrs={"interleaved": interleaved, "rotary_embedding_dim": 4}, opset=23, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rule", ["linear", "gated", "delta", "gated_delta"])
def test_linear_attention(rule: str) -> None:
    b, t, hq, hkv, dk, dv = 2, 5, 4, 2, 3, 2
    args = [_x(b, t, hq * dk), _x(b, t, hkv * dk) * 0.5, _x(b, t, hkv * dv), _x(b, hkv, dk, dv)]
    args.append(-np.abs(_x(b, t, hkv)) if rule.startswith("gated") else None)
    args.append(rng.uniform(size=(b, t, hkv)).astype(np.float32) if "delta" in rule else None)
    while args[-1] is None:
        args.pop()
    check("LinearAttention", args, attrs={"q_num_heads": hq, "kv_num_heads": hkv, "update_rule": rule},
          opset=27, n_out=2, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_losses(reduction: str) -> None:
    scores = _x(3, 5, 4)
    labels = rng.integers(0, 5, size=(3, 4)).astype(np.int64)
    labels[0, 0] = -1
    weight = rng.uniform(0.5, 1.5, size=5).astype(np.float32)
    attrs = {"reduction": reduction, "ignore_index": -1}
    check("SoftmaxCrossEntropyLoss", [scores, labels, weight], attrs=attrs, n_out=2, opset=13, ref="ort",
          rtol=1e-5, atol=1e-6)
    check("NegativeLogLikelihoodLoss", [scores, labels], attrs=attrs, opset=13, ref="ort", rtol=1e-5, atol=1e-6)


def _flex_model(q_shape, k_shape, v_shape, *, score_mod: bool, prob_mod: bool) -> onnx.ModelProto:
    """`ai.onnx.preview::FlexAttention` with an ALiBi-like `score_mod` (scores * 0.5 - |i - j| / 4,
    the distance as a constant) and a `prob_mod` that renormalizes `probs ** 2` rows."""
    from onnx import TensorProto, helper, numpy_helper

    def tensor(name: str, shape) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))

    rank4 = ["B", "H", "L", "S"]
    attrs = {}
    if score_mod:
        dist = np.abs(np.arange(q_shape[2])[:, None] - np.arange(k_shape[2])[None, :]).astype(np.float32) / 4
        attrs["score_mod"] = helper.make_graph(
            [helper.make_node("Mul", ["s", "half"], ["m"]), helper.make_node("Sub", ["m", "dist"], ["s_out"])],
            "score_mod", [tensor("s", rank4)], [tensor("s_out", rank4)],
            [numpy_helper.from_array(np.float32(0.5), "half"), numpy_helper.from_array(dist, "dist")],
        )
    if prob_mod:
        attrs["prob_mod"] = helper.make_graph(
            [helper.make_node("Mul", ["p", "p"], ["p2"]),
             helper.make_node("ReduceSum", ["p2", "last"], ["total"], keepdims=1),
             helper.make_node("Div", ["p2", "total"], ["p_out"])],
            "prob_mod", [tensor("p", rank4)], [tensor("p_out", rank4)],
            [numpy_helper.from_array(np.array([-1], np.int64), "last")],
        )
    node = helper.make_node("FlexAttention", ["q", "k", "v"], ["y"], domain="ai.onnx.preview", **attrs)
    graph = helper.make_graph([node], "flex", [tensor("q", q_shape), tensor("k", k_shape), tensor("v", v_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23),
                                                    helper.make_opsetid("ai.onnx.preview", 1)])
    model.ir_version = 10
    return model


@pytest.mark.parametrize("mods", [(False, False), (True, False), (False, True), (True, True)])
def test_flex_attention_with_grouped_heads_and_modifier_subgraphs(mods: tuple[bool, bool]) -> None:
    from _node_check import assert_same, reference

    q, k, v = _x(2, 4, 3, 8), _x(2, 2, 5, 8), _x(2, 2, 5, 6)  # 4 query heads share 2 K/V heads
    model = _flex_model(q.shape, k.shape, v.shape, score_mod=mods[0], prob_mod=mods[1])
    expected = reference(model, [q, k, v])[0]
    for jit in (False, True):
        assert_same(ours(model, [q, k, v], jit=jit)[0], expected, rtol=1e-5, atol=1e-6, what=f"jit={jit}")


def test_flex_attention_gradient_through_the_modifiers_matches_finite_differences() -> None:
    q, k, v = _x(1, 2, 3, 4), _x(1, 2, 3, 4), _x(1, 2, 3, 4)
    m = sm.load(_flex_model(q.shape, k.shape, v.shape, score_mod=True, prob_mod=True).SerializeToString())
    loss = jax.jit(lambda q: jnp.sum(m(q, k, v) ** 2))
    g = np.asarray(jax.grad(loss)(jnp.asarray(q)))
    eps, idx = 1e-2, (0, 1, 2, 3)
    up, down = q.copy(), q.copy()
    up[idx] += eps
    down[idx] -= eps
    fd = (float(loss(up)) - float(loss(down))) / (2 * eps)
    assert g[idx] == pytest.approx(fd, rel=1e-2, abs=1e-4)


def test_flex_attention_rejects_rank_3_inputs() -> None:
    q = _x(2, 3, 8)
    model = _flex_model(q.shape, q.shape, q.shape, score_mod=False, prob_mod=False)
    with pytest.raises(sm.ModelError, match="rank 4"):
        ours(model, [q, q, q])
