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
