"""Classic machine-learning operators of the `ai.onnx.ml` domain (what sklearn-onnx emits).

Numeric work is vectorised in JAX: tree ensembles walk every tree for every sample at once
(a fixed number of gather steps, the depth of the deepest tree), SVMs build the full kernel
matrix, linear models are one matmul. String tensors live in NumPy (JAX has no strings), so
ops that produce or consume strings need values known at run time, not traced ones; ZipMap
and DictVectorizer work on Python dicts and are eager-only too.

Semantics follow the ONNX specification and ONNX Runtime (labels, binary-class score
layout, post transforms including ONNX Runtime's PROBIT approximation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ModelError
from ._registry import OpContext, is_static, register_op
from ._util import is_string, xp

ML = "ai.onnx.ml"


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _strings(values: Sequence[Any] | None) -> list[str]:
    return [_str(v) for v in values or []]


def _float_input(x: Any) -> jax.Array:
    """ML ops compute in float32 unless given float64."""
    x = jnp.asarray(x)
    return x if x.dtype == jnp.float64 else x.astype(jnp.float32)


def _need_static(ctx: OpContext, value: Any, what: str) -> np.ndarray:
    return ctx.static(value, what)


# --------------------------------------------------------------------------- post transforms


def _erf_inv(x: jax.Array) -> jax.Array:
    """The closed-form erf inverse approximation that ONNX Runtime uses for PROBIT (±inf at ±1)."""
    sgn = jnp.where(x < 0, -1.0, 1.0)
    log = jnp.log((1.0 - x) * (1.0 + x))
    v = 2.0 / (np.pi * 0.147) + 0.5 * log
    v2 = 1.0 / 0.147 * log
    return sgn * jnp.sqrt(-v + jnp.sqrt(v * v - v2))


def _probit(x: jax.Array) -> jax.Array:
    return 1.41421356 * _erf_inv(x * 2 - 1)


def _softmax_zero(x: jax.Array) -> jax.Array:
    """Softmax that keeps exact zeros (near-zero inputs) at zero, as ONNX Runtime does."""
    vmax = jnp.max(x, axis=-1, keepdims=True)
    nonzero = jnp.abs(x) > 1e-7
    e = jnp.where(nonzero, jnp.exp(x - vmax), x * jnp.exp(-vmax))
    s = jnp.sum(e, axis=-1, keepdims=True)
    return jnp.where(s == 0, 0.5, e / jnp.where(s == 0, 1.0, s))


def _post_transform(ctx: OpContext, scores: jax.Array, name: Any) -> jax.Array:
    name = _str(name or "NONE").upper()
    if name == "NONE":
        return scores
    if name == "LOGISTIC":
        return jax.nn.sigmoid(scores)
    if name == "SOFTMAX":
        return jax.nn.softmax(scores, axis=-1)
    if name == "SOFTMAX_ZERO":
        return _softmax_zero(scores)
    if name == "PROBIT":
        return _probit(scores)
    raise ModelError(f"{ctx.describe()}: unknown post_transform {name!r}")


def _two_columns(s: jax.Array, post: str, add: int) -> jax.Array:
    """Expand one binary score per row to two columns, as ONNX Runtime does.

    `add` says how: 0/1 (all weights positive) `[1 - s, s]`, 2/3 (mixed weights) `[-s, s]`;
    LOGISTIC gives `[sigmoid(-s), sigmoid(s)]` either way, PROBIT `[probit(s), 0]`, and
    `add < 0` keeps the single column.
    """
    if post == "PROBIT":
        return jnp.stack([_probit(s), jnp.zeros_like(s)], axis=1)
    if add < 0:
        return s[:, None]
    if post == "LOGISTIC":
        return jnp.stack([jax.nn.sigmoid(-s), jax.nn.sigmoid(s)], axis=1)
    return jnp.stack([1 - s, s] if add <= 1 else [-s, s], axis=1)


def _labels(ctx: OpContext, index: Any, ints: Sequence[int] | None, strings: Sequence[Any] | None) -> Any:
    """Map class indices to the op's labels (strings need concrete indices)."""
    if strings:
        idx = _need_static(ctx, index, "predicted class (string labels)")
        return np.asarray(_strings(strings), dtype=object)[idx]
    if ints:
        table = np.asarray(ints, np.int64)
        if is_static(index):
            return table[np.asarray(index)]
        return jnp.asarray(table)[index]
    return index


# --------------------------------------------------------------------------- linear models


@register_op("LinearRegressor", domain=ML)
def linear_regressor(
    ctx: OpContext, X: Any, *, coefficients: Sequence[float] | None = None, intercepts: Sequence[float] | None = None,
    targets: int = 1, post_transform: str = "NONE",
) -> jax.Array:
    """`X @ coefficients.reshape(targets, -1).T + intercepts`."""
    x = _float_input(X)
    x = x.reshape(x.shape[0], -1) if x.ndim != 1 else x.reshape(1, -1)
    coef = jnp.asarray(np.asarray(coefficients, np.float64).reshape(int(targets), -1).T, x.dtype)
    y = x @ coef
    if intercepts:
        y = y + jnp.asarray(np.asarray(intercepts, np.float64), x.dtype)
    return _post_transform(ctx, y, post_transform)


@register_op("LinearClassifier", domain=ML)
def linear_classifier(
    ctx: OpContext, X: Any, *, coefficients: Sequence[float], classlabels_ints: Sequence[int] | None = None,
    classlabels_strings: Sequence[Any] | None = None, intercepts: Sequence[float] | None = None,
    multi_class: int = 0, post_transform: str = "NONE",
) -> tuple[Any, jax.Array]:
    """Linear scores per class, post-transformed; label = the best class (binary: one score)."""
    x = _float_input(X)
    x = x.reshape(x.shape[0], -1) if x.ndim != 1 else x.reshape(1, -1)
    coef = jnp.asarray(np.asarray(coefficients, np.float64).reshape(-1, x.shape[1]).T, x.dtype)
    scores = x @ coef
    if intercepts:
        scores = scores + jnp.asarray(np.asarray(intercepts, np.float64), x.dtype)
    n_classes = max(len(classlabels_ints or []), len(classlabels_strings or []))
    post = _str(post_transform).upper()
    if coef.shape[1] > 1:  # label: the best raw score (transforms are monotonic; PROBIT may give NaN)
        label = _labels(ctx, jnp.argmax(scores, axis=1), classlabels_ints, classlabels_strings)
        return label, _post_transform(ctx, scores, post)
    # one score: positive above 0 (ONNX Runtime), two columns when there are two labels
    s = scores[:, 0]
    positive = (s > 0).astype(jnp.int32)
    if n_classes == 2:
        return _labels(ctx, positive, classlabels_ints, classlabels_strings), _two_columns(s, post, 1)
    if classlabels_strings:
        pos = _need_static(ctx, positive, "predicted class (string labels)")
        return np.where(pos > 0, "1", "0").astype(object), _post_transform(ctx, scores, post)
    return positive, _post_transform(ctx, scores, post)


# --------------------------------------------------------------------------- SVM


def _kernel(kernel_type: Any, params: Sequence[float] | None, x: jax.Array, sv: jax.Array) -> jax.Array:
    gamma, coef0, degree = ([*list(params or []), 0.0, 0.0, 0.0])[:3]
    kind = _str(kernel_type or "LINEAR").upper()
    if kind == "LINEAR":
        return x @ sv.T
    if kind == "POLY":
        return (gamma * (x @ sv.T) + coef0) ** int(degree)
    if kind == "SIGMOID":
        return jnp.tanh(gamma * (x @ sv.T) + coef0)
    if kind == "RBF":
        if x.shape[0] * sv.shape[0] * sv.shape[1] <= _GATHER_LIMIT:  # exact squared distances
            d2 = jnp.sum((x[:, None, :] - sv[None, :, :]) ** 2, axis=-1)
        else:  # large batches: |x|^2 - 2 x.sv + |sv|^2 keeps memory at [rows, vectors]
            d2 = jnp.maximum(jnp.sum(x * x, 1)[:, None] - 2 * (x @ sv.T) + jnp.sum(sv * sv, 1)[None, :], 0)
        return jnp.exp(-gamma * d2)
    raise ModelError(f"unknown SVM kernel_type {kind!r}")


@register_op("SVMRegressor", domain=ML)
def svm_regressor(
    ctx: OpContext, X: Any, *, coefficients: Sequence[float] | None = None, kernel_params: Sequence[float] | None = None,
    kernel_type: str = "LINEAR", n_supports: int = 0, one_class: int = 0, post_transform: str = "NONE",
    rho: Sequence[float] | None = None, support_vectors: Sequence[float] | None = None,
) -> jax.Array:
    """Support-vector regression (or one-class SVM with `one_class=1`)."""
    x = _float_input(X)
    x = x.reshape(x.shape[0], -1)
    coef = jnp.asarray(np.asarray(coefficients or [], np.float64), x.dtype)
    bias = float((rho or [0.0])[0])
    if n_supports > 0:
        sv = jnp.asarray(np.asarray(support_vectors, np.float64).reshape(int(n_supports), -1), x.dtype)
        s = _kernel(kernel_type, kernel_params, x, sv) @ coef + bias
    else:
        s = x @ coef + bias
    if one_class:
        s = jnp.where(s > 0, 1.0, -1.0).astype(x.dtype)
    return _post_transform(ctx, s[:, None], post_transform).astype(jnp.float32)


def _coupling(r: jax.Array, k: int) -> jax.Array:
    """libsvm's pairwise-coupling probabilities from the pairwise matrix `r` ([k, k])."""
    q = jnp.where(jnp.eye(k, dtype=bool), jnp.sum(r.T**2, axis=1) - jnp.diagonal(r) ** 2, -r.T * r)
    eps = 0.005 / k
    max_iter = max(100, k)

    def cond(state: Any) -> jax.Array:
        it, _, err = state
        return jnp.logical_and(it < max_iter, err >= eps)

    def body(state: Any) -> Any:
        it, p, _ = state
        qp = q @ p
        pqp = p @ qp
        err = jnp.max(jnp.abs(qp - pqp))

        def update(p: jax.Array) -> jax.Array:
            qp = q @ p
            pqp = p @ qp
            for t in range(k):
                diff = (-qp[t] + pqp) / q[t, t]
                p = p.at[t].add(diff)
                pqp = (pqp + diff * (diff * q[t, t] + 2 * qp[t])) / (1 + diff) ** 2
                p = p / (1 + diff)
                qp = (qp + diff * q[t, :]) / (1 + diff)
            return p

        p = jax.lax.cond(err < eps, lambda p: p, update, p)
        return it + 1, p, err

    p0 = jnp.full((k,), 1.0 / k, r.dtype)
    _, p, _ = jax.lax.while_loop(cond, body, (0, p0, jnp.asarray(jnp.inf, r.dtype)))
    return p


@register_op("SVMClassifier", domain=ML)
def svm_classifier(
    ctx: OpContext, X: Any, *, classlabels_ints: Sequence[int] | None = None,
    classlabels_strings: Sequence[Any] | None = None, coefficients: Sequence[float] | None = None,
    kernel_params: Sequence[float] | None = None, kernel_type: str = "LINEAR", post_transform: str = "NONE",
    prob_a: Sequence[float] | None = None, prob_b: Sequence[float] | None = None, rho: Sequence[float] | None = None,
    support_vectors: Sequence[float] | None = None, vectors_per_class: Sequence[int] | None = None,
) -> tuple[Any, jax.Array]:
    """Support-vector classification: one-vs-one votes (libsvm) or linear scores, optional Platt probabilities."""
    x = _float_input(X)
    x = x.reshape(x.shape[0], -1)
    dtype = x.dtype
    labels = list(classlabels_ints or []) or list(classlabels_strings or [])
    k = max(len(labels), 1)
    coefs_np = np.asarray(coefficients or [], np.float64)
    rho_np = np.asarray(rho or [0.0], np.float64)
    per_class = [int(v) for v in (vectors_per_class or [])]
    n_vectors = sum(per_class)
    all_positive = bool(coefs_np.min() >= 0) if coefs_np.size else True
    votes = None
    if n_vectors > 0:
        sv = jnp.asarray(np.asarray(support_vectors, np.float64).reshape(n_vectors, -1), dtype)
        kern = _kernel(kernel_type, kernel_params, x, sv)  # [N, V]
        coefs = coefs_np.reshape(-1, n_vectors)
        starts = np.cumsum([0, *per_class])
        pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
        m = np.zeros((n_vectors, len(pairs)))
        win_i = np.zeros((len(pairs), k))
        win_j = np.zeros((len(pairs), k))
        for p, (i, j) in enumerate(pairs):
            m[starts[i] : starts[i + 1], p] = coefs[j - 1, starts[i] : starts[i + 1]]
            m[starts[j] : starts[j + 1], p] = coefs[i, starts[j] : starts[j + 1]]
            win_i[p, i] = win_j[p, j] = 1
        scores = kern @ jnp.asarray(m, dtype) + jnp.asarray(rho_np[: len(pairs)], dtype)
        positive = (scores > 0).astype(dtype)
        votes = positive @ jnp.asarray(win_i, dtype) + (1 - positive) @ jnp.asarray(win_j, dtype)
        if prob_a:
            a = jnp.asarray(np.asarray(prob_a, np.float64), dtype)
            b = jnp.asarray(np.asarray(prob_b, np.float64), dtype)
            val = jnp.clip(1 - jax.nn.sigmoid(scores * a + b), 1e-7, 1 - 1e-7)  # [N, P]
            iu = np.triu_indices(k, 1)

            def pairwise(v: jax.Array) -> jax.Array:
                r = jnp.zeros((k, k), dtype).at[iu].set(v)
                return r + jnp.where(jnp.asarray(np.triu(np.ones((k, k)), 1).T, bool), (1 - r).T, 0)

            scores = jax.vmap(lambda v: _coupling(pairwise(v), k))(val)
    else:
        coefs = jnp.asarray(coefs_np.reshape(k, -1), dtype)
        scores = x @ coefs.T + rho_np[0]
    has_proba = bool(prob_a) and n_vectors > 0
    # ONNX Runtime: the best class by votes (one-vs-one) or by score (linear); only the
    # linear mode has a "max weight", which decides two-class labels
    best = jnp.argmax(votes if votes is not None else scores, axis=1)
    max_weight = jnp.zeros(best.shape, dtype) if votes is not None else jnp.max(scores, axis=1)
    post = _str(post_transform).upper()

    additional = -1
    if rho_np.size == 1:
        if len(labels) == 2:
            additional = 2 if post == "NONE" else 0
            index = best
            if not has_proba:
                index = jnp.where(max_weight >= 0.5 if all_positive else max_weight > 0, 1, best)
            label = _labels(ctx, index, classlabels_ints, classlabels_strings)
        else:
            positive = max_weight > 0
            label = np.where(_need_static(ctx, positive, "SVM label"), "1", "0").astype(object) \
                if classlabels_strings else jnp.where(positive, 1, 0)
    else:
        label = _labels(ctx, best, classlabels_ints, classlabels_strings)

    return label, _svm_scores(ctx, scores, post, additional)


def _svm_scores(ctx: OpContext, scores: jax.Array, post: str, additional: int) -> jax.Array:
    if scores.shape[1] >= 2:
        return _post_transform(ctx, scores, post)
    return _two_columns(scores[:, 0], post, additional)


# --------------------------------------------------------------------------- tree ensembles

_MODES = {"BRANCH_LEQ": 0, "BRANCH_LT": 1, "BRANCH_GTE": 2, "BRANCH_GT": 3, "BRANCH_EQ": 4, "BRANCH_NEQ": 5,
          "BRANCH_MEMBER": 6, "LEAF": 7}
_LEAF = 7


@dataclass
class _Forest:
    """A tree ensemble flattened into arrays: node `n` tests `X[:, feature[n]]` against `threshold[n]`."""

    feature: np.ndarray
    threshold: np.ndarray
    mode: np.ndarray
    true_next: np.ndarray
    false_next: np.ndarray
    missing_true: np.ndarray
    roots: np.ndarray
    depth: int
    members: np.ndarray | None = None  # [nodes, max_members], NaN padded (BRANCH_MEMBER)

    def leaves(self, X: jax.Array, nan_first: bool) -> jax.Array:
        """Index of the leaf reached in every tree by every row: [N, trees]."""
        dtype = X.dtype
        feature = jnp.asarray(self.feature.astype(np.int32))
        threshold = jnp.asarray(self.threshold, dtype)
        mode = jnp.asarray(self.mode.astype(np.int32))
        t_next = jnp.asarray(self.true_next.astype(np.int32))
        f_next = jnp.asarray(self.false_next.astype(np.int32))
        missing = jnp.asarray(self.missing_true)
        members = None if self.members is None else jnp.asarray(self.members, dtype)

        used = sorted(set(self.mode[self.mode != _LEAF].tolist()))
        is_leaf = jnp.asarray(self.mode == _LEAF)

        def test(code: int, x: jax.Array, th: jax.Array, idx: jax.Array) -> jax.Array:
            if code == 6:
                return jnp.any(x[..., None] == members[idx], axis=-1)
            return (jnp.less_equal, jnp.less, jnp.greater_equal, jnp.greater, jnp.equal, jnp.not_equal)[code](x, th)

        def step(_: int, idx: jax.Array) -> jax.Array:
            x = jnp.take_along_axis(X, feature[idx], axis=1)
            th = threshold[idx]
            if len(used) == 1:  # the usual case (sklearn: all BRANCH_LEQ): one comparison
                cond = test(used[0], x, th, idx)
            else:
                m = mode[idx]
                cond = jnp.select([m == code for code in used], [test(code, x, th, idx) for code in used], False)
            nan = jnp.isnan(x)
            cond = jnp.where(nan, missing[idx], cond) if nan_first else (cond | (nan & missing[idx]))
            nxt = jnp.where(cond, t_next[idx], f_next[idx])
            return jnp.where(is_leaf[idx], idx, nxt)

        idx = jnp.broadcast_to(jnp.asarray(self.roots.astype(np.int32)), (X.shape[0], len(self.roots)))
        return jax.lax.fori_loop(0, self.depth, step, idx)


def _depth(true_next: np.ndarray, false_next: np.ndarray, leaf: np.ndarray, roots: np.ndarray) -> int:
    """Length of the longest root-to-leaf path (number of tests)."""
    depth = 0
    frontier = np.unique(roots)
    seen = 0
    while True:
        frontier = frontier[~leaf[frontier]]
        if frontier.size == 0:
            return depth
        depth += 1
        seen += 1
        if seen > len(leaf):
            raise ModelError("tree ensemble has a cycle in its node links")
        frontier = np.unique(np.concatenate([true_next[frontier], false_next[frontier]]))


def _attr(values: Any, tensor: Any, dtype: Any = np.float64) -> np.ndarray | None:
    if tensor is not None:
        return np.asarray(tensor, np.float64).reshape(-1)
    return None if values is None else np.asarray(values, dtype).reshape(-1)


def _legacy_forest(ctx: OpContext, attrs: dict[str, Any]) -> tuple[_Forest, dict[tuple[int, int], int]]:
    tree_ids = np.asarray(attrs["nodes_treeids"], np.int64)
    node_ids = np.asarray(attrs["nodes_nodeids"], np.int64)
    index = {(int(t), int(n)): i for i, (t, n) in enumerate(zip(tree_ids, node_ids))}
    modes = np.array([_MODES.get(_str(m), -1) for m in attrs["nodes_modes"]], np.int64)
    if (modes < 0).any():
        bad = {_str(m) for m in attrs["nodes_modes"] if _str(m) not in _MODES}
        raise ModelError(f"{ctx.describe()}: unknown node modes {sorted(bad)}")
    leaf = modes == _LEAF
    n = len(tree_ids)

    def links(name: str) -> np.ndarray:
        ids = np.asarray(attrs[name], np.int64)
        out = np.arange(n)
        for i in np.nonzero(~leaf)[0]:
            key = (int(tree_ids[i]), int(ids[i]))
            if key not in index:
                raise ModelError(f"{ctx.describe()}: node {node_ids[i]} of tree {tree_ids[i]} links to missing node {ids[i]}")
            out[i] = index[key]
        return out

    t_next, f_next = links("nodes_truenodeids"), links("nodes_falsenodeids")
    roots = np.array(sorted({int(t): i for i, t in reversed(list(enumerate(tree_ids)))}.items()))[:, 1]
    values = _attr(attrs.get("nodes_values"), attrs.get("nodes_values_as_tensor"))
    missing = np.asarray(attrs.get("nodes_missing_value_tracks_true") or [0] * n, bool)
    forest = _Forest(
        feature=np.asarray(attrs["nodes_featureids"], np.int64), threshold=values if values is not None else np.zeros(n),
        mode=modes, true_next=t_next, false_next=f_next, missing_true=missing, roots=roots,
        depth=_depth(t_next, f_next, leaf, roots),
    )
    return forest, index


def _leaf_table(
    ctx: OpContext, n_nodes: int, n_out: int, nodes: np.ndarray, ids: np.ndarray, weights: np.ndarray, how: str
) -> tuple[np.ndarray, np.ndarray]:
    """Dense [nodes, outputs] leaf values combined per `how`, plus a mask of entries present."""
    fill = {"SUM": 0.0, "AVERAGE": 0.0, "MIN": np.inf, "MAX": -np.inf}[how]
    table = np.full((n_nodes, n_out), fill)
    has = np.zeros((n_nodes, n_out), bool)
    if ids.size and (ids.min() < 0 or ids.max() >= n_out):
        raise ModelError(f"{ctx.describe()}: target/class ids must lie in [0, {n_out})")
    if how in ("SUM", "AVERAGE"):
        np.add.at(table, (nodes, ids), weights)
    elif how == "MIN":
        np.minimum.at(table, (nodes, ids), weights)
    else:
        np.maximum.at(table, (nodes, ids), weights)
    has[nodes, ids] = True
    return table, has


_GATHER_LIMIT = 1 << 22  # elements of the [rows, trees, outputs] gather above which trees are summed in a loop


def _aggregate(
    X: jax.Array, forest: _Forest, table: np.ndarray, has: np.ndarray, how: str, nan_first: bool,
    leaves: jax.Array | None = None,
) -> jax.Array:
    """Combine the leaf values of every tree per row: sum/average, or min/max over scored leaves."""
    dtype = X.dtype
    leaves = forest.leaves(X, nan_first) if leaves is None else leaves  # [N, T]
    n_rows, n_trees = leaves.shape
    if how in ("SUM", "AVERAGE"):
        values, combine, start = jnp.asarray(table, dtype), jnp.add, 0.0
    else:  # ONNX Runtime: a target that no reached leaf scores stays 0
        big = np.finfo(np.dtype(dtype)).max
        sentinel = big if how == "MIN" else -big
        values = jnp.asarray(np.where(has, table, sentinel), dtype)
        combine, start = (jnp.minimum, sentinel) if how == "MIN" else (jnp.maximum, -big)
    if n_rows * n_trees * table.shape[1] <= _GATHER_LIMIT:
        gathered = values[leaves]  # [N, T, K]
        out = gathered.sum(axis=1) if how in ("SUM", "AVERAGE") else (
            gathered.min(axis=1) if how == "MIN" else gathered.max(axis=1))
    else:  # large batches: one tree at a time keeps memory at [N, K]
        init = jnp.full((n_rows, table.shape[1]), start, dtype)
        out = jax.lax.fori_loop(0, n_trees, lambda t, acc: combine(acc, values[leaves[:, t]]), init)
    if how == "AVERAGE":
        return out / n_trees
    if how in ("MIN", "MAX"):
        scored = jnp.asarray(has)[leaves].any(axis=1)
        return jnp.where(scored, out, jnp.zeros((), dtype))
    return out


def _ids_to_nodes(ctx: OpContext, index: dict[tuple[int, int], int], trees: Any, nodes: Any) -> np.ndarray:
    out = []
    for t, n in zip(trees, nodes):
        key = (int(t), int(n))
        if key not in index:
            raise ModelError(f"{ctx.describe()}: a leaf weight refers to missing node {n} of tree {t}")
        out.append(index[key])
    return np.asarray(out, np.int64)


@register_op("TreeEnsembleRegressor", domain=ML)
def tree_ensemble_regressor(ctx: OpContext, X: Any, **attrs: Any) -> jax.Array:
    """Sum/average/min/max of the leaf values of many trees, plus base values."""
    x = _float_input(X)
    x = x.reshape(x.shape[0], -1)
    forest, index = _legacy_forest(ctx, attrs)
    how = _str(attrs.get("aggregate_function", "SUM")).upper()
    n_targets = int(attrs.get("n_targets", 1))
    weights = _attr(attrs.get("target_weights"), attrs.get("target_weights_as_tensor"))
    nodes = _ids_to_nodes(ctx, index, attrs.get("target_treeids", []), attrs.get("target_nodeids", []))
    table, has = _leaf_table(ctx, len(forest.feature), n_targets, nodes,
                             np.asarray(attrs.get("target_ids", []), np.int64), weights, how)
    y = _aggregate(x, forest, table, has, how, nan_first=True)
    base = _attr(attrs.get("base_values"), attrs.get("base_values_as_tensor"))
    if base is not None and base.size:
        y = y + jnp.asarray(base, y.dtype)
    return _post_transform(ctx, y, attrs.get("post_transform", "NONE")).astype(jnp.float32)


@register_op("TreeEnsembleClassifier", domain=ML)
def tree_ensemble_classifier(ctx: OpContext, X: Any, **attrs: Any) -> tuple[Any, jax.Array]:
    """Per-class sums of leaf weights, ONNX Runtime's binary-class layout, post transform, labels."""
    x = _float_input(X)
    x = x.reshape(x.shape[0], -1)
    forest, index = _legacy_forest(ctx, attrs)
    ints, strings = attrs.get("classlabels_int64s"), attrs.get("classlabels_strings")
    n_classes = max(len(ints or []), len(strings or []))
    class_ids = np.asarray(attrs.get("class_ids", []), np.int64)
    weights = _attr(attrs.get("class_weights"), attrs.get("class_weights_as_tensor"))
    nodes = _ids_to_nodes(ctx, index, attrs.get("class_treeids", []), attrs.get("class_nodeids", []))
    table, has = _leaf_table(ctx, len(forest.feature), max(n_classes, 1), nodes, class_ids, weights, "SUM")
    leaves = forest.leaves(x, nan_first=True)
    scores = _aggregate(x, forest, table, has, "SUM", nan_first=True, leaves=leaves)
    scored = jnp.asarray(has)[leaves].any(axis=1)  # [N, classes]: some reached leaf votes for the class
    base = _attr(attrs.get("base_values"), attrs.get("base_values_as_tensor"))
    base = np.zeros(0) if base is None else base
    post = _str(attrs.get("post_transform", "NONE")).upper()
    if n_classes == 2:
        binary = np.unique(class_ids).size == 1
        all_positive = bool((weights >= 0).all()) if weights is not None and weights.size else True
        index, out = _binary_tree_scores(ctx, scores, scored, base, post, binary, all_positive)
        return _labels(ctx, index, ints, strings), out.astype(jnp.float32)
    if base.size:
        scores = scores + jnp.asarray(base, scores.dtype)
        scored = scored | True
    best = jnp.argmax(jnp.where(scored, scores, -jnp.inf), axis=1)  # classes nobody voted for cannot win
    return _labels(ctx, best, ints, strings), _post_transform(ctx, scores, post).astype(jnp.float32)


def _binary_tree_scores(
    ctx: OpContext, scores: jax.Array, scored: jax.Array, base: np.ndarray, post: str, binary: bool, all_positive: bool
) -> tuple[jax.Array, jax.Array]:
    """Two classes, laid out as ONNX Runtime does: label index and the [N, 2] scores.

    With votes for one class only (`binary`), one score decides: above 0.5 (all weights
    positive) or above 0 (mixed weights). Rows that reach no vote for class 1 have one
    score, expanded to `[1 - s, s]` (positive weights) or `[-s, s]` (mixed; LOGISTIC gives
    `[sigmoid(-s), sigmoid(s)]`). Classes that no reached leaf votes for score 0.
    """
    s0, s1 = scores[:, 0], scores[:, 1]
    h0, h1 = scored[:, 0], scored[:, 1]
    add = -1
    if base.size == 2:  # with class-1 votes: class 1 = base1 + score0, class 0 its negative
        s0, s1 = jnp.where(h1, -(base[1] + s0), s0 + base[0]), jnp.where(h1, base[1] + s0, s1 + base[1])
        two = jnp.ones_like(h1)
    else:
        if base.size == 1:
            s0 = s0 + base[0]
        else:
            add = 3
        two = h1
    pos = jnp.where(two & h1, s1, jnp.where(h0, s0, 0.0))
    if binary:
        positive = pos > 0.5 if all_positive else pos > 0
        add_row = jnp.where(positive, 0, 1) if all_positive else jnp.where(positive, 2, 3)
    else:
        positive = pos > 0
        add_row = jnp.full(pos.shape, add)
    pair = jnp.stack([jnp.where(h0, s0, 0.0), jnp.where(h1, s1, 0.0)], axis=1)
    full = _post_transform(ctx, pair, post)
    # one score (rows without class-1 votes), expanded per row
    a = add_row[:, None]
    if post == "PROBIT":
        single = _two_columns(s0, post, 0)
    else:
        single = jnp.where(a < 0, jnp.stack([s0, jnp.zeros_like(s0)], axis=1), _two_columns(s0, post, 0))
        single = jnp.where(a >= 2, _two_columns(s0, post, 2), single)
    return positive.astype(jnp.int32), jnp.where(two[:, None], full, single)


@register_op("TreeEnsemble", domain=ML)
def tree_ensemble(
    ctx: OpContext, X: Any, *, nodes_splits: Any, nodes_featureids: Sequence[int], nodes_modes: Any,
    nodes_truenodeids: Sequence[int], nodes_falsenodeids: Sequence[int], nodes_trueleafs: Sequence[int],
    nodes_falseleafs: Sequence[int], leaf_targetids: Sequence[int], leaf_weights: Any, tree_roots: Sequence[int],
    aggregate_function: int = 1, post_transform: int = 0, n_targets: int | None = None,
    nodes_hitrates: Any = None, nodes_missing_value_tracks_true: Sequence[int] | None = None,
    membership_values: Any = None,
) -> jax.Array:
    """The unified tree ensemble (ai.onnx.ml opset 5): interior nodes and leaves in separate arrays."""
    x = jnp.asarray(X)
    x = x.reshape(x.shape[0], -1)
    n_int = len(nodes_featureids)
    weights = np.asarray(leaf_weights, np.float64).reshape(-1)
    n_leaf = weights.size
    modes = np.concatenate([np.asarray(nodes_modes, np.int64).reshape(-1), np.full(n_leaf, _LEAF)])
    t_leaf = np.asarray(nodes_trueleafs, bool)
    f_leaf = np.asarray(nodes_falseleafs, bool)
    t_next = np.concatenate([np.where(t_leaf, n_int + np.asarray(nodes_truenodeids), nodes_truenodeids),
                             n_int + np.arange(n_leaf)])
    f_next = np.concatenate([np.where(f_leaf, n_int + np.asarray(nodes_falsenodeids), nodes_falsenodeids),
                             n_int + np.arange(n_leaf)])
    roots = np.asarray(tree_roots, np.int64)
    degenerate = t_leaf[roots] & f_leaf[roots] & (np.asarray(nodes_truenodeids)[roots] == np.asarray(nodes_falsenodeids)[roots])
    roots = np.where(degenerate, t_next[roots], roots)
    members = None
    if membership_values is not None:
        vals = np.asarray(membership_values, np.float64).reshape(-1)
        groups, cur = [], []
        for v in vals:
            if np.isnan(v):
                groups.append(cur)
                cur = []
            else:
                cur.append(v)
        member_nodes = np.nonzero(modes[:n_int] == 6)[0]
        if len(groups) < len(member_nodes):
            raise ModelError(f"{ctx.describe()}: membership_values has {len(groups)} sets for {len(member_nodes)} member nodes")
        width = max([len(g) for g in groups] + [1])
        members = np.full((n_int + n_leaf, width), np.nan)
        for node, group in zip(member_nodes, groups):
            members[node, : len(group)] = group
    elif (modes == 6).any():
        raise ModelError(f"{ctx.describe()}: BRANCH_MEMBER nodes need membership_values")
    missing = np.zeros(n_int + n_leaf, bool)
    if nodes_missing_value_tracks_true is not None:
        missing[:n_int] = np.asarray(nodes_missing_value_tracks_true, bool)
    forest = _Forest(
        feature=np.concatenate([np.asarray(nodes_featureids, np.int64), np.zeros(n_leaf, np.int64)]),
        threshold=np.concatenate([np.asarray(nodes_splits, np.float64).reshape(-1), np.zeros(n_leaf)]),
        mode=modes, true_next=t_next, false_next=f_next, missing_true=missing, roots=roots,
        depth=_depth(t_next, f_next, modes == _LEAF, roots), members=members,
    )
    how = {0: "AVERAGE", 1: "SUM", 2: "MIN", 3: "MAX"}[int(aggregate_function)]
    targets = np.asarray(leaf_targetids, np.int64)
    n_out = int(n_targets) if n_targets is not None else int(targets.max()) + 1
    table, has = _leaf_table(ctx, n_int + n_leaf, n_out, n_int + np.arange(n_leaf), targets, weights, how)
    y = _aggregate(x, forest, table, has, how, nan_first=False)
    post = {0: "NONE", 1: "SOFTMAX", 2: "LOGISTIC", 3: "SOFTMAX_ZERO", 4: "PROBIT"}[int(post_transform)]
    return _post_transform(ctx, y, post).astype(x.dtype)


# --------------------------------------------------------------------------- feature transforms


@register_op("Scaler", domain=ML)
def scaler(ctx: OpContext, X: Any, *, offset: Sequence[float] | None = None, scale: Sequence[float] | None = None) -> Any:
    """`(X - offset) * scale`, per feature or for all features, as float32."""
    mod = xp(X)
    off = np.asarray(offset if offset is not None else [0.0], np.float32)
    sc = np.asarray(scale if scale is not None else [1.0], np.float32)
    off, sc = (off if off.size > 1 else off[0]), (sc if sc.size > 1 else sc[0])
    if mod is jnp:
        off, sc = jnp.asarray(off), jnp.asarray(sc)
    return (X.astype(np.float32) - off) * sc


@register_op("Normalizer", domain=ML)
def normalizer(ctx: OpContext, X: Any, *, norm: str = "MAX") -> Any:
    """Row-wise MAX, L1 or L2 normalisation (float32 output)."""
    mod = xp(X)
    x = X.astype(np.float32)
    x = x.reshape(1, -1) if x.ndim == 1 else x
    kind = _str(norm).upper()
    if kind == "MAX":  # the spec's (and ONNX Runtime's) X / max(X): the signed maximum
        div = mod.max(x, axis=1, keepdims=True)
        return x / mod.where(div == 0, np.float32(1), div)
    elif kind == "L1":
        div = mod.sum(mod.abs(x), axis=1, keepdims=True)
    elif kind == "L2":
        div = mod.sqrt(mod.sum(x * x, axis=1, keepdims=True))
    else:
        raise ModelError(f"{ctx.describe()}: norm must be MAX, L1 or L2, got {kind!r}")
    return x / mod.maximum(div, np.float32(1e-30))


@register_op("Binarizer", domain=ML)
def binarizer(ctx: OpContext, X: Any, *, threshold: float = 0.0) -> Any:
    """1 where `X > threshold`, else 0, in the input type."""
    mod = xp(X)
    return mod.where(threshold < X, 1, 0).astype(X.dtype)


@register_op("Imputer", domain=ML)
def imputer(
    ctx: OpContext, X: Any, *, imputed_value_floats: Sequence[float] | None = None,
    imputed_value_int64s: Sequence[int] | None = None, replaced_value_float: float = 0.0, replaced_value_int64: int = 0,
) -> Any:
    """Replace a sentinel value (or NaN) by per-feature (or one) imputed values."""
    mod = xp(X)
    if imputed_value_floats:
        values, replace = np.asarray(imputed_value_floats, np.float32), float(replaced_value_float)
    elif imputed_value_int64s:
        values, replace = np.asarray(imputed_value_int64s, np.int64), int(replaced_value_int64)
    else:
        raise ModelError(f"{ctx.describe()}: needs imputed_value_floats or imputed_value_int64s")
    n_features = np.shape(X)[-1] if np.ndim(X) else 1
    if values.size not in (1, n_features):
        raise ModelError(f"{ctx.describe()}: {values.size} imputed values for {n_features} features")
    mask = mod.isnan(X) if isinstance(replace, float) and np.isnan(replace) else replace == X
    fill = (values if values.size > 1 else values[0]).astype(np.dtype(X.dtype)) if mod is np else \
        jnp.asarray(values if values.size > 1 else values[0]).astype(X.dtype)
    return mod.where(mask, fill, X)


@register_op("ArrayFeatureExtractor", domain=ML)
def array_feature_extractor(ctx: OpContext, X: Any, Y: Any) -> Any:
    """Select columns `Y` of the last axis of `X` (a 1-D `X` gives one row, as ONNX Runtime does)."""
    mod = xp(X) if not is_string(X) else np
    idx = ctx.static(Y, "indices").reshape(-1).astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= np.shape(X)[-1]):
        raise ModelError(f"{ctx.describe()}: indices {idx.tolist()} out of range for last dimension {np.shape(X)[-1]}")
    out = mod.take(X, idx, axis=-1)
    return out.reshape(1, -1) if np.ndim(X) == 1 else out


@register_op("FeatureVectorizer", domain=ML)
def feature_vectorizer(ctx: OpContext, *inputs: Any, inputdimensions: Sequence[int] | None = None) -> Any:
    """Concatenate inputs as columns (each cut or zero-padded to its `inputdimensions`), float32."""
    dims = list(inputdimensions or [])
    if len(dims) != len(inputs):
        raise ModelError(f"{ctx.describe()}: {len(inputs)} inputs but {len(dims)} inputdimensions")
    mod = xp(*inputs)
    parts = []
    for a, d in zip(inputs, dims):
        a = a.astype(np.float32)
        a = a.reshape(-1, 1) if a.ndim == 1 else a.reshape(a.shape[0], -1)
        if a.shape[1] > d:
            a = a[:, :d]
        elif a.shape[1] < d:
            a = mod.pad(a, [(0, 0), (0, d - a.shape[1])])
        parts.append(a)
    return mod.concatenate(parts, axis=1)


@register_op("OneHotEncoder", domain=ML)
def one_hot_encoder(
    ctx: OpContext, X: Any, *, cats_int64s: Sequence[int] | None = None, cats_strings: Sequence[Any] | None = None,
    zeros: int = 1,
) -> Any:
    """One-hot columns over the categories (a new last axis, float32)."""
    if cats_strings:
        x = np.asarray(ctx.static(X, "string input")).astype(str)
        cats = np.asarray(_strings(cats_strings))
        out = (x[..., None] == cats).astype(np.float32)
    elif cats_int64s:
        mod = xp(X)
        cats_np = np.asarray(cats_int64s, np.int64)
        cats = cats_np if mod is np else jnp.asarray(cats_np)
        x = X.astype(np.int64) if mod is np else jnp.asarray(X)
        out = (x[..., None] == cats.astype(x.dtype)).astype(np.float32)
    else:
        raise ModelError(f"{ctx.describe()}: needs cats_int64s or cats_strings")
    if not zeros:
        hit = out.sum(axis=-1)
        if not bool(np.all(ctx.static(hit, "unknown-category check (zeros=0)") > 0)):
            raise ModelError(f"{ctx.describe()}: an input value is not one of the categories and zeros=0")
    return out


def _lookup(x: np.ndarray | jax.Array, keys: np.ndarray, values: np.ndarray, default: Any) -> Any:
    """Vectorised dictionary lookup (numeric keys/values, JAX or NumPy)."""
    mod = np if isinstance(x, np.ndarray) else jnp
    order = np.argsort(keys, kind="stable")
    skeys, svalues = keys[order], values[order]
    if skeys.size == 0:
        return mod.full(np.shape(x), default, dtype=values.dtype)
    pos = mod.clip(mod.searchsorted(mod.asarray(skeys), x), 0, skeys.size - 1)
    hit = mod.asarray(skeys)[pos] == x
    if skeys.dtype.kind == "f":
        nan_key = np.isnan(skeys)
        if nan_key.any():
            hit = hit | (mod.isnan(x) & True)
            pos = mod.where(mod.isnan(x), int(np.argmax(nan_key)), pos)
    return mod.where(hit, mod.asarray(svalues)[pos], mod.asarray(np.asarray(default, values.dtype)))


@register_op("LabelEncoder", domain=ML)
def label_encoder(ctx: OpContext, X: Any, **attrs: Any) -> Any:
    """Map keys to values (ints, floats, strings; v1: class strings <-> indices)."""
    if ctx.version == 1:
        classes = _strings(attrs.get("classes_strings"))
        if is_string(X):
            keys: np.ndarray = np.asarray(classes, dtype=object)
            values: np.ndarray = np.arange(len(classes), dtype=np.int64)
            default: Any = int(attrs.get("default_int64", -1))
        else:
            keys, values = np.arange(len(classes), dtype=np.int64), np.asarray(classes, dtype=object)
            default = _str(attrs.get("default_string", "_Unused"))
    else:
        keys, values, default = _encoder_tables(ctx, attrs)
    if keys.dtype == object or values.dtype == object:
        x = np.asarray(ctx.static(X, "input of a string LabelEncoder"))
        table = {(_str(k) if keys.dtype == object else k.item()): v for k, v in zip(keys, values)}
        flat = [table.get(_str(v) if keys.dtype == object else v.item(), default) for v in x.reshape(-1)]
        out_dtype = object if values.dtype == object else values.dtype
        return np.asarray(flat, dtype=out_dtype).reshape(x.shape)
    x = X if is_static(X) else jnp.asarray(X)
    if not is_static(X) and keys.dtype == np.int64 and not jax.config.jax_enable_x64:
        keys = keys.astype(np.int32)
    return _lookup(x, keys.astype(np.dtype(x.dtype)) if keys.dtype.kind != np.dtype(x.dtype).kind else keys,
                   values, default)


def _encoder_tables(ctx: OpContext, attrs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, Any]:
    if attrs.get("keys_tensor") is not None:
        keys = np.asarray(attrs["keys_tensor"]).reshape(-1)
    elif attrs.get("keys_strings"):
        keys = np.asarray(_strings(attrs["keys_strings"]), dtype=object)
    elif attrs.get("keys_int64s"):
        keys = np.asarray(attrs["keys_int64s"], np.int64)
    elif attrs.get("keys_floats"):
        keys = np.asarray(attrs["keys_floats"], np.float32)
    else:
        raise ModelError(f"{ctx.describe()}: needs keys")
    if attrs.get("values_tensor") is not None:
        values = np.asarray(attrs["values_tensor"]).reshape(-1)
    elif attrs.get("values_strings"):
        values = np.asarray(_strings(attrs["values_strings"]), dtype=object)
    elif attrs.get("values_int64s"):
        values = np.asarray(attrs["values_int64s"], np.int64)
    elif attrs.get("values_floats"):
        values = np.asarray(attrs["values_floats"], np.float32)
    else:
        raise ModelError(f"{ctx.describe()}: needs values")
    if keys.dtype.kind in "US":
        keys = keys.astype(object)
    if values.dtype.kind in "US":
        values = values.astype(object)
    if len(keys) != len(values):
        raise ModelError(f"{ctx.describe()}: {len(keys)} keys but {len(values)} values")
    if attrs.get("default_tensor") is not None:
        default = np.asarray(attrs["default_tensor"]).reshape(-1)[0]
        default = _str(default) if values.dtype == object else default
    elif values.dtype == object:
        default = _str(attrs.get("default_string", "_Unused"))
    elif values.dtype.kind == "f":
        default = float(attrs.get("default_float", -0.0))
    else:
        default = int(attrs.get("default_int64", -1))
    return keys, values, default


@register_op("CategoryMapper", domain=ML)
def category_mapper(
    ctx: OpContext, X: Any, *, cats_int64s: Sequence[int] | None = None, cats_strings: Sequence[Any] | None = None,
    default_int64: int = -1, default_string: str = "_Unused",
) -> Any:
    """Strings to ints or ints to strings through the paired category lists."""
    ints = np.asarray(cats_int64s or [], np.int64)
    strings = _strings(cats_strings)
    if is_string(X):
        table = dict(zip(strings, ints.tolist()))
        x = np.asarray(X)
        return np.asarray([table.get(_str(v), int(default_int64)) for v in x.reshape(-1)], np.int64).reshape(x.shape)
    x = np.asarray(ctx.static(X, "input of CategoryMapper (int -> string)"))
    table = dict(zip(ints.tolist(), strings))
    return np.asarray([table.get(int(v), _str(default_string)) for v in x.reshape(-1)], dtype=object).reshape(x.shape)


@register_op("ZipMap", domain=ML)
def zip_map(ctx: OpContext, X: Any, *, classlabels_int64s: Sequence[int] | None = None,
            classlabels_strings: Sequence[Any] | None = None) -> list[dict[Any, float]]:
    """A sequence of maps `{label: score}`, one per row (eager only: maps are Python dicts)."""
    x = np.asarray(ctx.static(X, "input of ZipMap (it builds Python dicts)"), np.float32)
    labels: list[Any] = [int(v) for v in classlabels_int64s] if classlabels_int64s else _strings(classlabels_strings)
    x = x.reshape(1, -1) if x.ndim == 1 else x
    if x.shape[1] != len(labels):
        raise ModelError(f"{ctx.describe()}: {x.shape[1]} columns but {len(labels)} class labels")
    return [{label: float(v) for label, v in zip(labels, row)} for row in x]


@register_op("DictVectorizer", domain=ML)
def dict_vectorizer(ctx: OpContext, X: Any, *, int64_vocabulary: Sequence[int] | None = None,
                    string_vocabulary: Sequence[Any] | None = None) -> np.ndarray:
    """A map (or a sequence of maps) to dense rows over the vocabulary (eager only)."""
    vocab: list[Any] = [int(v) for v in int64_vocabulary] if int64_vocabulary else _strings(string_vocabulary)
    position = {k: i for i, k in enumerate(vocab)}
    rows = [X] if isinstance(X, dict) else list(X)
    if not all(isinstance(r, dict) for r in rows):
        raise ModelError(f"{ctx.describe()}: expects a map or a sequence of maps, got {type(X).__name__}")
    values = [v for r in rows for v in r.values()]
    dtype = np.asarray(values).dtype if values else np.float32
    out = np.zeros((len(rows), len(vocab)), dtype)
    for i, r in enumerate(rows):
        for k, v in r.items():
            key = _str(k) if isinstance(k, str | bytes) else int(k)
            if key in position:
                out[i, position[key]] = v
    return out
