"""The ONNX reader: damaged files, external data, dtypes, constants, subgraphs, unsupported ops."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
import onnx.external_data_helper
import pytest
from models_helpers import TORCH_DIR, assert_close, mlp, ort_run
from onnx import TensorProto, helper, numpy_helper

import scimlkit.models as sm
from scimlkit.models.formats.onnx import read_onnx
from scimlkit.models.graph import Graph


def test_truncated_file_is_a_format_error(tmp_path):
    data = (TORCH_DIR / "unet.onnx").read_bytes()
    for cut in (len(data) // 2, 100, 7):
        path = tmp_path / f"cut{cut}.onnx"
        path.write_bytes(data[:cut])
        with pytest.raises(sm.ModelFormatError) as info:
            sm.load(path)
        assert str(path) in str(info.value)


@pytest.mark.parametrize("payload", [b"", b"\x08\x07garbage\xff\xff\xff\xff", b"not a model at all"])
def test_garbage_is_a_format_error(tmp_path, payload):
    path = tmp_path / "bad.onnx"
    path.write_bytes(payload)
    with pytest.raises(sm.ModelFormatError):
        sm.load(path)


def test_missing_file_is_a_format_error(tmp_path):
    with pytest.raises(sm.ModelFormatError, match="no such file"):
        sm.load(tmp_path / "absent.onnx")


def _save_external(model: onnx.ModelProto, path) -> None:
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)


def test_external_data_with_offsets_matches_onnxruntime(tmp_path):
    model = mlp()
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    (expected,) = ort_run(model, {"x": x})  # ORT cannot shape-infer through external int64 tensors
    path = tmp_path / "ext.onnx"
    _save_external(model, path)
    stored = onnx.load(str(path), load_external_data=False)
    offsets = [
        {e.key: e.value for e in t.external_data}.get("offset", "0") for t in stored.graph.initializer
    ]
    assert len(set(offsets)) > 1  # several tensors at different offsets of one file
    assert_close(sm.load(path)(x), expected)


def test_external_data_problems_are_format_errors(tmp_path):
    path = tmp_path / "ext.onnx"
    _save_external(mlp(), path)
    data = (tmp_path / "weights.bin").read_bytes()
    (tmp_path / "weights.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(sm.ModelFormatError, match="truncated"):
        sm.load(path)
    (tmp_path / "weights.bin").unlink()
    with pytest.raises(sm.ModelFormatError, match="missing"):
        sm.load(path)


def test_external_data_may_not_leave_the_model_folder(tmp_path):
    model = mlp()
    tensor = model.graph.initializer[0]
    outside = tmp_path / "secret.bin"
    outside.write_bytes(numpy_helper.to_array(tensor).tobytes())
    tensor.ClearField("float_data")
    tensor.raw_data = b"x"
    onnx.external_data_helper.set_external_data(tensor, location="../secret.bin")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    sub = tmp_path / "model"
    sub.mkdir()
    (sub / "m.onnx").write_bytes(model.SerializeToString())
    with pytest.raises(sm.ModelFormatError, match="outside the model's folder"):
        sm.load(sub / "m.onnx")


@pytest.mark.parametrize(
    ("elem", "np_dtype"),
    [
        (TensorProto.BFLOAT16, ml_dtypes.bfloat16),
        (TensorProto.FLOAT8E4M3FN, ml_dtypes.float8_e4m3fn),
        (TensorProto.FLOAT8E5M2, ml_dtypes.float8_e5m2),
        (TensorProto.INT4, ml_dtypes.int4),
        (TensorProto.UINT4, ml_dtypes.uint4),
        (TensorProto.FLOAT4E2M1, ml_dtypes.float4_e2m1fn),
        (TensorProto.FLOAT16, np.float16),
        (TensorProto.UINT64, np.uint64),
        (TensorProto.COMPLEX64, np.complex64),
        (TensorProto.BOOL, np.bool_),
    ],
)
@pytest.mark.parametrize("external", [False, True])
def test_every_dtype_reads_exactly(tmp_path, elem, np_dtype, external):
    values = np.array([0, 1, -2, 3, 1, 0, 2], dtype=np.float32)
    if np_dtype in (ml_dtypes.uint4, np.uint64, np.bool_):
        values = np.abs(values)
    arr = values.astype(np_dtype).reshape(7, 1)
    tensor = numpy_helper.from_array(arr, "c")
    assert tensor.data_type == elem
    graph = helper.make_graph(
        [helper.make_node("Identity", ["c"], ["y"])], "g", [],
        [helper.make_tensor_value_info("y", elem, [7, 1])], initializer=[tensor],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    path = tmp_path / "m.onnx"
    if external:
        _save_external(model, path)
    else:
        onnx.save_model(model, str(path))
    graph = read_onnx(path)
    got = graph.initializers["c"]
    assert got.dtype == np.dtype(np_dtype)
    np.testing.assert_array_equal(got.astype(np.complex64), arr.astype(np.complex64))
    assert graph.outputs[0].dtype == np.dtype(np_dtype)


def test_constants_subgraphs_sequences_and_opsets():
    then_graph = helper.make_graph(
        [helper.make_node("Constant", [], ["t"], value=numpy_helper.from_array(np.float32([1, 2])))],
        "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2])],
    )
    else_graph = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["e"])],  # reads x from the outer scope
        "else", [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, [2])],
    )
    nodes = [
        helper.make_node("If", ["cond"], ["y"], then_branch=then_graph, else_branch=else_graph),
        helper.make_node("SequenceConstruct", ["x", "y"], ["seq"]),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_sequence_value_info("seq", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("ai.onnx.ml", 3)])
    g = read_onnx(model)
    assert g.opsets == {"": 18, "ai.onnx.ml": 3}
    assert g.outputs[0].kind == "sequence" and g.outputs[0].dtype == np.float32
    branch = g.nodes[0].attrs["then_branch"]
    assert isinstance(branch, Graph) and branch.nodes[0].op_type == "Constant"
    m = sm.Model(g)
    x = np.float32([3, 4])
    seq = m(np.bool_(True), x)
    assert isinstance(seq, list) and len(seq) == 2
    np.testing.assert_array_equal(seq[1], [1, 2])
    np.testing.assert_array_equal(m(np.bool_(False), x)[1], -x)


def test_all_unsupported_ops_are_reported_at_once():
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="ok"),
        helper.make_node("FancyOp", ["a"], ["b"], name="fancy1", domain="com.example"),
        helper.make_node("FancyOp", ["b"], ["c"], name="fancy2", domain="com.example"),
        helper.make_node("NoSuchOnnxOp", ["c"], ["y"], name="nosuch"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    with pytest.raises(sm.UnsupportedOperatorError) as info:
        sm.load(model.SerializeToString())
    found = {(u.domain, u.op_type): u for u in info.value.unsupported}
    assert set(found) == {("com.example", "FancyOp"), ("", "NoSuchOnnxOp")}
    assert found[("com.example", "FancyOp")].nodes == ("fancy1", "fancy2")
    assert found[("", "NoSuchOnnxOp")].opset == 17
    assert "fancy1" in str(info.value) and "NoSuchOnnxOp" in str(info.value)


def test_bytes_and_modelproto_sources_agree():
    model = mlp()
    x = np.ones((2, 4), np.float32)
    a = sm.load(model.SerializeToString())(x)
    b = sm.Model(read_onnx(model))(x)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert_close(a, ort_run(model, {"x": x})[0])
