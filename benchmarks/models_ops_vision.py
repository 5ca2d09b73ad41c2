"""Single-op latency of scimlkit's vision kernels (jitted) vs ONNX Runtime, same process, same inputs.

    .venv/bin/python benchmarks/models_ops_vision.py              # all cases
    .venv/bin/python benchmarks/models_ops_vision.py --reps 50 --only conv3x3

Each case is a one-node ONNX model (made with onnx.helper) typical of a CNN layer. Prints
the median latency of ONNX Runtime (CPU provider, default threads) and of
`jax.jit(scimlkit.models.load(...))`, and their ratio (<= 1.0: scimlkit as fast or faster).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(0)


def model(op: str, x_shape, inits: dict[str, np.ndarray], attrs: dict, extra_inputs=()) -> onnx.ModelProto:
    names = ["x", *inits, *extra_inputs]
    node = helper.make_node(op, names, ["y"], **attrs)
    graph = helper.make_graph(
        [node], op, [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    m.ir_version = 9
    return m


def w(*shape):
    return (rng.standard_normal(shape) * 0.1).astype(np.float32)


CASES = {
    "conv3x3": (model("Conv", (8, 64, 56, 56), {"w": w(64, 64, 3, 3), "b": w(64)}, {"pads": [1, 1, 1, 1]}), (8, 64, 56, 56)),
    "conv7x7_s2": (model("Conv", (8, 3, 224, 224), {"w": w(64, 3, 7, 7)}, {"pads": [3, 3, 3, 3], "strides": [2, 2]}), (8, 3, 224, 224)),
    "depthwise3x3": (model("Conv", (8, 128, 56, 56), {"w": w(128, 1, 3, 3)}, {"pads": [1, 1, 1, 1], "group": 128}), (8, 128, 56, 56)),
    "conv_transpose": (model("ConvTranspose", (8, 64, 28, 28), {"w": w(64, 32, 4, 4)}, {"strides": [2, 2], "pads": [1, 1, 1, 1]}), (8, 64, 28, 28)),
    "maxpool3x3_s2": (model("MaxPool", (8, 64, 112, 112), {}, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}), (8, 64, 112, 112)),
    "avgpool_global": (model("GlobalAveragePool", (8, 512, 7, 7), {}, {}), (8, 512, 7, 7)),
    "resize_linear_x2": (model("Resize", (8, 64, 56, 56), {"roi": np.zeros(0, np.float32), "s": np.array([1, 1, 2, 2], np.float32)}, {"mode": "linear"}), (8, 64, 56, 56)),
    "batchnorm": (model("BatchNormalization", (8, 64, 56, 56), {"s": w(64) + 1, "b": w(64), "m": w(64), "v": np.abs(w(64)) + 1}, {}), (8, 64, 56, 56)),
}


def median_time(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()

    import jax
    import onnxruntime as ort

    import scimlkit.models as sm

    print(f"{'case':<18}{'ORT ms':>10}{'scimlkit ms':>14}{'ratio':>8}")
    for name, (proto, shape) in CASES.items():
        if args.only and name not in args.only:
            continue
        x = rng.standard_normal(shape).astype(np.float32)
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        ours = jax.jit(sm.load(proto.SerializeToString(), format="onnx"))
        expected = sess.run(None, {"x": x})[0]
        got = np.asarray(ours(x))
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)
        t_ort = median_time(lambda s=sess, x=x: s.run(None, {"x": x}), args.reps)
        t_ours = median_time(lambda f=ours, x=x: f(x).block_until_ready(), args.reps)
        print(f"{name:<18}{t_ort * 1e3:>10.2f}{t_ours * 1e3:>14.2f}{t_ours / t_ort:>8.2f}")


if __name__ == "__main__":
    main()
