"""SUVbw factors of real Siemens, GE and Philips PET headers against a peer tool's precomputed values.

The header facts (times, dose, half-life, weight, units, the Philips private factors) are those of
the eight vendor exports in cornerstonejs/calculate-suv @dc72aa17 (``test/metadata/*-instances.json``,
first instance); the expected factors are that repository's ``precomputedSUVFactors``
(``test/calculateSUV_SampleData.test.ts``), checked there to 1e-6 absolute. For the Philips CNTS
series they are the scanner's own SUV Scale Factor (7053,1000).
"""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from netlm_imaging.io.suv import suv_conversion

# name: (series date/time, acquisition time, units, weight kg, dose Bq, half-life s, injection time,
#        injection DateTime or None, Philips (7053,1000) and (7053,1009) or None, precomputed factor)
VENDOR_HEADERS = {
    "SIEMENS": (
        ("20201217", "104829.000000"),
        "104830.351370",
        "BQML",
        67,
        374000000,
        "6586.2",
        "083045.000000",
        "20201217083045.000000",
        None,
        0.00042748316187197236,
    ),
    "GE_MEDICAL_AND_BQML": (
        ("20201217", "095621"),
        "095621",
        "BQML",
        52,
        152022720,
        "6586.2001953125",
        "084500.00",
        "20201217084500.00",
        None,
        0.0005367387681819742,
    ),
    "PHILIPS_BQML": (
        ("20201217", "110155"),
        "110156",
        "BQML",
        64,
        126000000,
        "6586.199707",
        "100058",
        "20201217100058",
        ("0.003515736", "4.709921"),
        0.0007463747013889488,
    ),
    "PHILIPS_CNTS_AND_BQML_SUV": (
        ("20201217", "093556"),
        "095439",
        "CNTS",
        54,
        238000000,
        "6588",
        "083000",
        None,
        ("0.000551", "1.602563"),
        0.000551,
    ),
    "PHILIPS_CNTS_AND_SUV": (
        ("20201217", "134551"),
        "141336",
        "CNTS",
        47,
        208230000,
        "6588",
        "123000",
        None,
        ("0.000728", None),
        0.000728,
    ),
    "BQML_AC_DT_lessThan_S_DT_SIEMENS": (
        ("20201217", "123515.000000"),
        "123514.999995",
        "BQML",
        65,
        225000000,
        "6586.2",
        "114100.000000",
        None,
        None,
        0.0004069156854009332,
    ),
    "CPS_AND_BQML_AC_DT_-_S_DT": (
        ("20201217", "134918.000000"),
        "130348.234000",
        "BQML",
        69,
        388000000,
        "6586.2",
        "120037.000000",
        None,
        None,
        0.00026503312764157046,
    ),
    "RADIOPHARM_DATETIME_UNDEFINED": (
        ("20201217", "135431.843000"),
        "141555.687000",
        "BQML",
        102,
        412000000,
        "6586.2",
        "125000.000000",
        None,
        None,
        0.0003721089202818729,
    ),
}


#: name: (Manufacturer, Frame Reference Time ms, Actual Frame Duration ms) of the same first instances
#: (the manufacturer from the sample's name; none is given for the two unnamed Siemens-style samples).
FRAME_TIMES = {
    "SIEMENS": ("SIEMENS", 38513.36, 74324),
    "GE_MEDICAL_AND_BQML": ("GE MEDICAL SYSTEMS", 0, 120000),
    "PHILIPS_BQML": ("Philips Medical Systems", 1328700, 120700),
    "PHILIPS_CNTS_AND_BQML_SUV": ("Philips Medical Systems", 1183000, 120000),
    "PHILIPS_CNTS_AND_SUV": ("Philips Medical Systems", 1755000, 180000),
    "BQML_AC_DT_lessThan_S_DT_SIEMENS": ("SIEMENS", 59936.854672596, 120000),
    "CPS_AND_BQML_AC_DT_-_S_DT": (None, 0, 180000),
    "RADIOPHARM_DATETIME_UNDEFINED": (None, 1372857.9232493, 180000),
}


def _header(series, acquisition_time, units, weight, dose, half_life, start_time, start_datetime, philips, frames):
    ds = Dataset()
    ds.Modality = "PT"
    manufacturer, ds.FrameReferenceTime, ds.ActualFrameDuration = frames
    if manufacturer is not None:
        ds.Manufacturer = manufacturer
    ds.SeriesDate, ds.SeriesTime = series
    ds.AcquisitionDate, ds.AcquisitionTime = series[0], acquisition_time
    ds.Units, ds.DecayCorrection = units, "START"
    ds.CorrectedImage = ["DECY", "ATTN", "SCAT", "NORM"]
    ds.PatientWeight = weight
    info = Dataset()
    info.RadionuclideTotalDose, info.RadionuclideHalfLife = dose, half_life
    info.RadiopharmaceuticalStartTime = start_time
    if start_datetime is not None:
        info.RadiopharmaceuticalStartDateTime = start_datetime
    ds.RadiopharmaceuticalInformationSequence = [info]
    if philips is not None:
        block = ds.private_block(0x7053, "Philips PET Private Group", create=True)
        for offset, value in zip((0x00, 0x09), philips, strict=True):
            if value is not None:
                block.add_new(offset, "DS", value)
    return ds


@pytest.mark.parametrize("name", sorted(VENDOR_HEADERS))
def test_vendor_header_suv_factor_matches_the_precomputed_one(name):
    *facts, expected = VENDOR_HEADERS[name]
    header = _header(*facts, FRAME_TIMES[name])
    conv = suv_conversion([header, header], source=name)
    assert conv.factors == pytest.approx([expected, expected], rel=1e-6)
    post_processed = any("post-processed" in w for w in conv.warnings)
    # only the series saved 45 min after its acquisition is post-processed; Siemens writes its Series Time
    # 5 microseconds after the Acquisition Time (BQML_AC_DT_lessThan_S_DT_SIEMENS), which is no re-saved series
    assert post_processed == (name == "CPS_AND_BQML_AC_DT_-_S_DT")


def test_a_resaved_philips_series_is_not_decayed_from_its_frame_reference_time():
    """PHILIPS_BQML re-saved (Series Time moved to 15:00): its Frame Reference Time, 1328.7 s, is not counted from
    the decay reference (that would be 10:40:07, 22 min before the acquisition); the scanner's own SUV Scale
    Factor over its Activity Concentration Scale Factor (SUV per Bq/mL) says the pixels are decayed to about
    the acquisition, 11:01:56, which the earliest Acquisition Time gives."""
    facts = list(VENDOR_HEADERS["PHILIPS_BQML"][:-1])
    facts[0] = ("20201217", "150000")
    header = _header(*facts, FRAME_TIMES["PHILIPS_BQML"])
    conv = suv_conversion([header, header], source="resaved")
    assert conv.factors[0] == pytest.approx(0.003515736 / 4.709921, rel=2e-4)


def test_a_resaved_siemens_series_is_decayed_from_its_frame_reference_time():
    """SIEMENS (continuous bed motion: one Acquisition Time 10:48:30.351370, a Frame Reference Time and duration
    per slice) re-saved at 15:00: the three slices' Frame Reference Times count back to 10:48:28.99, the original
    Series Time 10:48:29 within 0.01 s, so the factor is the precomputed one of the original series."""
    facts = list(VENDOR_HEADERS["SIEMENS"][:-1])
    facts[0] = ("20201217", "150000")
    frames = [(38513.36, 74324), (39189.36, 75676), (39864.86, 77027)]  # the sample's first three instances
    conv = suv_conversion([_header(*facts, ("SIEMENS", *f)) for f in frames], source="resaved")
    assert conv.factors == pytest.approx([VENDOR_HEADERS["SIEMENS"][-1]] * 3, rel=1e-5)
    assert any("Frame Reference Time" in w for w in conv.warnings)
