"""A study as a hospital PACS holds it: two CT reconstructions, the SEG of one of them, a vendor's SR, a key
object selection, a presentation state, later our own SR + derived SEG, and then a second SEG.

`netlm pacs` (C-GET, C-MOVE, WADO-RS from a real Orthanc on loopback) must give exactly the report of
`netlm analyze` on the same files in a local folder (the independent truth; the phantom's voxel counts
of tests/test_sr.py check it too), and an ambiguous study must be refused as `analyze` refuses it, naming
the PACS study rather than a temporary folder that no longer exists.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from netlm_imaging.cli import main
from tests.dicom_factory import deterministic_uid, write_image_series
from tests.orthanc_server import _free_port, require_orthanc, start_orthanc
from tests.pacs_reports import measured
from tests.seg_factory import SegmentSpec, write_seg
from tests.test_sr import AFFINE, SHAPE, phantom_masks, write_phantom_study

#: SOP classes of the non-image objects (PS3.4 B.5): Basic Text SR, Key Object Selection, Grayscale PR.
OTHERS = {
    "SR": "1.2.840.10008.5.1.4.1.1.88.11",
    "KO": "1.2.840.10008.5.1.4.1.1.88.59",
    "PR": "1.2.840.10008.5.1.4.1.1.11.1",
}


def _other_object(path: Path, study: Dataset, modality: str, series_number: int) -> Path:
    ds = Dataset()
    ds.SOPClassUID = OTHERS[modality]
    ds.SOPInstanceUID = deterministic_uid("busy", modality, "sop")
    ds.SeriesInstanceUID = deterministic_uid("busy", modality, "series")
    ds.StudyInstanceUID = study.StudyInstanceUID
    ds.Modality = modality
    ds.SeriesNumber = series_number
    ds.InstanceNumber = 1
    for key in ("PatientName", "PatientID", "PatientBirthDate", "StudyDate", "StudyTime", "AccessionNumber"):
        setattr(ds, key, getattr(study, key, ""))
    ds.ContentDate, ds.ContentTime = "20250101", "120000"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_busy_study(root: Path, seed: int) -> dict:
    """The phantom CT + SEG, a second CT reconstruction of the same frame of reference, an SR, a KO, a PR."""
    d = write_phantom_study(root, seed=seed)
    ct = pydicom.dcmread(d["files"][0], stop_before_pixels=True)
    liver, _ = phantom_masks()
    hu = np.full(SHAPE, -50.0)
    hu[liver] = 75.0
    d["recon"] = write_image_series(
        root / "ct_bone",
        hu,
        AFFINE,
        seed=seed + 1000,
        study_uid=str(ct.StudyInstanceUID),
        frame_of_reference_uid=str(ct.FrameOfReferenceUID),
        series_number=3,
        series_description="bone kernel",
    )
    d["others"] = [_other_object(root / m.lower() / f"{m}.dcm", ct, m, 90 + n) for n, m in enumerate(OTHERS)]
    d["study_uid"] = str(ct.StudyInstanceUID)
    return d


def write_second_seg(d: dict, folder: Path, seed: int) -> Path:
    """Another tool's SEG (one liver segment, on the second reconstruction)."""
    liver, spheres = phantom_masks()
    folder.mkdir(parents=True, exist_ok=True)
    return write_seg(
        folder / "seg2.dcm", d["recon"], [SegmentSpec("Liver", liver | np.any(spheres, axis=0))], seed=seed
    )


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    require_orthanc()
    move_port = _free_port()
    server = start_orthanc(
        tmp_path_factory.mktemp("orthanc_busy"), dicom=True, modalities={"NETLM": ("NETLM", move_port)}
    )
    try:
        root = tmp_path_factory.mktemp("busy_study")
        d = write_busy_study(root, seed=77)
        for f in [*d["files"], d["seg"], *d["recon"], *d["others"]]:
            server.upload(f)
        d.update(server=server, move_port=move_port, root=root)
        yield d
    finally:
        server.stop()


def _pacs_args(pacs: dict, how: str, monkeypatch) -> list[str]:
    server = pacs["server"]
    if how == "web":
        monkeypatch.setenv("NETLM_PACS_USER", server.user)
        monkeypatch.setenv("NETLM_PACS_PASSWORD", server.password)
        return ["pacs", "--url", server.dicomweb_url, "--study", pacs["study_uid"], "--quiet"]
    args = ["pacs", "--dimse", f"127.0.0.1:{server.dicom_port}", "--called-ae", "ORTHANC", "--retrieve", how]
    if how == "move":
        args += ["--port", str(pacs["move_port"]), "--bind", "127.0.0.1"]
    return [*args, "--study", pacs["study_uid"], "--quiet"]


def _local_report(folder: Path, out: Path, *extra: str) -> dict:
    assert main(["analyze", str(folder), "--out", str(out), "--quiet", *extra]) == 0
    return json.loads((out / "report.json").read_text())


@pytest.mark.parametrize("how", ["get", "move", "web"])
def test_busy_study_is_measured_as_analyze_measures_its_folder(
    pacs: dict, how: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    local = _local_report(pacs["root"], tmp_path / "local")
    assert local["liver"]["volume_ml"] == pytest.approx(pacs["truth"]["liver_volume_ml"], rel=1e-4)
    assert main([*_pacs_args(pacs, how, monkeypatch), "--out", str(tmp_path / "out")]) == 0, capsys.readouterr().err
    got = json.loads((tmp_path / "out" / "report.json").read_text())
    assert measured(got) == measured(local)


def test_second_seg_is_refused_as_analyze_refuses_it_naming_the_pacs_study(
    pacs: dict, tmp_path: Path, capsys, monkeypatch
) -> None:
    """Runs last in this module: it adds a second SEG to the study in the PACS."""
    server = pacs["server"]
    # first our own SR + derived SEG go in (an earlier run): still the same result
    assert main([*_pacs_args(pacs, "get", monkeypatch), "--push"]) == 0, capsys.readouterr().err
    local = _local_report(pacs["root"], tmp_path / "local")
    assert main([*_pacs_args(pacs, "get", monkeypatch), "--out", str(tmp_path / "again")]) == 0
    assert measured(json.loads((tmp_path / "again" / "report.json").read_text())) == measured(local)
    # then another tool's SEG: two candidate segmentations, for analyze and for pacs
    folder = tmp_path / "with_seg2"
    shutil.copytree(pacs["root"], folder)
    seg2 = write_second_seg(pacs, folder / "seg2", seed=78)
    server.upload(seg2)
    assert main(["analyze", str(folder), "--out", str(tmp_path / "l2"), "--quiet"]) == 3
    local_err = capsys.readouterr().err
    assert "2 candidate segmentations" in local_err
    for how in ("get", "web"):
        assert main([*_pacs_args(pacs, how, monkeypatch), "--out", str(tmp_path / f"o_{how}")]) == 3
        err = capsys.readouterr().err
        assert "2 candidate segmentations" in err
        assert "--seg-choice" in err
        assert f"/studies/{pacs['study_uid']}: 2 candidate" in err  # the PACS study, not a removed temporary folder
        assert "netlm-pacs-" not in err
        assert len(err.strip().splitlines()) == 1
    # the choice by UID means the same SEG locally and from the PACS
    seg_uid = str(pydicom.dcmread(pacs["seg"], stop_before_pixels=True).SOPInstanceUID)
    local = _local_report(folder, tmp_path / "l3", "--seg-choice", seg_uid)
    assert main([*_pacs_args(pacs, "get", monkeypatch), "--seg-choice", seg_uid, "--out", str(tmp_path / "o3")]) == 0
    assert measured(json.loads((tmp_path / "o3" / "report.json").read_text())) == measured(local)
    assert local["liver"]["volume_ml"] == pytest.approx(pacs["truth"]["liver_volume_ml"], rel=1e-4)
