"""Tensor-family kernels against ONNX's reference evaluator / ONNX Runtime, eagerly and under jit."""

from __future__ import annotations

import jax
import ml_dtypes
import numpy as np
import pytest
from _node_check import Static, check, node_model, ours, x64  # noqa: F401  (x64: autouse fixture)
from onnx import TensorProto, helper, numpy_helper

import scimlkit.models as sm

rng = np.random.default_rng(3)
X = rng.normal(size=(2, 3, 4)).astype(np.float32)
I64 = np.int64


def s64(*values: int) -> Static:
    return Static(np.array(values, I64))


# --------------------------------------------------------------------------- casts


@pytest.mark.parametrize(
    ("src", "to"),
    [
        (np.float32, TensorProto.INT32),
        (np.float32, TensorProto.FLOAT16),
        (np.float64, TensorProto.FLOAT),
        (np.int64, TensorProto.FLOAT),
        (np.float32, TensorProto.BOOL),
        (np.int32, TensorProto.UINT8),
        (np.float32, TensorProto.BFLOAT16),
        (np.float32, TensorProto.FLOAT8E4M3FN),
        (np.float32, TensorProto.FLOAT8E5M2),
        (np.float32, TensorProto.INT4),
        (np.int16, TensorProto.INT8),
    ],
)
def test_cast_numeric(src: type, to: int) -> None:
    x = X * 50
    if to == TensorProto.INT4:  # float -> fixed point out of range is undefined in the spec
        x = np.clip(x / 8, -8, 7)
    x = x.astype(src)
    check("Cast", [x], attrs={"to": to}, opset=21)
    check("CastLike", [x, Static(np.zeros(1, helper.tensor_dtype_to_np_dtype(to)))], opset=21)


def test_cast_float8_saturation() -> None:
    x = np.array([1e6, -1e6, np.inf, np.nan, 0.3], np.float32)
    for to in (TensorProto.FLOAT8E4M3FN, TensorProto.FLOAT8E5M2, TensorProto.FLOAT8E4M3FNUZ):
        for saturate in (0, 1):
            check("Cast", [x], attrs={"to": to, "saturate": saturate}, opset=19)


def test_cast_strings_are_static_numpy() -> None:
    strings = np.array(["1.5", "-2", "INF", "nan", "1e3"], dtype=object)
    (y,) = check("Cast", [Static(strings)], attrs={"to": TensorProto.FLOAT}, opset=13, ref="ort")
    np.testing.assert_array_equal(
        np.asarray(y), np.array([1.5, -2, np.inf, np.nan, 1000], np.float32)
    )
    (y,) = check("Cast", [strings], attrs={"to": TensorProto.DOUBLE}, opset=13, jit=False)
    (s,) = check(
        "Cast",
        [np.array([1, -20, 300], np.int32)],
        attrs={"to": TensorProto.STRING},
        opset=13,
        jit=False,
    )
    assert list(s) == ["1", "-20", "300"]


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize(
    ("shape", "allowzero"),
    [((4, -1), 0), ((0, 0, -1), 0), ((-1,), 0), ((2, 12), 1), ((0, 3, 4), 0)],
)
def test_reshape(shape: tuple[int, ...], allowzero: int) -> None:
    check("Reshape", [X, s64(*shape)], attrs={"allowzero": allowzero}, opset=14)


def test_reshape_allowzero_empty_and_old_attribute_form() -> None:
    check("Reshape", [np.zeros((0, 3), np.float32), s64(3, 0)], attrs={"allowzero": 1}, opset=14)
    (y,) = ours(
        node_model("Reshape", [X], attrs={"shape": [6, -1]}, opset=1), [X]
    )  # no reference knows Reshape-1
    np.testing.assert_array_equal(np.asarray(y), X.reshape(6, -1))


def test_reshape_errors_are_typed() -> None:
    model = node_model("Reshape", [X, s64(5, -1)], opset=14)
    with pytest.raises(sm.ModelError, match="cannot reshape"):
        ours(model, [X])


@pytest.mark.parametrize("axis", [-3, -1, 0, 1, 3])
def test_flatten(axis: int) -> None:
    check("Flatten", [X], attrs={"axis": axis}, opset=13)


def test_squeeze_unsqueeze_attribute_and_input_forms() -> None:
    x = rng.normal(size=(1, 3, 1, 2)).astype(np.float32)
    check("Squeeze", [x], opset=11)
    check("Squeeze", [x], attrs={"axes": [-2]}, opset=11)
    check("Squeeze", [x, s64(0, 2)], opset=13)
    check("Unsqueeze", [X], attrs={"axes": [0, -1]}, opset=11)
    check("Unsqueeze", [X, s64(1, 4)], opset=13)
    with pytest.raises(sm.ModelError, match="cannot squeeze"):
        ours(node_model("Squeeze", [x, s64(1)], opset=13), [x])


def test_transpose_expand_tile_concat() -> None:
    check("Transpose", [X], opset=13)
    check("Transpose", [X], attrs={"perm": [1, 2, 0]}, opset=21)
    check("Expand", [rng.normal(size=(3, 1)).astype(np.float32), s64(2, 1, 4)], opset=13)
    check("Expand", [X, s64(3, 1)], opset=13)  # bidirectional: the input's dims win over 1s
    check("Tile", [X, s64(1, 2, 3)], opset=13)
    check("Concat", [X, X[:, :1], X[:, :2]], attrs={"axis": 1}, opset=13)
    check("Concat", [X, X], attrs={"axis": -1}, opset=4)


def test_concat_and_gather_of_strings() -> None:
    a = np.array([["a", "b"]], dtype=object)
    # strings stay NumPy: they fold at load time but cannot be returned from a jitted function
    check(
        "Concat",
        [Static(a), Static(np.array([["c", "d"]], dtype=object))],
        attrs={"axis": 0},
        opset=13,
        jit=False,
    )
    check(
        "Gather", [Static(np.array(["x", "y", "z"], dtype=object)), s64(2, -3)], opset=13, jit=False
    )


@pytest.mark.parametrize(
    ("opset", "attrs", "split", "n_out"),
    [
        (2, {"axis": 1, "split": [1, 2]}, None, 2),
        (11, {"axis": -1}, None, 2),
        (13, {"axis": 2}, (1, 3), 2),
        (
            18,
            {"axis": 2, "num_outputs": 3},
            None,
            3,
        ),  # uneven: chunks of ceil(5 / 3) = 2, last one shorter
        (18, {"axis": 1}, (0, 3), 2),
    ],
)
def test_split(opset: int, attrs: dict, split: tuple[int, ...] | None, n_out: int) -> None:
    x = (
        rng.normal(size=(2, 3, 5)).astype(np.float32) if attrs.get("num_outputs") == 3 else X
    )  # 5 = 2 + 2 + 1
    args = [x] if split is None else [x, s64(*split)]
    check("Split", args, attrs=attrs, opset=opset, n_out=n_out)


# --------------------------------------------------------------------------- slicing


def test_slice_old_attribute_form() -> None:
    check("Slice", [X], attrs={"starts": [0, 1], "ends": [1, 1000], "axes": [0, 2]}, opset=1)
    check("Slice", [X], attrs={"starts": [1, -2], "ends": [2, -1]}, opset=9)


BIG = np.iinfo(np.int64).max


@pytest.mark.parametrize("seed", range(6))
def test_slice_random_against_onnxruntime(seed: int) -> None:
    r = np.random.default_rng(seed)
    x = r.normal(size=(5, 6, 7)).astype(np.float32)
    axes = r.permutation(3)[: r.integers(1, 4)]
    choices = [-BIG, -9, -5, -1, 0, 1, 3, 6, 8, BIG]
    starts = [int(r.choice(choices)) for _ in axes]
    ends = [int(r.choice(choices)) for _ in axes]
    steps = [int(r.choice([-3, -2, -1, 1, 2, 3])) for _ in axes]
    check("Slice", [x, s64(*starts), s64(*ends), s64(*axes), s64(*steps)], opset=13, ref="ort")


def test_slice_negative_step_reverses() -> None:
    (y,) = check("Slice", [X, s64(-1), s64(-BIG), s64(2), s64(-1)], opset=13, ref="ort")
    np.testing.assert_array_equal(np.asarray(y), X[:, :, ::-1])


# --------------------------------------------------------------------------- gather / scatter


def test_gathers() -> None:
    check("Gather", [X, np.array([[0, -1], [2, 1]], I64)], attrs={"axis": 1}, opset=13)
    check("Gather", [X, np.array(1, I64)], attrs={"axis": -1}, opset=13)
    idx = rng.integers(-3, 3, size=(2, 2, 4)).astype(I64)
    check("GatherElements", [X, idx], attrs={"axis": 1}, opset=13)
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    check("GatherND", [data, np.array([[0, 1], [1, -1]], I64)], opset=13)
    check("GatherND", [data, np.array([[1], [0]], I64)], attrs={"batch_dims": 1}, opset=13)
    check(
        "GatherND", [data, np.array([[[2, 3]], [[0, 0]]], I64)], attrs={"batch_dims": 1}, opset=13
    )


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatters(reduction: str) -> None:
    data = rng.normal(size=(3, 4)).astype(np.float32)
    indices = (
        np.array([[1, 0, 2, -1], [0, 2, 1, 3]], I64)
        if reduction != "none"
        else np.array([[1, 0, 2, 3]], I64)
    )
    updates = rng.normal(size=indices.shape).astype(np.float32)
    opset = 18 if reduction in ("max", "min") else 16
    check(
        "ScatterElements",
        [data, indices, updates],
        attrs={"axis": 1, "reduction": reduction},
        opset=opset,
    )
    nd_idx = np.array([[1], [-1]], I64) if reduction != "none" else np.array([[1], [0]], I64)
    check(
        "ScatterND",
        [data, nd_idx, rng.normal(size=(2, 4)).astype(np.float32)],
        attrs={"reduction": reduction},
        opset=opset,
    )


def test_scatter_legacy() -> None:
    data = np.zeros((3, 3), np.float32)
    check(
        "Scatter",
        [data, np.array([[1, 0, 2]], I64), np.ones((1, 3), np.float32)],
        attrs={"axis": 0},
        opset=9,
        ref="ort",
    )


def test_tensor_scatter_kv_cache() -> None:
    past = rng.normal(size=(2, 3, 6, 4)).astype(np.float32)
    update = rng.normal(size=(2, 3, 2, 4)).astype(np.float32)
    write = np.array([1, 5], I64)
    for mode in ("linear", "circular"):
        (y,) = ours(
            node_model("TensorScatter", [past, update, write], attrs={"mode": mode}, opset=24),
            [past, update, write],
        )
        expected = past.copy()  # the spec's pseudocode
        for b in range(2):
            for s in range(2):
                t = write[b] + s
                if mode == "circular":
                    t %= 6
                if t < 6:
                    expected[b, :, t] = update[b, :, s]
        np.testing.assert_array_equal(np.asarray(y), expected)


# --------------------------------------------------------------------------- shape, size, pad


def test_shape_and_size_are_static_under_jit() -> None:
    for attrs in ({}, {"start": 1}, {"start": -2, "end": -1}, {"end": 10}):
        check("Shape", [X], attrs=attrs, opset=21)
    check("Size", [X], opset=21)


def test_shape_arithmetic_folds_under_jit() -> None:
    # Shape -> Gather -> Unsqueeze -> Concat -> Reshape: folds to a static shape while tracing
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i0"], ["d0"], axis=0),
        helper.make_node("Unsqueeze", ["d0", "ax0"], ["d0u"]),
        helper.make_node("Concat", ["d0u", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
        helper.make_node("Abs", ["target"], ["target_pos"]),
        helper.make_node(
            "ConstantOfShape",
            ["target_pos"],
            ["z"],
            value=numpy_helper.from_array(np.array([2.5], np.float32)),
        ),
    ]
    inits = [
        numpy_helper.from_array(np.array(0, I64), "i0"),
        numpy_helper.from_array(np.array([0], I64), "ax0"),
        numpy_helper.from_array(np.array([-1], I64), "minus1"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4])],
        [helper.make_empty_tensor_value_info("y"), helper.make_empty_tensor_value_info("z")],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    m = sm.load(model.SerializeToString(), format="onnx")
    y, z = jax.jit(lambda a: m(a))(X)
    np.testing.assert_array_equal(np.asarray(y), X.reshape(2, -1))
    np.testing.assert_array_equal(np.asarray(z), np.full((2, 1), 2.5, np.float32))
    jaxpr = jax.make_jaxpr(lambda a: m(a))(X)
    assert "gather" not in str(jaxpr) and "concatenate" not in str(jaxpr)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad(mode: str) -> None:
    x = rng.normal(size=(3, 4)).astype(np.float32)
    opset = 19 if mode == "wrap" else 18
    check("Pad", [x, s64(1, 2, 2, 1)], attrs={"mode": mode}, opset=opset)
    # negative pads crop (ONNX's reference evaluator cannot do that; ONNX Runtime can)
    check(
        "Pad",
        [x, s64(0, -1, 1, 2), Static(np.float32(9.0))],
        attrs={"mode": mode},
        opset=opset,
        ref="ort",
    )
    check("Pad", [x, s64(2, 3), None, s64(-1)], attrs={"mode": mode}, opset=opset)


def test_pad_old_attribute_form() -> None:
    x = rng.normal(size=(3, 4)).astype(np.float32)
    check("Pad", [x], attrs={"pads": [1, 0, 0, 2], "value": 1.5}, opset=2)
    check("Pad", [x, s64(1, 0, 0, 2)], attrs={"mode": "edge"}, opset=11)


# --------------------------------------------------------------------------- constants and generators


def test_constant_forms() -> None:
    forms = {
        "value": numpy_helper.from_array(X, "v"),
        "value_float": 1.5,
        "value_floats": [1.0, 2.0],
        "value_int": 3,
        "value_ints": [1, 2, 3],
        "value_string": "hi",
        "value_strings": ["a", "b"],
    }
    for key, value in forms.items():
        check(
            "Constant",
            [],
            attrs={key: value},
            opset=13,
            jit=key not in ("value_string", "value_strings"),
        )


def test_constant_of_shape_range_one_hot_eye_like() -> None:
    check("ConstantOfShape", [s64(2, 3)], opset=9)
    check(
        "ConstantOfShape",
        [s64(2, 0)],
        attrs={"value": numpy_helper.from_array(np.array([7], I64))},
        opset=21,
    )
    check(
        "Range",
        [Static(np.array(1, I64)), Static(np.array(10, I64)), Static(np.array(3, I64))],
        opset=11,
    )
    check(
        "Range",
        [Static(np.float32(1.0)), Static(np.float32(-2.0)), Static(np.float32(-0.7))],
        opset=11,
    )
    check("Range", [np.array(1.0), np.array(2.0), np.array(0.25)], opset=11, jit=False)
    values = Static(np.array([0.0, 5.0], np.float32))
    for axis in (-1, 0, 1):
        check(
            "OneHot",
            [np.array([[0, 2], [-1, 7]], I64), Static(np.array([4], I64)), values],
            attrs={"axis": axis},
            opset=11,
            ref="ort",
        )
    check("EyeLike", [np.zeros((3, 4), np.float32)], attrs={"k": 1}, opset=9)
    check(
        "EyeLike",
        [np.zeros((4, 3), np.int32)],
        attrs={"k": -1, "dtype": TensorProto.DOUBLE},
        opset=22,
    )


# --------------------------------------------------------------------------- data-dependent shapes


def test_nonzero_unique_compress_run_eagerly_and_refuse_jit_clearly() -> None:
    x = np.array([[1, 0, 3], [0, 0, 5]], np.float32)
    check("NonZero", [x], opset=13, jit=False)
    check("Compress", [X, np.array([1, 0, 1], bool)], attrs={"axis": 1}, opset=11, jit=False)
    check("Compress", [X, np.array([0, 1, 1, 0, 1], bool)], opset=11, jit=False)
    check(
        "Compress", [X, Static(np.array([1, 0, 1], bool))], attrs={"axis": 1}, opset=11
    )  # static: jit works
    u = np.array([2, 1, 1, 3, 4, 3], np.int64)
    check("Unique", [u], attrs={"sorted": 1}, opset=11, n_out=4, jit=False)
    check("Unique", [u], attrs={"sorted": 0}, opset=11, n_out=4, jit=False)
    rows = np.array([[1, 0, 0], [1, 0, 0], [2, 3, 4]], np.float32)
    check("Unique", [rows], attrs={"axis": 0}, opset=11, n_out=4, jit=False)
    m = sm.load(node_model("NonZero", [x], opset=13).SerializeToString(), format="onnx")
    with pytest.raises(sm.DynamicShapeError, match="NonZero"):
        jax.jit(lambda a: m(a))(x)


# --------------------------------------------------------------------------- rearrangements


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_space(mode: str) -> None:
    x = rng.normal(size=(2, 8, 2, 3)).astype(np.float32)
    check("DepthToSpace", [x], attrs={"blocksize": 2, "mode": mode}, opset=13)
    check(
        "SpaceToDepth",
        [rng.normal(size=(1, 2, 4, 6)).astype(np.float32)],
        attrs={"blocksize": 2},
        opset=13,
    )


def test_reverse_sequence_identity_bitcast() -> None:
    x = rng.normal(size=(4, 3, 2)).astype(np.float32)
    check(
        "ReverseSequence",
        [x, np.array([4, 1, 3], I64)],
        attrs={"batch_axis": 1, "time_axis": 0},
        opset=10,
    )
    xt = np.ascontiguousarray(x.transpose(1, 0, 2))
    check(
        "ReverseSequence",
        [xt, np.array([2, 4, 0], I64)],
        attrs={"batch_axis": 0, "time_axis": 1},
        opset=10,
    )
    check("Identity", [X], opset=21)
    (y,) = ours(node_model("BitCast", [X], attrs={"to": TensorProto.INT32}, opset=26), [X])
    np.testing.assert_array_equal(np.asarray(y), X.view(np.int32))
    h = X.astype(ml_dtypes.bfloat16)
    (y,) = ours(node_model("BitCast", [h], attrs={"to": TensorProto.UINT16}, opset=26), [h])
    np.testing.assert_array_equal(np.asarray(y), h.view(np.uint16))
