"""Normalization kernels against ONNX Runtime / ONNX's reference evaluator, eagerly and under jit."""

from __future__ import annotations

import numpy as np
import pytest
from _node_check import Static, check, x64  # noqa: F401  (x64: autouse fixture)

rng = np.random.default_rng(2)
X = rng.normal(size=(2, 4, 5, 3)).astype(np.float32)
C = 4
SCALE = rng.uniform(0.5, 1.5, size=C).astype(np.float32)
BIAS = rng.normal(size=C).astype(np.float32)
MEAN = rng.normal(size=C).astype(np.float32)
VAR = rng.uniform(0.5, 2.0, size=C).astype(np.float32)


@pytest.mark.parametrize("opset", [9, 15])
def test_batch_normalization_inference(opset: int) -> None:
    check("BatchNormalization", [X, Static(SCALE), Static(BIAS), Static(MEAN), Static(VAR)],
          attrs={"epsilon": 1e-3}, opset=opset, ref="ort", rtol=1e-5, atol=1e-5)


def test_batch_normalization_training_outputs() -> None:
    check("BatchNormalization", [X, SCALE, BIAS, MEAN, VAR], attrs={"training_mode": 1, "momentum": 0.8},
          opset=15, n_out=3, rtol=1e-5, atol=1e-5)


def test_instance_normalization() -> None:
    check("InstanceNormalization", [X, Static(SCALE), Static(BIAS)], attrs={"epsilon": 1e-4}, ref="ort",
          rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("axis", [-1, 1, 2])
def test_layer_normalization_three_outputs(axis: int) -> None:
    shape = X.shape[axis:]
    scale = rng.normal(size=shape).astype(np.float32)
    bias = rng.normal(size=shape).astype(np.float32)
    check("LayerNormalization", [X, scale, bias], attrs={"axis": axis}, opset=17, n_out=3, ref="ort",
          rtol=1e-4, atol=1e-5)


def test_group_normalization() -> None:
    check("GroupNormalization", [X, SCALE, BIAS], attrs={"num_groups": 2, "epsilon": 1e-3}, opset=21,
          rtol=1e-4, atol=1e-5)


def test_rms_normalization() -> None:
    scale = rng.normal(size=(5, 3)).astype(np.float32)
    check("RMSNormalization", [X, scale], attrs={"axis": 2}, opset=23, rtol=1e-5, atol=1e-6)


def test_lrn_and_mvn_and_lp_normalization() -> None:
    check("LRN", [X], attrs={"size": 3, "alpha": 2e-3, "beta": 0.6, "bias": 1.5}, ref="ort", rtol=1e-5, atol=1e-6)
    check("MeanVarianceNormalization", [X], attrs={"axes": [0, 2, 3]}, ref="ort", rtol=1e-4, atol=1e-5)
    for p in (1, 2):
        check("LpNormalization", [X], attrs={"axis": 1, "p": p}, ref="ort", rtol=1e-5, atol=1e-6)


def test_float16_layer_normalization_computes_in_float32() -> None:
    x = X.astype(np.float16)
    scale = np.ones(3, np.float16)
    check("LayerNormalization", [x, scale], opset=17, ref="ort", rtol=2e-3, atol=2e-3)
