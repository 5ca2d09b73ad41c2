"""Graph passes (checked by running the graph before and after) and the format registry."""

from __future__ import annotations

import numpy as np
import pytest

import scimlkit.models as sm
from scimlkit.models.formats import detect_format, formats, register_format
from scimlkit.models.graph import GraphBuilder
from scimlkit.models.passes import cancel_transposes, optimize, remove_dead_nodes, remove_identities
from scimlkit.models.runtime import run_graph


def _nhwc_graph():
    b = GraphBuilder(opset=17)
    x = b.input("x", np.float32, (1, 4, 5, 3))
    t1 = b.node("Transpose", [x], {"perm": [0, 3, 1, 2]})     # NHWC -> NCHW
    r = b.node("Relu", [t1])
    t2 = b.node("Transpose", [r], {"perm": [0, 2, 3, 1]})      # NCHW -> NHWC
    t3 = b.node("Transpose", [t2], {"perm": [0, 3, 1, 2]})     # and back: cancels with t2
    i = b.node("Identity", [t3])
    b.node("Neg", [i])                                         # dead
    b.output(b.node("Sigmoid", [i]), name="y")
    return b.build()


def test_passes_keep_results_and_remove_nodes():
    graph = _nhwc_graph()
    x = np.random.default_rng(0).standard_normal((1, 4, 5, 3)).astype(np.float32)
    (before,) = run_graph(graph, [x])
    optimized = optimize(graph)
    (after,) = run_graph(optimized, [x])
    np.testing.assert_array_equal(np.asarray(after), np.asarray(before))
    ops = [n.op_type for n in optimized.nodes]
    # one Transpose left; the inner Identity and the dead Neg are gone (the last Identity names the output)
    assert ops == ["Transpose", "Relu", "Sigmoid", "Identity"]
    assert len(graph.nodes) == 8  # the input graph is left untouched


def test_each_pass_alone_preserves_results():
    graph = _nhwc_graph()
    x = np.arange(60, dtype=np.float32).reshape(1, 4, 5, 3) - 30
    (expected,) = run_graph(graph, [x])
    for p in (cancel_transposes, remove_identities, remove_dead_nodes):
        (got,) = run_graph(p(graph), [x])
        np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


def test_builtin_formats_and_detection(tmp_path):
    assert {"onnx", "keras", "tensorflow", "tflite", "caffe", "mxnet"} <= set(formats())
    tfl = tmp_path / "m.bin"
    tfl.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 32)
    assert detect_format(tfl).name == "tflite"
    assert detect_format(tmp_path / "m.bin").name == "tflite"
    with pytest.raises(sm.ModelFormatError, match="no such file"):
        detect_format(tmp_path / "absent.onnx")


def test_register_format_plugin(tmp_path):
    def read_toy(source, **kwargs):
        b = GraphBuilder(opset=17)
        x = b.input("x", np.float32, (2,))
        b.output(b.node("Neg", [x]), name="y")
        return b.build()

    register_format("toy-test", (".toy",), lambda path, head: head.startswith(b"TOY"), read_toy)
    with pytest.raises(ValueError, match="already registered"):
        register_format("toy-test", (".toy",), None, read_toy)
    path = tmp_path / "model.toy"
    path.write_bytes(b"TOY1")
    model = sm.load(path)
    np.testing.assert_array_equal(model(np.float32([1, -2])), [-1, 2])
    assert sm.load(b"TOY1").graph.metadata["format"] == "toy-test"
