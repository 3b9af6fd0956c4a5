"""``netlm analyze`` into a folder holding another study's outputs refuses (exit 3), keeping them byte for byte.

A re-run of the same study replaces its own outputs (the idempotent case); ``--overwrite``
replaces another's. The studies are real DICOM CT series + highdicom SEGs (oblique grid) whose
StudyInstanceUIDs the test chose, and copies of the NIfTI demo study in two folders.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import ROOT, oblique_affine
from dicom_factory import write_image_series
from seg_factory import SegmentSpec, write_seg

from netlm_imaging.api import analyze_with_context
from netlm_imaging.batch import run_cohort
from netlm_imaging.batch.cohort import discover_cohort
from netlm_imaging.errors import OutputError
from netlm_imaging.report.outputs import OutputSet, write_outputs
from netlm_imaging.report.ownership import check_same_study, input_key, path_key

DEMO = ROOT / "sample_data" / "netlm_demo"
UID_A = "1.2.826.0.1.3680043.8.498.11111"
UID_B = "1.2.826.0.1.3680043.8.498.22222"


def _dicom_study(folder: Path, study_uid: str, seed: int) -> Path:
    aff = oblique_affine(spacing=(1.2, 1.1, 2.5), angles_deg=(6.0, -3.0, 10.0), origin=(-40.0, -30.0, 100.0))
    shape = (28, 26, 10)
    ijk = np.indices(shape)
    liver = (ijk[0] >= 4) & (ijk[0] < 24) & (ijk[1] >= 4) & (ijk[1] < 22) & (ijk[2] >= 2) & (ijk[2] < 8)
    lesion = liver & (ijk[0] >= 10) & (ijk[0] < 14 + seed) & (ijk[1] >= 10) & (ijk[1] < 14)
    files = write_image_series(folder / "ct", np.where(liver, 60.0, -80.0), aff, study_uid=study_uid, seed=seed)
    write_seg(
        folder / "seg.dcm",
        files,
        [
            SegmentSpec("Liver", liver),
            SegmentSpec("Metastasis 1", lesion, property_type=pydicom.sr.codedict.codes.SCT.Neoplasm),
        ],
        seed=seed,
    )
    return folder


def _netlm(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "netlm_imaging.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_cli_refuses_another_dicom_study_and_keeps_its_outputs(tmp_path):
    a = _dicom_study(tmp_path / "A", UID_A, seed=1)
    b = _dicom_study(tmp_path / "B", UID_B, seed=2)
    out = tmp_path / "out"
    first = _netlm("analyze", str(a), "--out", str(out), "--sr", "--html", "--quiet")
    assert first.returncode == 0, first.stderr
    assert json.loads((out / "report.json").read_text())["study"]["study_instance_uid"] == UID_A
    again = _netlm("analyze", str(a), "--out", str(out), "--sr", "--quiet")  # same study: replaced, as before
    assert again.returncode == 0, again.stderr
    before = _hashes(out)
    assert set(before) == {"report.json", "report.html", "report_sr.dcm", "derived_seg.dcm"}

    r = _netlm("analyze", str(b), "--out", str(out), "--sr", "--html", "--quiet")
    assert r.returncode == 3
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    line = lines[0]
    for said in (str(out), UID_A, UID_B, "--overwrite", "another --out"):  # the folder, both studies, the fix
        assert said in line
    assert "Traceback" not in r.stderr
    for secret in ("Doe", "SECRET-ID-123"):  # no patient name or ID (privacy)
        assert secret not in line
    assert _hashes(out) == before  # the other study's outputs, byte for byte; no temporary left

    forced = _netlm("analyze", str(b), "--out", str(out), "--sr", "--quiet", "--overwrite")
    assert forced.returncode == 0, forced.stderr
    assert json.loads((out / "report.json").read_text())["study"]["study_instance_uid"] == UID_B


def test_cli_tells_uidless_studies_apart_by_their_folder(tmp_path):
    shutil.copytree(DEMO, tmp_path / "p1")
    shutil.copytree(DEMO, tmp_path / "p2")  # the same files: only the folder tells them apart
    out = tmp_path / "out"
    assert _netlm("analyze", str(tmp_path / "p1"), "--out", str(out), "--quiet").returncode == 0
    before = (out / "report.json").read_bytes()
    assert _netlm("analyze", str(tmp_path / "p1"), "--out", str(out), "--quiet").returncode == 0
    r = _netlm("analyze", str(tmp_path / "p2"), "--out", str(out), "--quiet")
    assert r.returncode == 3
    assert len(r.stderr.strip().splitlines()) == 1
    for said in (str(out), str(tmp_path / "p2" / "ct.nii.gz"), "no StudyInstanceUID"):
        assert said in r.stderr
    assert (out / "report.json").read_bytes() == before


def test_api_write_outputs_refuses_another_study_unless_overwrite(tmp_path):
    shutil.copytree(DEMO, tmp_path / "p1")
    shutil.copytree(DEMO, tmp_path / "p2")
    r1, c1 = analyze_with_context(tmp_path / "p1")
    r2, c2 = analyze_with_context(tmp_path / "p2")
    out = tmp_path / "out"
    write_outputs(r1, c1, out, OutputSet.study(html=True))
    write_outputs(r1, c1, out, OutputSet.study(html=True))  # the same study again: fine
    before = _hashes(out)
    with pytest.raises(OutputError, match="another study") as err:
        write_outputs(r2, c2, out, OutputSet.study(html=True))
    assert err.value.exit_code == 3
    assert _hashes(out) == before
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json"]
    write_outputs(r2, c2, out, OutputSet.study(), overwrite=True)
    assert json.loads((out / "report.json").read_text()) == r2.to_dict()


def test_a_report_json_that_is_not_ours_is_kept(tmp_path):
    report, ctx = analyze_with_context(DEMO)
    (tmp_path / "report.json").write_text('{"results": [1, 2, 3]}\n')
    with pytest.raises(OutputError, match="not a netlm-imaging report"):
        write_outputs(report, ctx, tmp_path, OutputSet.study())
    assert (tmp_path / "report.json").read_text() == '{"results": [1, 2, 3]}\n'


def test_a_report_written_before_input_key_is_the_same_study_by_image_and_grid(tmp_path):
    report, ctx = analyze_with_context(DEMO)
    old = report.to_dict()
    del old["study"]["input_key"]
    (tmp_path / "report.json").write_text(json.dumps(old))
    write_outputs(report, ctx, tmp_path, OutputSet.study())  # an older version's report of the demo: replaced
    other = json.loads(json.dumps(old))
    other["study"]["grid"]["shape"] = [9, 9, 9]
    (tmp_path / "report.json").write_text(json.dumps(other))
    with pytest.raises(OutputError, match="another study"):
        write_outputs(report, ctx, tmp_path, OutputSet.study())


def test_batch_resume_into_the_same_folder_is_unaffected(tmp_path):
    cohort = tmp_path / "cohort"
    shutil.copytree(DEMO, cohort / "s01")
    shutil.copytree(DEMO, cohort / "s02")
    out = tmp_path / "out"
    studies = discover_cohort(cohort)
    first = run_cohort(studies, out)
    assert (first.analysed, first.failed) == (2, 0)
    second = run_cohort(discover_cohort(cohort), out, resume=True)
    assert (second.analysed, second.resumed, second.failed) == (0, 2, 0)
    assert sorted(p.name for p in (out / "reports").glob("*.json")) == ["s01.json", "s02.json"]


def _block(**study) -> dict:
    return {"image_source": "ct.nii.gz", "grid": {"shape": [4, 5, 6], "spacing_mm": [0.8, 0.9, 2.5]}, **study}


def _report(out: Path, study: dict, tool: object = None) -> None:
    out.mkdir(exist_ok=True)
    doc = {"tool": {"name": "netlm-imaging"} if tool is None else tool, "study": study}
    (out / "report.json").write_text(json.dumps(doc))


def test_a_uid_study_and_a_uidless_one_are_two_studies_even_with_the_same_image_and_grid(tmp_path):
    # one side with a StudyInstanceUID decides by the UID alone: the same name and grid do not make them one
    _report(tmp_path, _block(study_instance_uid=UID_A))
    with pytest.raises(OutputError, match="another study"):
        check_same_study(tmp_path, _block())
    _report(tmp_path, _block())
    with pytest.raises(OutputError, match="another study"):
        check_same_study(tmp_path, _block(study_instance_uid=UID_B))
    check_same_study(tmp_path, _block())  # both UID-less, no input_key, same name and grid: the same study


def test_uidless_studies_of_another_image_name_are_two_studies(tmp_path):
    _report(tmp_path, _block())
    with pytest.raises(OutputError, match="another study"):
        check_same_study(tmp_path, _block(image_source="mr.nii.gz"))


def test_path_key_is_the_resolved_path_digest(tmp_path):
    image = tmp_path / "p1" / "ct.nii.gz"
    expected = hashlib.sha256(str(image.resolve()).encode()).hexdigest()[:16]  # version 0.1's documented recipe
    assert path_key(image) == expected
    assert path_key(tmp_path / "p1" / ".." / "p1" / "ct.nii.gz") == expected
    assert path_key(tmp_path / "p2" / "ct.nii.gz") != expected


def _image(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_input_key_follows_the_file_not_the_disk_it_lies_on(tmp_path):
    rng = np.random.default_rng(7)
    data = rng.integers(0, 256, 3 * (1 << 20), dtype=np.uint8).tobytes()  # 3 MiB: both ends and a middle
    key = input_key(_image(tmp_path / "disk1" / "cohort" / "s01" / "ct.nii.gz", data))
    assert input_key(_image(tmp_path / "disk2" / "s01" / "ct.nii.gz", data)) == key  # moved: the same study
    assert input_key(_image(tmp_path / "disk1" / "cohort" / "s02" / "ct.nii.gz", data)) != key  # another folder
    assert input_key(_image(tmp_path / "disk2" / "s01" / "ct2.nii.gz", data)) != key  # another name
    last = data[:-1] + bytes([data[-1] ^ 1])
    assert input_key(_image(tmp_path / "disk3" / "s01" / "ct.nii.gz", last)) != key  # another image: last byte
    first = bytes([data[0] ^ 1]) + data[1:]
    assert input_key(_image(tmp_path / "disk4" / "s01" / "ct.nii.gz", first)) != key  # first byte
    assert input_key(_image(tmp_path / "disk5" / "s01" / "ct.nii.gz", data + b"\0")) != key  # size


def test_cli_rerun_of_a_moved_study_folder_replaces_its_own_outputs(tmp_path):
    shutil.copytree(DEMO, tmp_path / "disk1" / "s01")
    out = tmp_path / "out"
    assert _netlm("analyze", str(tmp_path / "disk1" / "s01"), "--out", str(out), "--quiet").returncode == 0
    first = json.loads((out / "report.json").read_text())
    (out / "report.json").write_text(json.dumps({**first, "marker": "written by the first run"}))
    shutil.move(tmp_path / "disk1", tmp_path / "disk2")  # the cohort moved to another disk
    r = _netlm("analyze", str(tmp_path / "disk2" / "s01"), "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr  # no --overwrite needed: the same study
    again = json.loads((out / "report.json").read_text())
    assert again["study"]["input_key"] == first["study"]["input_key"]
    assert "marker" not in again  # replaced by the new run


def test_a_version_0_1_report_keyed_by_path_is_the_same_study_at_that_path(tmp_path):
    study = tmp_path / "p1"
    shutil.copytree(DEMO, study)
    report, ctx = analyze_with_context(study)
    old = report.to_dict()
    old["study"]["input_key"] = path_key(ctx.image.source)  # what version 0.1 wrote
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report.json").write_text(json.dumps(old))
    write_outputs(report, ctx, tmp_path / "out", OutputSet.study())  # the same study: replaced
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == report.to_dict()
    old["study"]["input_key"] = path_key(tmp_path / "elsewhere" / "ct.nii.gz")  # 0.1's report of another path
    (tmp_path / "out" / "report.json").write_text(json.dumps(old))
    with pytest.raises(OutputError, match="another study"):
        write_outputs(report, ctx, tmp_path / "out", OutputSet.study())


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("not json {", "not a netlm-imaging report (JSONDecodeError)"),
        ('{"tool": {"name": "other-tool"}, "study": {}}', "not a netlm-imaging report;"),
        ('{"tool": {"name": "netlm-imaging"}, "study": "ct"}', "not a netlm-imaging report;"),
    ],
)
def test_a_report_json_of_someone_else_is_refused_and_kept(tmp_path, text, why):
    (tmp_path / "report.json").write_text(text)
    with pytest.raises(OutputError, match=re.escape(why)) as err:
        check_same_study(tmp_path, _block(study_instance_uid=UID_A))
    assert err.value.exit_code == 3
    assert (tmp_path / "report.json").read_text() == text


@pytest.mark.parametrize("name", ["report_sr.dcm", "derived_seg.dcm"])
def test_without_report_json_the_sr_or_seg_tells_the_study(tmp_path, name):
    ds = pydicom.Dataset()
    ds.StudyInstanceUID = UID_A
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.33333"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.66.4"
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.save_as(tmp_path / name, enforce_file_format=True)
    with pytest.raises(OutputError, match=f"another study \\(StudyInstanceUID {UID_A}\\)"):
        check_same_study(tmp_path, _block(study_instance_uid=UID_B))
    check_same_study(tmp_path, _block(study_instance_uid=UID_A))
