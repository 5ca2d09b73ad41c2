"""`scimlkit models inspect | run | convert` and `scimlkit demo models`."""

from __future__ import annotations

import json

import numpy as np
from models_helpers import FIXTURES, TORCH_DIR, assert_close, ort_run
from onnx import TensorProto, helper

from scimlkit.cli import main


def test_inspect_json(capsys):
    assert main(["models", "inspect", str(TORCH_DIR / "unet.onnx"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "onnx"
    assert info["inputs"][0] == {"name": "input", "dtype": "float32", "shape": ["batch", 1, "h", "w"], "kind": "tensor"}
    assert info["ops"]["ConvTranspose"] == 3 and info["unsupported"] == []
    assert info["parameters"] > 10_000


def test_inspect_reports_unsupported_ops(tmp_path, capsys):
    graph = helper.make_graph(
        [helper.make_node("Frobnicate", ["x"], ["y"], name="frob", domain="org.example")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    path = tmp_path / "m.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("org.example", 1),
                                                            helper.make_opsetid("", 17)]).SerializeToString())
    assert main(["models", "inspect", str(path)]) == 1
    out = capsys.readouterr().out
    assert "org.example::Frobnicate" in out and "frob" in out


def test_run_writes_outputs(tmp_path, capsys):
    ref = np.load(TORCH_DIR / "lstm_tagger.npz")
    x = ref["input:input"]
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out.npz"
    assert main(["models", "run", str(TORCH_DIR / "lstm_tagger.onnx"), "--input", f"input={tmp_path / 'x.npy'}",
                 "--output", str(out)]) == 0
    with np.load(out) as result:
        assert_close(result["output_0"], ort_run(TORCH_DIR / "lstm_tagger.onnx", {"input": x})[0])


def test_run_with_bad_input_name_fails_cleanly(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 2, 8), np.float32))
    code = main(["models", "run", str(TORCH_DIR / "lstm_tagger.onnx"), "-i", f"nope={tmp_path / 'x.npy'}",
                 "-o", str(tmp_path / "o.npz")])
    assert code == 1
    assert "no input named 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists()


def test_convert_onnx_roundtrip_runs_in_onnxruntime(tmp_path):
    dst = tmp_path / "unet_copy.onnx"
    assert main(["models", "convert", str(TORCH_DIR / "unet.onnx"), str(dst)]) == 0
    x = np.load(TORCH_DIR / "unet.npz")["input:input"]
    assert_close(ort_run(dst, {"input": x})[0], ort_run(TORCH_DIR / "unet.onnx", {"input": x})[0])


def test_convert_keras_to_onnx(tmp_path):
    src = FIXTURES / "keras" / "sequential.keras"
    ref = np.load(FIXTURES / "keras" / "sequential.npz")
    dst = tmp_path / "seq.onnx"
    assert main(["models", "convert", str(src), str(dst)]) == 0
    import onnxruntime as ort

    sess = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {sess.get_inputs()[0].name: ref["in_0"]})
    assert_close(y, ref["out_0"], rtol=1e-4)  # Keras's own output, run by ONNX Runtime


def test_missing_file_is_an_error_not_a_traceback(tmp_path, capsys):
    assert main(["models", "inspect", str(tmp_path / "none.onnx")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_demo_runs(tmp_path, capsys):
    assert main(["demo", "models", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "max |scimlkit - onnxruntime|" in out
    assert (tmp_path / "models" / "tiny_cnn_roundtrip.onnx").is_file()
