"""The direct SR writer (report/_sr_writer.py) writes the TID 1500 document highdicom builds.

Oracle: the same report written with ``engine="highdicom"`` (highdicom's
``MeasurementReport`` / ``Comprehensive3DSR``; research copies de-identified by
dicognito walking the whole document). Both files are compared attribute by
attribute, sequences included; the differences allowed are those of
tests/test_seg_writer.py (writing library, time of writing, highdicom's own
contributing-equipment item). Cases: the derived SEG's segments referenced
(what ``--sr`` writes), input segments referenced, and a report carrying PET
(SUVbw, SRETV, TLSRE) and MR signal values, so every kind of group and
measurement is encoded.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from netlm_imaging.api import analyze_with_context
from netlm_imaging.report.dicom_seg_out import write_seg_with_header
from netlm_imaging.report.dicom_sr import read_sr_measurements, write_sr
from netlm_imaging.report.sr_template import SCT
from tests.dicom_tools import assert_dciodvfy_clean, tid1500_measurements
from tests.test_seg_writer import IDENTITY_TAGS, PLAIN_IDENTITY_TAGS, _unexpected
from tests.test_sr import write_phantom_study


@pytest.fixture(scope="module", params=["plain identity", "station name"])
def study(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """The phantom with identity the writer de-identifies itself, and with a station name (dicognito's part)."""
    base = tmp_path_factory.mktemp("sr_writer")
    tags = PLAIN_IDENTITY_TAGS if request.param == "plain identity" else IDENTITY_TAGS
    d = write_phantom_study(base / "study", seed=9, extra_tags=tags)
    report, ctx = analyze_with_context(image=d["ct"], segs=[str(d["seg"])])
    return report, ctx, base


def _with_pet_and_mr(report) -> dict:
    d = report.to_dict()
    for n, les in enumerate(d["lesions"]):
        les.update(suv_max=7.25 + n, suv_mean=4.5 + n, suv_peak=6.125 + n, sretv_ml=0.5 + n, tlsre=3.25 + n)
        les.update(mean_signal_au=410.5 + n, sd_signal_au=22.25)
    d["liver"].update(mean_signal_au=512.0, sd_signal_au=30.5)
    d["pet"] = {
        "suv_type": "SUVbw",
        "sretv_ml": 0.77,
        "tlsre": 4.62,
        "whole_body_sretv_ml": 1.5,
        "whole_body_tlsre": 9.75,
    }
    return d


@pytest.mark.parametrize("include_identifiers", [False, True], ids=["research copy", "PACS copy"])
@pytest.mark.parametrize("case", ["derived SEG", "input segments", "PET and MR values"])
def test_direct_sr_is_the_highdicom_sr(study, case, include_identifiers, tmp_path: Path) -> None:
    report, ctx, _ = study
    kwargs: dict = {"include_identifiers": include_identifiers}
    if case != "input segments":
        _, header = write_seg_with_header(ctx, tmp_path / "seg.dcm", include_identifiers=include_identifiers)
        kwargs["derived_seg"] = header
    body = _with_pet_and_mr(report) if case == "PET and MR values" else report
    ref = write_sr(body, ctx, tmp_path / "hd.dcm", engine="highdicom", **kwargs)
    got = write_sr(body, ctx, tmp_path / "direct.dcm", **kwargs)
    assert _unexpected(ref, got) == []
    sr = pydicom.dcmread(got)
    assert (sr.get("PatientIdentityRemoved") == "YES") != include_identifiers
    assert_dciodvfy_clean(got)
    a, b = read_sr_measurements(ref), read_sr_measurements(got)
    assert a == b
    assert len(b["lesions"]) == len(ctx.lesions) == 2
    if case == "derived SEG":
        assert b["liver_referenced_segment"] is not None
        assert all(les["referenced_segment"] is not None for les in b["lesions"])
    if case == "PET and MR values":
        assert b["whole_body_tlsre"] == 9.75
        assert b["lesions"][1]["suv_peak"] == 7.125


def test_dcmqi_reads_the_direct_sr_like_the_highdicom_sr(study, tmp_path: Path) -> None:
    report, ctx, _ = study
    _, header = write_seg_with_header(ctx, tmp_path / "seg.dcm")
    ref = write_sr(report, ctx, tmp_path / "hd.dcm", derived_seg=header, engine="highdicom")
    got = write_sr(report, ctx, tmp_path / "direct.dcm", derived_seg=header)
    a, b = tid1500_measurements(ref, tmp_path), tid1500_measurements(got, tmp_path)
    assert a == b
    assert sum(1 for g in b if "ReferencedSegment" in g) == 3  # total liver + 2 lesions paired with segments


def test_the_comparison_sees_a_changed_value(study, tmp_path: Path) -> None:
    """The oracle bites: a lesion volume changed in the last digit is reported."""
    report, ctx, _ = study
    ref = write_sr(report, ctx, tmp_path / "hd.dcm", engine="highdicom")
    d = report.to_dict()
    d["lesions"][0]["volume_ml"] += 1e-6
    got = write_sr(d, ctx, tmp_path / "direct.dcm")
    assert any("FloatingPointValue" in x for x in _unexpected(ref, got))


def test_codes_are_pydicoms() -> None:
    from pydicom.sr.codedict import codes

    for name, (value, scheme, meaning) in SCT.items():
        c = getattr(codes.SCT, name)
        assert (c.value, c.scheme_designator, c.meaning) == (value, scheme, meaning)
