"""``netlm batch --scheduler``: the same per-study function on a Dask distributed cluster.

The cluster is a real ``distributed.LocalCluster`` with 2 worker processes
started by the test; its CSV must equal the local -j 1 run's byte for byte
apart from the run columns (elapsed_s, resumed), and so must the reports.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netlm_imaging.batch import discover_cohort, run_cohort
from netlm_imaging.cli import main
from tests.test_batch import BROKEN, read_rows, without_run_columns, write_cohort

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None, host="127.0.0.1"
    ) as c:
        yield c


def test_dask_equals_local(tmp_path: Path, cluster) -> None:
    root = tmp_path / "cohort"
    root.mkdir()
    truths = write_cohort(root)
    local = tmp_path / "local"
    assert run_cohort(discover_cohort(root), local, jobs=1).exit_code == 4
    dask_out = tmp_path / "dask"
    code = main(["batch", str(root), "--out", str(dask_out), "--scheduler", cluster.scheduler_address, "--quiet"])
    assert code == 4
    assert without_run_columns(dask_out / "cohort.csv") == without_run_columns(local / "cohort.csv")
    rows = read_rows(dask_out / "cohort.csv")
    assert sum(r["status"] == "ok" for r in rows) == 18
    assert {r["study_id"] for r in rows if r["status"] == "failed"} == set(BROKEN)
    for sid, t in truths.items():
        a = json.loads((dask_out / "reports" / f"{sid}.json").read_text())
        assert a == json.loads((local / "reports" / f"{sid}.json").read_text())
        assert a["liver"]["volume_ml"] == pytest.approx(t["liver_volume_ml"], rel=1e-3)
    # both workers took part
    with distributed.Client(cluster.scheduler_address) as client:
        processed = client.run(lambda dask_worker: len(dask_worker.data) + dask_worker.state.transition_counter)
    assert len(processed) == 2
    assert all(v > 0 for v in processed.values())
    # resume through the cluster does no work
    result = run_cohort(discover_cohort(root), dask_out, scheduler=cluster.scheduler_address, resume=True)
    assert (result.analysed, result.resumed) == (0, 20)


def _caps() -> tuple[int, int, int]:
    """(analysis threads, lesion threads, BLAS threads) of the process this runs in."""
    from threadpoolctl import threadpool_info

    from netlm_imaging.measure.burden import lesion_threads
    from netlm_imaging.threads import analysis_threads

    blas = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return analysis_threads(), lesion_threads(), min(blas) if blas else 1


def test_dask_workers_share_their_hosts_cores(tmp_path: Path) -> None:
    # one worker process running 2 analyses at once (2 threads): each analysis gets cores // 2 threads
    # for its lesions, reads and memory passes and BLAS, as a -j 2 pool worker does
    import os

    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: every share is one thread")
    root = tmp_path / "cohort"
    root.mkdir()
    write_cohort(root)
    studies = discover_cohort(root)[:3]
    share = max(1, (os.cpu_count() or 1) // 2)
    with distributed.LocalCluster(
        n_workers=1, processes=True, threads_per_worker=2, dashboard_address=None, host="127.0.0.1"
    ) as one:
        with distributed.Client(one.scheduler_address) as client:
            before = next(iter(client.run(_caps).values()))
            run_cohort(studies, tmp_path / "out", scheduler=one.scheduler_address)
            after = next(iter(client.run(_caps).values()))
    assert max(before) > share  # the worker started with more threads than its share (the case under test)
    assert all(n <= share for n in after), after
