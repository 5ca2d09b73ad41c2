"""Control flow: If, Loop and Scan, lowered to `lax.cond`, `lax.scan` and `lax.while_loop`.

Subgraphs run through `ctx.subgraph(graph, inputs)` (the runtime's `run_graph`), which also
resolves the names a body reads from the enclosing scope. Each op first tries a structured JAX lowering
(one trace of the body, jit- and grad-friendly) and, when the body cannot be expressed
that way (a loop-carried value changes shape, a loop with scan outputs stops on a
data-dependent condition, a body op needs concrete values) and nothing is being traced,
falls back to running the body eagerly, iteration by iteration, as ONNX Runtime would.
Under tracing that fallback is impossible and a `DynamicShapeError` explains why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import DynamicShapeError, ModelError
from ..graph import Graph
from ._registry import OpContext, is_static, onnx_versions, register_op
from ._util import normalize_axis


class _NotStructured(Exception):
    """The body cannot be run with a structured JAX loop (fall back to eager)."""


class _DynamicCondition(_NotStructured):
    """The loop body computes its own continue condition (needs a while loop)."""


def _leaves(tree: Any) -> list[Any]:
    return jax.tree_util.tree_leaves(tree, is_leaf=lambda x: x is None)


def _traced(*trees: Any) -> bool:
    """True if any array in the given pytrees is a JAX tracer."""
    return any(isinstance(leaf, jax.core.Tracer) for tree in trees for leaf in _leaves(tree))


def _to_jax(tree: Any) -> Any:
    """Convert every NumPy leaf of a pytree (lists = ONNX sequences) into a JAX array."""
    def conv(x: Any) -> Any:
        if x is None or isinstance(x, jax.Array):
            return x
        arr = np.asarray(x)
        if arr.dtype.kind in "OUS":
            raise _NotStructured("string tensors cannot be carried through a JAX loop")
        return jnp.asarray(arr)

    return jax.tree_util.tree_map(conv, tree, is_leaf=lambda x: x is None)


def _match(new: Any, like: Any, what: str) -> Any:
    """Cast `new` to the structure, dtypes and shapes of `like` (the loop carry), or give up."""
    new = _to_jax(new)
    new_leaves, new_def = jax.tree_util.tree_flatten(new, is_leaf=lambda x: x is None)
    old_leaves, old_def = jax.tree_util.tree_flatten(like, is_leaf=lambda x: x is None)
    if new_def != old_def:
        raise _NotStructured(f"{what} changes structure between iterations")
    out = []
    for n, o in zip(new_leaves, old_leaves):
        if n is None or o is None:
            if n is not o:
                raise _NotStructured(f"{what} changes between empty and non-empty")
            out.append(None)
            continue
        if tuple(n.shape) != tuple(o.shape):
            raise _NotStructured(f"{what} changes shape from {tuple(o.shape)} to {tuple(n.shape)}")
        out.append(n.astype(o.dtype) if n.dtype != o.dtype else n)
    return jax.tree_util.tree_unflatten(old_def, out)


def _static_bool(value: Any) -> bool | None:
    """The truth value of a 1-element condition if known now (None if traced)."""
    if value is None:
        return None
    if is_static(value) or not isinstance(value, jax.core.Tracer):
        return bool(np.asarray(value).reshape(-1)[0])
    return None


def _outputs(values: Sequence[Any]) -> Any:
    values = list(values)
    return values[0] if len(values) == 1 else tuple(values)


# --------------------------------------------------------------------------- If


@register_op("If")
def if_(ctx: OpContext, cond: Any, *, then_branch: Graph, else_branch: Graph) -> Any:
    """Run one branch: a Python choice when `cond` is known, `lax.cond` when it is traced."""
    choice = _static_bool(cond)
    if choice is not None:
        return _outputs(ctx.subgraph(then_branch if choice else else_branch, []))

    pred = jnp.asarray(cond).reshape(-1)[0].astype(bool)
    try:
        then_shape = jax.eval_shape(lambda: _to_jax(ctx.subgraph(then_branch, [])))
        else_shape = jax.eval_shape(lambda: _to_jax(ctx.subgraph(else_branch, [])))
    except _NotStructured as exc:
        raise DynamicShapeError(f"{ctx.describe()}: cannot trace its branches ({exc}); run the model eagerly") from exc
    t_leaves, t_def = jax.tree_util.tree_flatten(then_shape, is_leaf=lambda x: x is None)
    e_leaves, e_def = jax.tree_util.tree_flatten(else_shape, is_leaf=lambda x: x is None)
    if t_def != e_def or any(
        (a is None) != (b is None) or (a is not None and tuple(a.shape) != tuple(b.shape))
        for a, b in zip(t_leaves, e_leaves)
    ):
        raise DynamicShapeError(
            f"{ctx.describe()}: its condition depends on the input data and its branches return "
            f"values of different shapes ({t_leaves} vs {e_leaves}), so the output shape is unknown while "
            "tracing (jax.jit, jax.grad). Run the model eagerly."
        )

    def branch(graph: Graph, cast_like: Any) -> Callable[[], Any]:
        def fn() -> Any:
            out = _to_jax(ctx.subgraph(graph, []))
            return jax.tree_util.tree_map(
                lambda x, s: None if x is None else x.astype(s.dtype), out, cast_like, is_leaf=lambda x: x is None
            )
        return fn

    result = jax.lax.cond(pred, branch(then_branch, then_shape), branch(else_branch, then_shape))
    return _outputs(result)


# --------------------------------------------------------------------------- Loop


def _loop_eager(ctx: OpContext, body: Graph, trip: int | None, cond: bool, carried: list[Any], k: int) -> Any:
    n = len(carried)
    scans: list[list[Any]] = [[] for _ in range(k)]
    it = 0
    keep = cond
    while keep and (trip is None or it < trip):
        outs = ctx.subgraph(body, [np.array(it, np.int64), np.array(keep), *carried])
        keep_value = _static_bool(outs[0])
        if keep_value is None:
            raise DynamicShapeError(
                f"{ctx.describe()}: its loop condition depends on traced values and its carried values "
                "or scan outputs change shape; run the model eagerly"
            )
        keep = keep_value
        carried = outs[1 : 1 + n]
        for j in range(k):
            scans[j].append(outs[1 + n + j])
        it += 1
    stacked = []
    for j, values in enumerate(scans):
        if values:
            stacked.append(jnp.stack([jnp.asarray(v) for v in values]) if not all(map(is_static, values))
                           else np.stack([np.asarray(v) for v in values]))
        else:
            stacked.append(_empty_scan_output(ctx, body, carried, j, n))
    return _outputs([*carried, *stacked])


def _empty_scan_output(ctx: OpContext, body: Graph, carried: list[Any], j: int, n: int) -> Any:
    """A zero-iteration scan output: shape [0, *per-iteration shape] when the body can tell."""
    try:
        shapes = jax.eval_shape(
            lambda: _to_jax(ctx.subgraph(body, [np.array(0, np.int64), np.array(True), *carried]))
        )
        s = shapes[1 + n + j]
        return jnp.zeros((0, *s.shape), s.dtype)
    except Exception:  # the body cannot even be traced on these values: an empty float tensor
        dtype = body.outputs[1 + n + j].dtype if body.outputs[1 + n + j].dtype is not None else np.float32
        return np.zeros((0,), dtype)


def _loop_scan(ctx: OpContext, body: Graph, trip: int, carried: list[Any], k: int) -> Any:
    """A fixed number of iterations whose condition stays statically true: `lax.scan`."""
    n = len(carried)
    init = _to_jax(carried)

    def step(carry: tuple[jax.Array, list[Any]], _: Any) -> tuple[Any, list[Any]]:
        i, values = carry
        outs = ctx.subgraph(body, [i, np.array(True), *values])
        keep = _static_bool(outs[0])
        if keep is not True or isinstance(outs[0], jax.core.Tracer):
            raise _DynamicCondition("the loop condition is computed in the body")
        new_values = _match(outs[1 : 1 + n], values, "a loop-carried value")
        scans = _to_jax(outs[1 + n :])
        return (i + 1, new_values), scans

    (_, final), ys = jax.lax.scan(step, (jnp.asarray(0, _index_dtype()), init), None, length=trip)
    return _outputs([*final, *ys])


def _loop_while(ctx: OpContext, body: Graph, trip: Any, cond: Any, carried: list[Any]) -> Any:
    """A data-dependent number of iterations without scan outputs: `lax.while_loop`."""
    n = len(carried)
    keep0 = jnp.asarray(True) if cond is None else jnp.asarray(cond).reshape(-1)[0].astype(bool)
    init = (jnp.asarray(0, _index_dtype()), keep0, _to_jax(carried))
    index_max = np.iinfo(np.int64 if jax.config.jax_enable_x64 else np.int32).max
    if trip is None:
        limit = None
    elif isinstance(trip, jax.core.Tracer):
        limit = jnp.asarray(trip).reshape(-1)[0].astype(_index_dtype())
    else:  # often INT64_MAX ("no limit") from exporters: clamp before it meets a 32-bit index
        limit = jnp.asarray(min(int(np.asarray(trip).reshape(-1)[0]), index_max), _index_dtype())

    def cond_fn(state: Any) -> jax.Array:
        i, keep, _ = state
        return keep if limit is None else jnp.logical_and(keep, i < limit)

    def body_fn(state: Any) -> Any:
        i, keep, values = state
        outs = ctx.subgraph(body, [i, keep, *values])
        new_keep = jnp.asarray(outs[0]).reshape(-1)[0].astype(bool)
        return i + 1, new_keep, _match(outs[1 : 1 + n], values, "a loop-carried value")

    _, _, final = jax.lax.while_loop(cond_fn, body_fn, init)
    return _outputs(list(final))


_MAX_SCAN_LENGTH = 1 << 24  # larger static trip counts ("no limit" sentinels) go to lax.while_loop


def _index_dtype() -> Any:
    return jnp.int64 if jax.config.jax_enable_x64 else jnp.int32


@register_op("Loop")
def loop(ctx: OpContext, M: Any = None, cond: Any = None, *v_initial: Any, body: Graph) -> Any:
    """Generic loop: trip count `M` and/or condition, loop-carried values and scan outputs."""
    carried = list(v_initial)
    n = len(carried)
    k = len(body.outputs) - 1 - n
    if k < 0:
        raise ModelError(f"{ctx.describe()}: its body has {len(body.outputs)} outputs for {n} loop-carried values")
    trip = None
    if M is not None and not isinstance(M, jax.core.Tracer):
        trip = int(np.asarray(M).reshape(-1)[0])
    first = True if cond is None else _static_bool(cond)

    if first is False or trip == 0:
        return _loop_eager(ctx, body, trip, False, carried, k)
    try:
        if first is True and trip is not None and trip <= _MAX_SCAN_LENGTH:
            try:
                return _loop_scan(ctx, body, trip, carried, k)
            except _DynamicCondition:
                if k:
                    raise
        if k:
            raise _NotStructured("scan outputs of a loop with a data-dependent stop")
        return _loop_while(ctx, body, M, cond, carried)
    except (_NotStructured, DynamicShapeError) as exc:
        if _traced(M, cond, carried) or first is None:
            raise DynamicShapeError(
                f"{ctx.describe()}: cannot be traced as a JAX loop ({exc}); run the model eagerly"
            ) from exc
    try:
        return _loop_eager(ctx, body, trip, bool(first), carried, k)
    except jax.errors.ConcretizationTypeError as exc:
        raise DynamicShapeError(f"{ctx.describe()}: its condition depends on traced values; run eagerly") from exc


# --------------------------------------------------------------------------- Scan


def _scan_core(
    ctx: OpContext,
    body: Graph,
    states: list[Any],
    xs: list[Any],
    out_directions: Sequence[int],
    k: int,
) -> tuple[list[Any], list[Any]]:
    """Scan over axis 0 of every `xs` (already moved and reversed); outputs stacked on axis 0."""
    n = len(states)
    length = int(np.shape(xs[0])[0]) if xs else 0
    try:
        init = _to_jax(states)

        def step(carry: list[Any], x: list[Any]) -> tuple[list[Any], list[Any]]:
            outs = ctx.subgraph(body, [*carry, *x])
            return _match(outs[:n], carry, "a scan state"), _to_jax(outs[n:])

        final, ys = jax.lax.scan(step, init, _to_jax(xs), length=length)
        final, ys = list(final), list(ys)
    except (_NotStructured, DynamicShapeError) as exc:
        if _traced(states, xs):
            raise DynamicShapeError(f"{ctx.describe()}: cannot be traced as a JAX scan ({exc})") from exc
        final, ys = list(states), [[] for _ in range(k)]
        for t in range(length):
            outs = ctx.subgraph(body, [*final, *(x[t] for x in xs)])
            final = outs[:n]
            for j in range(k):
                ys[j].append(outs[n + j])
        ys = [jnp.stack([jnp.asarray(v) for v in y]) for y in ys]
    ys = [jnp.flip(y, 0) if d else y for y, d in zip(ys, out_directions)]
    return final, ys


@register_op("Scan", since=tuple(v for v in onnx_versions("Scan") if v >= 9))
def scan(
    ctx: OpContext,
    *inputs: Any,
    body: Graph,
    num_scan_inputs: int,
    scan_input_axes: Sequence[int] | None = None,
    scan_input_directions: Sequence[int] | None = None,
    scan_output_axes: Sequence[int] | None = None,
    scan_output_directions: Sequence[int] | None = None,
) -> Any:
    """Scan (opset 9+): iterate a body over slices of the scan inputs along their scan axes."""
    n = len(inputs) - num_scan_inputs
    k = len(body.outputs) - n
    states, scans = list(inputs[:n]), list(inputs[n:])
    in_axes = list(scan_input_axes or [0] * num_scan_inputs)
    in_dirs = list(scan_input_directions or [0] * num_scan_inputs)
    out_axes = list(scan_output_axes or [0] * k)
    out_dirs = list(scan_output_directions or [0] * k)
    xs = []
    for x, axis, d in zip(scans, in_axes, in_dirs):
        mod = np if is_static(x) else jnp
        x = mod.moveaxis(x, normalize_axis(axis, np.ndim(x), "scan_input_axes"), 0)
        xs.append(mod.flip(x, 0) if d else x)
    final, ys = _scan_core(ctx, body, states, xs, out_dirs, k)
    ys = [jnp.moveaxis(y, 0, normalize_axis(a, y.ndim, "scan_output_axes")) for y, a in zip(ys, out_axes)]
    return _outputs([*final, *ys])


@register_op("Scan", since=(8,))
def scan_v8(
    ctx: OpContext,
    sequence_lens: Any,
    *inputs: Any,
    body: Graph,
    num_scan_inputs: int,
    directions: Sequence[int] | None = None,
) -> Any:
    """Scan (opset 8): a leading batch axis on every input, the scan axis is 1."""
    n = len(inputs) - num_scan_inputs
    k = len(body.outputs) - n
    states, scans = list(inputs[:n]), list(inputs[n:])
    dirs = list(directions or [0] * num_scan_inputs)
    batch = int(np.shape(scans[0])[0])
    seq = int(np.shape(scans[0])[1])
    lengths = [seq] * batch if sequence_lens is None else [int(v) for v in ctx.static(sequence_lens, "sequence_lens")]
    finals: list[list[Any]] = []
    outs: list[list[Any]] = []
    for b in range(batch):
        xs = []
        for x, d in zip(scans, dirs):
            xb = x[b, : lengths[b]]
            xs.append(xb[::-1] if d else xb)
        final, ys = _scan_core(ctx, body, [s[b] for s in states], xs, [0] * k, k)
        finals.append(final)
        outs.append([jnp.pad(y, [(0, seq - lengths[b])] + [(0, 0)] * (y.ndim - 1)) for y in ys])
    result = [jnp.stack([jnp.asarray(f[i]) for f in finals]) for i in range(n)]
    result += [jnp.stack([o[j] for o in outs]) for j in range(k)]
    return _outputs(result)
