"""C-GET / C-MOVE of a study holding objects the PACS cannot send on our association (a real Orthanc on loopback).

A hospital CT study often carries a dose screenshot (Secondary Capture) the archive keeps in JPEG 2000, raw
data (Raw Data Storage) nobody proposes, and, from a Siemens scanner, CSA Non-Image objects (a private SOP
class). Orthanc 1.10 cannot transcode JPEG 2000, we offer Secondary Capture uncompressed only and the others not
at all, so their C-GET sub-operations fail, and Orthanc ends the C-GET at its first failure: `netlm pacs --dimse`
(C-GET, the default) failed the whole study ('incomplete, 0 instance(s) sent, 1 failed'). It must ask again
series by series, measure the study as `netlm analyze` measures its CT + SEG on disk (the truth:
tests/test_sr.py's phantom voxel counts), and name what it left in a warning. Over C-MOVE our SCP rejected the
private class, and Orthanc failed the whole move (0xC000, no sub-operation: 'Cannot transcode ... to one of
[ ]'), which `netlm pacs` read as 'NETLM is not registered as a move destination'; it must take every object.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset

from netlm_imaging.cli import main
from tests.dicom_factory import deterministic_uid
from tests.orthanc_server import _free_port, require_orthanc, start_orthanc
from tests.pacs_reports import measured
from tests.test_sr import write_phantom_study

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
RAW_DATA = "1.2.840.10008.5.1.4.1.1.66"
SIEMENS_CSA_NON_IMAGE = "1.3.12.2.1107.5.9.1"


def _extra(path: Path, study: Dataset, sop_class: str, name: str, series_number: int) -> Path:
    """An object of ``study`` in its own series: a 64 x 64 8-bit screenshot in JPEG 2000, or raw data."""
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = deterministic_uid("unsendable", name, "sop")
    ds.SeriesInstanceUID = deterministic_uid("unsendable", name, "series")
    ds.StudyInstanceUID = study.StudyInstanceUID
    ds.Modality = "OT"
    ds.SeriesNumber, ds.InstanceNumber = series_number, 1
    for key in ("PatientName", "PatientID", "PatientBirthDate", "StudyDate", "StudyTime", "AccessionNumber"):
        setattr(ds, key, getattr(study, key, ""))
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    if sop_class == SECONDARY_CAPTURE:
        ds.ConversionType = "WSD"
        ds.Rows = ds.Columns = 64
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = np.random.default_rng(47).integers(0, 255, (64, 64), dtype=np.uint8).tobytes()
        ds.compress(uid.JPEG2000Lossless, generate_instance_uid=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    require_orthanc()
    move_port = _free_port()
    server = start_orthanc(
        tmp_path_factory.mktemp("orthanc_unsendable"), dicom=True, modalities={"NETLM": ("NETLM", move_port)}
    )
    try:
        root = tmp_path_factory.mktemp("unsendable_study")
        d = write_phantom_study(root / "study", seed=147)
        ct = pydicom.dcmread(d["files"][0], stop_before_pixels=True)
        local = root / "local"
        assert main(["analyze", str(root / "study"), "--out", str(local), "--quiet"]) == 0
        extras = [
            _extra(root / "sc.dcm", ct, SECONDARY_CAPTURE, "dose screen", 90),
            _extra(root / "raw.dcm", ct, RAW_DATA, "raw", 91),
            _extra(root / "csa.dcm", ct, SIEMENS_CSA_NON_IMAGE, "csa", 92),
        ]
        for f in [*extras, *d["files"], d["seg"]]:
            server.upload(f)
        d.update(
            server=server,
            move_port=move_port,
            study_uid=str(ct.StudyInstanceUID),
            local=json.loads((local / "report.json").read_text()),
        )
        yield d
    finally:
        server.stop()


def test_cget_measures_the_study_and_names_what_the_pacs_could_not_send(
    pacs: dict, tmp_path: Path, capsys, caplog
) -> None:
    server, out = pacs["server"], tmp_path / "out"
    args = ["pacs", "--dimse", f"127.0.0.1:{server.dicom_port}", "--called-ae", "ORTHANC", "--study", pacs["study_uid"]]
    with caplog.at_level(logging.WARNING, logger="netlm_imaging"):
        assert main([*args, "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert measured(report) == measured(pacs["local"])
    assert report["liver"]["volume_ml"] == pytest.approx(pacs["truth"]["liver_volume_ml"], rel=1e-4)
    assert report["involvement_percent"] == pytest.approx(pacs["truth"]["involvement_percent"], rel=1e-4)
    warned = [r.getMessage() for r in caplog.records if "not retrieved" in r.getMessage()]
    assert len(warned) == 1, warned
    assert f"3 instance(s) of study {pacs['study_uid']} not retrieved" in warned[0]
    assert "Raw Data Storage" in warned[0]
    assert "Secondary Capture Image Storage" in warned[0]
    assert SIEMENS_CSA_NON_IMAGE in warned[0]


def test_cmove_takes_every_object_and_measures_the_study(pacs: dict, tmp_path: Path, capsys, caplog) -> None:
    from pynetdicom import _config

    server, out = pacs["server"], tmp_path / "out"
    args = ["pacs", "--dimse", f"127.0.0.1:{server.dicom_port}", "--called-ae", "ORTHANC", "--study", pacs["study_uid"]]
    args += ["--retrieve", "move", "--port", str(pacs["move_port"]), "--bind", "127.0.0.1"]
    with caplog.at_level(logging.WARNING, logger="netlm_imaging"):
        assert main([*args, "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    assert measured(json.loads((out / "report.json").read_text())) == measured(pacs["local"])
    assert not [r for r in caplog.records if "not retrieved" in r.getMessage()]
    assert _config.UNRESTRICTED_STORAGE_SERVICE is False  # pynetdicom's process-wide switch is restored
