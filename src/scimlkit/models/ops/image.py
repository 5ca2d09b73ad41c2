"""Image kernels: Resize, Upsample, GridSample, AffineGrid, CenterCropPad, RoiAlign,
NonMaxSuppression, ImageDecoder.

Resize is separable: each resized axis is a gather of a few taps per output index with
weights computed in NumPy from the (static) sizes, scales and attributes, so the traced
computation is a handful of `take`s and multiply-adds whatever the mode.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._registry import OpContext, is_static, register_op
from ._util import OpAttributeError, normalize_axes


def _str(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _index_dtype():
    return jnp.int64 if jax.config.jax_enable_x64 else jnp.int32


# ============================================================================ Resize


def _source_coords(mode: str, out_size: int, in_size: int, scale: float, roi: tuple[float, float] | None):
    """Map output indices to input coordinates (ONNX `coordinate_transformation_mode`)."""
    y = np.arange(out_size, dtype=np.float64)
    length = scale * in_size
    outside = None
    # `length` (the resized length) is scale * in_size as the ONNX spec defines it; ONNX
    # Runtime uses the integer output size, which differs when that product is fractional.
    if mode == "align_corners":
        x = np.zeros(out_size) if length == 1 else y * (in_size - 1) / (length - 1)
    elif mode == "asymmetric":
        x = y / scale
    elif mode == "tf_crop_and_resize":
        start, end = roi if roi is not None else (0.0, 1.0)
        if length == 1:
            x = np.full(out_size, (end - start) * (in_size - 1) / 2)
        else:
            x = y * (end - start) * (in_size - 1) / (length - 1)
        x = x + start * (in_size - 1)
        outside = (x < 0) | (x > in_size - 1)
    elif mode == "pytorch_half_pixel":
        x = np.full(out_size, -0.5) if length == 1 else (y + 0.5) / scale - 0.5
    elif mode == "half_pixel":
        x = (y + 0.5) / scale - 0.5
    elif mode == "half_pixel_symmetric":
        offset = in_size / 2 * (1 - out_size / length)
        x = offset + (y + 0.5) / scale - 0.5
    elif mode == "tf_half_pixel_for_nn":
        x = (y + 0.5) / scale
    else:
        raise OpAttributeError(f"Resize: unknown coordinate_transformation_mode {mode!r}")
    return x, outside


def _cubic(ratio: np.ndarray, a: float) -> np.ndarray:
    r = ratio[:, None]
    s = 1 - r
    return np.concatenate(
        [
            ((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a,
            ((a + 2) * r - (a + 3)) * r * r + 1,
            ((a + 2) * s - (a + 3)) * s * s + 1,
            ((a * (s + 1) - 5 * a) * (s + 1) + 8 * a) * (s + 1) - 4 * a,
        ],
        axis=1,
    )


def _keys(x: np.ndarray, a: float) -> np.ndarray:
    x = np.abs(x)
    return np.where(
        x <= 1,
        (a + 2) * x**3 - (a + 3) * x**2 + 1,
        np.where(x < 2, a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a, 0.0),
    )


def resize_taps(
    in_size: int,
    out_size: int,
    scale: float,
    *,
    mode: str = "nearest",
    coordinate_mode: str = "half_pixel",
    nearest_mode: str = "round_prefer_floor",
    cubic_coeff_a: float = -0.75,
    exclude_outside: bool = False,
    antialias: bool = False,
    roi: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Input indices `(out, taps)`, weights `(out, taps)` (None for nearest) and the
    extrapolation mask (None unless `tf_crop_and_resize`) of one resized axis."""
    x, outside = _source_coords(coordinate_mode, out_size, in_size, scale, roi)
    base = np.floor(x)
    frac = x - base
    integer = frac == 0
    if mode == "nearest":
        if nearest_mode == "round_prefer_floor":
            up = frac > 0.5
        elif nearest_mode == "round_prefer_ceil":
            up = frac >= 0.5
        elif nearest_mode == "floor":
            up = np.zeros_like(integer)
        elif nearest_mode == "ceil":
            up = ~integer
        elif nearest_mode == "simple":  # Resize-10 / Upsample (ONNX Runtime): ceil when downsampling
            up = ~integer if scale < 1 else np.zeros_like(integer)
        else:
            raise OpAttributeError(f"Resize: unknown nearest_mode {nearest_mode!r}")
        index = np.clip(base + up, 0, in_size - 1).astype(np.int64)
        return index[:, None], None, outside
    ratio = np.where(integer, 1.0, frac)
    if mode == "linear" and not antialias:
        weights = np.stack([1 - ratio, ratio], axis=1)
    elif mode == "cubic" and not antialias:
        weights = _cubic(ratio, cubic_coeff_a)
    elif mode in ("linear", "cubic"):
        s = min(scale, 1.0)
        support = 1.0 if mode == "linear" else 2.0
        start = int(np.floor(-support / s) + 1)
        taps = np.arange(start, 2 - start) if mode == "cubic" else np.arange(start, start + 2 - 2 * start)
        args = (taps[None, :] - ratio[:, None]) * s
        weights = np.clip(1 - np.abs(args), 0, 1) if mode == "linear" else _keys(args, cubic_coeff_a)
        weights = weights / weights.sum(axis=1, keepdims=True)
    else:
        raise OpAttributeError(f"Resize: unknown mode {mode!r} (expected nearest, linear or cubic)")
    n = weights.shape[1]
    if n % 2 == 0:
        offset = np.where(integer, -(n // 2), -(n // 2) + 1)
    else:
        offset = np.where(frac <= 0.5, -((n - 1) // 2), -((n - 1) // 2) + 1)
    index = (base + offset)[:, None] + np.arange(n)[None, :]
    if exclude_outside:
        weights = np.where((index < 0) | (index >= in_size), 0.0, weights)
        total = weights.sum(axis=1, keepdims=True)
        weights = weights / np.where(total == 0, 1.0, total)
    return np.clip(index, 0, in_size - 1).astype(np.int64), weights, outside


_DENSE_LIMIT = 512 * 1024


def _apply_taps(x: jax.Array, axis: int, index: np.ndarray, weights: np.ndarray | None) -> jax.Array:
    out, taps = index.shape
    if weights is None:
        return jnp.take(x, jnp.asarray(index[:, 0]), axis=axis)
    in_size = x.shape[axis]
    if in_size * out <= _DENSE_LIMIT and jnp.issubdtype(x.dtype, jnp.floating):
        # Small axes: one matmul with the (sparse) interpolation matrix beats XLA:CPU's gather.
        matrix = np.zeros((out, in_size))
        np.add.at(matrix, (np.repeat(np.arange(out), taps), index.reshape(-1)), weights.reshape(-1))
        y = jnp.tensordot(x, jnp.asarray(matrix.T, x.dtype), axes=[[axis], [0]], precision=jax.lax.Precision.HIGHEST)
        return jnp.moveaxis(y, -1, axis)
    gathered = jnp.take(x, jnp.asarray(index.reshape(-1)), axis=axis)
    gathered = gathered.reshape((*x.shape[:axis], out, taps, *x.shape[axis + 1 :]))
    w = jnp.asarray(weights, x.dtype).reshape((out, taps) + (1,) * (x.ndim - axis - 1))
    return jnp.sum(gathered * w, axis=axis + 1)


def _resize(
    x,
    sizes: Sequence[int],
    scales: Sequence[float],
    *,
    mode: str,
    coordinate_mode: str,
    nearest_mode: str = "round_prefer_floor",
    cubic_coeff_a: float = -0.75,
    exclude_outside: bool = False,
    antialias: bool = False,
    roi: Sequence[float] | None = None,
    extrapolation_value: float = 0.0,
) -> jax.Array:
    x = jnp.asarray(x)
    rank = x.ndim
    dtype = x.dtype
    exact = mode == "nearest"
    y = x if exact or jnp.issubdtype(dtype, jnp.floating) else x.astype(jnp.float32)
    outside_mask = None
    for axis in range(rank):
        in_size, out_size, scale = int(x.shape[axis]), int(sizes[axis]), float(scales[axis])
        axis_roi = None if roi is None else (float(roi[axis]), float(roi[axis + rank]))
        if out_size == in_size and scale == 1.0 and (axis_roi is None or axis_roi == (0.0, 1.0)):
            continue
        index, weights, outside = resize_taps(
            in_size,
            out_size,
            scale,
            mode=mode,
            coordinate_mode=coordinate_mode,
            nearest_mode=nearest_mode,
            cubic_coeff_a=cubic_coeff_a,
            exclude_outside=exclude_outside,
            antialias=antialias,
            roi=axis_roi,
        )
        y = _apply_taps(y, axis, index, weights)
        if outside is not None and outside.any():
            shape = [1] * rank
            shape[axis] = out_size
            mask = outside.reshape(shape)
            outside_mask = mask if outside_mask is None else (outside_mask | mask)
    if outside_mask is not None:
        y = jnp.where(jnp.asarray(outside_mask), jnp.asarray(extrapolation_value, y.dtype), y)
    if y.dtype != dtype:
        if jnp.issubdtype(dtype, jnp.integer):
            info = jnp.iinfo(dtype)
            y = jnp.clip(jnp.round(y), info.min, info.max)
        y = y.astype(dtype)
    return y


def _resize_shape(
    shape: Sequence[int],
    scales: np.ndarray | None,
    sizes: np.ndarray | None,
    axes: Sequence[int],
    policy: str = "stretch",
) -> tuple[list[int], list[float]]:
    """Full-rank output sizes and scale factors from `scales` or `sizes` on `axes`."""
    rank = len(shape)
    out_sizes, out_scales = [int(d) for d in shape], [1.0] * rank
    if sizes is not None and sizes.size:
        for a, s in zip(axes, sizes.tolist()):
            out_sizes[a] = int(s)
            out_scales[a] = int(s) / int(shape[a]) if shape[a] else 1.0
        if policy != "stretch":
            ratios = [out_scales[a] for a in axes]
            scale = min(ratios) if policy == "not_larger" else max(ratios)
            for a in axes:
                out_scales[a] = scale
                out_sizes[a] = int(scale * int(shape[a]) + 0.5)
    elif scales is not None and scales.size:
        for a, s in zip(axes, scales.tolist()):
            out_scales[a] = float(s)
            out_sizes[a] = int(np.floor(int(shape[a]) * np.float32(s)))
    else:
        raise OpAttributeError("Resize: one of 'scales' or 'sizes' must be given")
    return out_sizes, out_scales


def _static_or_none(ctx: OpContext, value, what: str) -> np.ndarray | None:
    if value is None:
        return None
    arr = ctx.static(value, what)
    return arr if arr.size else None


@register_op("Resize")
def resize(
    ctx: OpContext,
    x,
    roi=None,
    scales=None,
    sizes=None,
    *,
    antialias=0,
    axes=None,
    coordinate_transformation_mode="half_pixel",
    cubic_coeff_a=-0.75,
    exclude_outside=0,
    extrapolation_value=0.0,
    keep_aspect_ratio_policy="stretch",
    mode="nearest",
    nearest_mode="round_prefer_floor",
):
    x = jnp.asarray(x)
    rank = x.ndim
    mode = _str(mode)
    if ctx.version == 10:  # Resize-10: (X, scales); asymmetric coordinates like Upsample
        scale_values = ctx.static(roi, "scales")
        sizes_, scales_ = _resize_shape(x.shape, scale_values, None, list(range(rank)))
        return _resize(x, sizes_, scales_, mode=mode, coordinate_mode="asymmetric", nearest_mode="simple")
    axes = list(range(rank)) if not axes else list(normalize_axes(axes, rank))
    scale_values = _static_or_none(ctx, scales, "scales")
    size_values = _static_or_none(ctx, sizes, "sizes")
    sizes_, scales_ = _resize_shape(x.shape, scale_values, size_values, axes, _str(keep_aspect_ratio_policy))
    coordinate_mode = _str(coordinate_transformation_mode)
    full_roi = None
    if coordinate_mode == "tf_crop_and_resize":
        roi_values = _static_or_none(ctx, roi, "roi")
        full_roi = [0.0] * rank + [1.0] * rank
        if roi_values is not None:
            k = len(axes)
            for i, a in enumerate(axes):
                full_roi[a], full_roi[a + rank] = float(roi_values[i]), float(roi_values[i + k])
    return _resize(
        x,
        sizes_,
        scales_,
        mode=mode,
        coordinate_mode=coordinate_mode,
        nearest_mode=_str(nearest_mode),
        cubic_coeff_a=float(cubic_coeff_a),
        exclude_outside=bool(exclude_outside),
        antialias=bool(antialias),
        roi=full_roi,
        extrapolation_value=float(extrapolation_value),
    )


@register_op("Upsample")
def upsample(ctx: OpContext, x, scales=None, *, mode="nearest", height_scale=None, width_scale=None):
    x = jnp.asarray(x)
    if scales is None and height_scale is not None:  # Upsample-1
        values = np.array([1.0, 1.0, float(height_scale), float(width_scale)])
    elif isinstance(scales, list | tuple):  # Upsample-7: attribute
        values = np.asarray(scales, np.float64)
    else:
        values = ctx.static(scales, "scales")
    mode = _str(mode)
    mode = "linear" if mode == "bilinear" else mode
    sizes_, scales_ = _resize_shape(x.shape, values, None, list(range(x.ndim)))
    return _resize(x, sizes_, scales_, mode=mode, coordinate_mode="asymmetric", nearest_mode="simple")


# ============================================================================ GridSample


def _reflect(x, lo: float, hi: float):
    span = hi - lo
    if span <= 0:
        return jnp.full_like(x, lo)
    below = lo - x
    above = x - hi
    d = jnp.where(x < lo, below, above)
    n = jnp.floor(d / span)
    r = d - n * span
    even = jnp.mod(n, 2) == 0
    low_side = jnp.where(even, lo + r, hi - r)
    high_side = jnp.where(even, hi - r, lo + r)
    return jnp.where(x < lo, low_side, jnp.where(x > hi, high_side, x))


def _cubic_weights(t):
    a = -0.75
    t = t[..., None]
    s = jnp.concatenate([t + 1, t, 1 - t, 2 - t], axis=-1)
    return jnp.where(
        s <= 1, (a + 2) * s**3 - (a + 3) * s**2 + 1, a * s**3 - 5 * a * s**2 + 8 * a * s - 4 * a
    )


@register_op("GridSample")
def grid_sample(ctx: OpContext, x, grid, *, align_corners=0, mode=None, padding_mode="zeros"):
    x, grid = jnp.asarray(x), jnp.asarray(grid)
    mode = _str(mode) if mode is not None else ("bilinear" if ctx.version < 20 else "linear")
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
    padding_mode = _str(padding_mode)
    batch, channels = x.shape[:2]
    spatial = [int(d) for d in x.shape[2:]]
    n = len(spatial)
    out_spatial = grid.shape[1:-1]
    dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
    g = grid.astype(dtype).reshape((batch, -1, n))[..., ::-1]  # (N, P, n), axis order of x
    coords, taps_all, weights_all = [], [], []
    for a, size in enumerate(spatial):
        v = g[..., a]
        if align_corners:
            c = (v + 1) / 2 * (size - 1)
            lo, hi = 0.0, size - 1.0
        else:
            c = ((v + 1) * size - 1) / 2
            lo, hi = -0.5, size - 0.5
        if mode == "nearest":
            c = jnp.round(c)  # half to even, like std::nearbyint
        outside = (c < lo) | (c > hi)
        if padding_mode == "border" and mode != "cubic":  # cubic clamps each tap instead (as ONNX Runtime)
            c = jnp.where(outside, jnp.clip(c, 0, size - 1), c)
        elif padding_mode == "reflection":
            c = jnp.where(outside, _reflect(c, lo, hi), c)
        coords.append(c)
        if mode == "nearest":
            taps_all.append(c[..., None].astype(jnp.int32))
            weights_all.append(jnp.ones_like(c)[..., None])
        elif mode == "linear":
            f = jnp.floor(c)
            t = c - f
            taps_all.append(jnp.stack([f, f + 1], -1).astype(jnp.int32))
            weights_all.append(jnp.stack([1 - t, t], -1))
        elif mode == "cubic":
            f = jnp.floor(c)
            taps_all.append((f[..., None] + jnp.arange(-1, 3)).astype(jnp.int32))
            weights_all.append(_cubic_weights(c - f))
        else:
            raise OpAttributeError(f"GridSample: unknown mode {mode!r}")

    def fix_index(i, a):
        size = spatial[a]
        if padding_mode == "zeros":
            return jnp.clip(i, 0, size - 1), (i >= 0) & (i < size)
        if padding_mode == "border":
            return jnp.clip(i, 0, size - 1), None
        lo, hi = (0.0, size - 1.0) if align_corners else (-0.5, size - 0.5)
        r = jnp.trunc(_reflect(i.astype(dtype), lo, hi)).astype(jnp.int32)
        return jnp.clip(r, 0, size - 1), None

    flat = x.reshape((batch, channels, -1))
    result = jnp.zeros((batch, channels, g.shape[1]), dtype)
    counts = [t.shape[-1] for t in taps_all]
    for combo in itertools.product(*[range(c) for c in counts]):
        index = jnp.zeros(g.shape[:2], jnp.int32)
        weight = jnp.ones(g.shape[:2], dtype)
        for a, k in enumerate(combo):
            i, valid = fix_index(taps_all[a][..., k], a)
            index = index * spatial[a] + i
            w = weights_all[a][..., k]
            weight = weight * (w if valid is None else jnp.where(valid, w, 0))
        values = jnp.take_along_axis(flat, jnp.broadcast_to(index[:, None, :], (batch, channels, index.shape[1])), 2)
        result = result + values.astype(dtype) * weight[:, None, :]
    return result.reshape((batch, channels, *out_spatial)).astype(x.dtype)


@register_op("AffineGrid")
def affine_grid(ctx: OpContext, theta, size, *, align_corners=0):
    theta = jnp.asarray(theta)
    dims = [int(v) for v in ctx.static(size, "size")]
    spatial = dims[2:]
    axes = []
    for d in spatial:
        if align_corners:
            axes.append(np.linspace(-1.0, 1.0, d) if d > 1 else np.zeros(1))
        else:
            axes.append((np.arange(d) * 2.0 + 1) / d - 1)
    mesh = np.meshgrid(*axes, indexing="ij")  # per spatial axis, in (D, H, W) order
    base = np.stack([*mesh[::-1], np.ones(spatial)], axis=-1).reshape(-1, len(spatial) + 1)  # (P, [x, y, (z), 1])
    grid = jnp.einsum("pk,nik->npi", jnp.asarray(base, theta.dtype), theta)
    return grid.reshape((theta.shape[0], *spatial, len(spatial)))


@register_op("CenterCropPad")
def center_crop_pad(ctx: OpContext, x, shape, *, axes=None):
    x = jnp.asarray(x) if not is_static(x) else np.asarray(x)
    xp = np if isinstance(x, np.ndarray) else jnp
    target = [int(v) for v in ctx.static(shape, "shape")]
    axes = list(range(x.ndim)) if axes is None else list(normalize_axes(axes, x.ndim))
    crop = [slice(None)] * x.ndim
    pad = [(0, 0)] * x.ndim
    for a, t in zip(axes, target):
        size = int(x.shape[a])
        if t < size:
            start = (size - t) // 2
            crop[a] = slice(start, start + t)
        elif t > size:
            before = (t - size) // 2
            pad[a] = (before, t - size - before)
    return xp.pad(x[tuple(crop)], pad)


# ============================================================================ RoiAlign


def _roi_bilinear(feat, y, x, height, width):
    """ONNX/Caffe2 RoiAlign bilinear sampling: corner values and weights for points."""
    empty = (y < -1.0) | (y > height) | (x < -1.0) | (x > width)
    y = jnp.maximum(y, 0)
    x = jnp.maximum(x, 0)
    y_low = jnp.floor(y).astype(jnp.int32)
    x_low = jnp.floor(x).astype(jnp.int32)
    y_edge = y_low >= height - 1
    x_edge = x_low >= width - 1
    y_low = jnp.where(y_edge, height - 1, y_low)
    x_low = jnp.where(x_edge, width - 1, x_low)
    y = jnp.where(y_edge, y_low.astype(y.dtype), y)
    x = jnp.where(x_edge, x_low.astype(x.dtype), x)
    y_high = jnp.where(y_edge, y_low, y_low + 1)
    x_high = jnp.where(x_edge, x_low, x_low + 1)
    ly, lx = y - y_low, x - x_low
    hy, hx = 1 - ly, 1 - lx
    corners = [(y_low, x_low, hy * hx), (y_low, x_high, hy * lx), (y_high, x_low, ly * hx), (y_high, x_high, ly * lx)]
    out = []
    for yy, xx, w in corners:
        v = jnp.take_along_axis(feat, (yy * width + xx)[:, None, :], axis=2)  # (R, C, P)
        out.append(v * jnp.where(empty, 0.0, w)[:, None, :])
    return out


@register_op("RoiAlign")
def roi_align(
    ctx: OpContext,
    x,
    rois,
    batch_indices,
    *,
    coordinate_transformation_mode="half_pixel",
    mode="avg",
    output_height=1,
    output_width=1,
    sampling_ratio=0,
    spatial_scale=1.0,
):
    x, rois = jnp.asarray(x), jnp.asarray(rois)
    height, width = int(x.shape[2]), int(x.shape[3])
    ph, pw = int(output_height), int(output_width)
    half_pixel = ctx.version >= 16 and _str(coordinate_transformation_mode) == "half_pixel"
    dtype = x.dtype
    offset = 0.5 if half_pixel else 0.0
    box = rois.astype(dtype) * spatial_scale - offset
    start_w, start_h, end_w, end_h = (box[:, i] for i in range(4))
    roi_w, roi_h = end_w - start_w, end_h - start_h
    if not half_pixel:
        roi_w, roi_h = jnp.maximum(roi_w, 1.0), jnp.maximum(roi_h, 1.0)
    bin_h, bin_w = roi_h / ph, roi_w / pw
    if sampling_ratio > 0:
        grid_h = grid_w = jnp.full(rois.shape[:1], int(sampling_ratio), jnp.int32)
        gmax_h = gmax_w = int(sampling_ratio)
    else:
        grid_h = jnp.ceil(roi_h / ph).astype(jnp.int32)
        grid_w = jnp.ceil(roi_w / pw).astype(jnp.int32)
        try:  # the sampling grid size depends on the boxes: exact when they are concrete
            gmax_h = max(int(np.max(np.asarray(grid_h), initial=1)), 1)
            gmax_w = max(int(np.max(np.asarray(grid_w), initial=1)), 1)
        except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
            gmax_h, gmax_w = -(-height // ph) + 1, -(-width // pw) + 1
    iy = jnp.arange(gmax_h, dtype=dtype)
    ix = jnp.arange(gmax_w, dtype=dtype)
    gh = jnp.maximum(grid_h, 1).astype(dtype)[:, None]
    gw = jnp.maximum(grid_w, 1).astype(dtype)[:, None]
    # Sample coordinates (R, ph, gmax_h) and (R, pw, gmax_w).
    ys = start_h[:, None, None] + (jnp.arange(ph, dtype=dtype)[None, :, None] * bin_h[:, None, None]) + (
        (iy[None, None, :] + 0.5) * (bin_h[:, None] / gh)[:, :, None]
    )
    xs = start_w[:, None, None] + (jnp.arange(pw, dtype=dtype)[None, :, None] * bin_w[:, None, None]) + (
        (ix[None, None, :] + 0.5) * (bin_w[:, None] / gw)[:, :, None]
    )
    valid_y = iy[None, :] < grid_h[:, None]  # (R, gmax_h)
    valid_x = ix[None, :] < grid_w[:, None]
    r = rois.shape[0]
    y_all = jnp.broadcast_to(ys[:, :, None, :, None], (r, ph, pw, gmax_h, gmax_w)).reshape((r, -1))
    x_all = jnp.broadcast_to(xs[:, None, :, None, :], (r, ph, pw, gmax_h, gmax_w)).reshape((r, -1))
    feat = x[jnp.asarray(batch_indices).astype(jnp.int32)].reshape((r, x.shape[1], -1))
    parts = _roi_bilinear(feat, y_all, x_all, height, width)
    valid = valid_y[:, None, None, :, None] & valid_x[:, None, None, None, :]
    valid = jnp.broadcast_to(valid, (r, ph, pw, gmax_h, gmax_w)).reshape((r, 1, -1))
    shape = (r, x.shape[1], ph, pw, gmax_h * gmax_w)
    if _str(mode) == "max":
        sample = jnp.maximum(jnp.maximum(parts[0], parts[1]), jnp.maximum(parts[2], parts[3]))
        sample = jnp.where(valid, sample, -jnp.inf).reshape(shape)
        return jnp.max(sample, axis=-1).astype(dtype)
    total = jnp.where(valid, parts[0] + parts[1] + parts[2] + parts[3], 0).reshape(shape).sum(axis=-1)
    count = jnp.maximum(grid_h * grid_w, 1).astype(dtype)
    return (total / count[:, None, None, None]).astype(dtype)


# ============================================================================ NonMaxSuppression


def _iou(box: np.ndarray, others: np.ndarray, center: bool) -> np.ndarray:
    if center:
        box = np.concatenate([box[..., :2] - box[..., 2:] / 2, box[..., :2] + box[..., 2:] / 2], -1)
        others = np.concatenate([others[..., :2] - others[..., 2:] / 2, others[..., :2] + others[..., 2:] / 2], -1)
    else:  # corners may come in either order
        box = np.concatenate([np.minimum(box[..., :2], box[..., 2:]), np.maximum(box[..., :2], box[..., 2:])], -1)
        others = np.concatenate(
            [np.minimum(others[..., :2], others[..., 2:]), np.maximum(others[..., :2], others[..., 2:])], -1
        )
    lo = np.maximum(box[:2], others[:, :2])
    hi = np.minimum(box[2:], others[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(others[:, 2:] - others[:, :2], axis=-1)
    union = area + areas - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


@register_op("NonMaxSuppression")
def non_max_suppression(
    ctx: OpContext,
    boxes,
    scores,
    max_output_boxes_per_class=None,
    iou_threshold=None,
    score_threshold=None,
    *,
    center_point_box=0,
):
    # The number of selected boxes depends on the data: NMS runs eagerly in NumPy.
    boxes = ctx.static(boxes, "boxes").astype(np.float64)
    scores = ctx.static(scores, "scores").astype(np.float64)
    limit = 0 if max_output_boxes_per_class is None else int(ctx.static(max_output_boxes_per_class, "max_output_boxes_per_class").reshape(-1)[0])
    iou_max = 0.0 if iou_threshold is None else float(ctx.static(iou_threshold, "iou_threshold").reshape(-1)[0])
    score_min = None if score_threshold is None else float(ctx.static(score_threshold, "score_threshold").reshape(-1)[0])
    selected: list[tuple[int, int, int]] = []
    for b in range(scores.shape[0]):
        for c in range(scores.shape[1]):
            s = scores[b, c]
            order = np.argsort(-s, kind="stable")
            if score_min is not None:
                order = order[s[order] > score_min]
            keep: list[int] = []
            for i in order:
                if len(keep) >= limit:
                    break
                if keep and np.any(_iou(boxes[b, i], boxes[b, keep], bool(center_point_box)) > iou_max):
                    continue
                keep.append(int(i))
            selected.extend((b, c, i) for i in keep)
    return np.asarray(selected, np.int64).reshape(-1, 3)


# ============================================================================ ImageDecoder


@register_op("ImageDecoder")
def image_decoder(ctx: OpContext, encoded, *, pixel_format="RGB"):
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - Pillow comes with matplotlib
        from ...errors import MissingDependencyError

        raise MissingDependencyError("ImageDecoder needs Pillow: pip install pillow") from exc
    data = ctx.static(encoded, "encoded image bytes")
    fmt = _str(pixel_format)
    try:
        image = Image.open(io.BytesIO(np.asarray(data, np.uint8).tobytes()))
        if fmt == "Grayscale":
            return np.asarray(image.convert("L"))[:, :, None]
        rgb = np.asarray(image.convert("RGB"))
    except OSError as exc:
        raise OpAttributeError(f"{ctx.describe()}: cannot decode the image: {exc}") from exc
    if fmt == "BGR":
        return np.ascontiguousarray(rgb[:, :, ::-1])
    if fmt == "RGB":
        return rgb
    raise OpAttributeError(f"{ctx.describe()}: unknown pixel_format {fmt!r} (expected RGB, BGR or Grayscale)")


