"""The DICOM writers' own encodings agree with the libraries they stand in for.

* the identity attributes of a research copy made from the raw header equal
  what dicognito + the Basic Profile removals (``identity.deidentify``) make of
  the same attributes read with pydicom; attributes only dicognito can replace
  (person names, IDs, station names, sequences) hand the work to dicognito;
* the DS formatting equals pydicom's ``format_number_as_ds`` (what highdicom writes);
* ``result_uid`` equals pydicom's ``generate_uid`` with the same entropy;
* the tags of the copied Patient / Study attributes are pydicom's;
* ``netlm analyze --sr`` on a plain study imports neither pydicom nor highdicom.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.uid import generate_uid
from pydicom.valuerep import format_number_as_ds

from netlm_imaging.report import _dicom_bytes as B
from netlm_imaging.report._source_header import (
    identity_elements,
    identity_elements_pydicom,
    read_raw_header,
    source_identity,
)
from netlm_imaging.report.identity import (
    BASIC_PROFILE_EMPTIED,
    BASIC_PROFILE_REMOVED,
    PATIENT_STUDY_TAGS,
    result_uid,
)
from tests.conftest import oblique_affine
from tests.dicom_factory import write_image_series

ROOT = Path(__file__).resolve().parents[1]
#: Patient / Study attributes of every kind of treatment: emptied, removed (by the profile or by
#: dicognito), shifted dates (paired times too, also of an emptied date), fixed values, kept values.
RICH = {
    "PatientBirthTime": "083000",
    "PatientAge": "056Y",
    "PatientWeight": "71.5",
    "PatientComments": "Jane Doe, MRN-778899",
    "Occupation": "Nurse",
    "SmokingStatus": "NO",
    "LastMenstrualDate": "20230401",
    "RequestingService": "Oncology",
    "ClinicalTrialSiteName": "Site 7",
    "StudyDescription": "Liver CT Jane Doe",
    "ReferringPhysicianName": "Smith^Referrer",
    "AccessionNumber": "ACC-55443",
    "StudyID": "S-77",
    "InstitutionName": "Saint Confidential Hospital",
    "InstitutionalDepartmentName": "Radiology East",
    "ManufacturerModelName": "Scanner X",
    "DeviceSerialNumber": "SN-4242",
}


def _write(folder: Path, extra: dict) -> Path:
    img = np.zeros((8, 8, 3))
    files = write_image_series(folder, img, oblique_affine(), seed=2, extra_tags=extra)
    return Path(files[0])


def _decoded(elements: dict[int, bytes]) -> pydicom.Dataset:
    fp = DicomBytesIO(b"".join(elements[t] for t in sorted(elements)))
    return read_dataset(fp, is_implicit_VR=False, is_little_endian=True)


def test_raw_research_identity_is_dicognitos(tmp_path: Path) -> None:
    first = _write(tmp_path / "ct", RICH)
    raw = read_raw_header(first)
    assert raw is not None
    kwargs = {"date": "20261201", "time": "113547.593637"}
    got = identity_elements(raw, research=True, removed=BASIC_PROFILE_REMOVED, emptied=BASIC_PROFILE_EMPTIED, **kwargs)
    assert got is not None  # nothing here needs dicognito's made-up values
    ref = identity_elements_pydicom(pydicom.dcmread(first, stop_before_pixels=True), research=True, **kwargs)
    a, b = _decoded(ref), _decoded(got)
    assert a == b
    src = pydicom.dcmread(first)
    assert b.PatientBirthTime != src.PatientBirthTime  # shifted with the (emptied) birth date, as dicognito does
    assert b.StudyDate != src.StudyDate
    assert b.LastMenstrualDate != src.LastMenstrualDate
    assert "Occupation" not in b
    assert "PatientComments" not in b
    assert b.RequestingService == ""
    assert b.ClinicalTrialSiteName == "Site 7"
    assert b.PatientIdentityRemoved == "YES"
    # the PACS copy keeps everything: the same as the pydicom copy, and the source's values
    kept = _decoded(identity_elements(raw, research=False, removed=(), emptied=(), **kwargs))
    assert kept == _decoded(
        identity_elements_pydicom(pydicom.dcmread(first, stop_before_pixels=True), research=False, **kwargs)
    )
    assert kept.PatientName == src.PatientName
    assert kept.ContributingEquipmentSequence[0].InstitutionName == RICH["InstitutionName"]


@pytest.mark.parametrize(
    "extra",
    [
        {"StationName": "CT-SECRET-1"},
        {"ConsultingPhysicianName": "Who^Else"},
        {"OtherPatientNames": "Roe^Jane", "ResponsiblePerson": "Roe^Mary"},
        {"ClinicalTrialSubjectID": "X1", "ServiceEpisodeID": "E1", "AdmissionID": "A1", "PatientState": "ok"},
    ],
    ids=["station name", "consulting physician", "responsible person", "kept IDs"],
)
def test_what_only_dicognito_replaces_goes_to_dicognito(tmp_path: Path, extra: dict) -> None:
    first = _write(tmp_path / "ct", extra)
    raw = read_raw_header(first)
    assert raw is not None
    got = identity_elements(
        raw, research=True, date="20261201", time="120000", removed=BASIC_PROFILE_REMOVED, emptied=BASIC_PROFILE_EMPTIED
    )
    ref = _decoded(identity_elements_pydicom(pydicom.dcmread(first), research=True, date="20261201", time="120000"))
    if got is None:  # handed over: source_identity then de-identifies with dicognito
        facts_identity = source_identity(first, research=True, date="20261201", time="120000")
        assert facts_identity is not None
        assert _decoded(facts_identity[1]) == ref
    else:  # values dicognito keeps (IDs it does not know): the same
        assert _decoded(got) == ref
    if "StationName" in extra or "ConsultingPhysicianName" in extra or "ResponsiblePerson" in extra:
        assert got is None


def test_ds_number_is_pydicoms() -> None:
    rng = np.random.default_rng(5)
    values = [0.0, 1.0, -1.0, 2074.7390625, 1e-5, -3.14159265358979e13, 1.5e300, -2.5e-300, 123456789012345.6]
    values += list(rng.normal(size=200) * 10.0 ** rng.integers(-8, 16, size=200))
    for v in values:
        assert B.ds_number(float(v)) == format_number_as_ds(float(v)), v


def test_result_uid_is_pydicoms_generate_uid() -> None:
    for parts in (("a",), ("1.2.3", "seg", "0.1.0", [1, 2], {"x": 1.5})):
        entropy = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
        assert result_uid(*parts) == generate_uid(entropy_srcs=[entropy])


def test_patient_study_tags_are_pydicoms() -> None:
    from pydicom.datadict import tag_for_keyword

    assert {kw: tag_for_keyword(kw) for kw in PATIENT_STUDY_TAGS} == PATIENT_STUDY_TAGS


def test_writing_sr_and_seg_of_a_plain_study_imports_no_dicom_library(tmp_path: Path) -> None:
    """The writers neither import pydicom nor highdicom (a fresh ``analyze --sr`` paid ~0.15 s + ~0.3 s for them).

    In a child process: analyse, forget every pydicom / highdicom module the analysis may have loaded,
    write the SEG and the SR, and list what got imported again.
    """
    from tests.test_sr import write_phantom_study

    d = write_phantom_study(tmp_path / "study", seed=3)
    code = (
        "import sys, json\n"
        "from netlm_imaging.api import analyze_with_context\n"
        "from netlm_imaging.report.dicom_outputs import write_dicom_outputs\n"
        f"report, ctx = analyze_with_context(image={str(d['ct'])!r}, segs=[{str(d['seg'])!r}])\n"
        "def dicom_modules():\n"
        "    return sorted(m for m in sys.modules if m.split('.')[0] in ('pydicom', 'highdicom'))\n"
        "for m in dicom_modules():\n"
        "    del sys.modules[m]\n"
        f"out = {str(tmp_path)!r}\n"
        "write_dicom_outputs(report, ctx, sr_path=out + '/sr.dcm', seg_path=out + '/seg.dcm')\n"
        "print(json.dumps(dicom_modules()))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []
    sr = pydicom.dcmread(tmp_path / "sr.dcm")
    seg = pydicom.dcmread(tmp_path / "seg.dcm", stop_before_pixels=True)
    assert sr.PatientIdentityRemoved == "YES"
    assert seg.PatientName == ""
    assert int(seg.NumberOfFrames) > 0
