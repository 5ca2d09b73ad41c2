"""Latency of scimlkit.models (jitted) vs ONNX Runtime, in the same process, on the same inputs.

    .venv/bin/python benchmarks/models_latency.py                  # resnet50, mobilenetv2, bert_base; batch 1 and 16
    .venv/bin/python benchmarks/models_latency.py --models resnet50 --batches 1 --reps 20

The full-size models come from
`/work/venvs/torch/bin/python tests/fixtures/models/make_torch_models.py --full`
(written to tests/fixtures/_generated/models/). For each model and batch size it prints the
median latency of ONNX Runtime (CPU provider, default threads), of scimlkit with the
parameters as compile-time constants (`jax.jit(model)`) and as traced arguments
(`eqx.filter_jit(model)`), their ratios to ORT (<= 1.0 means as fast or faster), and the
time from `load()` to the first result (parse + trace + compile + run).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path

import numpy as np

GENERATED = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "_generated" / "models"


def make_inputs(name: str, batch: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    if name.startswith("bert"):
        return {
            "input_ids": rng.integers(0, 30522, (batch, 128)).astype(np.int64),
            "attention_mask": np.ones((batch, 128), np.int64),
        }
    return {"input": rng.standard_normal((batch, 3, 224, 224)).astype(np.float32)}


def timeit(fn, feeds: dict[str, np.ndarray], reps: int) -> float:
    """Median wall time of `fn(feeds)` over `reps` calls, after one warm-up call."""
    fn(feeds)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(feeds)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _call(fn, feeds: dict[str, np.ndarray]):
    import jax

    return jax.block_until_ready(fn(**feeds))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["resnet50", "mobilenetv2", "bert_base"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    parser.add_argument("--reps", type=int, default=10)
    args = parser.parse_args(argv)

    import equinox as eqx
    import jax
    import onnxruntime as ort

    import scimlkit.models as sm

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; onnxruntime {ort.__version__}")
    header = f"{'model':<12} {'batch':>5} {'ort ms':>9} {'jit ms':>9} {'ratio':>6} {'filter_jit ms':>13} {'ratio':>6} {'load->1st s':>11} {'max rel err':>11}"
    print(header)
    for name in args.models:
        path = GENERATED / f"{name}.onnx"
        if not path.is_file():
            print(f"{name}: {path} is missing; make it with make_torch_models.py --full", file=sys.stderr)
            continue
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for batch in args.batches:
            feeds = make_inputs(name, batch)
            t0 = time.perf_counter()
            model = sm.load(path)
            first = model(**feeds)
            first = first[0] if isinstance(first, tuple) else first
            first.block_until_ready()
            load_first = time.perf_counter() - t0

            ref = sess.run(None, feeds)[0]
            err = float(np.max(np.abs(np.asarray(first) - ref)) / (np.max(np.abs(ref)) + 1e-30))
            reps = max(2, args.reps // (4 if batch > 4 else 1))
            t_ort = timeit(functools.partial(sess.run, None), feeds, reps)

            t_jit = timeit(functools.partial(_call, jax.jit(model)), feeds, reps)
            t_arg = timeit(functools.partial(_call, eqx.filter_jit(model)), feeds, reps)
            print(
                f"{name:<12} {batch:>5} {t_ort * 1e3:9.2f} {t_jit * 1e3:9.2f} {t_jit / t_ort:6.2f} "
                f"{t_arg * 1e3:13.2f} {t_arg / t_ort:6.2f} {load_first:11.2f} {err:11.1e}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
