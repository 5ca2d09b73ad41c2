"""Export to ONNX: round trips through ONNX Runtime, current parameters, external data, atomic writes."""

from __future__ import annotations

import equinox as eqx
import numpy as np
import onnx
import pytest
from models_helpers import TORCH_DIR, assert_close, mlp, ort_run

import scimlkit.models as sm
from scimlkit.models import export


@pytest.mark.parametrize("name", ["unet", "lstm_tagger", "bert_tiny"])
def test_export_runs_in_onnxruntime(tmp_path, name):
    ref = np.load(TORCH_DIR / f"{name}.npz")
    feeds = {k[6:]: ref[k] for k in ref.files if k.startswith("input:")}
    model = sm.load(TORCH_DIR / f"{name}.onnx")
    out = tmp_path / "copy.onnx"
    model.save_onnx(out)
    onnx.checker.check_model(str(out))
    for ours, theirs in zip(ort_run(out, feeds), ort_run(TORCH_DIR / f"{name}.onnx", feeds)):
        assert_close(ours, theirs)


def test_export_writes_current_params(tmp_path):
    model = sm.load(mlp().SerializeToString())
    doubled = eqx.tree_at(lambda m: m.params["W2"], model, model.params["W2"] * 2)
    path = tmp_path / "m.onnx"
    doubled.save_onnx(path)
    x = np.ones((3, 4), np.float32)
    (from_ort,) = ort_run(path, {"x": x})
    assert_close(from_ort, doubled(x))
    assert not np.allclose(from_ort, np.asarray(model(x)))
    assert_close(sm.load(path)(x), from_ort)  # and it loads back


def test_external_data_export(tmp_path):
    model = sm.load(mlp().SerializeToString())
    path = tmp_path / "big.onnx"
    model.save_onnx(path, external_data=True)
    assert (tmp_path / "big.onnx.data").is_file()
    x = np.ones((2, 4), np.float32)
    assert_close(sm.load(path)(x), model(x))


def test_failed_export_leaves_no_file(tmp_path, monkeypatch):
    model = sm.load(mlp().SerializeToString())

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(onnx, "save_model", boom)
    with pytest.raises(OSError):
        export.save_onnx(model.graph, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []
