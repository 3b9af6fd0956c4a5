"""Privacy: no patient identity in any output, log or error message unless asked for.

A synthetic DICOM study is written with ``tests/dicom_factory.py`` and filled
with identifiers (name "Doe^Jane", ID "SECRET-ID-123", birth date 19700101,
other IDs, address, phone, institution, accession number, referring
physician); its DICOM SEG (``tests/seg_factory.py``, highdicom) copies the
patient module from the CT, as real SEGs do. ``netlm -vv analyze`` (with
``--html --sr --seg-out``) and ``netlm -vv batch`` (with ``--html --sr``) run
on it as subprocesses; every file they write (DICOM decoded with pydicom and
walked element by element, including sequences, plus the raw bytes), their
stdout and their debug logs are scanned for every identifier in several
spellings. A failing run's error message and failure record are scanned too.
With ``--include-identifiers`` the scan finds the name, ID and birth date in
report.json, which shows the scan can see them.
"""

from __future__ import annotations

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
from pydicom.sr.codedict import codes

from tests.conftest import oblique_affine
from tests.dicom_factory import write_image_series
from tests.dicom_tools import assert_dciodvfy_clean
from tests.seg_factory import SegmentSpec, write_seg

ROOT = Path(__file__).resolve().parents[1]
NAME = "Doe^Jane"
PATIENT_ID = "SECRET-ID-123"
BIRTH = "19700101"
EXTRA_TAGS = {
    "OtherPatientIDs": "OTHER-ID-987",
    "PatientAddress": "12 Hidden Lane, Smalltown",
    "PatientTelephoneNumbers": "555-0199",
    "InstitutionName": "Saint Confidential Hospital",
    "ReferringPhysicianName": "Smith^Referrer",
    "AccessionNumber": "ACC-SECRET-42",
    "PatientMotherBirthName": "Roe^Mary",
    "MilitaryRank": "Colonel Secret",
}
#: (label, regular expression) searched case-insensitively in every output.
NEEDLES: list[tuple[str, str]] = [
    ("name", r"Doe\^Jane"),
    ("family name", r"\bDoe\b"),
    ("given name", r"\bJane\b"),
    ("patient id", r"SECRET-ID-123"),
    ("other id", r"OTHER-ID-987"),
    ("birth date", r"19700101"),
    ("birth date iso", r"1970-01-01"),
    ("birth date dotted", r"01\.01\.1970"),
    ("birth date slashed", r"01/01/1970"),
    ("address", r"Hidden Lane"),
    ("phone", r"555-0199"),
    ("referring physician", r"Smith\^Referrer"),
    ("accession", r"ACC-SECRET-42"),
    ("mother's name", r"Roe\^Mary"),
    ("rank", r"Colonel Secret"),
]
#: The institution is an indirect identifier (PS3.15 Basic Profile removes InstitutionName); checked
#: separately because the SR/SEG writers still copy it in ContributingEquipmentSequence (open finding).
INSTITUTION = ("institution", r"Confidential Hospital")
SHAPE = (24, 22, 8)
AFFINE = oblique_affine(spacing=(0.9, 0.8, 2.0), angles_deg=(5.0, -3.0, 12.0))


def _study(folder: Path, seed: int = 3) -> Path:
    """CT + SEG (liver with one lesion) full of identifiers; returns the study folder."""
    rng = np.random.default_rng(seed)
    img = rng.normal(40.0, 8.0, SHAPE).round()
    liver = np.zeros(SHAPE, bool)
    liver[4:20, 4:18, 1:7] = True
    lesion = np.zeros(SHAPE, bool)
    lesion[9:13, 8:12, 3:5] = True
    img[liver] = 60.0
    img[lesion] = 110.0
    files = write_image_series(
        folder / "CT",
        img,
        AFFINE,
        seed=seed,
        patient_name=NAME,
        patient_id=PATIENT_ID,
        birth_date=BIRTH,
        extra_tags=EXTRA_TAGS,
    )
    write_seg(
        folder / "seg.dcm",
        files,
        [
            SegmentSpec("Liver", liver & ~lesion),
            SegmentSpec(
                "Lesion",
                lesion,
                property_type=codes.SCT.Neoplasm,
                property_category=codes.SCT.MorphologicallyAbnormalStructure,
            ),
        ],
        seed=seed,
    )
    return folder


def _netlm(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "netlm_imaging.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def _dicom_text(path: Path) -> str:
    """Every element value of a DICOM file, sequences included, as text."""
    ds = pydicom.dcmread(path, force=True)
    parts: list[str] = []

    def visit(d: pydicom.Dataset) -> None:
        for elem in d:
            if elem.VR == "SQ":
                for item in elem.value:
                    visit(item)
            elif elem.tag != 0x7FE00010:
                parts.append(f"{elem.keyword}={elem.value!s}")

    visit(ds.file_meta)
    visit(ds)
    return "\n".join(parts)


def _texts_of(paths: list[Path]) -> dict[str, str]:
    """Searchable text of every output file: decoded DICOM and raw bytes as latin-1."""
    out: dict[str, str] = {}
    for p in paths:
        raw = p.read_bytes()
        out[str(p)] = raw.decode("latin-1")
        if p.suffix == ".dcm" or raw[128:132] == b"DICM":
            out[f"{p} (decoded)"] = _dicom_text(p)
    return out


def _leaks(texts: dict[str, str], needles: list[tuple[str, str]] = NEEDLES) -> list[str]:
    found = []
    for where, text in texts.items():
        for label, pattern in needles:
            m = re.search(pattern, text, flags=re.IGNORECASE)
            if m:
                found.append(f"{label} ({m.group(0)!r}) in {where}")
    return found


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    return _study(tmp_path_factory.mktemp("privacy") / "study01")


def test_the_input_really_carries_the_identifiers(study):
    """The scan must find every needle in the inputs, or a clean output proves nothing."""
    texts = _texts_of([next((study / "CT").iterdir()), study / "seg.dcm"])
    needles = [*NEEDLES, INSTITUTION]
    found = {label for label, pattern in needles if any(re.search(pattern, t, re.I) for t in texts.values())}
    synthetic_spellings = {"birth date iso", "birth date dotted", "birth date slashed"}
    assert found >= {label for label, _ in needles} - synthetic_spellings
    seg_text = _dicom_text(study / "seg.dcm")
    assert NAME in seg_text
    assert PATIENT_ID in seg_text


def test_analyze_outputs_and_logs_carry_no_identifiers(study, tmp_path):
    out = tmp_path / "out"
    r = _netlm("-vv", "analyze", str(study), "--out", str(out), "--html", "--sr", "--seg-out")
    assert r.returncode == 0, r.stderr
    files = _files_under(out)
    names = {p.name for p in files}
    assert {"report.json", "report.html", "report_sr.dcm", "derived_seg.dcm"} <= names
    assert "DEBUG" in r.stderr  # -vv really logged
    texts = _texts_of(files) | {"stdout": r.stdout, "stderr (-vv log)": r.stderr}
    assert _leaks(texts) == []
    report = json.loads((out / "report.json").read_text())
    ct = pydicom.dcmread(next((study / "CT").iterdir()))
    assert report["study"]["study_instance_uid"] == ct.StudyInstanceUID  # keyed by StudyInstanceUID
    assert "identifiers" not in report["study"]


def test_include_identifiers_puts_them_in_the_report(study, tmp_path):
    out = tmp_path / "out"
    r = _netlm("analyze", str(study), "--out", str(out), "--include-identifiers", "--quiet")
    assert r.returncode == 0, r.stderr
    leaks = _leaks(_texts_of([out / "report.json"]))
    joined = "\n".join(leaks)
    for label in ("name", "patient id", "birth date"):
        assert f"{label} (" in joined
    ids = json.loads((out / "report.json").read_text())["study"]["identifiers"]
    assert ids["patient_name"] == NAME
    assert ids["patient_id"] == PATIENT_ID
    assert ids["patient_birth_date"] == BIRTH


def test_error_messages_carry_no_identifiers(study, tmp_path):
    """A failing run (voxel budget; a SEG from another patient's frame of reference) says nothing identifying."""
    r = _netlm("-vv", "analyze", str(study), "--out", str(tmp_path / "o1"), "--max-voxels", "100")
    assert r.returncode == 3
    assert "netlm: error:" in r.stderr
    assert _leaks({"stderr": r.stderr, "stdout": r.stdout}) == []
    other = _study(tmp_path / "other", seed=4)  # same identifiers, another frame of reference
    r = _netlm("-vv", "analyze", "--image", str(study / "CT"), "--seg", str(other / "seg.dcm"), "--json", "-")
    assert r.returncode == 3
    assert "FrameOfReferenceUID" in r.stderr
    assert _leaks({"stderr": r.stderr, "stdout": r.stdout}) == []


def test_batch_outputs_logs_and_failures_carry_no_identifiers(study, tmp_path):
    cohort = tmp_path / "cohort"
    shutil.copytree(study, cohort / "study01")
    broken = cohort / "study02"
    shutil.copytree(study, broken)
    first = sorted((broken / "CT").iterdir())[3]
    first.write_bytes(first.read_bytes()[:600])  # truncated slice: this study fails
    out = tmp_path / "bout"
    r = _netlm("-vv", "batch", str(cohort), "--out", str(out), "--html", "--sr")
    assert r.returncode == 4, r.stderr  # partial success
    files = _files_under(out)
    names = {p.name for p in files}
    assert "cohort.csv" in names
    assert any(n.endswith(".failed.json") for n in names)
    assert any(n.endswith(".sr.dcm") for n in names)
    texts = _texts_of(files) | {"stdout": r.stdout, "stderr (-vv log)": r.stderr}
    assert _leaks(texts) == []
    ct = pydicom.dcmread(next((study / "CT").iterdir()))
    report = json.loads((out / "reports" / "study01.json").read_text())
    assert report["study"]["study_instance_uid"] == ct.StudyInstanceUID


def test_cohort_csv_rows_are_keyed_by_study_instance_uid(study, tmp_path):
    """A cohort.csv row links back to PACS by StudyInstanceUID, not only by the (user-chosen) folder name."""
    cohort = tmp_path / "cohort"
    shutil.copytree(study, cohort / "study01")
    out = tmp_path / "bout"
    r = _netlm("batch", str(cohort), "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    ct = pydicom.dcmread(next((study / "CT").iterdir()))
    header, row = (out / "cohort.csv").read_text().splitlines()[:2]
    assert "study_instance_uid" in header.split(",")
    assert ct.StudyInstanceUID in row.split(",")


def test_sr_and_derived_seg_carry_no_institution(study, tmp_path):
    """PS3.15 Basic Profile: InstitutionName is removed at every nesting level, not only at the top."""
    out = tmp_path / "out"
    r = _netlm("analyze", str(study), "--out", str(out), "--sr", "--seg-out", "--quiet")
    assert r.returncode == 0, r.stderr
    texts = _texts_of([out / "report_sr.dcm", out / "derived_seg.dcm"])
    assert_dciodvfy_clean(out / "report_sr.dcm")
    assert_dciodvfy_clean(out / "derived_seg.dcm")
    assert _leaks(texts, [INSTITUTION]) == []
