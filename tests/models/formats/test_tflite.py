"""TFLite reader: models converted by TensorFlow's TFLiteConverter (tests/fixtures/models/tflite/make_tflite.py),
compared with the TFLite interpreter's own outputs."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from _format_helpers import FIXTURES, max_rel_err, reference, run_ort, run_ours

from scimlkit.models.errors import ModelFormatError, UnsupportedOperatorError
from scimlkit.models.formats.tflite import read_tflite

TFLITE = FIXTURES / "tflite"
FLOAT = ["resnet", "mobilenet", "attention", "lstm", "rnn_loop", "fused_lstm", "resnet_float16"]


@pytest.mark.parametrize("name", FLOAT)
def test_float_models_match_the_interpreter(name):
    graph = read_tflite(TFLITE / f"{name}.tflite")
    ins, outs = reference(TFLITE / f"{name}.npz")
    got = run_ours(graph, ins)
    assert [g.shape for g in got] == [o.shape for o in outs]
    for g, o in zip(got, outs, strict=True):
        assert max_rel_err(g, o) < 1e-4


@pytest.mark.parametrize("name", FLOAT)
def test_exported_float_models_match_in_onnxruntime(name):
    graph = read_tflite(TFLITE / f"{name}.tflite")
    ins, outs = reference(TFLITE / f"{name}.npz")
    for g, o in zip(run_ort(graph, ins), outs, strict=True):
        assert max_rel_err(g, o) < 1e-4


def test_int8_model_with_float_interface_within_one_output_step():
    graph = read_tflite(TFLITE / "resnet_int8.tflite")
    assert any(n.op_type == "QuantizeLinear" for n in graph.nodes)
    ins, outs = reference(TFLITE / "resnet_int8.npz")
    (got,) = run_ours(graph, ins)
    # softmax output is int8 with scale 1/256 before the final DEQUANTIZE
    assert np.max(np.abs(got - outs[0])) <= 1 / 256 + 1e-6


def test_int8_model_with_int8_interface():
    graph = read_tflite(TFLITE / "mobilenet_int8io.tflite")
    assert graph.inputs[0].dtype == np.int8 and graph.outputs[0].dtype == np.int8
    ins, outs = reference(TFLITE / "mobilenet_int8io.npz")
    for runner in (run_ours, run_ort):
        (got,) = runner(graph, ins)
        assert got.dtype == np.int8
        diff = np.abs(got.astype(int) - outs[0].astype(int))
        # each op is within one step of TFLite's integer kernels; over ~15 quantized
        # layers the differences accumulate to at most two steps at the logits
        assert diff.max() <= 2
        assert diff.mean() <= 1.0


def test_interface_is_nhwc_with_dynamic_batch():
    graph = read_tflite(TFLITE / "resnet.tflite")
    (inp,) = graph.inputs
    assert inp.shape == (None, 16, 16, 3)
    ins, outs = reference(TFLITE / "resnet.npz")
    (one,) = run_ours(graph, [ins[0][:1]])
    np.testing.assert_allclose(one, outs[0][:1], rtol=1e-4, atol=1e-6)


def test_float16_weights_are_folded_to_float32():
    graph = read_tflite(TFLITE / "resnet_float16.tflite")
    assert all(a.dtype != np.float16 for a in graph.initializers.values())
    assert not any(n.op_type == "Cast" for n in graph.nodes)


def test_signature_selection():
    graph = read_tflite(TFLITE / "resnet.tflite", signature="serving_default")
    assert graph.input_names
    with pytest.raises(ModelFormatError, match="no signature 'nope'"):
        read_tflite(TFLITE / "resnet.tflite", signature="nope")


def test_malformed_files(tmp_path):
    blob = (TFLITE / "resnet.tflite").read_bytes()
    for i, data in enumerate([b"", b"not a flatbuffer", blob[:2000], blob[:8] + b"\xff" * 64]):
        path = tmp_path / f"bad{i}.tflite"
        path.write_bytes(data)
        with pytest.raises(ModelFormatError):
            read_tflite(path)
    with pytest.raises(ModelFormatError):
        read_tflite(tmp_path / "missing.tflite")


def test_unsupported_builtin_ops_are_all_listed(tmp_path):
    # Rewrite the builtin codes of two operator codes in place (MAX_POOL_2D -> SVDF, CONV_2D -> LSH_PROJECTION).
    blob = bytearray((TFLITE / "resnet.tflite").read_bytes())
    from scimlkit.models.formats import _flatbuf as fb

    model = fb.root(bytes(blob))
    replaced = set()
    for oc in model.tables(1):
        code = oc.scalar(3, "i", 0)
        pos = oc._field(3)
        if code in (17, 3) and pos:
            struct.pack_into("<i", blob, pos, 27 if code == 17 else 15)
            dpos = oc._field(0)
            if dpos:
                struct.pack_into("<b", blob, dpos, 27 if code == 17 else 15)
            replaced.add(code)
    assert replaced == {17, 3}
    path = tmp_path / "edited.tflite"
    path.write_bytes(bytes(blob))
    with pytest.raises(UnsupportedOperatorError) as info:
        read_tflite(path)
    assert {u.op_type for u in info.value.unsupported} == {"SVDF", "LSH_PROJECTION"}


def test_while_loops_become_onnx_loops():
    graph = read_tflite(TFLITE / "rnn_loop.tflite")
    loops = [n for n in graph.nodes if n.op_type == "Loop"]
    assert len(loops) == 2  # the LSTM's and the GRU's time loops
    assert all(
        not n.attrs["body"].initializers for n in loops
    )  # weights captured from the outer graph
