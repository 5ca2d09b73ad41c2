"""Pool-family kernels against ONNX Runtime / ONNX's reference evaluator, eagerly and under jit."""

from __future__ import annotations

import numpy as np
import pytest
from _node_check import Static, check, x64  # noqa: F401  (x64: autouse fixture)

rng = np.random.default_rng(1)
X2 = rng.normal(size=(2, 3, 7, 6)).astype(np.float32)
X1 = rng.normal(size=(1, 2, 9)).astype(np.float32)
X3 = rng.normal(size=(1, 2, 5, 4, 6)).astype(np.float32)

WINDOWS = {
    "pads_strides": (X2, {"kernel_shape": [3, 2], "pads": [1, 0, 1, 1], "strides": [2, 2]}),
    "ceil_mode": (X2, {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}),
    "ceil_mode_pads": (X2, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}),
    "same_upper": (X2, {"kernel_shape": [3, 2], "strides": [2, 1], "auto_pad": "SAME_UPPER"}),
    "same_lower": (X2, {"kernel_shape": [2, 3], "strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    "valid": (X2, {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "VALID"}),
    "dilations": (X2, {"kernel_shape": [2, 2], "dilations": [2, 2], "pads": [1, 1, 0, 0]}),
    "1d": (X1, {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}),
    "3d": (X3, {"kernel_shape": [2, 2, 3], "strides": [1, 2, 2]}),
}


@pytest.mark.parametrize("case", sorted(WINDOWS))
def test_max_pool_with_indices(case: str) -> None:
    x, attrs = WINDOWS[case]
    check("MaxPool", [x], attrs=attrs, n_out=2, ref="ort", opset=12)


@pytest.mark.parametrize("case", sorted(WINDOWS))
@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_average_pool(case: str, count_include_pad: int) -> None:
    x, attrs = WINDOWS[case]
    check("AveragePool", [x], attrs={**attrs, "count_include_pad": count_include_pad}, opset=19, ref="ort")


def test_max_pool_storage_order_and_int8() -> None:
    attrs = {"kernel_shape": [2, 2], "strides": [1, 2], "storage_order": 1}
    check("MaxPool", [X2], attrs=attrs, n_out=2, ref="ort", opset=12)
    xi = rng.integers(-128, 127, size=(1, 2, 5, 5)).astype(np.int8)
    check("MaxPool", [xi], attrs={"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, ref="ort", opset=12)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_lp_pool(p: int) -> None:
    check("LpPool", [X2], attrs={"kernel_shape": [2, 3], "strides": [2, 1], "pads": [1, 0, 0, 1], "p": p},
          opset=18, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"])
def test_global_pools(op: str) -> None:
    check(op, [X2], ref="ort", rtol=1e-5, atol=1e-6)
    check(op, [X3], ref="ort", rtol=1e-5, atol=1e-6)


def test_max_unpool_inverts_max_pool() -> None:
    values = np.array([[[[4.0, 2.0], [1.0, 3.0]], [[5.0, 6.0], [7.0, 8.0]]]], np.float32)
    indices = np.array([[[[1, 10], [17, 22]], [[24, 28], [42, 46]]]], np.int64)
    check("MaxUnpool", [values, indices], attrs={"kernel_shape": [2, 3], "strides": [2, 3]}, ref="ort")
    check("MaxUnpool", [values, indices, Static(np.array([1, 2, 5, 7], np.int64))],
          attrs={"kernel_shape": [2, 3], "strides": [2, 3]})


def test_max_roi_pool_matches_onnxruntime() -> None:
    x = rng.normal(size=(2, 3, 8, 10)).astype(np.float32)
    rois = np.array([[0, 1, 1, 6, 5], [1, 0, 2, 9, 7], [0, 3.6, 0.2, 4.4, 7.7]], np.float32)
    check("MaxRoiPool", [x, rois], attrs={"pooled_shape": [3, 2], "spatial_scale": 1.0}, ref="ort", opset=16)
    scaled = rois * np.array([1, 2, 2, 2, 2], np.float32)
    check("MaxRoiPool", [x, scaled], attrs={"pooled_shape": [2, 4], "spatial_scale": 0.5}, ref="ort", opset=16)
