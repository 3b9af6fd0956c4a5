"""Crash safety: outputs are replaced atomically; inputs are never modified and may be read-only.

* A child process rewrites ``report.json`` in a loop, alternating between two
  different complete reports (``StudyReport.write_json``); it is SIGKILLed at
  seeded random moments. After each kill the file must be exactly one of the
  two complete reports (valid JSON that validates against the schema), never
  a partial one.
* ``netlm batch`` on a small cohort is SIGKILLed at seeded random moments;
  ``cohort.csv`` and every ``reports/*.json`` present must be complete.
* Every input file is hashed before and after ``netlm analyze`` (NIfTI and
  DICOM study folders, with all optional outputs), and the run succeeds on an
  input tree made read-only (``chmod a-w``; as root, where permission bits do
  not bind, the files and folders are also made immutable with ``chattr +i``).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pydicom.sr.codedict import codes

from netlm_imaging.report.model import validate_report
from tests.conftest import oblique_affine
from tests.dicom_factory import write_image_series
from tests.phantoms import write_nifti
from tests.seg_factory import SegmentSpec, write_seg

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (20, 18, 8)
AFFINE = oblique_affine(spacing=(0.9, 0.8, 2.0), angles_deg=(4.0, -6.0, 15.0))
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def _phantom(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    img = rng.normal(40.0, 8.0, SHAPE).round()
    lab = np.zeros(SHAPE, np.uint8)
    lab[3:17, 3:15, 1:7] = 1
    lab[6:9, 5:8, 2:4] = 2
    lab[11:14, 9:12, 4:6] = 2
    img[lab == 1] = 60.0
    img[lab == 2] = 110.0
    return img, lab


def _nifti_study(folder: Path, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    img, lab = _phantom(seed)
    write_nifti(folder / "image.nii.gz", img.astype(np.int16), AFFINE)
    write_nifti(folder / "labels.nii.gz", lab, AFFINE)
    return folder


def _dicom_study(folder: Path, seed: int = 0) -> Path:
    img, lab = _phantom(seed)
    files = write_image_series(folder / "CT", img, AFFINE, seed=seed)
    write_seg(
        folder / "seg.dcm",
        files,
        [
            SegmentSpec("Liver", lab == 1),
            SegmentSpec(
                "Lesion",
                lab == 2,
                property_type=codes.SCT.Neoplasm,
                property_category=codes.SCT.MorphologicallyAbnormalStructure,
            ),
        ],
        seed=seed,
    )
    return folder


def _hashes(folder: Path) -> dict[str, tuple[str, int, int]]:
    """sha256, size and mtime (ns) of every file under ``folder``."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[str(p.relative_to(folder))] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns)
    return out


# --------------------------------------------------------------------------- atomic outputs under SIGKILL
_WRITER = r"""
import json, sys
from pathlib import Path
from netlm_imaging.report.model import StudyReport
a = json.loads(Path(sys.argv[1]).read_text())
b = json.loads(Path(sys.argv[2]).read_text())
ra, rb = StudyReport.from_dict(a), StudyReport.from_dict(b)
out = Path(sys.argv[3])
ra.write_json(out)
print("ready", flush=True)
while True:
    rb.write_json(out)
    ra.write_json(out)
"""


def _big_variant(report: dict, n_lesions: int) -> dict:
    """Another valid report: many copies of the first lesion (a bigger file: a longer write window)."""
    r = json.loads(json.dumps(report))
    les = r["lesions"][0]
    r["lesions"] = [dict(les, id=i + 1) for i in range(n_lesions)]
    r["tumor"]["lesion_count"] = n_lesions
    r["warnings"] = [*r.get("warnings", []), "variant B " + "x" * 2000]
    return r


@pytest.fixture(scope="module")
def two_reports(tmp_path_factory) -> tuple[Path, Path]:
    from netlm_imaging.api import analyze

    d = _nifti_study(tmp_path_factory.mktemp("cs") / "study")
    a = analyze(image=d / "image.nii.gz", segs=[str(d / "labels.nii.gz")]).to_dict()
    b = _big_variant(a, 3000)
    validate_report(b)
    pa, pb = d.parent / "a.json", d.parent / "b.json"
    pa.write_text(json.dumps(a))
    pb.write_text(json.dumps(b))
    return pa, pb


def test_report_json_survives_sigkill_at_random_moments(two_reports, tmp_path):
    pa, pb = two_reports
    a, b = json.loads(pa.read_text()), json.loads(pb.read_text())
    assert a != b
    rng = random.Random(20240611)
    out = tmp_path / "report.json"
    seen = {"a": 0, "b": 0}
    for _ in range(12):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(pa), str(pb), str(out)], stdout=subprocess.PIPE, env=ENV, text=True
        )
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        data = json.loads(out.read_text())  # never partial: always parses
        validate_report(data)
        assert data in (a, b)
        seen["a" if data == a else "b"] += 1
    assert seen["a"] + seen["b"] == 12
    stray = [p.name for p in tmp_path.iterdir() if p.name != "report.json"]
    assert all(n.startswith(".report.json.") and n.endswith(".tmp") for n in stray)  # only hidden temp files


def test_batch_outputs_survive_sigkill(tmp_path):
    cohort = tmp_path / "cohort"
    for i in range(6):
        _nifti_study(cohort / f"s{i:02d}", seed=i)
    rng = random.Random(7)
    out = tmp_path / "out"
    complete_seen = 0
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-m", "netlm_imaging.cli", "batch", str(cohort), "--out", str(out), "--resume", "--quiet"],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.5, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if (out / "cohort.csv").exists():
            rows = list(csv.DictReader(io.StringIO((out / "cohort.csv").read_text())))
            for row in rows:
                assert row["study_id"].startswith("s")
                assert row["status"] in ("ok", "failed", "pending", "skipped", "")
        for rep in (out / "reports").glob("*.json") if (out / "reports").exists() else []:
            data = json.loads(rep.read_text())
            if not rep.name.endswith(".failed.json"):
                validate_report(data)
                complete_seen += 1
    r = subprocess.run(
        [sys.executable, "-m", "netlm_imaging.cli", "batch", str(cohort), "--out", str(out), "--resume", "--quiet"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO((out / "cohort.csv").read_text())))
    assert sorted(row["study_id"] for row in rows) == [f"s{i:02d}" for i in range(6)]
    assert all(row["status"] == "ok" for row in rows)
    _, lab = _phantom(0)
    voxel_ml = abs(np.linalg.det(AFFINE[:3, :3])) / 1000.0
    s00 = next(row for row in rows if row["study_id"] == "s00")
    assert float(s00["liver_volume_ml"]) == pytest.approx(np.count_nonzero(lab) * voxel_ml, rel=1e-6)


# --------------------------------------------------------------------------- inputs untouched, read-only
def _analyze_args(study: Path, kind: str, out: Path) -> list[str]:
    if kind == "dicom":
        return ["analyze", str(study), "--out", str(out), "--html", "--sr", "--seg-out", "--quiet"]
    return [
        "analyze",
        "--image",
        str(study / "image.nii.gz"),
        "--seg",
        str(study / "labels.nii.gz"),
        "--out",
        str(out),
        "--html",
        "--quiet",
    ]


@pytest.mark.parametrize("kind", ["nifti", "dicom"])
def test_inputs_are_never_modified(tmp_path, kind):
    study = (_dicom_study if kind == "dicom" else _nifti_study)(tmp_path / "study")
    before = _hashes(study)
    assert len(before) >= 2
    r = subprocess.run(
        [sys.executable, "-m", "netlm_imaging.cli", *_analyze_args(study, kind, tmp_path / "out")],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert _hashes(study) == before  # same bytes, sizes and modification times; no file added or removed


def _set_immutable(paths: list[Path], on: bool) -> bool:
    flag = "+i" if on else "-i"
    try:
        subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return False
    return True


@contextlib.contextmanager
def _read_only_tree(folder: Path):
    paths = [*sorted(folder.rglob("*"), reverse=True), folder]
    for p in paths:
        p.chmod(0o555 if p.is_dir() else 0o444)
    immutable = False
    if os.geteuid() == 0:
        immutable = _set_immutable(paths, True)
        if not immutable:
            for p in paths:
                p.chmod(0o755 if p.is_dir() else 0o644)
            pytest.skip("running as root without chattr: permission bits cannot make the input read-only")
    try:
        yield
    finally:
        if immutable:
            _set_immutable(paths, False)
        for p in paths:
            p.chmod(0o755 if p.is_dir() else 0o644)


@pytest.mark.parametrize("kind", ["nifti", "dicom"])
def test_read_only_inputs_are_enough(tmp_path, kind):
    study = (_dicom_study if kind == "dicom" else _nifti_study)(tmp_path / "study")
    with _read_only_tree(study):
        probe = study / "probe.txt"
        with pytest.raises(OSError):
            probe.write_text("x")  # the tree really is read-only for this process
        out = tmp_path / "out"
        r = subprocess.run(
            [sys.executable, "-m", "netlm_imaging.cli", *_analyze_args(study, kind, out)],
            env=ENV,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert r.returncode == 0, r.stderr
    report = json.loads((out / "report.json").read_text())
    _, lab = _phantom(0)
    voxel_ml = abs(np.linalg.det(AFFINE[:3, :3])) / 1000.0
    assert report["liver"]["volume_ml"] == pytest.approx(np.count_nonzero(lab) * voxel_ml, rel=1e-6)
    assert report["tumor"]["intrahepatic_volume_ml"] == pytest.approx(np.count_nonzero(lab == 2) * voxel_ml, rel=1e-6)
