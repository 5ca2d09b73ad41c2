"""Where multi-start work runs: in this process, in local processes, or on a cluster.

`engine=` takes

- `"serial"` (default): one process, one compilation, starts in turn;
- `"threads"` or a `concurrent.futures.ThreadPoolExecutor`: threads of this process share
  the one compilation and run starts side by side (XLA releases the GIL while it runs, so
  solver-bound starts use every core with no extra compile; starts are handed out one at a
  time, so long and short starts balance);
- `"processes"` or an int (worker count): local worker processes started with *spawn*
  (JAX and fork do not mix); each worker compiles the problem once and runs a chunk;
- any `concurrent.futures.Executor`-like object with `submit(fn, *args)` returning futures
  with `.result()`, which includes a `dask.distributed.Client`;
- the `ray` module (after `ray.init()`): chunks become `ray.remote` tasks.

Work is split into as many chunks as workers, so every worker compiles once. Problems
must pickle for the parallel engines: define the model's functions at module level.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from .errors import EngineError


def _chunks(items: Sequence[Any], n: int) -> list[list[Any]]:
    n = max(1, min(n, len(items)))
    return [list(items[i::n]) for i in range(n)]


def n_workers(engine: Any) -> int:
    """How many parallel workers an engine stands for (1 for serial)."""
    if engine is None or (isinstance(engine, str) and engine == "serial"):
        return 1
    if isinstance(engine, str) and engine in ("processes", "threads"):
        return max(1, os.cpu_count() or 1)
    if isinstance(engine, int):
        return max(1, engine)
    for attr in ("_max_workers",):
        if hasattr(engine, attr):
            return int(getattr(engine, attr))
    if hasattr(engine, "nthreads"):  # dask Client
        try:
            return max(1, sum(engine.nthreads().values()))
        except Exception:  # pragma: no cover - depends on the cluster
            return 4
    if hasattr(engine, "cluster_resources"):  # ray
        return max(1, int(engine.cluster_resources().get("CPU", 1)))
    return 4


def map_chunks(engine: Any, fn: Callable[..., list[Any]], payload: Any, items: Sequence[Any]) -> list[Any]:
    """Run `fn(payload, chunk)` over chunks of `items` on `engine`; concatenate the lists.

    `fn` must be a module-level function; `payload` and items must pickle for parallel
    engines (the error says so when they do not). Items are dealt to workers round-robin and
    the results come back worker by worker, so with a parallel engine they are *not* in the
    order of `items`: carry an index in each item when order matters.

    Example:
        >>> from concurrent.futures import ThreadPoolExecutor
        >>> from scimlkit.fit.engine import map_chunks
        >>> def square(offset, chunk):
        ...     return [(i, offset + i * i) for i in chunk]
        >>> map_chunks("serial", square, 10, [1, 2, 3])
        [(1, 11), (2, 14), (3, 19)]
        >>> with ThreadPoolExecutor(2) as pool:
        ...     sorted(map_chunks(pool, square, 10, [1, 2, 3]))
        [(1, 11), (2, 14), (3, 19)]
    """
    if engine is None or (isinstance(engine, str) and engine == "serial"):
        return fn(payload, list(items))
    if is_threads(engine):
        return _map_threads(engine, fn, payload, items)
    chunks = _chunks(items, n_workers(engine))
    try:
        blob = pickle.dumps(payload)
    except Exception as exc:
        raise EngineError(
            f"the problem cannot be sent to worker processes ({exc}); define the model's "
            "functions at module level (no lambdas or closures), or use engine='serial'"
        ) from exc
    try:
        if isinstance(engine, int) or (isinstance(engine, str) and engine == "processes"):
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=len(chunks), mp_context=ctx) as pool:
                futures = [pool.submit(_call, fn, blob, c) for c in chunks]
                parts = [f.result() for f in futures]
        elif hasattr(engine, "submit"):
            futures = [engine.submit(_call, fn, blob, c) for c in chunks]
            parts = [f.result() for f in futures]
        elif hasattr(engine, "remote") and hasattr(engine, "get"):  # the ray module
            task = engine.remote(_call)
            parts = engine.get([task.remote(fn, blob, c) for c in chunks])
        else:
            raise EngineError(
                f"unknown engine {engine!r}: use 'serial', 'threads', 'processes', a worker count, an "
                "Executor/dask Client (with .submit), or the ray module"
            )
    except EngineError:
        raise
    except Exception as exc:
        raise EngineError(f"the engine failed to run the work: {type(exc).__name__}: {exc}") from exc
    return [r for part in parts for r in part]


def is_threads(engine: Any) -> bool:
    """Whether `engine` runs in threads of this process (sharing compiled functions)."""
    return isinstance(engine, ThreadPoolExecutor) or (isinstance(engine, str) and engine == "threads")


def _map_threads(engine: Any, fn: Callable[..., list[Any]], payload: Any, items: Sequence[Any]) -> list[Any]:
    """One task per item on a thread pool, all sharing `payload` (nothing is pickled)."""
    def run(pool: ThreadPoolExecutor) -> list[Any]:
        futures = [pool.submit(fn, payload, [item]) for item in items]
        return [r for f in futures for r in f.result()]

    if isinstance(engine, ThreadPoolExecutor):
        return run(engine)
    with ThreadPoolExecutor(max_workers=min(n_workers(engine), max(len(items), 1))) as pool:
        return run(pool)


def _call(fn: Callable[..., list[Any]], blob: bytes, chunk: list[Any]) -> list[Any]:
    from . import _x64  # noqa: F401  (a fresh worker needs 64-bit JAX before unpickling arrays)

    return fn(pickle.loads(blob), chunk)
