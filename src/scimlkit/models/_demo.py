"""`scimlkit demo models`: load a shipped ONNX CNN, run it on JAX, compare with ONNX Runtime's output."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

FILES = Path(__file__).resolve().parent / "_demo_files"


def run(out: Path) -> None:
    import jax

    from .load import load

    out.mkdir(parents=True, exist_ok=True)
    ref = np.load(FILES / "tiny_cnn.npz")
    x, expected = ref["input:input"], ref["ort:0"]

    start = time.perf_counter()
    model = load(FILES / "tiny_cnn.onnx")
    y = np.asarray(model(x))
    first = time.perf_counter() - start
    model.summary()

    fast = jax.jit(model)
    fast(x).block_until_ready()
    n = 50
    t0 = time.perf_counter()
    for _ in range(n):
        fast(x).block_until_ready()
    per_call = (time.perf_counter() - t0) / n

    err = float(np.max(np.abs(y - expected)))
    print(f"input {x.shape} -> output {y.shape}; predicted classes {y.argmax(-1).tolist()}")
    print(f"max |scimlkit - onnxruntime| = {err:.2e} (reference stored with the model)")
    print(f"load + first result: {first:.2f} s; jitted call: {per_call * 1e3:.3f} ms")
    model.save_onnx(out / "tiny_cnn_roundtrip.onnx")
    print(f"exported a copy to {out / 'tiny_cnn_roundtrip.onnx'}")
    if not np.allclose(y, expected, rtol=1e-4, atol=1e-6):
        raise RuntimeError(f"demo output differs from ONNX Runtime's by {err:.2e}")
