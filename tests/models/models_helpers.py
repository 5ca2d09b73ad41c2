"""Small ONNX models built with `onnx.helper` for the scimlkit.models tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models"
TORCH_DIR = FIXTURES / "torch"
GENERATED = Path(__file__).resolve().parents[1] / "fixtures" / "_generated" / "models"


def mlp(opset: int = 17, seed: int = 0) -> onnx.ModelProto:
    """x[N,4] -> Relu(x W1 + b1) W2 + b2 -> y[N,3]; reshaped through Shape/Gather/Concat."""
    rng = np.random.default_rng(seed)
    inits = {
        "W1": rng.standard_normal((4, 8)).astype(np.float32),
        "b1": rng.standard_normal(8).astype(np.float32),
        "W2": rng.standard_normal((8, 3)).astype(np.float32),
        "b2": rng.standard_normal(3).astype(np.float32),
        "zero": np.array(0, np.int64),
        "axes0": np.array([0], np.int64),
        "minus1": np.array([-1], np.int64),
    }
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "W2"], ["h3"]),
        helper.make_node("Add", ["h3", "b2"], ["h4"]),
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["h4", "shape"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model


def ort_run(model: onnx.ModelProto | str | Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run a model in ONNX Runtime (the reference)."""
    import onnxruntime as ort

    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    sess = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def assert_close(actual, expected, rtol: float = 1e-4) -> None:
    """Relative closeness scaled by the reference's magnitude (float32 networks)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = float(np.max(np.abs(expected))) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def conv_net(seed: int = 0) -> onnx.ModelProto:
    """x[N,3,16,16] -> a small convolutional network with what image models chain.

    Conv, BatchNormalization, Relu, a depthwise Conv (stride 2) with Clip, a residual Add,
    MaxPool, AveragePool, Concat on channels, a per-channel Mul and Add, GlobalAveragePool
    and Gemm. Outputs the logits `y[N,5]` and an intermediate feature map `f[N,8,8,8]`.
    """
    rng = np.random.default_rng(seed)

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)

    inits = {
        "w1": w(8, 3, 3, 3), "b1": w(8),
        "bn_scale": (1 + 0.1 * rng.standard_normal(8)).astype(np.float32), "bn_bias": w(8),
        "bn_mean": w(8), "bn_var": (1 + 0.1 * rng.random(8)).astype(np.float32),
        "wd": w(8, 1, 3, 3), "bd": w(8),
        "w2": w(8, 8, 1, 1), "b2": w(8),
        "w3": w(12, 8, 3, 3),
        "w4": w(4, 8, 1, 1), "b4": w(4),
        "scale": (1 + 0.1 * rng.standard_normal((16, 1, 1))).astype(np.float32),
        "shift": w(1, 16, 1, 1),
        "lo": np.array(0, np.float32), "hi": np.array(6, np.float32),
        "wf": w(5, 16), "bf": w(5),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["n1"]),
        helper.make_node("Relu", ["n1"], ["r1"]),
        helper.make_node("Conv", ["r1", "wd", "bd"], ["d1"], group=8, pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Clip", ["d1", "lo", "hi"], ["f"]),
        helper.make_node("Conv", ["f", "w2", "b2"], ["c2"]),
        helper.make_node("Add", ["c2", "f"], ["a1"]),
        helper.make_node("MaxPool", ["a1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w3"], ["c3"], pads=[1, 1, 1, 1]),
        helper.make_node("AveragePool", ["a1"], ["p2"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["p2", "w4", "b4"], ["c4"]),
        helper.make_node("Concat", ["c3", "c4"], ["cat"], axis=1),
        helper.make_node("Mul", ["cat", "scale"], ["m1"]),
        helper.make_node("Add", ["m1", "shift"], ["m2"]),
        helper.make_node("GlobalAveragePool", ["m2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["flat"]),
        helper.make_node("Gemm", ["flat", "wf", "bf"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "conv_net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5]),
            helper.make_tensor_value_info("f", TensorProto.FLOAT, ["N", 8, 8, 8]),
        ],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model
