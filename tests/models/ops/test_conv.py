"""Conv-family kernels against ONNX Runtime / ONNX's reference evaluator, eagerly and under jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _node_check import Static, check, x64  # noqa: F401  (x64: autouse fixture)

from scimlkit.models.ops.conv import conv_nd, conv_pads

rng = np.random.default_rng(0)


def _x(*shape):
    return rng.normal(size=shape).astype(np.float32)


CONV_CASES = {
    "2d_pads_strides": ((1, 3, 7, 6), (4, 3, 3, 3), {"pads": [1, 0, 2, 1], "strides": [2, 1]}),
    "2d_dilation_group": ((2, 4, 8, 8), (6, 2, 3, 2), {"dilations": [2, 1], "group": 2}),
    "2d_depthwise": ((1, 4, 5, 5), (4, 1, 3, 3), {"group": 4, "pads": [1, 1, 1, 1]}),
    "2d_depthwise_strided": (
        (2, 6, 9, 8),
        (6, 1, 3, 2),
        {"group": 6, "pads": [1, 0, 2, 1], "strides": [2, 3], "dilations": [2, 1]},
    ),
    "1d_depthwise": ((2, 3, 10), (3, 1, 4), {"group": 3, "pads": [2, 1], "strides": [2]}),
    "3d_depthwise": ((1, 3, 5, 4, 6), (3, 1, 2, 3, 3), {"group": 3, "pads": [1, 0, 1, 0, 1, 1]}),
    "2d_same_upper": ((1, 2, 7, 5), (3, 2, 4, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    "2d_same_lower": ((1, 2, 7, 5), (3, 2, 4, 3), {"auto_pad": "SAME_LOWER", "strides": [2, 1]}),
    "2d_valid": ((1, 2, 6, 6), (3, 2, 3, 3), {"auto_pad": "VALID", "strides": [2, 2]}),
    "1d": ((2, 3, 10), (5, 3, 3), {"pads": [2, 1], "dilations": [2]}),
    "3d": ((1, 2, 5, 6, 4), (3, 2, 3, 2, 2), {"strides": [1, 2, 1], "pads": [1, 0, 1, 1, 1, 0]}),
    # 1x1 convolutions without padding run as a matrix product (`_pointwise_dot`)
    "2d_pointwise": ((2, 5, 4, 3), (7, 5, 1, 1), {}),
    "2d_pointwise_strided": ((2, 5, 7, 6), (3, 5, 1, 1), {"strides": [2, 3]}),
    "1d_pointwise_strided": ((3, 4, 9), (2, 4, 1), {"strides": [2]}),
    "3d_pointwise": ((1, 3, 4, 2, 5), (4, 3, 1, 1, 1), {"strides": [1, 2, 2]}),
    "2d_pointwise_padded": ((1, 3, 4, 4), (2, 3, 1, 1), {"pads": [1, 0, 0, 1]}),  # padded: lax path
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv_matches_onnxruntime(case: str) -> None:
    xs, ws, attrs = CONV_CASES[case]
    b = _x(ws[0])
    check("Conv", [_x(*xs), Static(_x(*ws)), Static(b)], attrs=attrs, ref="ort", rtol=1e-4, atol=1e-5)


def test_conv_without_bias_float64() -> None:
    x = rng.normal(size=(1, 2, 5, 5))
    w = rng.normal(size=(3, 2, 2, 2))
    check("Conv", [x, Static(w)], attrs={"pads": [0, 1, 1, 0]}, rtol=1e-10, atol=1e-12)  # ORT has no float64 Conv


def test_pointwise_conv_float64_and_gradient() -> None:
    """The 1x1 matrix-product path keeps float64 precision and differentiates like a convolution."""
    from jax import lax

    x = jnp.asarray(rng.normal(size=(2, 3, 5, 4)))
    w = jnp.asarray(rng.normal(size=(4, 3, 1, 1)))
    check("Conv", [np.asarray(x), Static(np.asarray(w))], attrs={"strides": [2, 1]}, rtol=1e-12, atol=1e-12)

    def loss(conv, w):
        return jnp.sum(jnp.sin(conv(w)))

    ours = jax.grad(lambda w: loss(lambda w: conv_nd(x, w, strides=[2, 1], pads=[0] * 4, dilations=[1, 1]), w))(w)
    direct = jax.grad(lambda w: loss(lambda w: lax.conv_general_dilated(x, w, (2, 1), [(0, 0), (0, 0)]), w))(w)
    np.testing.assert_allclose(ours, direct, rtol=1e-12, atol=1e-12)


TRANSPOSE_CASES = {
    "strides_output_padding": ((1, 2, 3, 4), (2, 3, 3, 3), {"strides": [2, 3], "output_padding": [1, 2]}),
    "pads_dilations": ((1, 2, 5, 5), (2, 2, 3, 3), {"pads": [1, 0, 1, 2], "dilations": [2, 1]}),
    "group": ((2, 4, 4, 3), (4, 3, 2, 2), {"group": 2, "strides": [2, 2]}),
    "output_shape": ((1, 1, 3, 3), (1, 2, 3, 3), {"strides": [3, 2], "output_shape": [10, 8]}),
    "same_upper": ((1, 1, 3, 3), (1, 2, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    "1d": ((1, 3, 6), (3, 2, 4), {"strides": [2], "pads": [1, 1]}),
    "3d": ((1, 2, 3, 3, 2), (2, 2, 2, 2, 2), {"strides": [2, 1, 2]}),
}


@pytest.mark.parametrize("case", sorted(TRANSPOSE_CASES))
def test_conv_transpose_matches_onnxruntime(case: str) -> None:
    xs, ws, attrs = TRANSPOSE_CASES[case]
    b = _x(ws[1] * attrs.get("group", 1))
    check("ConvTranspose", [_x(*xs), Static(_x(*ws)), Static(b)], attrs=attrs, ref="ort", rtol=1e-4, atol=1e-5)


def test_deform_conv_matches_reference() -> None:
    x = _x(1, 4, 5, 6)
    w = _x(2, 2, 2, 2)
    offset = (rng.normal(size=(1, 2 * 4 * 2, 4, 3)) * 0.7).astype(np.float32)  # offset_group=2, 2x2 kernel, 2 coords
    mask = rng.uniform(size=(1, 2 * 4, 4, 3)).astype(np.float32)
    b = _x(2)
    attrs = {"group": 2, "offset_group": 2, "strides": [1, 2], "pads": [0, 1, 0, 0]}
    check("DeformConv", [x, w, offset, b, mask], attrs=attrs, opset=22, rtol=1e-4, atol=1e-5)


def test_col2im_matches_onnxruntime() -> None:
    x = _x(2, 3 * 2 * 3, 9)  # C=3, block 2x3; image 5x6 with the pads and strides below: 3x3 blocks
    attrs = {"strides": [2, 2], "pads": [1, 0, 1, 1], "dilations": [1, 1]}
    check("Col2Im", [x, Static(np.array([5, 6], np.int64)), Static(np.array([2, 3], np.int64))],
          attrs=attrs, opset=18, ref="ort", rtol=1e-5, atol=1e-6)


def test_conv_pads_same_and_valid() -> None:
    assert conv_pads("SAME_UPPER", [7], [4], [2], [1], None) == [1, 2]
    assert conv_pads("SAME_LOWER", [7], [4], [2], [1], None) == [2, 1]
    assert conv_pads("VALID", [7, 3], [4, 1], [2, 1], [1, 1], [5, 5, 5, 5]) == [0, 0, 0, 0]
    assert conv_pads("NOTSET", [7], [3], [1], [1], None) == [0, 0]


def test_conv_nd_gradient_matches_finite_differences() -> None:
    x = jnp.asarray(rng.normal(size=(1, 2, 5, 5)))
    w = jnp.asarray(rng.normal(size=(4, 1, 3, 3)))

    def loss(w):
        y = conv_nd(x, w, strides=[2, 1], pads=[1, 1, 0, 1], dilations=[1, 2], group=2)
        return jnp.sum(jnp.sin(y))

    grad = np.asarray(jax.grad(loss)(w))
    eps = 1e-6
    for index in [(0, 0, 0, 0), (1, 0, 2, 1), (3, 0, 1, 2)]:
        bump = np.zeros(w.shape)
        bump[index] = eps
        fd = (loss(w + bump) - loss(w - bump)) / (2 * eps)
        np.testing.assert_allclose(grad[index], fd, rtol=1e-6, atol=1e-8)


def test_conv_model_gradient_through_load() -> None:
    from _node_check import node_model

    import scimlkit.models as sm

    x = rng.normal(size=(1, 2, 4, 4)).astype(np.float64)
    w = rng.normal(size=(3, 2, 3, 3))
    model = sm.load(node_model("Conv", [x, Static(w)], attrs={"pads": [1, 1, 1, 1]}).SerializeToString(), format="onnx")
    assert isinstance(model, sm.Model)
    g = jax.grad(lambda xx: jnp.sum(model(xx) ** 2))(jnp.asarray(x))
    eps = 1e-6
    bump = np.zeros_like(x)
    bump[0, 1, 2, 3] = eps
    fd = (np.sum(np.asarray(model(x + bump)) ** 2) - np.sum(np.asarray(model(x - bump)) ** 2)) / (2 * eps)
    np.testing.assert_allclose(np.asarray(g)[0, 1, 2, 3], fd, rtol=1e-5)


def test_causal_conv_with_state_matches_reference() -> None:
    x = _x(2, 3, 5)
    w = _x(3, 1, 4)
    b = _x(3)
    past = _x(2, 3, 3)
    check("CausalConvWithState", [x, w, b, past], attrs={"activation": "silu"}, opset=27, n_out=2, rtol=1e-5, atol=1e-6)
