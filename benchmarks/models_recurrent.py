"""Benchmark: scimlkit's LSTM / GRU kernels (lax.scan) vs ONNX Runtime.

One command:

    .venv/bin/python benchmarks/models_recurrent.py [--seq 100] [--batch 32] [--input 64] [--hidden 128]

One bidirectional LSTM and one bidirectional GRU node with random weights; checks that both
runtimes agree, then times both (best of 5 after warm-up; scimlkit under `jax.jit`, first
call's compile time reported separately).
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import scimlkit.models as sm


def recurrent(op: str, seq: int, batch: int, n_in: int, hidden: int, rng: np.random.Generator):
    gates = {"LSTM": 4, "GRU": 3}[op]
    inits = {
        "W": (rng.standard_normal((2, gates * hidden, n_in)) / np.sqrt(n_in)).astype(np.float32),
        "R": (rng.standard_normal((2, gates * hidden, hidden)) / np.sqrt(hidden)).astype(np.float32),
        "B": (0.1 * rng.standard_normal((2, 2 * gates * hidden))).astype(np.float32),
    }
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    node = helper.make_node(op, ["X", "W", "R", "B"], outs, hidden_size=hidden, direction="bidirectional")
    graph = helper.make_graph([node], op, [helper.make_tensor_value_info("X", TensorProto.FLOAT, [seq, batch, n_in])],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
                              initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model


def best_of(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq", type=int, default=100)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--input", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.seq, args.batch, args.input)).astype(np.float32)
    print(f"bidirectional, seq {args.seq}, batch {args.batch}, input {args.input}, hidden {args.hidden}; "
          f"jax {jax.__version__} ({jax.default_backend()}), onnxruntime {ort.__version__}")
    for op in ("LSTM", "GRU"):
        model = recurrent(op, args.seq, args.batch, args.input, args.hidden, rng)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        ours = sm.load(model.SerializeToString(), format="onnx")
        fast = jax.jit(lambda x, m=ours: m(x))
        start = time.perf_counter()
        got = jax.block_until_ready(fast(X))
        compile_s = time.perf_counter() - start
        for g, w in zip(got, sess.run(None, {"X": X})):
            np.testing.assert_allclose(np.asarray(g), w, rtol=1e-3, atol=1e-4)
        t_ours = best_of(lambda f=fast: jax.block_until_ready(f(X)))
        t_ort = best_of(lambda s=sess: s.run(None, {"X": X}))
        print(f"{op:5s} scimlkit(jit) {t_ours * 1e3:8.2f} ms  onnxruntime {t_ort * 1e3:8.2f} ms  "
              f"ratio {t_ours / t_ort:6.2f}x  (first call incl. compile {compile_s:.2f} s; outputs agree)")


if __name__ == "__main__":
    main()
