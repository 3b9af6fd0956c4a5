"""The Dask mode of ``netlm batch --scheduler ADDRESS``: the per-study task on a distributed cluster.

Workers write the reports themselves, so the output folder and the study folders must be on a
file system every worker sees. Each task caps its threads at its share of its host's cores
(:func:`netlm_imaging.batch.pool.share_cores`, with the scheduler's count of worker threads
per host), as a local pool worker does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from .cohort import Study
from .options import BatchOptions
from .pool import Task, WorkerDied, share_cores

__all__ = ["allowed_failures", "dask_results"]


def _dask_task(
    study: Study, *, task: Task, out_dir: str, options: BatchOptions, threads_by_host: dict[str, int]
) -> dict[str, Any]:
    """``task`` (:func:`~netlm_imaging.batch.runner.analyze_one`) on a Dask worker, its threads capped
    at the worker's share of its host's cores.

    ``threads_by_host`` is the scheduler's count of worker threads per host (every worker process
    on a host runs that many analyses at once); a worker that joined later counts its own threads.
    """
    from distributed import get_worker

    worker = get_worker()
    host = str(worker.address).rsplit(":", 1)[0]
    own = int(getattr(getattr(worker, "state", None), "nthreads", 0) or getattr(worker, "nthreads", 1) or 1)
    share_cores(max(own, threads_by_host.get(host, own)))
    return task(study, out_dir, options)


def _threads_by_host(client: Any) -> dict[str, int]:
    """Worker threads per host address (``tcp://10.0.0.5``) as the scheduler knows them now."""
    out: dict[str, int] = {}
    with contextlib.suppress(Exception):  # an older scheduler without this info: each worker counts itself
        for address, info in client.scheduler_info().get("workers", {}).items():
            host = str(address).rsplit(":", 1)[0]
            out[host] = out.get(host, 0) + int(info.get("nthreads", 1) or 1)
    return out


def dask_results(
    task: Task,
    studies: Sequence[Study],
    out_dir: Path,
    options: BatchOptions,
    scheduler: Any,
    connect_timeout_s: float,
) -> Iterable[tuple[Study, dict[str, Any] | BaseException]]:
    """(study, row or exception) in completion order, from a Dask distributed cluster."""
    import uuid

    from distributed import Client, as_completed

    own = not isinstance(scheduler, Client)
    try:
        client = Client(scheduler, set_as_default=False, timeout=connect_timeout_s) if own else scheduler
    except OSError as exc:
        raise InputError(
            f"cannot reach the Dask scheduler at {scheduler} ({exc}); check --scheduler ADDRESS "
            "(e.g. tcp://host:8786) and that the scheduler is running"
        ) from None
    try:
        with client.as_current():
            run_id = uuid.uuid4().hex[:8]
            keys = [f"netlm-analyze-{s.study_id}-{run_id}" for s in studies]
            hosts = _threads_by_host(client)
            futures = client.map(
                _dask_task,
                list(studies),
                task=task,
                out_dir=str(out_dir),
                options=options,
                threads_by_host=hosts,
                key=keys,
            )
            by_key = {f.key: s for f, s in zip(futures, studies)}
            try:
                for fut in as_completed(futures):
                    try:
                        yield by_key[fut.key], fut.result()
                    except Exception as exc:  # KilledWorker, lost connection: recorded, retried on resume
                        if type(exc).__name__ == "KilledWorker":  # the scheduler's allowed-failures ran out
                            exc = WorkerDied(allowed_failures(client) + 1)
                        yield by_key[fut.key], exc
            except BaseException:
                client.cancel(futures)
                raise
    finally:
        if own:
            client.close()


def allowed_failures(client: Any) -> int:
    """The scheduler's ``distributed.scheduler.allowed-failures`` (worker deaths a task survives)."""
    try:
        return int(client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures))
    except Exception:
        import dask

        return int(dask.config.get("distributed.scheduler.allowed-failures", 3))
