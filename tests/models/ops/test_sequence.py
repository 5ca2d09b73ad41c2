"""Sequence and optional ops against ONNX Runtime (eagerly and under jax.jit)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import scimlkit.models as sm
from scimlkit.models.errors import ModelError

F = TensorProto.FLOAT
RNG = np.random.default_rng(0)
A, B, C = (RNG.standard_normal((2, 3)).astype(np.float32) for _ in range(3))


def vi(name, elem=F, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def seq_vi(name, elem=F):
    return helper.make_tensor_sequence_value_info(name, elem, None)


def build(nodes, inputs, outputs, inits=(), opset=18):
    graph = helper.make_graph(nodes, "g", inputs, outputs,
                              initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def ort(model, *args):
    import onnxruntime as rt

    sess = rt.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {i.name: a for i, a in zip(sess.get_inputs(), args)})


def assert_matches(model, *args, jit=True):
    expected = ort(model, *args)
    m = sm.load(model.SerializeToString(), format="onnx")
    runs = [m(*args)] + ([jax.jit(lambda *a: m(*a))(*args)] if jit else [])
    for result in runs:
        result = result if isinstance(result, tuple) else (result,)
        for got, want in zip(result, expected, strict=True):
            if isinstance(want, list):
                assert isinstance(got, list) and len(got) == len(want)
                for g, w in zip(got, want):
                    np.testing.assert_allclose(np.asarray(g), w, rtol=1e-6)
            else:
                np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)


def test_construct_insert_erase_at_length():
    nodes = [
        helper.make_node("SequenceConstruct", ["a", "b"], ["s1"]),
        helper.make_node("SequenceInsert", ["s1", "c", "zero"], ["s2"]),  # c, a, b
        helper.make_node("SequenceErase", ["s2", "minus1"], ["s3"]),  # c, a
        helper.make_node("SequenceAt", ["s3", "one"], ["y"]),  # a
        helper.make_node("SequenceLength", ["s2"], ["n"]),
        helper.make_node("SequenceInsert", ["s3", "b"], ["s4"]),  # c, a, b (append)
        helper.make_node("ConcatFromSequence", ["s4"], ["cat"], axis=1),
        helper.make_node("ConcatFromSequence", ["s4"], ["stacked"], axis=-1, new_axis=1),
    ]
    inits = [("zero", np.array(0, np.int64)), ("minus1", np.array(-1, np.int64)), ("one", np.array(1, np.int64))]
    model = build(nodes, [vi("a", F, [2, 3]), vi("b", F, [2, 3]), vi("c", F, [2, 3])],
                  [vi("y"), vi("n", TensorProto.INT64), vi("cat"), vi("stacked"), seq_vi("s4")], inits)
    assert_matches(model, A, B, C)


def test_sequence_empty_then_inserts():
    nodes = [helper.make_node("SequenceEmpty", [], ["e"], dtype=F),
             helper.make_node("SequenceInsert", ["e", "a"], ["s"]),
             helper.make_node("SequenceLength", ["e"], ["n0"]),
             helper.make_node("SequenceAt", ["s", "zero"], ["y"])]
    model = build(nodes, [vi("a", F, [2, 3])], [vi("n0", TensorProto.INT64), vi("y")], [("zero", np.array(0, np.int64))])
    assert_matches(model, A)


@pytest.mark.parametrize(
    ("split", "attrs"),
    [(None, {"axis": 1}), (None, {"axis": 1, "keepdims": 0}), (np.array(2, np.int64), {"axis": 1}),
     (np.array([1, 2], np.int64), {"axis": 1}), (np.array([1, 1], np.int64), {"axis": 0})],
)
def test_split_to_sequence(split, attrs):
    inputs = ["x"] + (["split"] if split is not None else [])
    nodes = [helper.make_node("SplitToSequence", inputs, ["s"], **attrs)]
    inits = [("split", split)] if split is not None else []
    model = build(nodes, [vi("x", F, [2, 3])], [seq_vi("s")], inits)
    assert_matches(model, A)


def test_sequence_at_with_a_traced_position_gathers_from_the_stack():
    nodes = [helper.make_node("SequenceConstruct", ["a", "b", "c"], ["s"]),
             helper.make_node("SequenceAt", ["s", "pos"], ["y"])]
    model = build(nodes, [vi("a", F, [2, 3]), vi("b", F, [2, 3]), vi("c", F, [2, 3]), vi("pos", TensorProto.INT64, [])],
                  [vi("y")])
    assert_matches(model, A, B, C, np.array(-2, np.int64))


def test_sequence_map_with_a_sequence_and_a_tensor():
    body = helper.make_graph([helper.make_node("Add", ["e", "t"], ["o"]),
                              helper.make_node("Shape", ["e"], ["sh"])], "body",
                             [vi("e", F, None), vi("t", F, None)], [vi("o", F, None), vi("sh", TensorProto.INT64, None)])
    nodes = [helper.make_node("SplitToSequence", ["x", "split"], ["s"], axis=1),
             helper.make_node("SequenceMap", ["s", "t"], ["mapped", "shapes"], body=body)]
    model = build(nodes, [vi("x", F, [2, 3]), vi("t", F, [1])],
                  [seq_vi("mapped"), helper.make_tensor_sequence_value_info("shapes", TensorProto.INT64, None)],
                  [("split", np.array([1, 2], np.int64))])
    assert_matches(model, A, np.array([10.0], np.float32))


def test_optionals():
    nodes = [
        helper.make_node("Optional", ["a"], ["full"]),
        helper.make_node("Optional", [], ["empty"], type=helper.make_tensor_type_proto(F, [2, 3])),
        helper.make_node("OptionalHasElement", ["full"], ["has_full"]),
        helper.make_node("OptionalHasElement", ["empty"], ["has_empty"]),
        helper.make_node("OptionalGetElement", ["full"], ["value"]),
    ]
    model = build(nodes, [vi("a", F, [2, 3])],
                  [vi("has_full", TensorProto.BOOL), vi("has_empty", TensorProto.BOOL), vi("value")])
    assert_matches(model, A)


def test_out_of_range_position_is_a_model_error():
    nodes = [helper.make_node("SequenceConstruct", ["a", "b"], ["s"]),
             helper.make_node("SequenceAt", ["s", "pos"], ["y"])]
    model = build(nodes, [vi("a", F, [2, 3]), vi("b", F, [2, 3])], [vi("y")], [("pos", np.array(5, np.int64))])
    m = sm.load(model.SerializeToString(), format="onnx")
    with pytest.raises(ModelError, match="out of range"):
        m(A, B)
