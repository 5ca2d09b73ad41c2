"""Keras, TensorFlow and TFLite files through the public API: `scimlkit.models.load`, and `save_onnx`
checked in ONNX Runtime against each framework's own outputs."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from _format_helpers import FIXTURES, max_rel_err, reference

CASES = [
    ("keras/mobilenet.keras", "keras/mobilenet.npz", "keras"),
    ("keras/nested.h5", "keras/nested.npz", "keras"),
    ("tensorflow/resnet_savedmodel", "tensorflow/resnet.npz", "tensorflow"),
    ("tensorflow/attention.pb", "tensorflow/attention.npz", "tensorflow"),
    ("tflite/lstm.tflite", "tflite/lstm.npz", "tflite"),
    ("tflite/resnet_float16.tflite", "tflite/resnet_float16.npz", "tflite"),
]


def _load():
    try:
        from scimlkit.models import load
    except ImportError:  # pragma: no cover - until the loader lands
        pytest.skip("scimlkit.models.load is not available")
    return load


@pytest.mark.parametrize(("model", "ref", "fmt"), CASES)
def test_load_detects_the_format_and_matches_the_framework(model, ref, fmt):
    m = _load()(FIXTURES / model)
    assert m.graph.metadata.get("format") == fmt
    ins, outs = reference(FIXTURES / ref)
    got = m(*ins)
    got = list(got) if isinstance(got, (list, tuple)) else [got]
    for g, o in zip(got, outs, strict=True):
        assert max_rel_err(np.asarray(g), o) < 1e-4


@pytest.mark.parametrize(("model", "ref", "fmt"), CASES)
def test_saved_onnx_runs_in_onnxruntime(model, ref, fmt, tmp_path):
    import onnxruntime as ort

    m = _load()(FIXTURES / model)
    out = tmp_path / "model.onnx"
    m.save_onnx(out)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    ins, outs = reference(FIXTURES / ref)
    feeds = {i.name: x for i, x in zip(sess.get_inputs(), ins, strict=True)}
    for g, o in zip(sess.run(None, feeds), outs, strict=True):
        assert max_rel_err(g, o) < 1e-4


@pytest.mark.parametrize(
    ("model", "ref"),
    [
        ("keras/resnet.keras", "keras/resnet.npz"),
        ("tensorflow/mixed_savedmodel", "tensorflow/mixed.npz"),
        ("tflite/mobilenet_int8io.tflite", "tflite/mobilenet_int8io.npz"),
    ],
)
def test_cli_convert_to_onnx(model, ref, tmp_path):
    import onnxruntime as ort

    from scimlkit.cli import main

    out = tmp_path / "converted.onnx"
    assert main(["models", "convert", str(FIXTURES / model), str(out)]) == 0
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    ins, outs = reference(FIXTURES / ref)
    got = sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), ins, strict=True)})
    for g, o in zip(got, outs, strict=True):
        if o.dtype == np.int8:  # quantized outputs: within the steps documented in test_tflite
            assert np.abs(g.astype(int) - o.astype(int)).max() <= 2
        else:
            assert max_rel_err(g, o) < 1e-4


@pytest.mark.parametrize(
    ("fixture", "reader"),
    [
        ("tflite/resnet_int8.tflite", "scimlkit.models.formats.tflite:read_tflite"),
        ("tensorflow/mixed.pb", "scimlkit.models.formats.tensorflow:read_tensorflow"),
        ("keras/sequential.h5", "scimlkit.models.formats.keras:read_keras"),
    ],
)
def test_damaged_files_raise_typed_errors(fixture, reader):
    """Random byte corruption and truncation: a ModelError (or a clean read), never a raw exception."""
    import importlib
    import random

    from scimlkit.models.errors import ModelError

    module, _, name = reader.partition(":")
    read = getattr(importlib.import_module(module), name)
    data = (FIXTURES / fixture).read_bytes()
    rng = random.Random(1)
    for _ in range(40):
        d = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            d[rng.randrange(len(d))] = rng.randrange(256)
        if rng.random() < 0.3:
            d = d[: rng.randrange(len(d))]
        with contextlib.suppress(ModelError):
            read(bytes(d))
