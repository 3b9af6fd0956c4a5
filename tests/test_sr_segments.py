"""SR measurement groups paired with the derived SEG's segments; SUVs; SRT codes; identity of the objects.

Phantom: tests/test_sr.py's CT + SEG (liver box without the lesions, two lesion
spheres), truth from voxel counts and the spacing. The input "Liver" segment
excludes the lesions, so it is NOT the total liver that the report measures:
the SR must reference the derived SEG's "Liver" segment (total liver), whose
decoded voxels (highdicom) give exactly the total-liver volume of the phantom.
Every SR / SEG written is checked with dciodvfy (dicom3tools) and read back
with highdicom and dcmqi's tid1500reader.
"""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from netlm_imaging.cli import main
from netlm_imaging.report.dicom_sr import read_sr_measurements, write_sr
from tests.dicom_tools import assert_dciodvfy_clean, tid1500_measurements
from tests.test_pet_integration import petct  # noqa: F401 - fixture
from tests.test_sr import VOXEL_ML, phantom_masks, write_phantom_study

MRN = "MRN-778899"
REFERRER = Dataset()
REFERRER.InstitutionName = "St Elsewhere Hospital"
_code = Dataset()
_code.CodeValue, _code.CodingSchemeDesignator, _code.CodeMeaning = MRN, "L", "Jane Doe"
REFERRER.PersonIdentificationCodeSequence = [_code]
EXTRA = {
    "StudyDescription": f"Liver CT Jane Doe {MRN}",
    "ReferringPhysicianIdentificationSequence": [REFERRER],
    "AccessionNumber": "ACC-55443",
}
SECRETS = (b"SECRET-ID-123", b"Doe^Jane", MRN.encode(), b"ACC-55443", b"St Elsewhere", b"19700101")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("sr_segments")
    d = write_phantom_study(base / "study", seed=5, extra_tags=EXTRA)
    outs = []
    for name, extra in (("out1", []), ("out2", []), ("ids", ["--include-identifiers"])):
        out = base / name
        code = main(
            ["analyze", "--image", str(d["ct"]), "--seg", str(d["seg"]), "--sr", "--out", str(out), "--quiet", *extra]
        )
        assert code == 0
        outs.append(out)
    d["out"], d["rerun"], d["ids"] = outs
    d["base"] = base
    return d


def _decoded(seg_path: Path, files: list[Path]) -> dict[int, np.ndarray]:
    seg = hd.seg.segread(seg_path)
    uids = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files]
    arr = seg.get_pixels_by_source_instance(uids, ignore_spatial_locations=True)  # (k, rows, cols, segments)
    return {n + 1: arr[..., n].transpose(2, 1, 0).astype(bool) for n in range(arr.shape[-1])}


def test_sr_implies_the_derived_seg_and_both_pass_dciodvfy(runs: dict) -> None:
    out = runs["out"]
    assert (out / "derived_seg.dcm").is_file()  # --sr alone wrote the SEG its groups reference
    for name in ("report_sr.dcm", "derived_seg.dcm"):
        assert_dciodvfy_clean(out / name)
        assert_dciodvfy_clean(runs["ids"] / name)


def test_every_volume_group_references_the_derived_segment_it_was_measured_on(runs: dict) -> None:
    out = runs["out"]
    got = read_sr_measurements(out / "report_sr.dcm")
    seg_uid = str(pydicom.dcmread(out / "derived_seg.dcm", stop_before_pixels=True).SOPInstanceUID)
    masks = _decoded(out / "derived_seg.dcm", runs["files"])
    liver, spheres = phantom_masks()
    total = liver | np.any(spheres, axis=0)
    # total liver: the referenced derived segment is the phantom's total liver, voxel for voxel
    ref = got["liver_referenced_segment"]
    assert ref["sop_instance_uid"] == seg_uid
    assert np.array_equal(masks[ref["segment_number"]], total)
    assert got["liver_volume_ml"] == pytest.approx(int(total.sum()) * VOXEL_ML, rel=1e-6)
    # each lesion: its segment holds exactly one phantom sphere, whose volume is the group's volume
    assert len(got["lesions"]) == 2
    seen = set()
    for les in got["lesions"]:
        r = les["referenced_segment"]
        assert r["sop_instance_uid"] == seg_uid
        m = masks[r["segment_number"]]
        sphere = next(s for s in spheres if np.array_equal(s, m))
        assert les["volume_ml"] == pytest.approx(int(sphere.sum()) * VOXEL_ML, rel=1e-6)
        seen.add(r["segment_number"])
    assert len(seen) == 2
    # the SR's evidence lists the derived SEG, so a viewer can fetch it
    sr = pydicom.dcmread(out / "report_sr.dcm")
    evidence = {
        str(ref.ReferencedSOPInstanceUID)
        for ev in sr.CurrentRequestedProcedureEvidenceSequence
        for s in ev.ReferencedSeriesSequence
        for ref in s.ReferencedSOPSequence
    }
    assert seg_uid in evidence


def test_dcmqi_tid1500reader_pairs_groups_with_segments(runs: dict) -> None:
    out = runs["out"]
    groups = tid1500_measurements(out / "report_sr.dcm", runs["base"])
    seg = pydicom.dcmread(out / "derived_seg.dcm", stop_before_pixels=True)
    labels = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    by_id = {g["TrackingIdentifier"]: g for g in groups}
    assert labels[by_id["Total liver"]["ReferencedSegment"]] == "Liver"
    assert by_id["Total liver"]["segmentationSOPInstanceUID"] == seg.SOPInstanceUID
    lesion_groups = [g for t, g in by_id.items() if t.startswith("Lesion ")]
    assert len(lesion_groups) == 2
    for g in lesion_groups:
        assert labels[g["ReferencedSegment"]] == g["TrackingIdentifier"]  # "Lesion N (intrahepatic)" both
        assert g["segmentationSOPInstanceUID"] == seg.SOPInstanceUID


def test_a_rerun_writes_the_same_uids(runs: dict) -> None:
    for name in ("report_sr.dcm", "derived_seg.dcm"):
        a = pydicom.dcmread(runs["out"] / name, stop_before_pixels=True)
        b = pydicom.dcmread(runs["rerun"] / name, stop_before_pixels=True)
        assert (a.SOPInstanceUID, a.SeriesInstanceUID) == (b.SOPInstanceUID, b.SeriesInstanceUID)
        c = pydicom.dcmread(runs["ids"] / name, stop_before_pixels=True)
        assert c.SOPInstanceUID == a.SOPInstanceUID  # identity does not change which object it is


def test_research_copies_are_deidentified_and_pacs_copies_keep_the_patient(runs: dict) -> None:
    ct = pydicom.dcmread(runs["files"][0], stop_before_pixels=True)
    assert ct.StudyDescription == EXTRA["StudyDescription"]  # the input really carries them
    for name in ("report_sr.dcm", "derived_seg.dcm"):
        data = (runs["out"] / name).read_bytes()
        assert [s for s in SECRETS if s in data] == []
        ds = pydicom.dcmread(runs["out"] / name)
        assert "StudyDescription" not in ds
        assert "ReferringPhysicianIdentificationSequence" not in ds
        assert ds.PatientIdentityRemoved == "YES"
        assert {c.CodeValue for c in ds.DeidentificationMethodCodeSequence} == {"113100", "113108"}
        assert ds.StudyInstanceUID == ct.StudyInstanceUID  # Retain UIDs: it links back to the study
        kept = pydicom.dcmread(runs["ids"] / name, stop_before_pixels=True)
        assert (kept.PatientID, str(kept.PatientName), kept.StudyInstanceUID) == (
            ct.PatientID,
            str(ct.PatientName),
            ct.StudyInstanceUID,
        )
        assert kept.AccessionNumber == ct.AccessionNumber


def test_input_segments_are_referenced_only_when_exactly_the_measured_region(runs: dict, tmp_path: Path) -> None:
    from netlm_imaging.api import analyze_with_context

    report, ctx = analyze_with_context(image=runs["ct"], segs=[str(runs["seg"])])
    path = write_sr(report, ctx, tmp_path / "sr.dcm")
    assert_dciodvfy_clean(path)
    got = read_sr_measurements(path)
    assert got["liver_referenced_segment"] is None  # input Liver excludes the lesions
    seg = pydicom.dcmread(runs["seg"], stop_before_pixels=True)
    numbers = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    input_masks = _decoded(runs["seg"], runs["files"])
    for les in got["lesions"]:
        r = les["referenced_segment"]
        assert r["sop_instance_uid"] == seg.SOPInstanceUID
        assert numbers[r["segment_number"]].startswith("Lesion")
        assert les["volume_ml"] == pytest.approx(int(input_masks[r["segment_number"]].sum()) * VOXEL_ML, rel=1e-6)


def test_suv_measurements_from_the_report_pet_fields(runs: dict, tmp_path: Path) -> None:
    report = read_report(runs["out"])
    suvs = [(7.25, 4.5, 6.125), (12.5, 8.0, 11.0)]
    for les, (mx, mean, peak) in zip(report["lesions"], suvs):
        les.update(suv_max=mx, suv_mean=mean, suv_peak=peak)
    report["lesions"][0].update(sretv_ml=0.5, tlsre=3.25)
    report["pet"] = {
        "suv_type": "SUVbw",
        "sretv_ml": 0.77,
        "tlsre": 4.62,
        "whole_body_sretv_ml": 1.5,
        "whole_body_tlsre": 9.75,
    }
    path = write_sr(report, None, tmp_path / "pet_sr.dcm", image_datasets=runs["files"])
    assert_dciodvfy_clean(path)
    got = read_sr_measurements(path)
    for les, (mx, mean, peak) in zip(sorted(got["lesions"], key=lambda x: x["id"]), suvs):
        assert (les["suv_max"], les["suv_mean"], les["suv_peak"]) == (mx, mean, peak)
    assert (got["sretv_ml"], got["tlsre"]) == (0.77, 4.62)
    assert (got["whole_body_sretv_ml"], got["whole_body_tlsre"]) == (1.5, 9.75)
    first = min(got["lesions"], key=lambda x: x["id"])
    assert (first["sretv_ml"], first["tlsre"]) == (0.5, 3.25)
    # read with highdicom directly: SUVbw (DCM 126401) in {SUVbw}g/ml, derivation SCT Maximum
    sr = hd.sr.srread(path)
    group = next(
        g for g in sr.content.get_image_measurement_groups() if str(g.tracking_identifier) == "Lesion 1 (intrahepatic)"
    )
    suv = group.get_measurements(name=hd.sr.CodedConcept("126401", "DCM", "SUVbw"))
    assert {(m.derivation.value, m.unit.value) for m in suv} == {
        ("56851009", "{SUVbw}g/ml"),
        ("373098007", "{SUVbw}g/ml"),
        ("126031", "{SUVbw}g/ml"),
    }
    no_pet = read_sr_measurements(runs["out"] / "report_sr.dcm")
    assert no_pet["sretv_ml"] is None
    assert all(les["suv_max"] is None for les in no_pet["lesions"])


def read_report(out: Path) -> dict:
    import json

    return json.loads((out / "report.json").read_text())


_SRT = {"10200004": ("T-62000", "Liver"), "108369006": ("M-80003", "Neoplasm"), "118565006": ("G-D705", "Volume")}


def _to_srt(ds: Dataset) -> int:
    """Recode the SR's SNOMED CT codes of liver, neoplasm and volume as SNOMED-RT (SRT) codes, in place."""
    n = 0
    for elem in list(ds):
        if elem.VR != "SQ":
            continue
        for item in elem.value:
            if getattr(item, "CodingSchemeDesignator", None) == "SCT" and str(item.CodeValue) in _SRT:
                item.CodeValue, item.CodeMeaning = _SRT[str(item.CodeValue)]
                item.CodingSchemeDesignator = "SRT"
                n += 1
            n += _to_srt(item)
    return n


def test_srt_coded_sr_reads_like_sct(runs: dict, tmp_path: Path) -> None:
    """An SR from an older tool (SNOMED-RT codes, no netlm tracking identifiers) gives the same numbers."""
    sr = pydicom.dcmread(runs["out"] / "report_sr.dcm")
    for item in sr.ContentSequence:  # drop our tracking identifiers: groups recognised by their codes only
        for sub in getattr(item, "ContentSequence", []):
            for leaf in getattr(sub, "ContentSequence", []):
                text = str(getattr(leaf, "TextValue", ""))
                if text == "Total liver" or text.startswith("Lesion "):
                    leaf.TextValue = "finding " + text[-3:]
    assert _to_srt(sr) > 5
    srt_path = tmp_path / "srt.dcm"
    sr.save_as(srt_path)
    assert b"T-62000" in srt_path.read_bytes()
    got = read_sr_measurements(srt_path)
    ref = read_sr_measurements(runs["out"] / "report_sr.dcm")
    assert got["liver_volume_ml"] == pytest.approx(ref["liver_volume_ml"])  # liver recognised by SRT T-62000
    assert sorted(les["volume_ml"] for les in got["lesions"] if les["location"] == "intrahepatic") == pytest.approx(
        sorted(les["volume_ml"] for les in ref["lesions"])
    )
    assert codes.SCT.Liver == hd.sr.CodedConcept("T-62000", "SRT", "Liver")  # pydicom maps SRT to SCT
    # netlm check reads it like the SCT-coded SR: the liver volume is checked (and agrees), not skipped
    table = tmp_path / "check.csv"
    assert main(["check", str(srt_path), "--study", str(runs["base"] / "study"), "--out", str(table)]) == 0
    rows = {r.split(",")[1]: r.split(",") for r in table.read_text().splitlines()[1:]}
    assert rows["liver_volume_ml"][6] == "agree"
    assert float(rows["liver_volume_ml"][2]) == pytest.approx(ref["liver_volume_ml"], rel=1e-5)


def test_pet_ct_study_sr_carries_the_phantom_suv(petct, tmp_path: Path) -> None:  # noqa: F811
    """A real PET/CT folder (tests/test_pet_integration.py: lesion activity set to SUVbw 20 by the QIBA formula)."""
    out = tmp_path / "out"
    assert main(["analyze", str(petct), "--sr", "--out", str(out), "--quiet"]) == 0
    for name in ("report_sr.dcm", "derived_seg.dcm"):
        assert_dciodvfy_clean(out / name)
    got = read_sr_measurements(out / "report_sr.dcm")
    (les,) = got["lesions"]
    assert les["suv_max"] == pytest.approx(20.0, rel=2e-3)
    report = read_report(out)
    assert les["suv_mean"] == report["lesions"][0]["suv_mean"]
    assert report["pet"]["sretv_ml"] is not None
    assert got["sretv_ml"] == report["pet"]["sretv_ml"]
    assert les["referenced_segment"] is not None
