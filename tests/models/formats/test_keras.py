"""Keras reader: fixtures made by Keras 3 (tests/fixtures/models/keras/make_keras.py), compared with Keras's own outputs."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from _format_helpers import FIXTURES, max_rel_err, reference, run_ort, run_ours

from scimlkit.models.errors import ModelFormatError, UnsupportedOperatorError
from scimlkit.models.formats.keras import read_keras

KERAS = FIXTURES / "keras"
NETS = [
    "resnet",
    "mobilenet",
    "rnn",
    "attention",
    "nested",
    "sequential",
    "embedding",
    "conv3d",
    "wrappers",
]
TOL = 1e-4


def _check(outputs, expected):
    assert len(outputs) == len(expected)
    for got, want in zip(outputs, expected, strict=True):
        assert got.shape == want.shape
        assert max_rel_err(got, want) < TOL


@pytest.mark.parametrize("ext", [".keras", ".h5"])
@pytest.mark.parametrize("name", NETS)
def test_matches_keras_on_scimlkit_runtime(name, ext):
    graph = read_keras(KERAS / f"{name}{ext}")
    ins, outs = reference(KERAS / f"{name}.npz")
    _check(run_ours(graph, ins), outs)


@pytest.mark.parametrize("name", NETS)
def test_exported_graph_matches_keras_in_onnxruntime(name):
    graph = read_keras(KERAS / f"{name}.keras")
    ins, outs = reference(KERAS / f"{name}.npz")
    _check(run_ort(graph, ins), outs)


def test_interface_keeps_keras_names_and_channels_last_layout():
    graph = read_keras(KERAS / "resnet.keras")
    assert graph.input_names == ["image"]
    assert graph.inputs[0].shape == (None, 16, 16, 3)
    assert graph.output_names == ["probs"]
    nested = read_keras(KERAS / "nested.keras")
    assert nested.input_names == ["a", "b"]
    assert nested.output_names == ["out", "low"]


def test_layout_transposes_only_at_the_boundary():
    # Conv -> BN -> ReLU chains stay channels-first: one transpose in, none between convs.
    graph = read_keras(KERAS / "resnet.keras")
    hist = {op: n for (_, op), n in graph.op_histogram().items()}
    assert hist["Conv"] == 6
    assert hist.get("Transpose", 0) <= 2


@pytest.mark.parametrize("weights", ["sequential.weights.h5", "sequential_legacy_weights.h5"])
def test_json_architecture_with_separate_weights(weights):
    graph = read_keras(KERAS / "sequential.json", weights=KERAS / weights)
    ins, outs = reference(KERAS / "sequential.npz")
    _check(run_ours(graph, ins), outs)


def test_lambda_layer_is_refused_without_running_it():
    with pytest.raises(UnsupportedOperatorError, match="Lambda") as info:
        read_keras(KERAS / "lambda.keras")
    assert "double" in str(info.value)
    assert "never executes stored code" in str(info.value)


def test_all_unsupported_layers_are_listed_at_once(tmp_path):
    with zipfile.ZipFile(KERAS / "sequential.keras") as zf:
        config = json.loads(zf.read("config.json"))
        weights = zf.read("model.weights.h5")
    layers = config["config"]["layers"]
    layers[1]["class_name"] = "MyCustomConv"
    layers[3]["class_name"] = "Lambda"
    path = tmp_path / "bad.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", weights)
    with pytest.raises(UnsupportedOperatorError) as info:
        read_keras(path)
    names = {u.op_type for u in info.value.unsupported}
    assert names == {"MyCustomConv", "Lambda"}


def test_malformed_files_raise_model_format_error(tmp_path):
    truncated = tmp_path / "t.keras"
    truncated.write_bytes((KERAS / "resnet.keras").read_bytes()[:500])
    garbage = tmp_path / "g.h5"
    garbage.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    for path in (truncated, garbage, tmp_path / "missing.keras"):
        with pytest.raises(ModelFormatError):
            read_keras(path)
    with pytest.raises(ModelFormatError, match="weights="):
        read_keras(KERAS / "sequential.weights.h5")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    with pytest.raises(ModelFormatError, match="JSON"):
        read_keras(bad_json, weights=KERAS / "sequential.weights.h5")


def test_missing_weights_are_reported(tmp_path):
    with zipfile.ZipFile(KERAS / "sequential.keras") as zf:
        config = zf.read("config.json")
    import h5py

    empty = tmp_path / "empty.weights.h5"
    with h5py.File(empty, "w") as f:
        f.create_group("layers")
    arch = tmp_path / "arch.json"
    arch.write_bytes(config)
    with pytest.raises(ModelFormatError, match="weight"):
        read_keras(arch, weights=empty)


def test_batch_of_one_and_other_batch_sizes():
    graph = read_keras(KERAS / "attention.keras")
    ins, outs = reference(KERAS / "attention.npz")
    (one,) = run_ours(graph, [ins[0][:1]])
    np.testing.assert_allclose(one, outs[0][:1], rtol=1e-4, atol=1e-5)


def test_keras2_legacy_h5_with_shared_nested_model():
    # Made by tf_keras 2.x (make_keras2.py): old-style inbound nodes, `value=` kwargs tensors,
    # a nested Sequential with its own Input called twice, Bidirectional GRU, attention, LSTM.
    graph = read_keras(KERAS / "keras2_mixed.h5")
    assert graph.input_names == ["image", "sequence"]
    ins, outs = reference(KERAS / "keras2_mixed.npz")
    _check(run_ours(graph, ins), outs)
    _check(run_ort(graph, ins), outs)
