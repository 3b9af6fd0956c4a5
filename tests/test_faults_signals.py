"""A batch stopped from outside: Ctrl-C, SIGTERM or SIGHUP of the run, and SIGKILL of the parent.

A real ``netlm batch -j 2`` runs in its own session over three quick studies and one whose image is
a FIFO (its read blocks for ever, as a hung network mount does), so the run is certainly still busy
when the signal comes. Expected: exit 128 + signal with one line naming what was kept; cohort.csv
holds the finished studies and the hanging one as ``pending``; no worker outlives the run (the
output folder's lock is free at once, no report appears afterwards); no temporary file is left;
``--resume`` then finishes the cohort with no lost or duplicated row.
"""

from __future__ import annotations

import contextlib
import csv
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from netlm_imaging.atomic import TEMP_PATTERN
from netlm_imaging.outdir import OutputLock
from tests.test_batch import write_study

ROOT = Path(__file__).resolve().parents[1]
QUICK = ("s00", "s01", "s02")
HANG = "s03 hangs"

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")


def _cohort(root: Path) -> Path:
    for n, sid in enumerate(QUICK):
        write_study(root / sid, n)
    return _cohort_hang_only(root)


@pytest.fixture(autouse=True)
def _no_leftovers():
    """Whatever a failing test leaves of the runs it started (each in its own process group) is killed."""
    yield
    for pgid in _STARTED:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
    _STARTED.clear()


_STARTED: list[int] = []


def _die_with_the_tests() -> None:
    """In the started ``netlm`` (before exec): Linux kills it when the test process dies, so a test
    run that is itself killed (a CI time limit, Ctrl-C of pytest) leaves no run behind; its pool
    workers then follow their parent (``batch.pool``)."""
    with contextlib.suppress(Exception):
        _LIBC.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG


try:
    import ctypes

    _LIBC = ctypes.CDLL(None)
except (ImportError, OSError):  # pragma: no cover - not Linux
    _LIBC = None


def _popen(cmd: list[str], **kw) -> subprocess.Popen:
    """Start ``netlm`` in its own session, killed with its group when the test ends (or dies)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_die_with_the_tests if _LIBC is not None and sys.platform == "linux" else None,
        **kw,
    )
    _STARTED.append(proc.pid)
    return proc


def _start(root: Path, out: Path, *extra: str, jobs: str = "2") -> subprocess.Popen:
    cmd = [sys.executable, "-m", "netlm_imaging.cli", "batch", str(root), "--out", str(out), "-j", jobs]
    return _popen([*cmd, "--quiet", *extra], stdout=subprocess.PIPE)


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "cohort.csv", newline="", encoding="utf-8") as fh:
        return {r["study_id"]: r for r in csv.DictReader(fh)}


def _wait_for_quick_studies(proc: subprocess.Popen, out: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            if all(_rows(out).get(s, {}).get("status") == "ok" for s in QUICK):
                return
        except (OSError, KeyError):
            pass
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the quick studies did not finish")


def _temp_files(out: Path) -> list[str]:
    return [p.name for p in out.rglob(".*") if TEMP_PATTERN.match(p.name)]


def _lock_is_free(out: Path) -> bool:
    try:
        with OutputLock(out, clean=False):
            return True
    except Exception:
        return False


@pytest.mark.parametrize(
    ("signum", "group", "code"),
    [(signal.SIGTERM, False, 143), (signal.SIGINT, True, 130), (signal.SIGHUP, False, 129)],
    ids=["sigterm-parent", "ctrl-c-process-group", "sighup-parent"],
)
def test_signal_stops_the_batch_cleanly_and_resume_finishes_it(tmp_path, signum, group, code):
    root, out = tmp_path / "cohort", tmp_path / "out"
    fifo = _cohort(root)
    proc = _start(root, out)
    _wait_for_quick_studies(proc, out)
    (os.killpg if group else os.kill)(proc.pid, signum)
    _stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    name = signal.Signals(signum).name
    assert lines[0].startswith(f"netlm: interrupted by {name}: 3 of 4 studies had finished"), lines
    assert str(out / "cohort.csv") in lines[0]
    assert "--resume" in lines[0]
    rows = _rows(out)
    assert {s: r["status"] for s, r in rows.items()} == {**dict.fromkeys(QUICK, "ok"), HANG: "pending"}
    assert _lock_is_free(out), "a worker of the stopped run still holds the output folder"
    assert _temp_files(out) == []
    assert sorted(p.name for p in (out / "reports").iterdir()) == [f"{s}.json" for s in QUICK]
    # the hanging study is mended; --resume analyses it alone and keeps the three others
    fifo.unlink()
    write_study(tmp_path / "mended", 3)
    mended = next(p for p in (tmp_path / "mended").iterdir() if p.name.startswith("image"))
    shutil.copy(mended, fifo)
    again = _start(root, out, "--resume")
    _stdout, stderr = again.communicate(timeout=120)
    assert again.returncode == 0, stderr
    rows = _rows(out)
    assert sorted(rows) == sorted((*QUICK, HANG))
    assert {r["status"] for r in rows.values()} == {"ok"}
    assert [rows[s]["resumed"] for s in (*QUICK, HANG)] == ["true", "true", "true", "false"]
    _lesion_rows_match_reports(out)


def _lesion_rows_match_reports(out: Path) -> None:
    """lesions.csv holds exactly the lesions of the reports, once each."""
    with open(out / "lesions.csv", newline="", encoding="utf-8") as fh:
        got = sorted((r["study_id"], int(r["lesion_id"])) for r in csv.DictReader(fh))
    want = []
    for p in (out / "reports").glob("*.json"):
        rep = json.loads(p.read_text())
        want += [(p.stem, int(les["id"])) for les in rep["lesions"]]
    assert got == sorted(want)
    assert len(set(got)) == len(got)


def test_sigkill_of_the_parent_takes_its_workers_along(tmp_path):
    """kill -9 of the parent (no clean-up runs): the workers die with it, so the folder is free
    for ``--resume`` at once and no report appears later."""
    root, out = tmp_path / "cohort", tmp_path / "out"
    _cohort(root)
    proc = _start(root, out)
    _wait_for_quick_studies(proc, out)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while not _lock_is_free(out) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _lock_is_free(out), "an orphaned worker still holds the output folder's lock"
    rows = _rows(out)
    assert {s: r["status"] for s, r in rows.items()} == {**dict.fromkeys(QUICK, "ok"), HANG: "pending"}


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_timeout_stops_a_hanging_study_and_the_others_finish(tmp_path, jobs):
    """``--timeout``: the hanging study's worker is killed, the study is recorded as failed with a
    one-line reason; the others finish with their true volumes, and ``--resume`` retries it."""
    root, out = tmp_path / "cohort", tmp_path / "out"
    truths = {sid: write_study(root / sid, n) for n, sid in enumerate(QUICK)}
    fifo = _cohort_hang_only(root)
    proc = _start(root, out, "--timeout", "2", jobs=jobs)
    _stdout, err = proc.communicate(timeout=90)  # without --timeout working it would hang for ever
    assert proc.returncode == 4, err
    assert "Traceback" not in err
    rows = _rows(out)
    assert rows[HANG]["status"] == "failed"
    assert rows[HANG]["error"].startswith("timed out: still running after 2 s (--timeout)")
    assert "raise --timeout" in rows[HANG]["error"]
    for sid, truth in truths.items():
        assert rows[sid]["status"] == "ok"
        assert float(rows[sid]["liver_volume_ml"]) == pytest.approx(truth["liver_volume_ml"], abs=1e-5)
    assert json.loads((out / "reports" / f"{HANG}.failed.json").read_text())["error"] == rows[HANG]["error"]
    assert _temp_files(out) == []
    fifo.unlink()
    write_study(tmp_path / "mended", 3)
    shutil.copy(next(p for p in (tmp_path / "mended").iterdir() if p.name.startswith("image")), fifo)
    again = _start(root, out, "--timeout", "60", "--resume", jobs=jobs)
    _stdout, err = again.communicate(timeout=90)
    assert again.returncode == 0, err
    rows = _rows(out)
    assert rows[HANG]["status"] == "ok"
    assert [rows[s]["resumed"] for s in QUICK] == ["true"] * 3


def _cohort_hang_only(root: Path) -> Path:
    hang = root / HANG
    write_study(hang, 3)
    image = next(p for p in hang.iterdir() if p.name.startswith("image"))
    image.unlink()
    os.mkfifo(image)
    return image


@pytest.mark.parametrize(
    ("args", "text"),
    [(["--timeout", "0"], "positive number"), (["--timeout", "5", "--scheduler", "tcp://127.0.0.1:9"], "Dask")],
)
def test_timeout_usage_errors(tmp_path, capfd, args, text):
    from netlm_imaging.cli import main

    write_study(tmp_path / "c" / "s00", 0)
    assert main(["batch", str(tmp_path / "c"), "--out", str(tmp_path / "o"), *args]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert text in err[0]


def test_analyze_into_a_folder_another_run_holds_is_refused_up_front(tmp_path, capfd):
    """Two ``analyze`` runs into one ``--out`` would mix one run's report.json with the other's
    SR/SEG (new UIDs each run): the second stops at once, naming the holder, and writes nothing."""
    from netlm_imaging.cli import main

    write_study(tmp_path / "s00", 0)
    out = tmp_path / "out"
    out.mkdir()
    with OutputLock(out, command="netlm analyze"):
        code = main(["analyze", str(tmp_path / "s00"), "--out", str(out)])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 3
    assert len(err) == 1
    assert f"{out}: this output folder is in use by another netlm analyze run (PID {os.getpid()}" in err[0]
    assert sorted(p.name for p in out.iterdir()) == []
    assert main(["analyze", str(tmp_path / "s00"), "--out", str(out), "--quiet"]) == 0  # free again
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]


def test_sigterm_of_analyze_leaves_nothing_half_written(tmp_path):
    root = tmp_path / "cohort"
    _cohort_hang_only(root)
    out = tmp_path / "out"
    proc = _popen([sys.executable, "-m", "netlm_imaging.cli", "analyze", str(root / HANG), "--out", str(out), "--html"])
    deadline = time.monotonic() + 60
    while not (out / ".netlm.lock").exists() and time.monotonic() < deadline:  # the run is under way
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _stdout, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert err.strip() == "netlm: interrupted by SIGTERM"
    assert list(out.iterdir()) == []  # no report, no temporary file, and the lock file is gone


def test_a_report_written_just_before_the_stop_is_recorded_in_the_tables(tmp_path, monkeypatch):
    """A worker wrote its study's report, and the run is stopped before that result reaches the
    parent: the stopped run's cohort.csv and lesions.csv still list that study, as reports/ does.

    The forked workers inherit the patched per-study function: study s01 writes its report, then
    asks the parent to stop (SIGINT) and waits, as a result still in the pipe would."""
    from netlm_imaging.batch import discover_cohort, run_cohort, runner
    from netlm_imaging.batch.interrupt import Interrupted

    root, out = tmp_path / "cohort", tmp_path / "out"
    for n, sid in enumerate(QUICK):
        write_study(root / sid, n)
    real = runner._analyze
    parent = os.getpid()

    def analyze(study, out_dir, options, fingerprint):
        row = real(study, out_dir, options, fingerprint)
        if os.getpid() != parent and study.study_id == "s01":
            os.kill(parent, signal.SIGINT)
            time.sleep(120)  # the parent stops this worker long before
        return row

    monkeypatch.setattr(runner, "_analyze", analyze)
    guard = threading.Timer(120, os.kill, (parent, signal.SIGINT))  # a worker that never starts cannot hang the suite
    children = {p.pid for p in multiprocessing.active_children()}
    guard.start()
    try:
        with pytest.raises(Interrupted):
            run_cohort(discover_cohort(root), out, jobs=2)
    finally:
        guard.cancel()
    # the stopped run's workers are gone (s01's, asleep, would write nothing more, but it must not linger)
    assert {p.pid for p in multiprocessing.active_children()} <= children
    rows = _rows(out)
    reports = sorted(p.name.removesuffix(".json") for p in (out / "reports").glob("*.json"))
    assert "s01" in reports
    assert sorted(s for s, r in rows.items() if r["status"] == "ok") == reports
    assert rows["s01"]["liver_volume_ml"] != ""
    _lesion_rows_match_reports(out)


def test_analyze_timeout_ends_a_hanging_read_with_one_line(tmp_path):
    """``analyze --timeout``: a study whose image read blocks for ever ends with exit 3, one line
    naming the study and the fix, and leaves nothing in --out (a run without it would hang)."""
    root = tmp_path / "cohort"
    _cohort_hang_only(root)
    out = tmp_path / "out"
    proc = _popen(
        [sys.executable, "-m", "netlm_imaging.cli", "analyze", str(root / HANG), "--out", str(out), "--timeout", "1"]
    )
    _stdout, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert err.strip().splitlines() == [
        f"netlm: error: {root / HANG}: still being analysed after 1 s (--timeout): a read that hangs (an "
        "unreachable network folder, a FIFO or device file among the inputs) or a study too large for the "
        "limit; check the files or raise --timeout"
    ]
    assert list(out.iterdir()) == []


def test_analyze_timeout_long_enough_changes_nothing(tmp_path, capfd):
    from netlm_imaging.cli import main

    truth = write_study(tmp_path / "s00", 0)
    assert main(["analyze", str(tmp_path / "s00"), "--out", str(tmp_path / "out"), "--timeout", "300", "--quiet"]) == 0
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["liver"]["volume_ml"] == pytest.approx(truth["liver_volume_ml"], abs=1e-5)
    for no_limit in ("inf", "1e300"):  # beyond what the interval timer takes: no limit (it was an internal error)
        out = tmp_path / f"out-{no_limit}"
        assert main(["analyze", str(tmp_path / "s00"), "--out", str(out), "--timeout", no_limit, "--quiet"]) == 0
        assert (out / "report.json").read_bytes() == (tmp_path / "out" / "report.json").read_bytes()
    assert main(["analyze", str(tmp_path / "s00"), "--out", str(tmp_path / "o2"), "--timeout", "-1"]) == 2
    assert "--timeout -1: give a positive number of seconds" in capfd.readouterr().err


def test_timeout_kill_requeues_the_studies_its_pool_had_not_run(tmp_path):
    """``-j 1 --timeout``: the hanging study runs first (its folder holds the most bytes), so the pool
    that the kill breaks still holds the three quick studies: they run in a new pool, without a strike."""
    root, out = tmp_path / "cohort", tmp_path / "out"
    truths = {sid: write_study(root / sid, n) for n, sid in enumerate(QUICK)}
    _cohort_hang_only(root)
    (root / HANG / "notes.txt").write_bytes(b"x" * 4_000_000)  # the largest study: scheduled first
    proc = _start(root, out, "--timeout", "2", jobs="1")
    _stdout, err = proc.communicate(timeout=90)
    assert proc.returncode == 4, err
    rows = _rows(out)
    assert rows[HANG]["error"].startswith("timed out: still running after 2 s (--timeout)")
    for sid, truth in truths.items():
        assert rows[sid]["status"] == "ok", rows[sid]
        assert float(rows[sid]["liver_volume_ml"]) == pytest.approx(truth["liver_volume_ml"], abs=1e-5)


def test_a_stop_signal_noted_after_the_last_check_is_raised_on_leaving():
    """The pool's wait loop polls for stop signals; one that came after its last poll is not lost:
    leaving the deferred block raises it, and the handlers before the block are back."""
    from netlm_imaging.batch.interrupt import DeferredSignals, Interrupted

    def sigterm_inside() -> None:
        with DeferredSignals():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler runs; the process is not ended

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as info:
        sigterm_inside()
    assert info.value.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_second_stop_signal_during_the_clean_up_is_ignored():
    """After the first stop signal, a second one (Ctrl-C pressed again) cannot cut the clean-up
    short or change the exit code: run_until_stopped leaves the stop signals ignored."""
    from netlm_imaging.batch.interrupt import run_until_stopped

    stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    saved = {s: signal.getsignal(s) for s in stops}

    def body() -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # not reached: the handler raises
        return 0

    try:
        assert run_until_stopped(body) == (143, "netlm: interrupted by SIGTERM")
        os.kill(os.getpid(), signal.SIGINT)  # the second Ctrl-C, while the command would be exiting
        time.sleep(0.05)
        assert all(signal.getsignal(s) == signal.SIG_IGN for s in stops)
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
