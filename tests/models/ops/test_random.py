"""Random kernels: shapes, dtypes, seeding and distributions (streams differ from other runtimes)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from _node_check import node_model, ours, x64  # noqa: F401  (x64: autouse fixture)


def _run(op, args, attrs=None, opset=22):
    model = node_model(op, args, attrs=attrs, opset=opset)
    return np.asarray(ours(model, args)[0])


def test_random_normal_shape_dtype_seed_and_moments() -> None:
    attrs = {"shape": [200, 100], "mean": 2.0, "scale": 0.5, "seed": 3.0, "dtype": 11}
    a = _run("RandomNormal", [], attrs)
    b = _run("RandomNormal", [], attrs)
    c = _run("RandomNormal", [], {**attrs, "seed": 4.0})
    assert a.shape == (200, 100) and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert scipy.stats.kstest(a.ravel(), "norm", args=(2.0, 0.5)).pvalue > 1e-3


def test_random_uniform_like_takes_shape_and_dtype() -> None:
    x = np.zeros((50, 40), np.float32)
    y = _run("RandomUniformLike", [x], {"low": -1.0, "high": 3.0, "seed": 1.0})
    assert y.shape == x.shape and y.dtype == np.float32
    assert y.min() >= -1.0 and y.max() < 3.0
    assert scipy.stats.kstest(y.ravel(), "uniform", args=(-1.0, 4.0)).pvalue > 1e-3
    z = _run("RandomNormalLike", [x], {"dtype": 11, "seed": 1.0})
    assert z.shape == x.shape and z.dtype == np.float64


def test_bernoulli_rate_follows_probabilities() -> None:
    p = np.tile(np.array([0.0, 0.2, 0.9, 1.0], np.float32), (5000, 1))
    y = _run("Bernoulli", [p], {"seed": 2.0})
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.mean(axis=0), [0.0, 0.2, 0.9, 1.0], atol=0.02)


@pytest.mark.parametrize("dtype", [6, 7])
def test_multinomial_samples_classes_in_proportion(dtype: int) -> None:
    probs = np.array([[0.1, 0.6, 0.3], [0.5, 0.0, 0.5]], np.float32)
    y = _run("Multinomial", [np.log(probs + 1e-12)], {"sample_size": 4000, "seed": 7.0, "dtype": dtype})
    assert y.shape == (2, 4000) and y.dtype == (np.int32 if dtype == 6 else np.int64)
    for row, p in zip(y, probs, strict=True):
        np.testing.assert_allclose(np.bincount(row, minlength=3) / 4000, p, atol=0.03)


def test_random_uniform_without_seed_is_still_deterministic_per_node() -> None:
    model = node_model("RandomUniform", [], attrs={"shape": [4]}, opset=22)
    first, second = (np.asarray(ours(model, [])[0]) for _ in range(2))
    np.testing.assert_array_equal(first, second)
