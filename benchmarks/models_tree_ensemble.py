"""Benchmark: scimlkit's vectorised TreeEnsembleRegressor/Classifier kernel vs ONNX Runtime.

One command:

    .venv/bin/python benchmarks/models_tree_ensemble.py [--trees 100] [--depth 8] [--rows 10000]

Builds a random forest (full binary trees of the given depth over 20 features, one
`TreeEnsembleRegressor` node, and a 3-class `TreeEnsembleClassifier` with the same trees),
checks that scimlkit and ONNX Runtime agree, then times both (best of 5 runs after warm-up;
scimlkit under `jax.jit`, so the first call's compile time is reported separately).
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

import scimlkit.models as sm

N_FEATURES = 20


def forest(kind: str, trees: int, depth: int, rng: np.random.Generator):
    n_nodes = 2 ** (depth + 1) - 1
    inner = 2**depth - 1
    tree_ids, node_ids, features, values, modes, true_ids, false_ids = [], [], [], [], [], [], []
    leaf_tree, leaf_node, leaf_target, leaf_weight = [], [], [], []
    for t in range(trees):
        for n in range(n_nodes):
            tree_ids.append(t)
            node_ids.append(n)
            if n < inner:
                features.append(int(rng.integers(N_FEATURES)))
                values.append(float(rng.standard_normal()))
                modes.append("BRANCH_LEQ")
                true_ids.append(2 * n + 1)
                false_ids.append(2 * n + 2)
            else:
                features.append(0)
                values.append(0.0)
                modes.append("LEAF")
                true_ids.append(0)
                false_ids.append(0)
                for target in range(1 if kind == "regressor" else 3):
                    leaf_tree.append(t)
                    leaf_node.append(n)
                    leaf_target.append(target)
                    leaf_weight.append(float(rng.random()))
    attrs = dict(nodes_treeids=tree_ids, nodes_nodeids=node_ids, nodes_featureids=features, nodes_values=values,
                 nodes_modes=modes, nodes_truenodeids=true_ids, nodes_falsenodeids=false_ids)
    if kind == "regressor":
        attrs.update(n_targets=1, aggregate_function="AVERAGE", target_treeids=leaf_tree, target_nodeids=leaf_node,
                     target_ids=leaf_target, target_weights=leaf_weight)
        outputs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)]
        op = "TreeEnsembleRegressor"
    else:
        attrs.update(classlabels_int64s=[0, 1, 2], class_treeids=leaf_tree, class_nodeids=leaf_node,
                     class_ids=leaf_target, class_weights=leaf_weight, post_transform="SOFTMAX")
        outputs = [helper.make_tensor_value_info("L", TensorProto.INT64, None),
                   helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)]
        op = "TreeEnsembleClassifier"
    node = helper.make_node(op, ["X"], [o.name for o in outputs], domain="ai.onnx.ml", **attrs)
    graph = helper.make_graph([node], "forest", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, N_FEATURES])],
                              outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 10
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
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--rows", type=int, default=10000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.rows, N_FEATURES)).astype(np.float32)
    print(f"{args.trees} trees of depth {args.depth}, {args.rows} rows x {N_FEATURES} features, "
          f"jax {jax.__version__} ({jax.default_backend()}), onnxruntime {ort.__version__}")
    for kind in ("regressor", "classifier"):
        model = forest(kind, args.trees, args.depth, rng)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        ours = sm.load(model.SerializeToString(), format="onnx")
        fast = jax.jit(lambda x, m=ours: m(x))
        start = time.perf_counter()
        got = jax.block_until_ready(fast(X))
        compile_s = time.perf_counter() - start
        want = sess.run(None, {"X": X})
        got = got if isinstance(got, tuple) else (got,)
        for g, w in zip(got, want):
            np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64), rtol=1e-4, atol=1e-5)
        t_ours = best_of(lambda f=fast: jax.block_until_ready(f(X)))
        t_ort = best_of(lambda s=sess: s.run(None, {"X": X}))
        print(f"{kind:10s}  scimlkit(jit) {t_ours * 1e3:8.2f} ms  onnxruntime {t_ort * 1e3:8.2f} ms  "
              f"ratio {t_ours / t_ort:6.2f}x  (first call incl. compile {compile_s:.2f} s; outputs agree)")


if __name__ == "__main__":
    main()
