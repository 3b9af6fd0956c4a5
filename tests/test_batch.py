"""``netlm batch``: cohort of synthetic NIfTI studies with analytic truth, failures, resume, kill + resume, -j 2.

Each study is a 40x40x20 LiTS-style label map (1 liver, 2 lesion) on an
oblique, anisotropic grid: a liver box with one or two lesion spheres inside.
The truth is computed here from voxel counts and the spacing (not from the
affine the package reads). Two studies are broken: random bytes instead of
gzip-NIfTI, and no segmentation at all.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from netlm_imaging.batch import BatchOptions, discover_cohort, run_cohort, study_fingerprint
from netlm_imaging.batch.runner import CSV_COLUMNS, RUN_COLUMNS
from netlm_imaging.cli import main
from netlm_imaging.errors import InputError
from tests.conftest import oblique_affine

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (40, 40, 20)
N_GOOD, BROKEN = 18, ("s18_corrupt_image", "s19_missing_seg")


def write_study(folder: Path, n: int) -> dict:
    """One good study (n-dependent geometry); returns its truth."""
    rng = np.random.default_rng(1000 + n)
    spacing = (0.7 + 0.02 * n, 0.8 + 0.01 * n, 2.0 + 0.1 * (n % 4))
    affine_lps = oblique_affine(spacing, angles_deg=(5.0 + n, -4.0, 12.0 - n), origin=(-90.0 + n, 15.0, 200.0 - 3 * n))
    lab = np.zeros(SHAPE, np.int16)
    lo = (4 + n % 3, 5, 3)
    hi = (34 - n % 4, 35 - n % 2, 17)
    lab[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = 1
    ii, jj, kk = np.indices(SHAPE)
    centres = [(14.0, 14.0, 8.0)] + ([(25.0, 26.0, 11.0)] if n % 2 == 0 else [])
    for c in centres:
        r = 3.0 + rng.uniform(0.0, 1.5)
        lab[((ii - c[0]) ** 2 + (jj - c[1]) ** 2 + (kk - c[2]) ** 2) <= r * r] = 2
    img = np.where(lab == 0, -40.0, np.where(lab == 1, 55.0, 110.0)).astype(np.float32)
    affine_ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_lps
    folder.mkdir(parents=True)
    nib.save(nib.Nifti1Image(img, affine_ras), folder / "image.nii.gz")
    nib.save(nib.Nifti1Image(lab, affine_ras), folder / "seg.nii.gz")
    voxel_ml = spacing[0] * spacing[1] * spacing[2] / 1000.0
    liver_vox, tumour_vox = int((lab >= 1).sum()), int((lab == 2).sum())
    return {
        "liver_volume_ml": liver_vox * voxel_ml,
        "intrahepatic_tumor_ml": tumour_vox * voxel_ml,
        "involvement_percent": 100.0 * tumour_vox / liver_vox,
        "non_tumorous_liver_volume_ml": (liver_vox - tumour_vox) * voxel_ml,
        "lesion_count": len(centres),
    }


def write_cohort(root: Path, n_good: int = N_GOOD, broken: bool = True) -> dict[str, dict]:
    """``n_good`` good studies s00..s17 and the two broken ones; returns truths by study id."""
    truths = {f"s{n:02d}": write_study(root / f"s{n:02d}", n) for n in range(n_good)}
    if broken:
        (root / BROKEN[0]).mkdir()
        (root / BROKEN[0] / "image.nii.gz").write_bytes(np.random.default_rng(7).bytes(5000))
        (root / BROKEN[0] / "seg.nii.gz").write_bytes(np.random.default_rng(8).bytes(3000))
        write_study(root / BROKEN[1], 3)
        (root / BROKEN[1] / "seg.nii.gz").unlink()
    return truths


def read_rows(csv_path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(csv_path.read_text())))


def without_run_columns(csv_path: Path) -> str:
    """cohort.csv with the run columns (elapsed_s, resumed: always last) cut off."""
    n = len(RUN_COLUMNS)
    return "\n".join(",".join(line.split(",")[:-n]) for line in csv_path.read_text().splitlines())


def report_mtimes(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted((out / "reports").iterdir())}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    root = tmp_path_factory.mktemp("cohort")
    return root, write_cohort(root)


@pytest.fixture(scope="module")
def reference(cohort: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """An uninterrupted -j 1 CLI run over the cohort."""
    out = tmp_path_factory.mktemp("ref_out")
    code = main(["batch", str(cohort[0]), "--out", str(out), "--quiet"])
    return out, code


def test_cohort_rows_match_truth_and_failures_recorded(cohort, reference) -> None:
    _root, truths = cohort
    out, code = reference
    assert code == 4
    rows = read_rows(out / "cohort.csv")
    assert list(rows[0].keys()) == list(CSV_COLUMNS)
    assert [r["study_id"] for r in rows] == sorted([*truths, *BROKEN])
    ok = [r for r in rows if r["status"] == "ok"]
    failed = {r["study_id"]: r for r in rows if r["status"] == "failed"}
    assert len(ok) == N_GOOD
    assert set(failed) == set(BROKEN)
    for r in ok:
        t = truths[r["study_id"]]
        for key in ("liver_volume_ml", "intrahepatic_tumor_ml", "involvement_percent", "non_tumorous_liver_volume_ml"):
            assert float(r[key]) == pytest.approx(t[key], rel=1e-3, abs=1e-3), (r["study_id"], key)
        assert int(r["lesion_count"]) == t["lesion_count"]
        assert float(r["extrahepatic_tumor_ml"]) == 0.0
        assert r["fingerprint"].startswith("sha256:")
        report = json.loads((out / "reports" / f"{r['study_id']}.json").read_text())
        assert report["batch"]["fingerprint"] == r["fingerprint"]
        assert report["liver"]["volume_ml"] == pytest.approx(t["liver_volume_ml"], rel=1e-3)
    # each failure names its file and problem on one line; no report beside it, a failure record instead
    assert "image.nii.gz" in failed[BROKEN[0]]["error"]
    assert "seg" in failed[BROKEN[1]]["error"].lower()
    for sid, r in failed.items():
        assert "\n" not in r["error"]
        assert "Traceback" not in r["error"]
        assert not (out / "reports" / f"{sid}.json").exists()
        assert json.loads((out / "reports" / f"{sid}.failed.json").read_text())["error"] == r["error"]
    leftovers = [p.name for p in out.rglob(".*.tmp")]
    assert leftovers == []


def test_resume_does_no_work(cohort, reference, tmp_path: Path) -> None:
    root, _ = cohort
    out = tmp_path / "out"
    import shutil

    shutil.copytree(reference[0], out)
    before = report_mtimes(out)
    result = run_cohort(discover_cohort(root, out_dir=out), out, resume=True)
    assert (result.analysed, result.resumed, result.failed) == (0, 20, 2)
    assert result.exit_code == 4
    assert report_mtimes(out) == before
    assert without_run_columns(out / "cohort.csv") == without_run_columns(reference[0] / "cohort.csv")
    assert {r["resumed"] for r in read_rows(out / "cohort.csv")} == {"true"}
    # the CLI says so too, and still exits 4 for the kept failures
    assert main(["batch", str(root), "--out", str(out), "--resume", "--quiet"]) == 4
    assert report_mtimes(out) == before


def test_resume_redoes_only_changed_study(tmp_path: Path) -> None:
    root = tmp_path / "c"
    root.mkdir()
    truths = write_cohort(root, n_good=3, broken=False)
    out = tmp_path / "out"
    assert run_cohort(discover_cohort(root), out).exit_code == 0
    before = report_mtimes(out)
    os.utime(root / "s00" / "seg.nii.gz", (1, 1))  # mtime change only: content fingerprint unchanged
    write_study(tmp_path / "other", 5)  # different truth, copied over s01's segmentation
    (root / "s01" / "seg.nii.gz").write_bytes((tmp_path / "other" / "seg.nii.gz").read_bytes())
    (root / "s01" / "image.nii.gz").write_bytes((tmp_path / "other" / "image.nii.gz").read_bytes())
    result = run_cohort(discover_cohort(root), out, resume=True)
    assert (result.analysed, result.resumed) == (1, 2)
    after = report_mtimes(out)
    assert after["s00.json"] == before["s00.json"]
    assert after["s02.json"] == before["s02.json"]
    assert after["s01.json"] != before["s01.json"]
    row = next(r for r in result.rows if r["study_id"] == "s01")
    assert row["liver_volume_ml"] != pytest.approx(truths["s01"]["liver_volume_ml"], rel=1e-3)
    # options are part of the fingerprint: another rules file or labels redo everything
    relabelled = BatchOptions(labels="liver=1,lesion=2")
    assert run_cohort(discover_cohort(root), out, resume=True, options=relabelled).analysed == 3


def test_fingerprint_is_content_based(tmp_path: Path) -> None:
    write_study(tmp_path / "s", 1)
    fp = study_fingerprint(tmp_path / "s", {"labels": None}, tool_version="1")
    os.utime(tmp_path / "s" / "image.nii.gz", (5, 5))
    assert study_fingerprint(tmp_path / "s", {"labels": None}, tool_version="1") == fp
    (tmp_path / "s" / ".hidden.tmp").write_text("partial write")
    assert study_fingerprint(tmp_path / "s", {"labels": None}, tool_version="1") == fp
    assert study_fingerprint(tmp_path / "s", {"labels": "liver=1"}, tool_version="1") != fp
    assert study_fingerprint(tmp_path / "s", {"labels": None}, tool_version="2") != fp
    rules = tmp_path / "rules.toml"
    rules.write_text("x = 1\n")
    assert study_fingerprint(tmp_path / "s", {"labels": None}, tool_version="1", rules=rules) != fp
    data = bytearray((tmp_path / "s" / "seg.nii.gz").read_bytes())
    data[-1] ^= 1
    (tmp_path / "s" / "seg.nii.gz").write_bytes(bytes(data))
    assert study_fingerprint(tmp_path / "s", {"labels": None}, tool_version="1") != fp
    with pytest.raises(InputError, match="cannot read the rules file"):
        study_fingerprint(tmp_path / "s", {}, tool_version="1", rules=tmp_path / "absent.toml")


def test_two_local_processes_give_identical_csv(cohort, reference, tmp_path: Path) -> None:
    result = run_cohort(discover_cohort(cohort[0]), tmp_path / "j2", jobs=2)
    assert result.exit_code == 4
    assert result.analysed == 20
    assert without_run_columns(tmp_path / "j2" / "cohort.csv") == without_run_columns(reference[0] / "cohort.csv")
    for sid in cohort[1]:
        a = json.loads((tmp_path / "j2" / "reports" / f"{sid}.json").read_text())
        b = json.loads((reference[0] / "reports" / f"{sid}.json").read_text())
        assert a == b


def test_killed_run_resumes_to_the_same_csv(cohort, reference, tmp_path: Path) -> None:
    root, _ = cohort
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "netlm_imaging.cli", "batch", str(root), "--out", str(out), "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            reports = list((out / "reports").glob("s*.json")) if (out / "reports").is_dir() else []
            if len(reports) >= 5:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    rows = read_rows(out / "cohort.csv")  # readable and complete up to the last finished study
    statuses = [r["status"] for r in rows]
    assert len(rows) == 20
    assert "pending" in statuses
    assert statuses.count("ok") >= 4
    for r in rows:
        if r["status"] == "ok":
            assert (out / "reports" / f"{r['study_id']}.json").is_file()
    finished = {p.name: p.stat().st_mtime_ns for p in (out / "reports").glob("s*.json")}
    assert main(["batch", str(root), "--out", str(out), "--resume", "--quiet"]) == 4
    assert without_run_columns(out / "cohort.csv") == without_run_columns(reference[0] / "cohort.csv")
    assert all((out / "reports" / name).stat().st_mtime_ns == t for name, t in finished.items())


def test_cohort_csv_listing(cohort, reference, tmp_path: Path) -> None:
    root, truths = cohort
    listing = tmp_path / "lists" / "cohort.csv"
    listing.parent.mkdir()
    rel = os.path.relpath(root, listing.parent)
    listing.write_text(f"study_id,path,grade,symptoms\nfirst,{rel}/s00,2,none\nsecond,{rel}/s01,,\n")
    out = tmp_path / "out"
    assert main(["batch", str(listing), "--out", str(out), "--quiet"]) == 0
    rows = {r["study_id"]: r for r in read_rows(out / "cohort.csv")}
    assert set(rows) == {"first", "second"}
    assert float(rows["first"]["liver_volume_ml"]) == pytest.approx(truths["s00"]["liver_volume_ml"], rel=1e-3)
    # a clinical value is part of the fingerprint
    assert (
        rows["first"]["fingerprint"]
        != next(r for r in read_rows(reference[0] / "cohort.csv") if r["study_id"] == "s00")["fingerprint"]
    )


def test_cohort_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("folder_name,grade\nx,1\n")
    with pytest.raises(InputError, match="no study path column"):
        discover_cohort(bad)
    dup = tmp_path / "dup.csv"
    (tmp_path / "a" / "s").mkdir(parents=True)
    (tmp_path / "b" / "s").mkdir(parents=True)
    dup.write_text("path\na/s\nb/s\n")
    with pytest.raises(InputError, match="lines 2 and 3 both give study id 's', with another folder"):
        discover_cohort(dup)
    badid = tmp_path / "badid.csv"
    badid.write_text("path,study_id\na/s,../escape\n")
    with pytest.raises(InputError, match="cannot name a report file"):
        discover_cohort(badid)
    grade = tmp_path / "grade.csv"
    grade.write_text("path,grade\na/s,7\n")
    with pytest.raises(InputError, match="grade"):
        discover_cohort(grade)
    # the height and weight columns are bounded by the run's rules (body.height_cm_range), checked up front
    tall = tmp_path / "tall.csv"
    tall.write_text("path,height_cm\na/s,260\n")
    with pytest.raises(InputError, match=r"tall.csv line 2.*'height_cm' has invalid value 260.*body.height_cm_range"):
        discover_cohort(tall)
    wide = tmp_path / "wide.toml"
    wide.write_text("[body]\nheight_cm_range = [100.0, 300.0]\n")
    assert discover_cohort(tall, rules=wide)[0].clinical == {"height_cm": "260"}
    (tmp_path / "empty").mkdir()
    assert main(["batch", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 3
    assert "no study folder found" in capsys.readouterr().err
    assert main(["batch", str(tmp_path / "a"), "--out", str(tmp_path / "o"), "-j", "0"]) == 2
    assert (
        main(
            ["batch", str(tmp_path / "a"), "--out", str(tmp_path / "o"), "-j", "2", "--scheduler", "tcp://127.0.0.1:1"]
        )
        == 2
    )
    # an unreachable scheduler is one clear error
    with pytest.raises(InputError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"):
        run_cohort(
            discover_cohort(tmp_path / "a"), tmp_path / "o", scheduler="tcp://127.0.0.1:9", connect_timeout_s=1.0
        )


def test_progress_lines_and_bar(tmp_path: Path) -> None:
    root = tmp_path / "c"
    root.mkdir()
    write_cohort(root, n_good=2, broken=False)
    plain = io.StringIO()
    run_cohort(discover_cohort(root), tmp_path / "o1", progress=True, progress_stream=plain)
    lines = plain.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("netlm batch: 1/2 s00 ok")
    assert "ETA" in lines[1]

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    run_cohort(discover_cohort(root), tmp_path / "o2", progress=True, progress_stream=tty)
    assert "2/2" in tty.getvalue()
    assert "study/s" in tty.getvalue()
    quiet = io.StringIO()
    run_cohort(discover_cohort(root), tmp_path / "o3", progress=False, progress_stream=quiet)
    assert quiet.getvalue() == ""


def test_pool_workers_share_the_cores_instead_of_starting_lesion_threads(monkeypatch) -> None:
    """A worker of ``-j k`` measures its lesions with cores // k threads: none of its own on 2 cores, -j 2."""
    import concurrent.futures

    from threadpoolctl import threadpool_limits

    from netlm_imaging import threads as netlm_threads
    from netlm_imaging.batch import pool
    from netlm_imaging.io import _gzip
    from netlm_imaging.measure import burden
    from netlm_imaging.segmentation import MaskLayer
    from netlm_imaging.volume import Volume

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(burden, "_LESION_THREADS", None)
    monkeypatch.setattr(netlm_threads, "_THREADS", None)  # init_worker caps the analysis threads too
    monkeypatch.setattr(pool, "_STARTED", None)
    monkeypatch.setattr(_gzip, "_KEPT", None)  # init_worker keeps inflate buffers: not in this process after the test
    assert burden.lesion_threads() == burden.DEFAULT_LESION_THREADS == 1
    burden.set_lesion_threads(2)  # a process told to spread many lesions over both cores
    with threadpool_limits(None):  # restores this process's BLAS threads, which init_worker caps
        pool.init_worker(None, 2)
    assert burden.lesion_threads() == 1

    def no_pool(*args, **kwargs):
        raise AssertionError("a pool worker started a per-lesion thread pool")

    monkeypatch.setattr(concurrent.futures, "ThreadPoolExecutor", no_pool)
    # ten separate cubes of known sizes (more than the lesion count from which threads are used)
    mask = np.zeros((60, 40, 12), dtype=bool)
    sizes = []
    for n in range(10):
        e = 2 + n % 3
        x, y = 6 * n, 5 + 10 * (n % 2)
        mask[x : x + e, y : y + e, 3 : 3 + e] = True
        sizes.append(e**3)
    aff = oblique_affine((0.8, 0.9, 2.5), (3.0, -2.0, 5.0), (-40.0, 10.0, 70.0))
    img = Volume(np.zeros(mask.shape, np.int16), aff)
    layer = MaskLayer("lesion", img.with_array(mask), label="lesion", source="cubes")
    res = burden.measure_burden(img, [layer])
    assert sorted(les.voxel_count for les in res.ctx.lesions) == sorted(sizes)
    burden.set_lesion_threads(2)  # the parent's setting, which a fresh worker inherits
    pool.init_worker(None, 1)  # a retry running alone keeps the cores
    assert burden.lesion_threads() == 2


def _worker_blas_threads(_: int) -> list[int]:
    from threadpoolctl import threadpool_info

    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_pool_workers_cap_their_blas_threads_at_their_share_of_the_cores() -> None:
    """Real -j k workers (fork, as the batch starts them): numpy's BLAS gets cores // k threads, at least 1.

    Uncapped, OpenBLAS starts one thread per core in every worker, and its
    threads spin after each call on the cores the other workers use.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from threadpoolctl import threadpool_info

    from netlm_imaging.batch import pool

    cores = os.cpu_count() or 1
    own = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert own, "numpy's BLAS library is not visible to threadpoolctl"
    ctx = multiprocessing.get_context(pool.START_METHOD)
    for jobs in (2, 1):
        with ProcessPoolExecutor(2, mp_context=ctx, initializer=pool.init_worker, initargs=(None, jobs)) as executor:
            seen = list(executor.map(_worker_blas_threads, range(4)))
        assert all(t == [max(1, cores // jobs)] * len(own) for t in seen), (jobs, seen)


def test_pool_preload_covers_what_an_analysis_imports(tmp_path: Path) -> None:
    """After the fork pool's preload, analysing an axial NIfTI study and the DICOM sample imports none of
    the package's modules (a child process, so the modules loaded by other tests do not count).

    What only some studies need stays lazy on purpose (each worker imports it in parallel, only if
    needed): SimpleITK for the lesions of an oblique grid, jsonschema, numpy.ma for DICOM.
    """
    lab = np.zeros(SHAPE, np.int16)
    lab[5:35, 5:35, 3:17] = 1
    lab[12:18, 12:18, 8:12] = 2
    aff = np.diag([-0.8, -0.8, 2.5, 1.0])
    (tmp_path / "nifti").mkdir()
    nib.save(nib.Nifti1Image(np.where(lab > 0, 60, -40).astype(np.int16), aff), tmp_path / "nifti" / "image.nii.gz")
    nib.save(nib.Nifti1Image(lab, aff), tmp_path / "nifti" / "seg.nii.gz")
    code = f"""
import sys
from pathlib import Path
from netlm_imaging.batch import pool, runner
from netlm_imaging.batch.cohort import Study
pool.preload()
before = set(sys.modules)
out = Path({str(tmp_path / "out")!r})
for sid, path in (("nifti", {str(tmp_path / "nifti")!r}), ("dicom", {str(ROOT / "sample_data" / "netlm_demo")!r})):
    row = runner.analyze_one(Study(sid, Path(path)), out, runner.BatchOptions())
    assert row["status"] == "ok", row
print(" ".join(sorted(m for m in set(sys.modules) - before if m.split(".")[0] in ("netlm_imaging", "isal"))))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == [], f"imported after the preload: {proc.stdout}"


def test_pool_starts_the_largest_studies_first(tmp_path: Path) -> None:
    """The pool's queue runs the studies by the bytes of their files, largest first (ties: cohort order);
    hidden files do not count, and a missing study sorts last (it fails in its worker)."""
    from netlm_imaging.batch.cohort import Study
    from netlm_imaging.batch.pool import largest_first

    sizes = {"a": 300, "b": 5000, "c": 300, "d": 12000, "e": 0}
    studies = []
    for sid, n in sizes.items():
        folder = tmp_path / sid
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "x.bin").write_bytes(bytes(n // 3))
        (folder / "y.bin").write_bytes(bytes(n - n // 3))
        (folder / ".hidden").write_bytes(bytes(100000))
        studies.append(Study(sid, folder))
    studies.append(Study("gone", tmp_path / "gone"))
    single = tmp_path / "single.nii.gz"
    single.write_bytes(bytes(7000))
    studies.append(Study("single", single))
    assert [s.study_id for s in largest_first(studies)] == ["d", "single", "b", "a", "c", "e", "gone"]


def test_in_process_cohort_keeps_inflate_buffers_only_while_it_runs(tmp_path: Path) -> None:
    """-j 1 reads its studies into kept buffers as the pool workers do, and lets them go at the end."""
    from netlm_imaging.io import _gzip

    truths = write_cohort(tmp_path / "c", n_good=3, broken=False)
    assert _gzip._KEPT is None
    seen: list[int | None] = []
    result = run_cohort(
        discover_cohort(tmp_path / "c"),
        tmp_path / "out",
        on_row=lambda row: seen.append(None if _gzip._KEPT is None else len(_gzip._KEPT)),
    )
    assert _gzip._KEPT is None
    assert seen == [2, 2, 2]  # image and label map of every study in the same two buffers
    for row in result.rows:
        assert float(row["liver_volume_ml"]) == pytest.approx(truths[row["study_id"]]["liver_volume_ml"], rel=1e-6)


def test_a_nifti_cohort_preloads_no_dicom_stack(tmp_path: Path) -> None:
    """may_hold_dicom tells NIfTI/NRRD study folders from ones that may hold DICOM files; after
    preload(dicom=False) a NIfTI analysis loads neither pydicom nor any module of the package."""
    from netlm_imaging.batch.pool import may_hold_dicom

    nifti = tmp_path / "nifti"
    nifti.mkdir()
    lab = np.zeros(SHAPE, np.int16)
    lab[5:35, 5:35, 3:17] = 1
    lab[12:18, 12:18, 8:12] = 2
    aff = np.diag([-0.8, -0.8, 2.5, 1.0])
    nib.save(nib.Nifti1Image(np.where(lab > 0, 60, -40).astype(np.int16), aff), nifti / "image.nii.gz")
    nib.save(nib.Nifti1Image(lab, aff), nifti / "seg.nii.gz")
    (nifti / "clinical.json").write_text("{}")
    (nifti / ".DS_Store").write_bytes(b"\0")  # hidden entries are skipped
    assert not may_hold_dicom(nifti)
    assert not may_hold_dicom(nifti / "image.nii.gz")
    for name in ("IM0001", "slice.dcm", "1.2.840.113619.2.1.5"):  # no suffix, .dcm, a UID as name
        other = tmp_path / f"d_{name}"
        (other / "ct").mkdir(parents=True)
        (other / "ct" / name).write_bytes(b"\0")
        assert may_hold_dicom(other), name
    code = f"""
import sys
from pathlib import Path
from netlm_imaging.batch import pool, runner
from netlm_imaging.batch.cohort import Study
pool.preload(dicom=False)
before = set(sys.modules)
row = runner.analyze_one(Study("nifti", Path({str(nifti)!r})), Path({str(tmp_path / "out")!r}), runner.BatchOptions())
assert row["status"] == "ok", row
print("pydicom" in sys.modules, " ".join(sorted(m for m in set(sys.modules) - before if m.startswith("netlm_imaging"))))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["False"], f"loaded after the preload: {proc.stdout}"
