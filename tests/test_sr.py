"""DICOM SR TID 1500 written with highdicom and parsed back; DICOM SEG output.

Phantom: a CT series (tests.dicom_factory) on an oblique, anisotropic grid and a
BINARY SEG (tests.seg_factory) with a liver box and two lesion spheres inside
it, one segment per lesion. Truth (volumes, involvement) is computed here from
voxel counts and the spacing, independently of the package.
"""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from netlm_imaging.api import analyze_with_context
from netlm_imaging.errors import InputError, UnsupportedError
from netlm_imaging.report.dicom_seg_out import write_seg as write_derived_seg
from netlm_imaging.report.dicom_sr import read_sr_measurements, write_sr
from tests.conftest import oblique_affine
from tests.dicom_factory import write_image_series
from tests.dicom_tools import assert_dciodvfy_clean
from tests.seg_factory import SegmentSpec, write_seg

SHAPE = (40, 36, 20)
SPACING = (0.8, 0.9, 2.5)
VOXEL_ML = SPACING[0] * SPACING[1] * SPACING[2] / 1000.0  # 0.0018 mL, from the spacing alone
AFFINE = oblique_affine(spacing=SPACING, angles_deg=(8.0, -5.0, 15.0), origin=(-100.0, 20.0, 300.0))
LESIONS = [((14.0, 12.0, 9.0), 4.2), ((26.0, 22.0, 12.0), 3.1)]  # centre (ijk), radius in voxels


def phantom_masks() -> tuple[np.ndarray, list[np.ndarray]]:
    """Liver box (without the lesions) and one boolean sphere per lesion."""
    liver = np.zeros(SHAPE, bool)
    liver[5:35, 4:32, 3:17] = True
    ii, jj, kk = np.indices(SHAPE)
    spheres = [((ii - c[0]) ** 2 + (jj - c[1]) ** 2 + (kk - c[2]) ** 2) <= r * r for c, r in LESIONS]
    for s in spheres:
        liver &= ~s
    return liver, spheres


def phantom_hu_and_segments() -> tuple[np.ndarray, list[SegmentSpec]]:
    """The phantom's CT values (HU: -50 outside, 60 liver, 120 lesions) and its SEG segments (Liver, Lesion N)."""
    liver, spheres = phantom_masks()
    hu = np.full(SHAPE, -50.0)
    hu[liver] = 60.0
    for s in spheres:
        hu[s] = 120.0
    segs = [SegmentSpec("Liver", liver)] + [
        SegmentSpec(
            f"Lesion {n + 1}",
            s,
            property_type=codes.SCT.Neoplasm,
            property_category=codes.SCT.MorphologicallyAbnormalStructure,
        )
        for n, s in enumerate(spheres)
    ]
    return hu, segs


def write_phantom_study(folder: Path, *, seed: int = 0, extra_tags: dict | None = None) -> dict:
    """CT series + SEG (liver, Lesion 1, Lesion 2); returns paths and the truth."""
    liver, spheres = phantom_masks()
    hu, segs = phantom_hu_and_segments()
    files = write_image_series(folder / "ct", hu, AFFINE, modality="CT", seed=seed, extra_tags=extra_tags)
    (folder / "seg").mkdir(parents=True, exist_ok=True)
    seg_path = write_seg(folder / "seg" / "seg.dcm", files, segs, seed=seed)
    total = liver | np.any(spheres, axis=0)
    tumour_voxels = int(np.any(spheres, axis=0).sum())
    truth = {
        "liver_volume_ml": int(total.sum()) * VOXEL_ML,
        "tumor_volume_ml": tumour_voxels * VOXEL_ML,
        "involvement_percent": 100.0 * tumour_voxels / int(total.sum()),
        "remnant_volume_ml": (int(total.sum()) - tumour_voxels) * VOXEL_ML,
        "lesion_volumes_ml": sorted(int(s.sum()) * VOXEL_ML for s in spheres),
    }
    return {"ct": folder / "ct", "files": files, "seg": seg_path, "truth": truth}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = write_phantom_study(tmp_path_factory.mktemp("sr_study"))
    report, ctx = analyze_with_context(image=d["ct"], segs=[str(d["seg"])])
    d.update(report=report, ctx=ctx)
    return d


def test_sr_round_trip_gives_phantom_truth(study: dict, tmp_path: Path) -> None:
    path = write_sr(study["report"], study["ctx"], tmp_path / "sr.dcm")
    assert_dciodvfy_clean(path)
    got = read_sr_measurements(path)
    truth = study["truth"]
    for key in ("liver_volume_ml", "tumor_volume_ml", "involvement_percent", "remnant_volume_ml"):
        assert got[key] == pytest.approx(truth[key], rel=1e-3), key
    assert got["lesion_count"] == 2
    assert sorted(les["volume_ml"] for les in got["lesions"]) == pytest.approx(truth["lesion_volumes_ml"], rel=1e-3)
    # the diameters read back are the report's, lesion by lesion
    report_lesions = {les["id"]: les for les in study["report"].lesions}
    for les in got["lesions"]:
        ref = report_lesions[les["id"]]
        assert les["longest_axial_diameter_mm"] == pytest.approx(ref["longest_axial_diameter_mm"])
        assert les["max_3d_diameter_mm"] == pytest.approx(ref["max_3d_diameter_mm"])
        assert les["short_axis_diameter_mm"] == pytest.approx(ref["short_axis_diameter_mm"])
        # a sphere of radius r voxels spans at most 2r voxels along the longest spacing axis
        assert 0 < les["max_3d_diameter_mm"] <= 2 * 4.2 * max(SPACING) + 1e-6


def test_sr_references_images_and_seg_segments(study: dict, tmp_path: Path) -> None:
    path = write_sr(study["report"], study["ctx"], tmp_path / "sr.dcm")
    sr = hd.sr.srread(path)
    seg = pydicom.dcmread(study["seg"], stop_before_pixels=True)
    ct0 = pydicom.dcmread(study["files"][0], stop_before_pixels=True)
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert sr.StudyInstanceUID == ct0.StudyInstanceUID
    got = read_sr_measurements(path)
    assert ct0.SeriesInstanceUID in got["referenced_series_instance_uids"]
    # the image library lists every CT slice
    library = {
        str(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
        for item in sr.ContentSequence
        if item.ValueType == "CONTAINER"
        for item in getattr(item, "ContentSequence", [])
        if "ReferencedSOPSequence" in item
    }
    library |= {
        str(ref.ReferencedSOPInstanceUID)
        for ev in sr.CurrentRequestedProcedureEvidenceSequence
        for s in ev.ReferencedSeriesSequence
        for ref in s.ReferencedSOPSequence
    }
    for f in study["files"]:
        assert pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID in library
    # without a derived SEG: the input "Liver" segment excludes the lesions, so it is not the total liver
    # measured (its voxels are fewer) and the total-liver group references no segment; each lesion group
    # references the input segment that is exactly that lesion (2, 3)
    liver, _ = phantom_masks()
    assert got["liver_volume_ml"] > int(liver.sum()) * VOXEL_ML + 0.5
    assert got["liver_referenced_segment"] is None
    numbers = {les["referenced_segment"]["segment_number"] for les in got["lesions"]}
    assert numbers == {2, 3}
    assert all(les["referenced_segment"]["sop_instance_uid"] == seg.SOPInstanceUID for les in got["lesions"])
    # coded with SNOMED CT and UCUM
    group = sr.content.get_volumetric_roi_measurement_groups()[0]
    vol = group.get_measurements(name=codes.SCT.Volume)[0]
    assert (vol.unit.value, vol.unit.scheme_designator) == ("ml", "UCUM")


def test_sr_has_no_identifiers_unless_asked(study: dict, tmp_path: Path) -> None:
    plain = write_sr(study["report"], study["ctx"], tmp_path / "plain.dcm").read_bytes()
    for secret in (b"Doe^Jane", b"SECRET-ID-123", b"19700101"):
        assert secret not in plain
    kept = write_sr(study["report"], study["ctx"], tmp_path / "ids.dcm", include_identifiers=True)
    assert_dciodvfy_clean(kept)
    ds = pydicom.dcmread(kept)
    assert (str(ds.PatientName), ds.PatientID) == ("Doe^Jane", "SECRET-ID-123")


def test_sr_from_report_dict_and_explicit_images(study: dict, tmp_path: Path) -> None:
    """A plain dict and explicit image files work without a context (no SEG: TID 1501 groups)."""
    d = study["report"].to_dict()
    d["liver"]["volume_ml"] = 1500.0
    d["involvement_percent"] = 12.5
    path = write_sr(d, None, tmp_path / "dict.dcm", image_datasets=study["files"])
    assert_dciodvfy_clean(path)
    got = read_sr_measurements(path)
    assert got["liver_volume_ml"] == 1500.0
    assert got["involvement_percent"] == 12.5
    assert got["liver_referenced_segment"] is None


def test_sr_refuses_non_dicom_image(study: dict, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedError, match="not a DICOM series"):
        write_sr(study["report"].to_dict(), None, tmp_path / "x.dcm")


def test_read_sr_rejects_non_sr_and_bad_units(study: dict, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"not a structured report|cannot read"):
        read_sr_measurements(study["files"][0])
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not dicom at all" * 10)
    with pytest.raises(InputError, match="cannot read the DICOM SR"):
        read_sr_measurements(junk)
    # a foreign TID 1500 SR whose lesion volume is in cubic inches cannot be converted
    evidence = [pydicom.dcmread(f, stop_before_pixels=True) for f in study["files"]]
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(identifier="Lesion 1"),
        finding_type=codes.SCT.Neoplasm,
        measurements=[
            hd.sr.Measurement(
                name=codes.SCT.Volume, value=2.0, unit=hd.sr.CodedConcept("[cin_i]", "UCUM", "cubic inch")
            )
        ],
    )
    content = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=[group],
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=content,
        series_instance_uid=hd.UID(),
        series_number=5,
        sop_instance_uid=hd.UID(),
        instance_number=1,
    )
    sr.save_as(tmp_path / "inch.dcm")
    with pytest.raises(InputError, match=r"unit '\[cin_i\]'"):
        read_sr_measurements(tmp_path / "inch.dcm")


def test_foreign_sr_in_cm3_is_converted(study: dict, tmp_path: Path) -> None:
    """Another tool's TID 1500 (cm3, finding type Liver, unnamed lesion groups) reads as mL."""
    evidence = [pydicom.dcmread(f, stop_before_pixels=True) for f in study["files"]]
    cm3 = hd.sr.CodedConcept("cm3", "UCUM", "cubic centimeter")
    groups = [
        hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(identifier="whole liver"),
            finding_type=codes.SCT.Liver,
            measurements=[hd.sr.Measurement(name=codes.SCT.Volume, value=1000.0, unit=cm3)],
        ),
        *[
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(identifier=f"met {n}"),
                finding_type=codes.SCT.Neoplasm,
                finding_sites=[hd.sr.FindingSite(anatomic_location=codes.SCT.Liver)],
                measurements=[hd.sr.Measurement(name=codes.SCT.Volume, value=v, unit=cm3)],
            )
            for n, v in enumerate((30.0, 20.0))
        ],
    ]
    content = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=groups,
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=content,
        series_instance_uid=hd.UID(),
        series_number=5,
        sop_instance_uid=hd.UID(),
        instance_number=1,
    )
    sr.save_as(tmp_path / "foreign.dcm")
    got = read_sr_measurements(tmp_path / "foreign.dcm")
    assert got["liver_volume_ml"] == 1000.0
    assert got["lesion_count"] == 2
    assert got["tumor_volume_ml"] == 50.0
    assert got["involvement_percent"] == pytest.approx(5.0)


def test_derived_seg_round_trip(study: dict, tmp_path: Path) -> None:
    """The liver and lesions written as a DICOM SEG decode to the phantom's voxel counts."""
    path = write_derived_seg(study["ctx"], tmp_path / "derived_seg.dcm")
    assert_dciodvfy_clean(path)
    seg = hd.seg.segread(path)
    liver, spheres = phantom_masks()
    total = liver | np.any(spheres, axis=0)
    ct_uids = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in study["files"]]
    arr = seg.get_pixels_by_source_instance(ct_uids, ignore_spatial_locations=True)  # (k, rows, cols, segments)
    labels = {d.segment_number: d.segment_label for d in seg.SegmentSequence}
    by_label = {labels[n + 1]: arr[..., n].transpose(2, 1, 0).astype(bool) for n in range(arr.shape[-1])}
    assert np.array_equal(by_label["Liver"], total)
    lesion_masks = [m for name, m in by_label.items() if name.startswith("Lesion")]
    assert sorted(int(m.sum()) for m in lesion_masks) == sorted(int(s.sum()) for s in spheres)
    assert b"SECRET-ID-123" not in path.read_bytes()
    assert seg.StudyInstanceUID == pydicom.dcmread(study["files"][0], stop_before_pixels=True).StudyInstanceUID
