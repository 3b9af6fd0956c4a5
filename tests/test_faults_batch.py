"""Faults around a batch: dying workers (process pool and Dask), a second run on one --out, stale temp files,
a full disk.

Workers are killed with a real SIGKILL (what the out-of-memory killer sends) from inside the worker
process, at the start of chosen studies, chosen with a seeded generator. The local pool forks its
workers (the default start method), so the patched study function reaches them; Dask workers are
separate processes, so there a worker plugin sends the signal. Expected rows come from an
uninterrupted -j 1 run of the same cohort (the analytic truths of tests/test_batch.py back those).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netlm_imaging.atomic import output_error
from netlm_imaging.batch import discover_cohort, pool, records, run_cohort, runner
from netlm_imaging.cli import main
from netlm_imaging.errors import OutputError
from netlm_imaging.report import outputs
from tests.test_batch import BROKEN, read_rows, without_run_columns, write_cohort

ROOT = Path(__file__).resolve().parents[1]
N_GOOD = 8


@pytest.fixture(scope="module")
def small_cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """8 good + 2 broken studies and an uninterrupted -j 1 run over them."""
    root = tmp_path_factory.mktemp("cohort")
    write_cohort(root, n_good=N_GOOD)
    ref = tmp_path_factory.mktemp("ref")
    assert run_cohort(discover_cohort(root), ref, jobs=1).exit_code == 4
    return root, ref


def _killing_analyze(monkeypatch: pytest.MonkeyPatch, marks: Path, once: set[str], always: set[str]) -> None:
    """Patch the per-study work so a worker SIGKILLs itself on the chosen studies (forked workers inherit it)."""
    real = runner._analyze
    parent = os.getpid()
    marks.mkdir(exist_ok=True)

    def analyze(study, out_dir, options, fingerprint):
        if os.getpid() != parent:
            sid = study.study_id
            (marks / f"{sid}.{time.monotonic_ns()}").touch()
            if sid in always or (sid in once and len(list(marks.glob(f"{sid}.*"))) == 1):
                os.kill(os.getpid(), signal.SIGKILL)
        return real(study, out_dir, options, fingerprint)

    monkeypatch.setattr(runner, "_analyze", analyze)


def _deaths(marks: Path, sid: str) -> int:
    return len(list(marks.glob(f"{sid}.*")))


def test_pool_survives_worker_death_and_records_a_study_that_kills_twice(small_cohort, tmp_path, monkeypatch):
    root, ref = small_cohort
    marks = tmp_path / "marks"
    _killing_analyze(monkeypatch, marks, once={"s02"}, always={"s05"})
    out = tmp_path / "out"
    result = run_cohort(discover_cohort(root), out, jobs=2)
    rows = {r["study_id"]: r for r in read_rows(out / "cohort.csv")}
    ref_rows = {r["study_id"]: r for r in read_rows(ref / "cohort.csv")}
    # every study but the one that always kills its worker ends as in the uninterrupted run
    for sid, r in ref_rows.items():
        if sid == "s05":
            continue
        for col in runner.CSV_COLUMNS:
            if col not in runner.RUN_COLUMNS:
                assert rows[sid][col] == r[col], (sid, col)
    assert rows["s05"]["status"] == "failed"
    assert rows["s05"]["error"].startswith("worker died: out of memory?")
    assert "killed 2 times" in rows["s05"]["error"]
    assert _deaths(marks, "s05") == pool.MAX_WORKER_DEATHS  # tried exactly twice, then recorded
    assert _deaths(marks, "s02") == 2  # killed once, re-queued, then finished
    record = json.loads((out / "reports" / "s05.failed.json").read_text())
    assert record["retry"] is True  # --resume tries it again
    assert result.failed == 3
    assert result.ok == N_GOOD - 1


def test_seeded_chaos_kills_leave_the_csv_of_an_uninterrupted_run(small_cohort, tmp_path, monkeypatch):
    root, ref = small_cohort
    rng = random.Random(16)
    ids = [f"s{n:02d}" for n in range(N_GOOD)]
    once = set(rng.sample(ids, 4))
    marks = tmp_path / "marks"
    _killing_analyze(monkeypatch, marks, once=once, always=set())
    out = tmp_path / "out"
    code = main(["batch", str(root), "--out", str(out), "-j", "2", "--quiet"])
    assert code == 4  # only the two broken inputs fail
    assert without_run_columns(out / "cohort.csv") == without_run_columns(ref / "cohort.csv")
    assert all(_deaths(marks, sid) == 2 for sid in once)
    for sid in ids:
        assert json.loads((out / "reports" / f"{sid}.json").read_text()) == json.loads(
            (ref / "reports" / f"{sid}.json").read_text()
        )
    assert [p.name for p in out.rglob("*.tmp")] == []


def test_second_run_on_one_out_is_refused_with_the_holders_pid(small_cohort, tmp_path, capfd):
    root, _ref = small_cohort
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from netlm_imaging.outdir import OutputLock\n"
            f"l = OutputLock({str(out)!r}, command='netlm batch').acquire(); print('locked', flush=True); "
            "time.sleep(60)",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        capfd.readouterr()
        code = main(["batch", str(root), "--out", str(out), "--quiet"])
        err = capfd.readouterr().err
        assert code == 3
        assert f"PID {holder.pid}" in err
        assert "started 20" in err
        assert str(out) in err
        assert len(err.strip().splitlines()) == 1
        assert not (out / "cohort.csv").exists()  # the second run wrote nothing
    finally:
        holder.kill()
        holder.wait()
    # the holder was killed: its lock is stale and the next run takes it over
    assert main(["batch", str(root), "--out", str(out), "--quiet"]) == 4
    assert len(read_rows(out / "cohort.csv")) == N_GOOD + len(BROKEN)
    assert not (out / ".netlm.lock").exists()


def test_stale_lock_file_of_a_dead_pid_and_stale_temp_files_are_cleaned(small_cohort, tmp_path):
    root, ref = small_cohort
    out = tmp_path / "out"
    assert run_cohort(discover_cohort(root), out, jobs=1).exit_code == 4
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".netlm.lock").write_text(json.dumps({"pid": dead.pid, "started": "2026-01-01T00:00:00Z"}))
    stale = [out / "reports" / ".s01.json.a1b2c3d4.tmp", out / ".cohort.csv.zz99yy88.tmp"]
    for p in stale:
        p.write_text("{ partial")
    keep = out / "reports" / "notes.tmp"  # not one of ours: left alone
    keep.write_text("user file")
    result = run_cohort(discover_cohort(root), out, jobs=1, resume=True)
    assert (result.analysed, result.resumed) == (0, N_GOOD + len(BROKEN) - 2) or result.resumed >= N_GOOD
    assert not any(p.exists() for p in stale)
    assert keep.exists()
    assert without_run_columns(out / "cohort.csv") == without_run_columns(ref / "cohort.csv")


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 40 KiB tmpfs (needs root and mount rights; else the test skips and the /dev/full variant runs)."""
    mnt = tmp_path / "small_disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({res.stderr.strip()[:80]}); the /dev/full test covers ENOSPC")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_on_a_real_small_disk_stops_cleanly(small_cohort, small_disk, capfd):
    root, ref = small_cohort
    out = small_disk / "out"
    capfd.readouterr()
    code = main(["batch", str(root), "--out", str(out), "--quiet"])
    err = capfd.readouterr().err.strip()
    assert code == 3
    assert len(err.splitlines()) == 1
    assert "No space left on device" in err
    assert "--resume" in err
    assert "internal error" not in err
    assert "Traceback" not in err
    # whatever cohort.csv says finished has its file; nothing half-written is left beside them
    if (out / "cohort.csv").exists():
        for r in read_rows(out / "cohort.csv"):
            if r["status"] == "ok":
                assert json.loads((out / "reports" / f"{r['study_id']}.json").read_text())["batch"]
    assert [p.name for p in out.rglob("*.tmp")] == []
    assert not (out / ".netlm.lock").exists()
    # space freed: --resume completes to the CSV of an uninterrupted run
    subprocess.run(["mount", "-o", "remount,size=4m", str(small_disk)], check=True)
    assert main(["batch", str(root), "--out", str(out), "--quiet", "--resume"]) == 4
    assert without_run_columns(out / "cohort.csv") == without_run_columns(ref / "cohort.csv")


def test_disk_full_stops_the_batch_cleanly(small_cohort, tmp_path, monkeypatch):
    """A real ENOSPC from /dev/full: the fourth report's bytes go there (as on a full disk)."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    root, ref = small_cohort
    out = tmp_path / "out"
    real_write = records.atomic_write_text
    count = {"n": 0}

    def write(path, text):
        p = Path(path)  # a report, or its staged temporary (.<id>.json.<tag>.tmp, renamed once the set is written)
        if p.parent.name == "reports" and ".json" in p.name and ".failed.json" not in p.name:
            count["n"] += 1
            if count["n"] > 3:
                with open("/dev/full", "w") as fh:  # the kernel's ENOSPC, through the package's error mapping
                    try:
                        fh.write(text)
                        fh.flush()
                    except OSError as exc:
                        raise output_error(p, exc) from None
        real_write(path, text)

    monkeypatch.setattr(records, "atomic_write_text", write)  # the failure records
    monkeypatch.setattr(outputs, "atomic_write_text", write)  # the reports go through the one writer
    code = main(["batch", str(root), "--out", str(out), "--quiet"])
    assert code == 3
    rows = read_rows(out / "cohort.csv")
    done = [r for r in rows if r["status"] != "pending"]
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 3  # the three written reports are recorded; nothing after the failure was attempted
    assert all(r["status"] in ("ok", "failed") for r in done)
    assert all((out / "reports" / f"{r['study_id']}.json").is_file() for r in ok)
    assert not (out / ".netlm.lock").exists()
    # after freeing space, --resume finishes the rest: the CSV of an uninterrupted run
    monkeypatch.setattr(records, "atomic_write_text", real_write)
    monkeypatch.setattr(outputs, "atomic_write_text", real_write)
    assert main(["batch", str(root), "--out", str(out), "--quiet", "--resume"]) == 4
    assert without_run_columns(out / "cohort.csv") == without_run_columns(ref / "cohort.csv")


def test_disk_full_message_names_the_path(tmp_path, capfd):
    from netlm_imaging.atomic import output_error

    try:
        with open("/dev/full", "w") as fh:
            fh.write("x" * 10)
            fh.flush()
    except OSError as exc:
        err = output_error(tmp_path / "reports" / "a.json", exc)
    assert isinstance(err, OutputError)
    assert err.disk_full
    assert str(tmp_path / "reports" / "a.json") in str(err)
    assert "free space" in str(err)


class _KillOnStudy:
    """Dask worker plugin: SIGKILL the worker process when it starts a chosen study's task."""

    def __init__(self, marks: str, once: tuple[str, ...], always: tuple[str, ...]) -> None:
        self.marks, self.once, self.always = marks, once, always

    def setup(self, worker) -> None:
        pass

    def teardown(self, worker) -> None:
        pass

    def transition(self, key, start, finish, **kwargs) -> None:
        if finish != "executing":
            return
        for sid in (*self.once, *self.always):
            if f"-{sid}-" in str(key):
                marks = Path(self.marks)
                (marks / f"{sid}.{time.monotonic_ns()}").touch()
                if sid in self.always or len(list(marks.glob(f"{sid}.*"))) == 1:
                    os.kill(os.getpid(), signal.SIGKILL)


def test_dask_lost_workers_are_replaced_and_a_study_killing_twice_is_recorded(small_cohort, tmp_path):
    distributed = pytest.importorskip("distributed")
    import dask

    root, ref = small_cohort
    marks = tmp_path / "marks"
    marks.mkdir()
    cfg = {"distributed.scheduler.allowed-failures": 1, "distributed.scheduler.worker-saturation": 1.0}
    with (
        dask.config.set(cfg),
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None, host="127.0.0.1"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        plugin = _KillOnStudy(str(marks), once=("s02",), always=("s05",))
        client.register_plugin(type("KillPlugin", (_KillOnStudy, distributed.WorkerPlugin), {})(**vars(plugin)))
        out = tmp_path / "out"
        result = run_cohort(discover_cohort(root), out, scheduler=client)
    rows = {r["study_id"]: r for r in read_rows(out / "cohort.csv")}
    ref_rows = {r["study_id"]: r for r in read_rows(ref / "cohort.csv")}
    assert rows["s05"]["status"] == "failed"
    assert rows["s05"]["error"].startswith("worker died: out of memory?")
    assert "killed 2 times" in rows["s05"]["error"]
    assert _deaths(marks, "s05") == 2
    assert _deaths(marks, "s02") >= 2
    for sid, r in ref_rows.items():
        if sid != "s05":
            assert {c: rows[sid][c] for c in r if c not in runner.RUN_COLUMNS} == {
                c: v for c, v in r.items() if c not in runner.RUN_COLUMNS
            }, sid
    assert result.failed == 3


def test_a_longer_stale_lock_file_is_rewritten_whole(tmp_path):
    """A dead run's lock file longer than ours: the held lock names only this process (no tail of the old text)."""
    from netlm_imaging.outdir import LOCK_NAME, OutputLock

    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"pid": 999999999, "command": "x" * 500}))
    lock = OutputLock(out, command="netlm analyze").acquire()
    try:
        held = json.loads((out / LOCK_NAME).read_text())
        assert held["pid"] == os.getpid()
        assert held["command"] == "netlm analyze"
    finally:
        lock.release()
    assert not (out / LOCK_NAME).exists()
