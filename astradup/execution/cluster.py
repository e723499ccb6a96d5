"""Dask clusters: a LocalCluster by default, any scheduler address, or dask-cuda on GPU hosts.

This is the only package module that imports dask.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from astradup.errors import ConfigError

log = logging.getLogger(__name__)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def local_cluster_config() -> dict:
    """Dask settings for the LocalCluster (scheduler in this process, one worker per core).
    None of them changes what is computed; all were measured on the short-clip benchmark
    (benchmarks/RESULTS.md, "Short clips"):

    * Distributed starts workers with ``MALLOC_TRIM_THRESHOLD_=65536`` (to hand freed memory
      back to the OS sooner), which also pins glibc's mmap threshold, so every array over 128 KB
      (each video's frames, their float copies, every temporary) is a fresh mmap, page faults and
      munmap: 22% more CPU time for extraction on short clips. The workers keep glibc's defaults
      instead; the thread settings (one thread: ``OMP_NUM_THREADS=1`` and friends) stay.
    * The workers' statistical profiler samples every thread's stack every 10 ms by default,
      which took the GIL often enough to cost about a tenth of the extraction's CPU time; it
      samples every 100 ms here (the performance report still has a profile, coarser).
    * Housekeeping timers (event-loop tick 20 ms, memory monitor 100 ms, system monitor
      500 ms) cost an idle two-worker cluster about 0.13 s of CPU a second, taken from the
      extraction on a small machine; here they run at 200 ms, 1 s and 2 s (a worker over its
      memory limit is caught within a second instead of 0.1 s).
    """
    import dask
    import distributed  # noqa: F401 - registers distributed's defaults in dask.config

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    return {
        "distributed.nanny.pre-spawn-environ": env,
        "distributed.worker.profile.interval": "100ms",
        "distributed.admin.tick.interval": "200ms",
        "distributed.worker.memory.monitor-interval": "1s",
        "distributed.admin.system-monitor.interval": "2s",
    }


@contextmanager
def dask_client(scheduler: str | None = None, gpus: bool = False, workers: int | None = None) -> Iterator:
    """Yield a ``distributed.Client``.

    Args:
        scheduler: ``None`` for a LocalCluster sized to the machine; ``tcp://HOST:PORT`` for an
            existing cluster of any size.
        gpus: start dask-cuda's LocalCUDACluster (one worker per GPU; the ``gpu`` extra).
        workers: LocalCluster worker processes (default: one per core).
    """
    import dask
    from distributed import Client, LocalCluster

    # the scheduler runs in this process: keep its INFO chatter out of the user's terminal
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core", "distributed.http.proxy"):
        logging.getLogger(name).setLevel(logging.ERROR)
    cluster = None
    if scheduler:
        if gpus:
            raise ConfigError("--gpus starts a local GPU cluster; it cannot be combined with --scheduler")
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise ConfigError(f"cannot reach Dask scheduler {scheduler} ({exc})") from exc
    else:
        if gpus:
            try:
                from dask_cuda import LocalCUDACluster
            except ImportError as exc:
                raise ConfigError("--gpus needs dask-cuda: pip install 'astradup[gpu]' on a GPU host") from exc
            cluster = LocalCUDACluster()
        else:
            n = workers or default_workers()
            with dask.config.set(local_cluster_config()):
                cluster = LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                    silence_logs=logging.ERROR,
                )
        client = Client(cluster)
    try:
        link = client.dashboard_link
        log.info("Dask dashboard: %s", link)
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextmanager
def performance_report(path: str | os.PathLike[str]) -> Iterator[None]:
    """Save Dask's performance report (task stream, worker profile, bandwidth) as HTML at ``path``
    for the work done inside the block, on the current client. Without bokeh (which renders it)
    the block runs and a warning says why no report was written."""
    try:
        import bokeh  # noqa: F401 - distributed renders the report with it
        from distributed import performance_report as _report
    except ImportError:
        log.warning("no Dask performance report: it needs bokeh (pip install bokeh)")
        yield
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with _report(filename=os.fspath(path)):
        yield
