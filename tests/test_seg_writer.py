"""The direct SEG writer (report/_seg_writer.py) writes the object highdicom builds, and de-identifies it the same.

Oracle: the same measurement written through highdicom (``engine="highdicom"``:
one label map per group of non-overlapping segments, joined) and, for research
copies, de-identified by dicognito walking the WHOLE object. The direct writer
encodes the per-frame items itself and runs the de-identification only on the
attributes it copied from the source (plus its own dates). Both files are
compared attribute by attribute, sequences included, and the pixel data byte
for byte; the only differences allowed are named in ``_ALLOWED`` with the reason.

Phantoms: tests/test_sr.py's oblique CT (40 x 36 x 20, rows of whole bytes,
liver + 2 intrahepatic lesions) and a second oblique CT whose rows are not
whole bytes (36 columns) with a spleen and an extrahepatic lesion. The sources
carry identifiers that dicognito replaces or the Basic Profile removes
(institution, station, department, physicians, other IDs, descriptions).
"""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from netlm_imaging.api import analyze_with_context
from netlm_imaging.report._seg_writer import SegHeader
from netlm_imaging.report._source_header import read_raw_header, source_identity
from netlm_imaging.report.dicom_seg_out import write_seg_with_header
from netlm_imaging.report.identity import PATIENT_STUDY_KEYWORDS
from tests.conftest import oblique_affine
from tests.dicom_factory import write_image_series
from tests.dicom_tools import assert_dciodvfy_clean
from tests.seg_factory import SegmentSpec, write_seg
from tests.test_sr import write_phantom_study

_REFERRER = Dataset()
_REFERRER.InstitutionName = "St Elsewhere Hospital"
_person = Dataset()
_person.CodeValue, _person.CodingSchemeDesignator, _person.CodeMeaning = "MRN-778899", "L", "Jane Doe"
_REFERRER.PersonIdentificationCodeSequence = [_person]
IDENTITY_TAGS = {
    "StudyDescription": "Liver CT Jane Doe MRN-778899",
    "ReferringPhysicianIdentificationSequence": [_REFERRER],
    "ReferringPhysicianName": "Smith^Referrer",
    "AccessionNumber": "ACC-55443",
    "StudyID": "S-77",
    "OtherPatientIDs": "OTHER-ID-987",
    "PatientAge": "056Y",
    "PatientWeight": "71.5",
    "InstitutionName": "Saint Confidential Hospital",
    "InstitutionAddress": "12 Hidden Lane",
    "InstitutionalDepartmentName": "Radiology East",
    "StationName": "CT-SECRET-1",
    "DeviceSerialNumber": "SN-4242",
    "ManufacturerModelName": "Scanner X",
}
#: what the writers de-identify without dicognito (removals, emptied attributes, shifted dates)
PLAIN_IDENTITY_TAGS = {k: v for k, v in IDENTITY_TAGS.items() if k != "StationName"}
#: (path prefix, reason) of the differences the direct writer makes on purpose.
_ALLOWED = (
    ("meta/FileMetaInformationGroupLength", "the implementation name below has another length"),
    ("meta/ImplementationClassUID", "the writing library (pydicom, not highdicom)"),
    ("meta/ImplementationVersionName", "the writing library"),
    ("/InstanceCreationDate", "the time of writing"),
    ("/InstanceCreationTime", "the time of writing"),
    ("/ContentDate", "the time of writing"),
    ("/ContentTime", "the time of writing"),
    ("/DimensionOrganizationSequence[0]/DimensionOrganizationUID", "highdicom draws it at random; derived here"),
    ("/DimensionIndexSequence[0]/DimensionOrganizationUID", "the same UID"),
    ("/DimensionIndexSequence[1]/DimensionOrganizationUID", "the same UID"),
    ("/ContributingEquipmentSequence[1]", "highdicom lists itself as processing equipment; it is not used"),
)


def _diff(a: Dataset, b: Dataset, path: str = "") -> list[str]:
    out = []
    for tag in sorted({e.tag for e in a} | {e.tag for e in b}):
        ea, eb = a.get(tag), b.get(tag)
        p = f"{path}/{(ea or eb).keyword or tag}"
        if ea is None or eb is None:
            out.append(f"{p}: only in {'direct' if ea is None else 'highdicom'}")
        elif ea.VR == "SQ" and eb.VR == "SQ":
            out += [f"{p}[{n}]: only in highdicom" for n in range(len(eb.value), len(ea.value))]
            out += [f"{p}[{n}]: only in direct" for n in range(len(ea.value), len(eb.value))]
            for n, (x, y) in enumerate(zip(ea.value, eb.value)):
                out += _diff(x, y, f"{p}[{n}]")
        elif ea.VR != eb.VR or ea.value != eb.value:
            out.append(f"{p}: {ea.VR} {str(ea.value)[:60]!r} != {eb.VR} {str(eb.value)[:60]!r}")
    return out


def _unexpected(highdicom_file: Path, direct_file: Path) -> list[str]:
    a, b = pydicom.dcmread(highdicom_file), pydicom.dcmread(direct_file)
    found = _diff(a.file_meta, b.file_meta, "meta") + _diff(a, b)
    return [d for d in found if not any(d.startswith(prefix) for prefix, _ in _ALLOWED)]


def _second_study(folder: Path) -> Path:
    """Oblique CT, 36 columns (rows are not whole bytes), liver + intrahepatic lesion + spleen + extrahepatic lesion."""
    shape = (36, 30, 16)
    affine = oblique_affine(spacing=(0.9, 1.1, 3.0), angles_deg=(-6.0, 4.0, 25.0), origin=(80.0, -40.0, 120.0))
    ii, jj, kk = np.indices(shape)
    liver = np.zeros(shape, bool)
    liver[4:22, 5:25, 2:13] = True
    lesion = (ii - 12) ** 2 + (jj - 14) ** 2 + ((kk - 7) * 2.5) ** 2 <= 16
    spleen = np.zeros(shape, bool)
    spleen[26:33, 6:16, 3:11] = True
    extra = (ii - 29) ** 2 + (jj - 24) ** 2 + ((kk - 8) * 2.5) ** 2 <= 6
    hu = np.full(shape, -40.0)
    hu[liver], hu[spleen], hu[lesion | extra] = 60.0, 50.0, 120.0
    files = write_image_series(folder / "ct", hu, affine, seed=11, extra_tags=IDENTITY_TAGS)
    neoplasm = {"property_type": codes.SCT.Neoplasm, "property_category": codes.SCT.MorphologicallyAbnormalStructure}
    specs = [
        SegmentSpec("Liver", liver & ~lesion),
        SegmentSpec("Spleen", spleen, property_type=codes.SCT.Spleen),
        SegmentSpec("Lesion 1", lesion, **neoplasm),
        SegmentSpec("Lesion 2", extra, **neoplasm),
    ]
    (folder / "seg").mkdir(parents=True, exist_ok=True)
    write_seg(folder / "seg" / "seg.dcm", files, specs, seed=11)
    return folder


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    base = tmp_path_factory.mktemp("seg_writer")
    # the first study: identity that the tool de-identifies itself; the second: a station name, which only
    # dicognito replaces (the writers hand it over to dicognito)
    first = write_phantom_study(base / "first", seed=7, extra_tags=PLAIN_IDENTITY_TAGS)
    second = _second_study(base / "second")
    return {
        "oblique, 2 intrahepatic lesions": analyze_with_context(image=first["ct"], segs=[str(first["seg"])]),
        "36 columns, spleen, extrahepatic lesion": analyze_with_context(second),
    }


@pytest.mark.parametrize("include_identifiers", [False, True], ids=["research copy", "PACS copy"])
@pytest.mark.parametrize("name", ["oblique, 2 intrahepatic lesions", "36 columns, spleen, extrahepatic lesion"])
def test_direct_seg_is_the_highdicom_seg(studies, name, include_identifiers, tmp_path: Path) -> None:
    _, ctx = studies[name]
    ref, ref_header = write_seg_with_header(
        ctx, tmp_path / "hd.dcm", include_identifiers=include_identifiers, engine="highdicom"
    )
    got, header = write_seg_with_header(ctx, tmp_path / "direct.dcm", include_identifiers=include_identifiers)
    assert "PerFrameFunctionalGroupsSequence" in ref_header  # the highdicom path really ran
    assert isinstance(header, SegHeader)  # ... and the direct one (it hands on a slim header)
    assert _unexpected(ref, got) == []
    a, b = pydicom.dcmread(ref), pydicom.dcmread(got)
    assert a.PixelData == b.PixelData
    assert int(a.NumberOfFrames) == int(b.NumberOfFrames) > 0
    if name.startswith("36"):
        assert {str(s.SegmentLabel) for s in b.SegmentSequence} >= {"Liver", "Spleen"}
        assert any("extrahepatic" in str(s.SegmentLabel) for s in b.SegmentSequence)
    first_file = ctx.image.meta["files"][0]
    plain = name.startswith("oblique")
    raw = read_raw_header(first_file)
    assert raw is not None
    found = source_identity(first_file, research=not include_identifiers, date="20260101", time="120000")
    assert found is not None
    if not include_identifiers:  # de-identification really acted: removed, emptied and shifted values compared
        assert b.PatientIdentityRemoved == "YES"
        assert "StudyDescription" not in b
        assert b.StudyDate != pydicom.dcmread(first_file).StudyDate  # shifted
        assert b.PatientName == ""
        if plain:
            assert "StationName" not in b.ContributingEquipmentSequence[0]
        else:  # dicognito's made-up station name
            assert b.ContributingEquipmentSequence[0].StationName not in ("", IDENTITY_TAGS["StationName"])
    elif not plain:
        assert b.ContributingEquipmentSequence[0].StationName == IDENTITY_TAGS["StationName"]
    assert_dciodvfy_clean(got)
    # highdicom reads the direct SEG back to the measured masks (frame k = mask[:, :, k].T)
    seg = hd.seg.segread(got)
    uids = ctx.image.meta["sop_instance_uids"]
    arr = seg.get_pixels_by_source_instance(uids, ignore_spatial_locations=True)  # (k, rows, cols, segments)
    labels = [str(s.SegmentLabel) for s in b.SegmentSequence]
    liver = arr[..., labels.index("Liver")].transpose(2, 1, 0).astype(bool)
    assert np.array_equal(liver, ctx.liver)
    for les in ctx.lesions:
        m = arr[..., labels.index(f"Lesion {les.id} ({les.location})")].transpose(2, 1, 0).astype(bool)
        assert np.array_equal(m, ctx.lesion_labels == les.id)


def test_the_comparison_sees_a_changed_frame(studies, tmp_path: Path) -> None:
    """The oracle bites: one lesion voxel moved changes the pixels and the comparison reports it."""
    _, ctx = studies["oblique, 2 intrahepatic lesions"]
    ref, _ = write_seg_with_header(ctx, tmp_path / "hd.dcm", engine="highdicom")
    les = ctx.lesions[0]
    i, j, k = (int(v[0]) for v in np.nonzero(ctx.lesion_labels == les.id))
    saved = ctx.lesion_labels.copy()
    try:
        ctx.lesion_labels[i, j, k] = 0
        got, _ = write_seg_with_header(ctx, tmp_path / "direct.dcm")
    finally:
        ctx.lesion_labels[...] = saved
    assert pydicom.dcmread(ref).PixelData != pydicom.dcmread(got).PixelData


def test_patient_study_keywords_are_highdicoms_modules() -> None:
    """The copied identity attributes are the root attributes highdicom copies for CT, MR and PET images."""
    from highdicom._standard_utils import get_iod_module_map, get_module_attribute_map, get_sop_class_iod_map

    sop, iods, modules = get_sop_class_iod_map(), get_iod_module_map(), get_module_attribute_map()
    for sop_class in (
        "1.2.840.10008.5.1.4.1.1.2",  # CT
        "1.2.840.10008.5.1.4.1.1.4",  # MR
        "1.2.840.10008.5.1.4.1.1.128",  # PET
        "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
    ):
        keywords = {
            str(a["keyword"])
            for m in iods[sop[sop_class]]
            if m["ie"] in ("Patient", "Study")
            for a in modules[m["key"]]
            if len(a["path"]) == 0
        }
        assert keywords == set(PATIENT_STUDY_KEYWORDS), sop_class


@pytest.mark.parametrize(
    "positions",
    [
        [(0.0, 0.0, 2.5 * k) for k in range(6)],  # regular
        [(0.0, 0.0, z) for z in (0.0, 2.5, 5.0, 9.0, 11.5)],  # a gap: irregular
        [(0.3 * k, 0.0, 2.5 * k) for k in range(5)],  # sheared: not along the normal
        [(1.0, 2.0, 3.0)],  # one plane
    ],
)
def test_spacing_and_sort_normal_are_highdicoms(positions: list) -> None:
    from highdicom.spatial import VOLUME_INDEX_CONVENTION, get_normal_vector, get_volume_positions

    from netlm_imaging.report._seg_writer import _normal, _slice_spacing

    rng = np.random.default_rng(3)
    rot, _ = np.linalg.qr(rng.normal(size=(3, 3)))  # a random orientation: never the identity
    orientation = [*rot[:, 0], *rot[:, 1]]
    pos = np.array(positions) @ np.column_stack([rot[:, 0], rot[:, 1], np.cross(rot[:, 0], rot[:, 1])]).T
    expected = get_normal_vector(orientation, index_convention=VOLUME_INDEX_CONVENTION)
    assert np.allclose(_normal(orientation), expected, atol=1e-12)
    spacing, _ = get_volume_positions(pos, orientation)
    got = _slice_spacing(pos, _normal(orientation))
    assert (got is None) == (spacing is None)
    if spacing is not None:
        assert got == pytest.approx(spacing, abs=1e-9)
