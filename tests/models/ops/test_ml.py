"""ai.onnx.ml kernels: real sklearn-converted models and single-node models, against ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest
import scipy.special
from onnx import TensorProto, helper, numpy_helper

import scimlkit.models as sm
from scimlkit.models.errors import DynamicShapeError, ModelError
from scimlkit.models.formats.onnx import graph_from_proto
from scimlkit.models.runtime import run_graph

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "models" / "ml"
SKLEARN = sorted(p.stem for p in FIXTURES.glob("*.onnx"))
F = TensorProto.FLOAT
ML = "ai.onnx.ml"


def plain(value):
    """A Model output as NumPy; ZipMap's maps come back as dicts."""
    if isinstance(value, list):
        return [v.item() if isinstance(v, np.ndarray) and v.dtype == object and v.ndim == 0 else v for v in value]
    return np.asarray(value)


def compare(got, want, name):
    if want.dtype.kind in "US":
        assert np.asarray(got).astype(str).tolist() == want.tolist(), name
    elif want.dtype.kind == "f":
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(want).max()),
                                   err_msg=name)
    else:
        np.testing.assert_array_equal(np.asarray(got), want, err_msg=name)


def test_every_fixture_is_listed():
    assert len(SKLEARN) >= 14, SKLEARN


@pytest.mark.parametrize("name", SKLEARN)
def test_sklearn_model_matches_onnxruntime(name):
    data = np.load(FIXTURES / f"{name}.npz")
    model = sm.load(FIXTURES / f"{name}.onnx")
    out = model(data["X"])
    out = out if isinstance(out, tuple) else (out,)
    for i, got in enumerate(out):
        got = plain(got)
        if f"out{i}_keys" in data:  # ZipMap: one dict per row
            keys = data[f"out{i}_keys"].tolist()
            got = np.asarray([[row[k] for k in keys] for row in got])
        compare(got, data[f"out{i}"], f"{name} output {i}")


@pytest.mark.parametrize("name", ["random_forest_classifier", "gradient_boosting_binary", "svc_rbf_proba",
                                  "gradient_boosting_regressor", "scaler_logistic_binary"])
def test_sklearn_model_under_jit(name):
    data = np.load(FIXTURES / f"{name}.npz")
    model = sm.load(FIXTURES / f"{name}.onnx")
    out = jax.jit(lambda x: model(x))(data["X"])
    out = out if isinstance(out, tuple) else (out,)
    for i, got in enumerate(out):
        compare(got, data[f"out{i}"], f"{name} output {i} (jit)")


# --------------------------------------------------------------------------- single-node models


def ml_model(op, inputs, outputs, attrs, ml_opset=3, inits=()):
    node = helper.make_node(op, [i.name for i in inputs] + [k for k, _ in inits], [o.name for o in outputs],
                            domain=ML, **attrs)
    graph = helper.make_graph([node], "g", inputs, outputs,
                              initializer=[numpy_helper.from_array(v, k) for k, v in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid(ML, ml_opset)])
    model.ir_version = 10
    return model


def ort(model, *args):
    import onnxruntime as rt

    sess = rt.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {i.name: a for i, a in zip(sess.get_inputs(), args)})


def assert_matches(model, *args, jit=True, rtol=1e-5):
    expected = ort(model, *args)
    m = sm.load(model.SerializeToString(), format="onnx")
    runs = [m(*args)] + ([jax.jit(lambda *a: m(*a))(*args)] if jit else [])
    for result in runs:
        result = result if isinstance(result, tuple) else (result,)
        for i, (got, want) in enumerate(zip(result, expected, strict=True)):
            want = np.asarray(want)
            if want.dtype.kind in "OUS":
                assert np.asarray(got).astype(str).tolist() == want.astype(str).tolist()
            else:
                np.testing.assert_allclose(np.asarray(got, np.float64), want.astype(np.float64), rtol=rtol, atol=1e-6,
                                           err_msg=f"output {i}")


RNG = np.random.default_rng(0)
XF = RNG.standard_normal((7, 3)).astype(np.float32)
XF[1, 0] = np.nan


def tree_v5(aggregate=1, post=0, members=True):
    """Two trees over 3 features using every comparison mode and one set-membership split."""
    # tree 0: n0 (x0 <= 0.1) -> n1 | leaf 0 ; n1 (x1 < -0.3, missing true) -> leaf 1 | n2 ; n2 (x2 in {..}) -> leaf 2 | leaf 3
    # tree 1: n3 (x2 >= 0) -> n4 | leaf 4 ; n4 (x0 > 0.5) -> leaf 5 | leaf 6 ; root-only mode checks via EQ/NEQ below
    return dict(
        nodes_featureids=[0, 1, 2, 2, 0, 1],
        nodes_modes=numpy_helper.from_array(np.array([0, 1, 6 if members else 4, 2, 3, 5], np.uint8)),
        nodes_splits=numpy_helper.from_array(np.array([0.1, -0.3, 0.0, 0.0, 0.5, 0.25], np.float32)),
        nodes_truenodeids=[1, 1, 2, 4, 5, 6], nodes_trueleafs=[0, 1, 1, 0, 1, 1],
        nodes_falsenodeids=[0, 2, 3, 4, 5, 7], nodes_falseleafs=[1, 0, 1, 1, 0, 1],
        nodes_missing_value_tracks_true=[0, 1, 0, 0, 0, 1],
        leaf_targetids=[0, 1, 0, 1, 0, 1, 0, 1],
        leaf_weights=numpy_helper.from_array(np.array([1.0, -2.0, 3.5, 0.25, -1.5, 2.0, 0.75, -0.5], np.float32)),
        tree_roots=[0, 3], n_targets=2, aggregate_function=aggregate, post_transform=post,
        **({"membership_values": numpy_helper.from_array(np.array([XF[0, 2], XF[3, 2], np.nan], np.float32))}
           if members else {}),
    )


@pytest.mark.parametrize("aggregate", [0, 1, 2, 3])
def test_tree_ensemble_v5_matches_onnxruntime(aggregate):
    model = ml_model("TreeEnsemble", [helper.make_tensor_value_info("X", F, [None, 3])],
                     [helper.make_tensor_value_info("Y", F, None)], tree_v5(aggregate), ml_opset=5)
    assert_matches(model, XF, rtol=1e-4)


def softmax_zero(v):
    """Softmax over the non-zero entries of each row; zeros stay zero (ONNX Runtime's SOFTMAX_ZERO)."""
    e = np.where(v != 0, np.exp(v - v.max(axis=1, keepdims=True)), 0.0)
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize(("post", "transform"), [(1, lambda v: scipy.special.softmax(v, axis=1)),
                                                 (2, scipy.special.expit), (3, softmax_zero)])
def test_tree_ensemble_v5_post_transforms_follow_the_spec(post, transform):
    """ONNX Runtime 1.32 reads TreeEnsemble's post_transform with the legacy enum (1 = LOGISTIC), so the
    reference is its untransformed output, transformed by SciPy (1 SOFTMAX, 2 LOGISTIC, 3 SOFTMAX_ZERO)."""
    raw = ml_model("TreeEnsemble", [helper.make_tensor_value_info("X", F, [None, 3])],
                   [helper.make_tensor_value_info("Y", F, None)], tree_v5(1, 0), ml_opset=5)
    expected = ort(raw, XF)[0]
    expected = transform(expected.astype(np.float64))
    model = ml_model("TreeEnsemble", [helper.make_tensor_value_info("X", F, [None, 3])],
                     [helper.make_tensor_value_info("Y", F, None)], tree_v5(1, post), ml_opset=5)
    got = sm.load(model.SerializeToString(), format="onnx")(XF)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("tree_by_tree", [False, True], ids=["one-gather", "loop-over-trees"])
@pytest.mark.parametrize("aggregate", ["SUM", "AVERAGE", "MIN", "MAX"])
def test_tree_ensemble_regressor_aggregates_match_onnxruntime(aggregate, tree_by_tree, monkeypatch):
    if tree_by_tree:  # the memory-saving path taken for large batches
        monkeypatch.setattr("scimlkit.models.ops.ml._GATHER_LIMIT", 0)
    attrs = dict(
        n_targets=2, aggregate_function=aggregate, base_values=[0.5, -0.5],
        # tree 0: x0 < 0 (NaN goes true) ? leaf 1 : leaf 2
        # tree 1: x1 >= 0.2 ? (x2 <= -0.1 ? leaf 3 : leaf 4) : leaf 2
        nodes_treeids=[0, 0, 0, 1, 1, 1, 1, 1], nodes_nodeids=[0, 1, 2, 0, 1, 2, 3, 4],
        nodes_featureids=[0, 0, 0, 1, 2, 0, 0, 0], nodes_values=[0.0, 0, 0, 0.2, -0.1, 0, 0, 0],
        nodes_modes=["BRANCH_LT", "LEAF", "LEAF", "BRANCH_GTE", "BRANCH_LEQ", "LEAF", "LEAF", "LEAF"],
        nodes_truenodeids=[1, 0, 0, 1, 3, 0, 0, 0], nodes_falsenodeids=[2, 0, 0, 2, 4, 0, 0, 0],
        nodes_missing_value_tracks_true=[1, 0, 0, 0, 0, 0, 0, 0],
        target_treeids=[0, 0, 0, 1, 1, 1, 1], target_nodeids=[1, 2, 2, 2, 3, 4, 4], target_ids=[0, 0, 1, 1, 0, 1, 0],
        target_weights=[1.0, 2.0, -1.0, 0.5, 4.0, -3.0, 1.5],
    )
    model = ml_model("TreeEnsembleRegressor", [helper.make_tensor_value_info("X", F, [None, 3])],
                     [helper.make_tensor_value_info("Y", F, None)], attrs)
    assert_matches(model, XF)


@pytest.mark.parametrize("post", ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"])
def test_linear_classifier_post_transforms(post):
    # positive coefficients and inputs keep every score in (0, 1), where PROBIT is defined
    attrs = dict(coefficients=(RNG.random(9) * 0.2).round(3).tolist(), intercepts=[0.1, 0.05, 0.2],
                 classlabels_ints=[3, 5, 7], post_transform=post)
    x = RNG.random((5, 3)).astype(np.float32)
    model = ml_model("LinearClassifier", [helper.make_tensor_value_info("X", F, [None, 3])],
                     [helper.make_tensor_value_info("L", TensorProto.INT64, None), helper.make_tensor_value_info("S", F, None)],
                     attrs, ml_opset=1)
    assert_matches(model, x, rtol=1e-4)


@pytest.mark.parametrize(
    ("op", "attrs", "x"),
    [
        ("Scaler", {"offset": [0.5, -1.0, 2.0], "scale": [2.0, 0.5, 1.0]}, XF[2:]),
        ("Normalizer", {"norm": "MAX"}, XF[2:]),
        ("Normalizer", {"norm": "L2"}, XF[2:]),
        ("Binarizer", {"threshold": 0.3}, XF[2:]),
        ("Imputer", {"imputed_value_floats": [9.0, 8.0, 7.0], "replaced_value_float": float("nan")}, XF),
        ("OneHotEncoder", {"cats_int64s": [1, 3, 5]}, np.array([[1, 5], [3, 3]], np.int64)),
        ("LabelEncoder", {"keys_int64s": [1, 3, 5], "values_floats": [0.5, 1.5, 2.5], "default_float": -1.0},
         np.array([1, 2, 5, 3], np.int64)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_feature_transforms_match_onnxruntime(op, attrs, x, x64):
    elem = helper.np_dtype_to_tensor_dtype(x.dtype)
    opset = 2 if op == "LabelEncoder" else 1
    model = ml_model(op, [helper.make_tensor_value_info("X", elem, x.shape)], [helper.make_tensor_value_info("Y", F, None)],
                     attrs, ml_opset=opset)
    assert_matches(model, x)


@pytest.fixture
def x64():
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def test_array_feature_extractor_and_feature_vectorizer():
    x = RNG.standard_normal((4, 5)).astype(np.float32)
    extract = ml_model("ArrayFeatureExtractor", [helper.make_tensor_value_info("X", F, [4, 5])],
                       [helper.make_tensor_value_info("Y", F, None)], {},
                       inits=[("idx", np.array([4, 0, 2], np.int64))])
    assert_matches(extract, x)
    vec = ml_model("FeatureVectorizer", [helper.make_tensor_value_info("A", F, [4, 5]),
                                         helper.make_tensor_value_info("B", F, [4, 2])],
                   [helper.make_tensor_value_info("Y", F, None)], {"inputdimensions": [3, 4]})
    assert_matches(vec, x, x[:, :2])


def test_string_encoders_match_onnxruntime_eagerly():
    words = np.array([["a", "b"], ["zz", "c"]], dtype=object)
    enc = ml_model("LabelEncoder", [helper.make_tensor_value_info("X", TensorProto.STRING, [2, 2])],
                   [helper.make_tensor_value_info("Y", TensorProto.INT64, None)],
                   {"keys_strings": ["a", "b", "c"], "values_int64s": [10, 20, 30], "default_int64": -7}, ml_opset=2)
    assert_matches(enc, words, jit=False)
    cat = ml_model("CategoryMapper", [helper.make_tensor_value_info("X", TensorProto.INT64, [3])],
                   [helper.make_tensor_value_info("Y", TensorProto.STRING, None)],
                   {"cats_int64s": [1, 2], "cats_strings": ["one", "two"], "default_string": "?"}, ml_opset=1)
    assert_matches(cat, np.array([2, 1, 9], np.int64), jit=False)
    onehot = ml_model("OneHotEncoder", [helper.make_tensor_value_info("X", TensorProto.STRING, [2, 2])],
                      [helper.make_tensor_value_info("Y", F, None)], {"cats_strings": ["a", "c", "zz"]}, ml_opset=1)
    assert_matches(onehot, words, jit=False)


def test_dict_vectorizer_and_zipmap_on_python_dicts():
    dv = ml_model("DictVectorizer", [helper.make_tensor_value_info("X", TensorProto.UNDEFINED, None)],
                  [helper.make_tensor_value_info("Y", F, None)], {"string_vocabulary": ["a", "b", "c"]}, ml_opset=1)
    dv.graph.input[0].type.CopyFrom(helper.make_map_type_proto(TensorProto.STRING, helper.make_tensor_type_proto(F, [])))
    x = {"c": 2.5, "a": -1.0}
    (got,) = run_graph(graph_from_proto(dv), [x])
    np.testing.assert_array_equal(np.asarray(got).reshape(-1), np.asarray(ort(dv, x)[0]).reshape(-1))
    zm = ml_model("ZipMap", [helper.make_tensor_value_info("X", F, [2, 2])],
                  [helper.make_tensor_sequence_value_info("Y", F, None)], {"classlabels_int64s": [4, 9]}, ml_opset=1)
    zm.graph.output[0].type.CopyFrom(helper.make_sequence_type_proto(
        helper.make_map_type_proto(TensorProto.INT64, helper.make_tensor_type_proto(F, []))))
    probs = np.array([[0.25, 0.75], [0.5, 0.5]], np.float32)
    (got,) = run_graph(graph_from_proto(zm), [probs])
    assert got == ort(zm, probs)[0]


def test_string_labels_cannot_be_traced():
    model = sm.load(FIXTURES / "logistic_iris_strings_zipmap.onnx")
    x = np.load(FIXTURES / "logistic_iris_strings_zipmap.npz")["X"]
    with pytest.raises(DynamicShapeError):
        jax.jit(lambda a: model(a)[1])(x)


def test_tree_with_unknown_mode_is_a_model_error():
    attrs = dict(n_targets=1, nodes_treeids=[0], nodes_nodeids=[0], nodes_featureids=[0], nodes_values=[0.0],
                 nodes_modes=["BRANCH_SOMETIMES"], nodes_truenodeids=[0], nodes_falsenodeids=[0],
                 target_treeids=[0], target_nodeids=[0], target_ids=[0], target_weights=[1.0])
    model = ml_model("TreeEnsembleRegressor", [helper.make_tensor_value_info("X", F, [None, 3])],
                     [helper.make_tensor_value_info("Y", F, None)], attrs)
    with pytest.raises(ModelError, match="BRANCH_SOMETIMES"):
        sm.load(model.SerializeToString(), format="onnx")(XF)


# --------------------------------------------------------------------------- two-class layouts


def assert_classifier_matches(model, x, post):
    """Labels and scores as ONNX Runtime gives them; for PROBIT only the first score column
    (ONNX Runtime leaves the second one unwritten for single-score rows)."""
    expected = ort(model, x)
    label, scores = sm.load(model.SerializeToString(), format="onnx")(x)
    assert np.asarray(label).astype(str).tolist() == np.asarray(expected[0]).astype(str).tolist()
    got, want = np.asarray(scores, np.float64), np.asarray(expected[1], np.float64)
    tol = 1e-6
    if post == "PROBIT":  # also: float32 cancellation in the erf-inverse approximation near 0
        got, want, tol = got[:, 0], want[:, 0], 5e-5
        # A score that sums to exactly 1 in one float32 summation order and to 1 - 6e-8 in
        # another is probit +inf or ~5.3: both are right; require "beyond 5 sigma" there.
        edge = np.isinf(want) | (np.abs(got) > 5)
        assert np.all(np.sign(got[edge]) == np.sign(want[edge])) and np.all(np.abs(got[edge]) > 5)
        got, want = got[~edge], want[~edge]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=tol, equal_nan=True)


TWO_TREES = dict(
    nodes_treeids=[0, 0, 0, 1, 1, 1], nodes_nodeids=[0, 1, 2, 0, 1, 2], nodes_featureids=[0, 0, 0, 1, 0, 0],
    nodes_values=[0.0, 0, 0, 0.3, 0, 0], nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF", "BRANCH_LT", "LEAF", "LEAF"],
    nodes_truenodeids=[1, 0, 0, 1, 0, 0], nodes_falsenodeids=[2, 0, 0, 2, 0, 0],
    class_treeids=[0, 0, 1, 1], class_nodeids=[1, 2, 1, 2], classlabels_int64s=[0, 1],
)
X2 = np.random.default_rng(4).standard_normal((16, 3)).astype(np.float32)


@pytest.mark.parametrize("base", [None, [0.1], [0.1, 0.2]], ids=["no-base", "base1", "base2"])
@pytest.mark.parametrize("post", ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"])
@pytest.mark.parametrize("weights", [[0.2, 0.4, 0.1, 0.5], [0.3, -0.4, 0.2, -0.1]], ids=["positive", "mixed"])
@pytest.mark.parametrize("class_id", [0, 1])
def test_tree_ensemble_classifier_two_classes_match_onnxruntime(class_id, weights, post, base):
    attrs = dict(TWO_TREES, class_ids=[class_id] * 4, class_weights=weights, post_transform=post)
    if base:
        attrs["base_values"] = base
    model = ml_model("TreeEnsembleClassifier", [helper.make_tensor_value_info("X", F, [None, 3])],
                     [helper.make_tensor_value_info("L", TensorProto.INT64, None), helper.make_tensor_value_info("S", F, None)],
                     attrs)
    assert_classifier_matches(model, X2, post)


@pytest.mark.parametrize("post", ["NONE", "LOGISTIC", "SOFTMAX", "PROBIT"])
@pytest.mark.parametrize("variant", ["mixed", "positive", "proba"])
def test_svm_classifier_two_classes_match_onnxruntime(variant, post):
    rng = np.random.default_rng(2)
    attrs = dict(classlabels_ints=[3, 7], vectors_per_class=[2, 2], support_vectors=rng.standard_normal(12).tolist(),
                 coefficients=rng.standard_normal(4).tolist(), rho=[0.05], kernel_type="RBF", kernel_params=[0.5, 0, 3],
                 post_transform=post)
    if variant == "positive":
        attrs["coefficients"] = [0.5, 0.2, 0.3, 0.1]
    if variant == "proba":
        attrs.update(prob_a=[-1.2], prob_b=[0.1])
    model = ml_model("SVMClassifier", [helper.make_tensor_value_info("X", F, [None, 3])],
                     [helper.make_tensor_value_info("L", TensorProto.INT64, None), helper.make_tensor_value_info("S", F, None)],
                     attrs)
    assert_classifier_matches(model, X2, post)


@pytest.mark.parametrize("post", ["NONE", "LOGISTIC", "SOFTMAX"])
@pytest.mark.parametrize("labels", [{"classlabels_strings": ["no", "yes"]}, {"classlabels_ints": [2, 9]}], ids=["strings", "ints"])
def test_linear_classifier_one_score_two_labels_matches_onnxruntime(labels, post):
    """(PROBIT is left out: ONNX Runtime 1.32 writes those scores packed into the first rows.)"""
    attrs = dict(coefficients=[0.3, -0.5, 0.2], intercepts=[0.1], post_transform=post, **labels)
    label_type = TensorProto.STRING if "classlabels_strings" in labels else TensorProto.INT64
    model = ml_model("LinearClassifier", [helper.make_tensor_value_info("X", F, [None, 3])],
                     [helper.make_tensor_value_info("L", label_type, None), helper.make_tensor_value_info("S", F, None)],
                     attrs, ml_opset=1)
    assert_classifier_matches(model, X2, post)


@pytest.mark.parametrize("base", [None, [0.05, -0.1, 0.2]], ids=["no-base", "base"])
def test_tree_ensemble_classifier_classes_without_votes(base):
    """Three classes; class 2 only gets votes in one leaf, so most rows never score it."""
    attrs = dict(TWO_TREES, classlabels_int64s=[10, 20, 30], class_ids=[0, 1, 1, 2], class_weights=[-0.2, -0.4, -0.1, 0.5],
                 post_transform="SOFTMAX")
    if base:
        attrs["base_values"] = base
    model = ml_model("TreeEnsembleClassifier", [helper.make_tensor_value_info("X", F, [None, 3])],
                     [helper.make_tensor_value_info("L", TensorProto.INT64, None), helper.make_tensor_value_info("S", F, None)],
                     attrs)
    assert_classifier_matches(model, X2, "SOFTMAX")


@pytest.mark.parametrize("direction", ["string-to-int", "int-to-string"])
def test_label_encoder_opset1_class_strings(direction):
    attrs = {"classes_strings": ["cat", "dog", "fish"], "default_int64": 42, "default_string": "none"}
    if direction == "string-to-int":
        x, tin, tout = np.array(["dog", "emu", "cat"], dtype=object), TensorProto.STRING, TensorProto.INT64
    else:
        x, tin, tout = np.array([2, 0, 7], np.int64), TensorProto.INT64, TensorProto.STRING
    model = ml_model("LabelEncoder", [helper.make_tensor_value_info("X", tin, [3])], [helper.make_tensor_value_info("Y", tout, None)],
                     attrs, ml_opset=1)
    assert_matches(model, x, jit=False)
