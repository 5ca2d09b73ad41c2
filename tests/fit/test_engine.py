"""Engines: the same starts give the same results serially, via an Executor, in processes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from scimlkit import fit


class _Submitter:
    """Anything with `.submit` (like a dask Client): the payload travels pickled."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool, self._max_workers = pool, pool._max_workers

    def submit(self, fn, *args):
        return self.pool.submit(fn, *args)


def test_executor_engine_matches_serial(zoo):
    pr = zoo("exponential_decay").problem
    serial = fit.estimate(pr, "lm", starts=2, seed=5)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pooled = fit.estimate(pr, "lm", starts=2, seed=5, engine=_Submitter(pool))
    assert sorted(s.index for s in pooled.starts) == [0, 1]
    np.testing.assert_allclose(sorted(s.objective for s in pooled.starts),
                               sorted(s.objective for s in serial.starts), rtol=1e-10)
    assert pooled.settings["engine"] == "_Submitter"


@pytest.mark.parametrize("engine", ["threads", "pool"])
def test_thread_engine_shares_one_compilation_and_counts_per_start(zoo, engine):
    pr = zoo("exponential_decay").problem
    serial = fit.estimate(pr, "lm", starts=6, seed=5)
    with ThreadPoolExecutor(max_workers=3) as pool:
        threaded = fit.estimate(pr, "lm", starts=6, seed=5, engine=pool if engine == "pool" else engine)
    by_index = {s.index: s for s in threaded.starts}
    assert sorted(by_index) == list(range(6))
    for s in serial.starts:  # same start, same result, whatever thread ran it
        np.testing.assert_allclose(by_index[s.index].objective, s.objective, rtol=1e-10)
        assert by_index[s.index].counts == s.counts  # each thread counts only its own calls
    assert threaded.counts == serial.counts
    # the threads reused the problem's compilation instead of unpickling copies
    assert pr.compiled._jacobian._cache_size() == 1


def test_unpicklable_problem_and_unknown_engine_raise_engine_error():
    t = np.linspace(0.5, 2, 4)
    pr = fit.Problem(fit.ODEModel(lambda t, y, p: -p["k"] * y, ["A"], stiff=False),
                     fit.Experiment(t, np.exp(-t), y0=[1.0]), [fit.Parameter("k", (0.1, 2))])
    with ThreadPoolExecutor(max_workers=1) as pool, pytest.raises(fit.EngineError, match="module level"):
        fit.estimate(pr, "lm", starts=2, engine=_Submitter(pool))
    with pytest.raises(fit.EngineError, match="unknown engine"):
        fit.estimate(fit.zoo.exponential_decay().problem, "lm", starts=2, engine="fibers")


@pytest.mark.slow
def test_process_engine_matches_serial(zoo):
    pr = zoo("exponential_decay").problem
    serial = fit.estimate(pr, "lm", starts=4, seed=5)
    procs = fit.estimate(pr, "lm", starts=4, seed=5, engine=2)
    np.testing.assert_allclose(sorted(s.objective for s in procs.starts),
                               sorted(s.objective for s in serial.starts), rtol=1e-10)
    prof = fit.profile(procs, engine=2)
    assert prof.profiles["k"].identifiable


def test_dask_client_engine_matches_serial(zoo):
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")
    pr = zoo("exponential_decay").problem
    serial = fit.estimate(pr, "lm", starts=3, seed=5)
    # A real scheduler and two workers; threads keep the test quick (a process cluster would
    # start two more JAX interpreters on CI's two cores).
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        clustered = fit.estimate(pr, "lm", starts=3, seed=5, engine=client)
    assert sorted(s.index for s in clustered.starts) == [0, 1, 2]
    np.testing.assert_allclose([s.objective for s in sorted(clustered.starts, key=lambda s: s.index)],
                               [s.objective for s in sorted(serial.starts, key=lambda s: s.index)], rtol=1e-10)
    assert clustered.settings["engine"] == "Client"


@pytest.mark.slow
def test_ray_engine_matches_serial(zoo):
    ray = pytest.importorskip("ray", reason="ray is not installed")
    pr = zoo("exponential_decay").problem
    serial = fit.estimate(pr, "lm", starts=2, seed=5)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = fit.estimate(pr, "lm", starts=2, seed=5, engine=ray)
    finally:
        ray.shutdown()
    np.testing.assert_allclose([s.objective for s in sorted(on_ray.starts, key=lambda s: s.index)],
                               [s.objective for s in sorted(serial.starts, key=lambda s: s.index)], rtol=1e-10)
