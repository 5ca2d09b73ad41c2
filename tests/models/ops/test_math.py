"""Math-family kernels against ONNX's reference evaluator / ONNX Runtime, eagerly and under jit."""

from __future__ import annotations

import numpy as np
import pytest
from _node_check import Static, check, node_model, ours, x64  # noqa: F401  (x64: autouse fixture)

rng = np.random.default_rng(0)
X = rng.normal(size=(3, 4)).astype(np.float32)
Y = rng.normal(size=(4,)).astype(np.float32)
POS = rng.uniform(0.1, 3.0, size=(3, 4)).astype(np.float32)
UNIT = rng.uniform(-0.9, 0.9, size=(3, 4)).astype(np.float32)

UNARY = {
    "Neg": X,
    "Abs": X,
    "Sign": X,
    "Reciprocal": POS,
    "Sqrt": POS,
    "Exp": X,
    "Log": POS,
    "Floor": X * 3,
    "Ceil": X * 3,
    "Round": X * 3,
    "Sin": X,
    "Cos": X,
    "Tan": UNIT,
    "Asin": UNIT,
    "Acos": UNIT,
    "Atan": X,
    "Sinh": X,
    "Cosh": X,
    "Tanh": X,
    "Asinh": X,
    "Acosh": POS + 1,
    "Atanh": UNIT,
    "Erf": X,
    "IsNaN": np.array([1.0, np.nan, np.inf], np.float32),
}


@pytest.mark.parametrize("op", sorted(UNARY))
@pytest.mark.parametrize("opset", [11, 22])
def test_unary_float(op: str, opset: int) -> None:
    check(op, [UNARY[op]], opset=opset)


def test_unary_float64_and_int() -> None:
    check("Abs", [np.array([-3, 0, 5], np.int64)])
    check("Neg", [np.array([-3, 0, 5], np.int32)])
    check("Sign", [np.array([-3, 0, 5], np.int8)], opset=13)
    check("Exp", [X.astype(np.float64)])


def test_round_is_half_to_even() -> None:
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, 2.6], np.float32)
    (y,) = check("Round", [x], ref="ort")
    np.testing.assert_array_equal(np.asarray(y), [0, 2, 2, -0.0, -2, -2, 2, 3])


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Pow"])
@pytest.mark.parametrize("opset", [7, 13, 14])
def test_binary_broadcast(op: str, opset: int) -> None:
    base = POS if op == "Pow" else X
    check(op, [base, Y], opset=opset)
    check(op, [base.astype(np.float64), Static(Y.astype(np.float64))], opset=opset)


def test_legacy_broadcast_attribute() -> None:
    a = rng.normal(size=(2, 3, 4)).astype(np.float32)
    b = rng.normal(size=(3,)).astype(np.float32)
    # opset < 7: B's shape matches A's dims starting at `axis` (the spec's own example shapes)
    model = node_model("Add", [a, b], attrs={"broadcast": 1, "axis": 1}, opset=6)
    np.testing.assert_allclose(np.asarray(ours(model, [a, b])[0]), a + b[:, None], rtol=1e-6)
    c = rng.normal(size=(3, 4)).astype(np.float32)
    model = node_model("Mul", [a, c], attrs={"broadcast": 1}, opset=6)  # suffix match by default
    np.testing.assert_allclose(np.asarray(ours(model, [a, c])[0]), a * c, rtol=1e-6)


def test_integer_div_truncates_like_c() -> None:
    a = np.array([-7, 7, -7, 7, 0], np.int32)
    b = np.array([2, 2, -2, -2, 3], np.int32)
    (y,) = check("Div", [a, b], ref="ort")
    np.testing.assert_array_equal(np.asarray(y), [-3, 3, 3, -3, 0])


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.int8])
@pytest.mark.parametrize("fmod", [0, 1])
def test_mod_integers(dtype: type, fmod: int) -> None:
    a = np.array([-7, 7, -7, 7, 5, -4], dtype)
    b = np.array([2, 2, -2, -2, 3, 3], dtype)
    check("Mod", [a, b], attrs={"fmod": fmod}, opset=13, ref="ort")


def test_mod_float() -> None:
    a = np.array([-7.5, 7.5, -7.5, 7.5, 5.0], np.float32)
    b = np.array([2.0, 2.0, -2.0, -2.0, 2.5], np.float32)
    check("Mod", [a, b], attrs={"fmod": 1}, opset=13, ref="ort")
    # fmod=0 for floats (opset 28 allows it): result has the sign of the divisor
    (y,) = ours(node_model("Mod", [a, b], attrs={"fmod": 0}, opset=28), [a, b])
    np.testing.assert_allclose(np.asarray(y), [0.5, 1.5, -1.5, -0.5, 0.0])
    # the special cases the opset-28 spec lists
    x = np.array([0.0, -0.0, np.inf, 3.0, 3.0, -3.0, np.nan], np.float64)
    d = np.array([-2.0, 2.0, 2.0, 0.0, np.inf, np.inf, 1.0], np.float64)
    (y,) = ours(node_model("Mod", [x, d], opset=28), [x, d])
    y = np.asarray(y)
    assert np.signbit(y[0]) and not np.signbit(y[1])
    assert np.isnan(y[2]) and np.isnan(y[3]) and np.isnan(y[6])
    assert y[4] == 3.0 and y[5] == np.inf


def test_pow_mixed_types_keeps_base_dtype() -> None:
    check(
        "Pow",
        [np.array([1, 2, 3], np.int64), np.array([2.0, 0.5, 3.0], np.float32)],
        opset=15,
        ref="ort",
    )
    check("Pow", [POS, np.array([2], np.int64)], opset=15, ref="ort")


@pytest.mark.parametrize("op", ["Max", "Min", "Sum", "Mean"])
def test_variadic(op: str) -> None:
    z = rng.normal(size=(1, 4)).astype(np.float32)
    check(op, [X, Y, z], opset=13)
    check(op, [X], opset=8)


def test_min_max_propagate_nan() -> None:
    a = np.array([1.0, np.nan, 3.0], np.float32)
    b = np.array([np.nan, 2.0, 1.0], np.float32)
    (mx,) = check("Max", [a, b], ref="ort")
    (mn,) = check("Min", [a, b], ref="ort")
    assert np.isnan(np.asarray(mx)[:2]).all() and np.isnan(np.asarray(mn)[:2]).all()


@pytest.mark.parametrize("op", ["Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual"])
def test_comparisons(op: str) -> None:
    a = np.array([[1, 2, 3], [3, 2, 1]], np.int64)
    check(op, [a, np.array([2], np.int64)], opset=16 if "Or" in op else 13)
    check(op, [X, Y], opset=13)


def test_equal_strings() -> None:
    a = np.array(["a", "bc", "d"], dtype=object)
    check("Equal", [a, Static(np.array(["a", "x", "d"], dtype=object))], opset=19, jit=False)


@pytest.mark.parametrize("op", ["And", "Or", "Xor"])
def test_logical(op: str) -> None:
    a = rng.random((3, 4)) > 0.5
    b = rng.random((4,)) > 0.5
    check(op, [a, b], opset=7)
    check("Not", [a], opset=1)


@pytest.mark.parametrize("op", ["BitwiseAnd", "BitwiseOr", "BitwiseXor"])
@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.int64])
def test_bitwise(op: str, dtype: type) -> None:
    a = rng.integers(0, 100, size=(3, 4)).astype(dtype)
    b = rng.integers(0, 100, size=(4,)).astype(dtype)
    check(op, [a, b], opset=18)
    check("BitwiseNot", [a], opset=18)


@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint32, np.uint64])
def test_bitshift(direction: str, dtype: type) -> None:
    x = np.array([16, 4, 1, 255], dtype)
    s = np.array([1, 2, 3, 0], dtype)
    check("BitShift", [x, s], attrs={"direction": direction}, opset=11, ref="ort")


def test_bitshift_signed_and_out_of_range_opset28() -> None:
    # opset 28: arithmetic right shift for signed types; shifts >= bit width give the sign fill
    x = np.array([-8, -8, 8, 1, 1], np.int8)
    s = np.array([1, 9, 9, 8, -1], np.int8)
    model = node_model("BitShift", [x, s], attrs={"direction": "RIGHT"}, opset=28)
    np.testing.assert_array_equal(np.asarray(ours(model, [x, s])[0]), [-4, -1, 0, 0, 0])
    model = node_model("BitShift", [x, s], attrs={"direction": "LEFT"}, opset=28)
    np.testing.assert_array_equal(np.asarray(ours(model, [x, s])[0]), [-16, 0, 0, 0, 0])


def test_isinf_flags() -> None:
    x = np.array([np.inf, -np.inf, 1.0, np.nan], np.float32)
    for pos, neg in [(1, 1), (1, 0), (0, 1)]:
        check("IsInf", [x], attrs={"detect_positive": pos, "detect_negative": neg}, opset=20)


def test_where_and_clip() -> None:
    cond = rng.random((3, 4)) > 0.5
    check("Where", [cond, X, Y], opset=16)
    check("Clip", [X], attrs={"min": -0.5, "max": 0.5}, opset=6)
    check("Clip", [X, Static(np.float32(-0.5)), Static(np.float32(0.5))], opset=13)
    check("Clip", [X, None, Static(np.float32(0.1))], opset=13)
    check(
        "Clip",
        [np.array([-5, 0, 5], np.int32), Static(np.int32(-1)), Static(np.int32(2))],
        opset=13,
    )
    # min > max: everything becomes max
    check("Clip", [X, Static(np.float32(1.0)), Static(np.float32(-1.0))], opset=13, ref="ort")


@pytest.mark.parametrize("upper", [0, 1])
@pytest.mark.parametrize("k", [-1, 0, 2])
def test_trilu(upper: int, k: int) -> None:
    x = rng.normal(size=(2, 3, 5)).astype(np.float32)
    check("Trilu", [x, Static(np.array(k, np.int64))], attrs={"upper": upper}, opset=14)
    check(
        "Trilu", [x, np.array(k, np.int64)], attrs={"upper": upper}, opset=14
    )  # traced k works under jit


@pytest.mark.parametrize("largest", [0, 1])
@pytest.mark.parametrize("axis", [-1, 0])
def test_topk(largest: int, axis: int) -> None:
    x = np.array([[3.0, 1.0, 3.0, 2.0], [0.0, 5.0, 5.0, -1.0], [1.0, 1.0, 1.0, 1.0]], np.float32)
    check(
        "TopK",
        [x, Static(np.array([2], np.int64))],
        attrs={"axis": axis, "largest": largest},
        opset=11,
        n_out=2,
        ref="ort",
    )
    xi = (x * 2).astype(np.int32)
    check(
        "TopK",
        [xi, Static(np.array([2], np.int64))],
        attrs={"axis": axis, "largest": largest},
        opset=11,
        n_out=2,
    )


def test_topk_old_attribute_form() -> None:
    check("TopK", [X], attrs={"k": 2, "axis": 1}, opset=1, n_out=2)


@pytest.mark.parametrize("op", ["CumSum", "CumProd"])
@pytest.mark.parametrize(("exclusive", "reverse"), [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_cumulative(op: str, exclusive: int, reverse: int) -> None:
    x = rng.uniform(0.5, 1.5, size=(3, 4)).astype(np.float64)
    opset = 26 if op == "CumProd" else 14
    check(
        op,
        [x, Static(np.array(1, np.int64))],
        attrs={"exclusive": exclusive, "reverse": reverse},
        opset=opset,
    )
    check(
        op,
        [x, Static(np.array(-2, np.int32))],
        attrs={"exclusive": exclusive, "reverse": reverse},
        opset=opset,
    )


def test_matmul_gemm_einsum_det() -> None:
    a = rng.normal(size=(2, 1, 3, 4)).astype(np.float32)
    b = rng.normal(size=(5, 4, 2)).astype(np.float32)
    check("MatMul", [a, b], opset=13, rtol=1e-4, atol=1e-5)
    check("MatMul", [Y, X.T.copy()], opset=13, rtol=1e-4, atol=1e-5)
    c = rng.normal(size=(3, 5)).astype(np.float32)
    d = rng.normal(size=(5, 4)).astype(np.float32)
    attrs = {"alpha": 0.5, "beta": 2.0, "transA": 1, "transB": 1}
    check("Gemm", [c.T.copy(), d.T.copy(), Y], attrs=attrs, opset=13, rtol=1e-4, atol=1e-5)
    check("Gemm", [c, d], opset=13, rtol=1e-4, atol=1e-5)
    check("Gemm", [c, d, np.float32(1.5)], attrs={"beta": 0.5}, opset=7, rtol=1e-4, atol=1e-5)
    for eq, ins in [
        ("ij,jk->ik", [c, d]),
        ("...ij,...jk", [a[0], b[:1]]),
        ("ii", [X[:3, :3].copy()]),
        ("bij -> bji", [a[0]]),
        ("i,i", [Y, Y]),
    ]:
        check("Einsum", ins, attrs={"equation": eq}, opset=12, rtol=1e-4, atol=1e-5)
    m = rng.normal(size=(2, 3, 3)).astype(np.float64)
    check("Det", [m], opset=11, rtol=1e-6)
