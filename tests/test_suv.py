"""SUVbw from PET DICOM headers: synthetic series with known truth, and the real FDG PET.

Every expected SUV is computed here, independently of the code under test, from
the QIBA formula ``SUVbw = A[Bq/mL] * weight[g] / (dose[Bq] * 2 ** (-dt / T))``
(ADMIN: no decay) with the times written into the files.
"""

from __future__ import annotations

import glob

import numpy as np
import pydicom
import pytest
from conftest import oblique_affine, shared_path
from pet_factory import write_pet_series

from netlm_imaging.errors import DicomError, InputError, NetlmError, UnsupportedError
from netlm_imaging.io.pet import load_suv_volume
from netlm_imaging.io.suv import suv_conversion

SHAPE = (6, 5, 4)
AFFINE = oblique_affine(spacing=(3.0, 3.5, 4.0), angles_deg=(8.0, -5.0, 15.0), origin=(-40.0, 25.0, 300.0))
SLOPES = [0.5, 2.0, 0.25, 1.0]  # binary fractions: stored integers reproduce the values exactly
WEIGHT_KG = 70.0
DOSE_BQ = 150e6
GA68_T = 4069.8
F18_T = 6586.2


def qiba_suv(values, weight_kg, dose_bq, decay_s, half_life_s):
    """The QIBA SUVbw formula, written out for the tests."""
    return np.asarray(values, dtype=np.float64) * weight_kg * 1000.0 / (dose_bq * 2.0 ** (-decay_s / half_life_s))


def activity(seed=3, slopes=SLOPES):
    """Bq/mL values that are integer multiples of each slice's slope (exactly storable)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(100, 20000, size=SHAPE).astype(np.float64)
    return counts * np.asarray(slopes)[None, None, :]


def load(tmp_path, name="pet", weight_kg=None, plausibility=None, **kw):
    write_pet_series(tmp_path / name, kw.pop("values"), AFFINE, **kw)
    return load_suv_volume(tmp_path / name, weight_kg=weight_kg, plausibility=plausibility)


def _local_time_zone(files, offset):
    """Give every instance TimezoneOffsetFromUTC ``offset``: the zone of its DA/TM values (PS3.3 C.12.1.1.8)."""
    for f in files:
        ds = pydicom.dcmread(f)
        ds.TimezoneOffsetFromUTC = offset
        ds.save_as(f)


def headers(folder):
    return [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted(glob.glob(str(folder / "*.dcm")))]


# ------------------------------------------------------------------ START / ADMIN, BQML
def test_bqml_start_ga68_per_slice_slopes(tmp_path):
    a = activity()
    vol = load(tmp_path, values=a, slopes=SLOPES, series_time="110000", injection_time="100000")
    expected = qiba_suv(a, WEIGHT_KG, DOSE_BQ, 3600.0, GA68_T)
    np.testing.assert_allclose(vol.array, expected, rtol=2e-6)
    assert vol.array.dtype == np.float32
    np.testing.assert_allclose(vol.affine, AFFINE, atol=1e-4)
    s = vol.meta["suv"]
    assert s["decay_time_s"] == pytest.approx(3600.0)
    assert s["nuclide"] == "Ga-68"
    assert (s["units"], s["decay_correction"]) == ("BQML", "START")
    assert not any("disagrees" in w for w in vol.meta["warnings"])


def test_admin_is_never_decay_corrected_again(tmp_path):
    a = activity(seed=4)
    vol = load(tmp_path, values=a, slopes=SLOPES, decay_correction="ADMIN", series_time="113000")
    expected = qiba_suv(a, WEIGHT_KG, DOSE_BQ, 0.0, GA68_T)  # already referred to injection time
    np.testing.assert_allclose(vol.array, expected, rtol=2e-6)
    # START with the same pixels would be 2**(5400/4069.8) = 2.5x higher: the Horos #653 bug
    start = qiba_suv(a, WEIGHT_KG, DOSE_BQ, 5400.0, GA68_T)
    assert float(np.max(np.abs(vol.array - start) / start)) > 0.5


def test_admin_needs_no_injection_time(tmp_path):
    """ADMIN values are corrected to the injection already: a series whose export dropped the injection time
    still gives SUV = A * weight / dose (QIBA), with a warning that the uptake time was not checked."""
    a = activity(seed=14)
    vol = load(tmp_path, values=a, slopes=SLOPES, decay_correction="ADMIN", injection_time=None)
    np.testing.assert_allclose(vol.array, a * WEIGHT_KG * 1000.0 / DOSE_BQ, rtol=2e-6)
    assert vol.meta["suv"]["decay_time_s"] is None
    assert any("uptake time was not checked" in w for w in vol.meta["warnings"])
    with pytest.raises(DicomError, match=r"injection time missing"):  # START needs it: still refused
        load(tmp_path, name="start", values=a, slopes=SLOPES, injection_time=None)


def test_pet_without_preamble_or_file_meta(tmp_path):
    """An old export of raw PET datasets (no preamble, no DICM, no file meta): the SUV is the QIBA value."""
    a = activity(seed=15)
    files = write_pet_series(tmp_path / "pet", a, AFFINE, slopes=SLOPES)
    for f in files:
        ds = pydicom.dcmread(f)
        del ds.file_meta
        ds.preamble = None
        pydicom.dcmwrite(f, ds, implicit_vr=True, little_endian=True, enforce_file_format=False)
    vol = load_suv_volume(tmp_path / "pet")
    np.testing.assert_allclose(vol.array, qiba_suv(a, WEIGHT_KG, DOSE_BQ, 3600.0, GA68_T), rtol=2e-6)


def test_weight_override(tmp_path):
    a = activity(seed=5)
    vol = load(tmp_path, values=a, slopes=SLOPES, weight_kg=None, injection_time="104500")
    # header weight omitted: --weight supplies it
    expected = qiba_suv(a, 82.5, DOSE_BQ, 900.0, GA68_T)
    vol = load_suv_volume(tmp_path / "pet", weight_kg=82.5)
    np.testing.assert_allclose(vol.array, expected, rtol=2e-6)
    assert vol.meta["suv"]["weight_kg"] == 82.5


def test_load_suv_volume_refuses_an_suvmax_above_the_limit(tmp_path):
    """The library reader applies the SUVmax plausibility limit as the analysis does (exit 3, the fix named)."""
    a = activity(seed=5)
    kw = {"values": a, "slopes": SLOPES, "series_time": "110000", "injection_time": "100000"}
    suv_max = float(qiba_suv(a, WEIGHT_KG, DOSE_BQ, 3600.0, GA68_T).max())
    below = {"suv_max_limit": suv_max * 0.99}
    with pytest.raises(InputError, match=r"SUVmax .* is above .*the SUV scale is wrong"):
        load(tmp_path, name="p_low", plausibility=below, **kw)
    vol = load(tmp_path, name="p_high", plausibility={"suv_max_limit": suv_max * 1.01}, **kw)
    assert float(vol.array.max()) == pytest.approx(suv_max, rel=2e-6)


# ------------------------------------------------------------------ CNTS (Philips)
def test_cnts_philips_suv_scale_factor_per_slice(tmp_path):
    counts = activity(seed=6)
    scale = [2.5e-4, 1.25e-4, 5e-4, 3.75e-4]
    vol = load(tmp_path, values=counts, slopes=SLOPES, units="CNTS", philips_suv_scale=scale)
    expected = counts * np.asarray(scale)[None, None, :]
    np.testing.assert_allclose(vol.array, expected, rtol=2e-6)
    assert vol.meta["suv"]["method"] == "CNTS:7053,1000"


def test_cnts_philips_activity_concentration_scale_factor(tmp_path):
    counts = activity(seed=7)
    conc = [1.5, 1.5, 2.0, 1.25]  # counts -> Bq/mL, per slice
    vol = load(tmp_path, values=counts, slopes=SLOPES, units="CNTS", philips_conc_scale=conc, injection_time="101500")
    bqml = counts * np.asarray(conc)[None, None, :]
    expected = qiba_suv(bqml, WEIGHT_KG, DOSE_BQ, 2700.0, GA68_T)
    np.testing.assert_allclose(vol.array, expected, rtol=2e-6)


def test_gml_is_taken_as_suv(tmp_path):
    a = activity(seed=8) / 1000.0
    vol = load(tmp_path, values=a, slopes=[s / 1000.0 for s in SLOPES], units="GML", dose_bq=None, weight_kg=None)
    np.testing.assert_allclose(vol.array, a, rtol=2e-6)
    assert any("GML" in w for w in vol.meta["warnings"])


@pytest.mark.parametrize("suv_type", ["BW", None])
def test_gml_suvbw_type_is_taken_as_suv(tmp_path, suv_type):
    a = activity(seed=8) / 1000.0
    write_pet_series(tmp_path / "p", a, AFFINE, slopes=[s / 1000.0 for s in SLOPES], units="GML", weight_kg=None)
    hs = headers(tmp_path / "p")
    for h in hs:
        if suv_type is not None:
            h.SUVType = suv_type
    conv = suv_conversion(hs, source="p")
    assert np.all(conv.factors == 1.0)


@pytest.mark.parametrize("suv_type", ["LBM", "BSA", "IBW"])
def test_gml_of_another_suv_type_is_refused(tmp_path, suv_type):
    # Units GML (g/mL) with SUV Type (0054,1006) LBM: the scanner stored SUVlbm (SUL); taking it for
    # SUVbw would report every SUV and every absolute threshold on the wrong scale
    write_pet_series(tmp_path / "p", activity() / 1000.0, AFFINE, units="GML", weight_kg=None)
    hs = headers(tmp_path / "p")
    for h in hs:
        h.SUVType = suv_type
    with pytest.raises(UnsupportedError, match=rf"^p: PET Units GML with SUV Type \(0054,1006\) {suv_type}.*BQML"):
        suv_conversion(hs, source="p")


# ------------------------------------------------------------------ dates and times
def test_injection_before_midnight(tmp_path):
    a = activity(seed=9)
    vol = load(
        tmp_path,
        values=a,
        slopes=SLOPES,
        series_date="20240103",
        series_time="003000",
        injection_time="235000",  # the evening before: 40 min before the scan
    )
    np.testing.assert_allclose(vol.array, qiba_suv(a, WEIGHT_KG, DOSE_BQ, 2400.0, GA68_T), rtol=2e-6)
    assert vol.meta["suv"]["injection_datetime"] == "2024-01-02T23:50:00"
    assert any("midnight" in w for w in vol.meta["warnings"])


def test_beds_after_midnight_without_acquisition_date(tmp_path):
    """De-identified export: AcquisitionDate removed, AcquisitionTime kept; the scan starts at 23:50 and its
    last beds are acquired after midnight. 00:04 is the next morning, not the morning before the series, so
    the series time stays the decay reference: 60 min after the 22:50 injection (not 74 min)."""
    a = activity(seed=12)
    folder = tmp_path / "pet"
    files = write_pet_series(
        folder,
        a,
        AFFINE,
        slopes=SLOPES,
        series_date="20240102",
        series_time="235000",
        injection_time="225000",
        acquisition_times=["235200", "235800", "000400", "001000"],
    )
    for f in files:
        ds = pydicom.dcmread(f)
        del ds.AcquisitionDate
        ds.save_as(f)
    vol = load_suv_volume(folder)
    np.testing.assert_allclose(vol.array, qiba_suv(a, WEIGHT_KG, DOSE_BQ, 3600.0, GA68_T), rtol=2e-6)
    assert vol.meta["suv"]["scan_datetime"] == "2024-01-02T23:50:00"
    assert not any("post-processed" in w for w in vol.meta["warnings"])


def test_injection_datetime_of_day_precision_takes_the_start_time(tmp_path):
    """RadiopharmaceuticalStartDateTime "20240102" (a valid DT of day precision) and StartTime 10:00: the
    injection is 2024-01-02 10:00, 60 min before the 11:00 series, not midnight (11 h, refused as implausible)."""
    a = activity(seed=13)
    vol = load(tmp_path, values=a, slopes=SLOPES, injection_datetime="20240102", injection_time="100000")
    np.testing.assert_allclose(vol.array, qiba_suv(a, WEIGHT_KG, DOSE_BQ, 3600.0, GA68_T), rtol=2e-6)
    assert vol.meta["suv"]["injection_datetime"] == "2024-01-02T10:00:00"


def test_injection_datetime_in_utc_is_moved_to_local_time(tmp_path):
    """RadiopharmaceuticalStartDateTime written in UTC ("...090000+0000") while the instance's DA/TM values
    are local time (TimezoneOffsetFromUTC +0100, PS3.3 C.12.1.1.8): the injection is 10:00 local, 60 min
    before the 11:00 series (read as written it was 9:00, 120 min: SUV 1.85 x too high for Ga-68)."""
    a = activity(seed=16)
    folder = tmp_path / "pet"
    files = write_pet_series(
        folder, a, AFFINE, slopes=SLOPES, injection_time=None, injection_datetime="20240102090000+0000"
    )
    _local_time_zone(files, "+0100")
    vol = load_suv_volume(folder)
    np.testing.assert_allclose(vol.array, qiba_suv(a, WEIGHT_KG, DOSE_BQ, 3600.0, GA68_T), rtol=2e-6)
    assert vol.meta["suv"]["injection_datetime"] == "2024-01-02T10:00:00"


def test_injection_datetime_with_an_offset_but_no_local_zone_warns(tmp_path):
    # "...100000+0100" with no TimezoneOffsetFromUTC: the series' local zone is unknown, so the DT is read
    # as written (10:00, 60 min), and the user is told that a scanner clock on another zone changes every SUV
    a = activity(seed=17)
    write_pet_series(
        tmp_path / "p", a, AFFINE, slopes=SLOPES, injection_time=None, injection_datetime="20240102100000+0100"
    )
    vol = load_suv_volume(tmp_path / "p")
    np.testing.assert_allclose(vol.array, qiba_suv(a, WEIGHT_KG, DOSE_BQ, 3600.0, GA68_T), rtol=2e-6)
    assert any("20240102100000+0100 gives its offset from UTC" in w for w in vol.meta["warnings"])
    # with the zone given (the case above) or a DT without an offset, no such warning
    write_pet_series(tmp_path / "q", a, AFFINE, slopes=SLOPES, injection_time=None, injection_datetime="20240102100000")
    assert not any("offset from UTC" in w for w in load_suv_volume(tmp_path / "q").meta["warnings"])


def test_full_injection_datetime_multi_day(tmp_path):
    """RadiopharmaceuticalStartDateTime wins over the time-only tag (Slicer-PETDICOMExtension #28)."""
    a = activity(seed=10)
    headers = {
        "values": a,
        "slopes": SLOPES,
        "nuclide": "F-18",
        "half_life_s": F18_T,
        "radiopharmaceutical": "FDG",
        "series_date": "20240103",
        "series_time": "110000",
        "injection_time": "100000",  # would give 1 h if the date were ignored
        "injection_datetime": "20240102100000",
    }
    # 25 h is refused by the default F-18 uptake range (5-300 min), and the synthetic activity then
    # decay-corrects to SUVs above the SUVmax limit: both widened to test the date logic
    wide = {"nuclides": {"F-18": {"uptake_min_range": [5.0, 3000.0]}}, "suv_max_limit": 1e9}
    vol = load(tmp_path, plausibility=wide, **headers)
    expected = qiba_suv(a, WEIGHT_KG, DOSE_BQ, 25 * 3600.0, F18_T)
    np.testing.assert_allclose(vol.array, expected, rtol=2e-6)
    assert any("half-lives" in w for w in vol.meta["warnings"])
    with pytest.raises(InputError, match=r"uptake time 1500.0 min .* outside the plausible 5-300 min for F-18"):
        load(tmp_path, name="pet_default_limits", **headers)


def test_series_time_after_acquisition_uses_earliest_acquisition(tmp_path):
    a = activity(seed=11)
    vol = load(
        tmp_path,
        values=a,
        slopes=SLOPES,
        series_time="120000",  # post-processed series written later
        acquisition_times=["110500", "110000", "111000", "110200"],
        injection_time="100000",
    )
    np.testing.assert_allclose(vol.array, qiba_suv(a, WEIGHT_KG, DOSE_BQ, 3600.0, GA68_T), rtol=2e-6)


def test_series_after_acquisition_prefers_ge_private_scan_time(tmp_path):
    a = activity(seed=12)
    vol = load(
        tmp_path,
        values=a,
        slopes=SLOPES,
        series_time="120000",
        acquisition_times=["110500"] * 4,
        injection_time="100000",
        ge_scan_datetime="20240102110300",
    )
    np.testing.assert_allclose(vol.array, qiba_suv(a, WEIGHT_KG, DOSE_BQ, 3780.0, GA68_T), rtol=2e-6)
    assert any("0009,100d" in w for w in vol.meta["warnings"])


def test_ge_private_scan_datetime_in_utc_is_moved_to_local_time(tmp_path):
    """The GE private scan DateTime (0009,100d) is a DT: written with its own offset from UTC (10:03 UTC) while
    the DA/TM values are local (TimezoneOffsetFromUTC +0100), the scan is 11:03 local, 63 min after the 10:00
    injection (read as written it was 3 min: Ga-68 SUV 1.8 x too low)."""
    a = activity(seed=17)
    folder = tmp_path / "pet"
    files = write_pet_series(
        folder,
        a,
        AFFINE,
        slopes=SLOPES,
        series_time="120000",
        acquisition_times=["110500"] * 4,
        injection_time="100000",
        ge_scan_datetime="20240102100300+0000",
    )
    _local_time_zone(files, "+0100")
    vol = load_suv_volume(folder)
    np.testing.assert_allclose(vol.array, qiba_suv(a, WEIGHT_KG, DOSE_BQ, 3780.0, GA68_T), rtol=2e-6)
    assert vol.meta["suv"]["decay_time_s"] == pytest.approx(3780.0)


def test_series_time_before_acquisition_is_used(tmp_path):
    """Siemens-style: acquisition times per bed are later; the series time is the reference (dcm2niix #983)."""
    a = activity(seed=13)
    vol = load(
        tmp_path,
        values=a,
        slopes=SLOPES,
        series_time="110000",
        acquisition_times=["110000", "110400", "110800", "111200"],
        injection_time="100000",
    )
    np.testing.assert_allclose(vol.array, qiba_suv(a, WEIGHT_KG, DOSE_BQ, 3600.0, GA68_T), rtol=2e-6)


# ------------------------------------------------------------------ half-life
def test_f18_half_life_no_warning_and_ga68_mismatch_is_refused(tmp_path):
    a = activity(seed=14)
    vol = load(tmp_path, "f18", values=a, slopes=SLOPES, nuclide="F-18", half_life_s=6588.0, radiopharmaceutical="FDG")
    np.testing.assert_allclose(vol.array, qiba_suv(a, WEIGHT_KG, DOSE_BQ, 3600.0, 6588.0), rtol=2e-6)
    assert vol.meta["suv"]["nuclide"] == "F-18"
    assert not any("disagrees" in w for w in vol.meta["warnings"])
    # a Ga-68 study whose header carries the F-18 half-life contradicts itself (tests/test_suv_half_life.py)
    with pytest.raises(DicomError, match=r"6588 s \(the half-life of F-18\) contradicts the radionuclide Ga-68"):
        load(tmp_path, "ga", values=a, slopes=SLOPES, nuclide="Ga-68", half_life_s=6588.0)


@pytest.mark.parametrize(
    ("nuclide", "seconds", "written", "unit"),
    [("Ga-68", GA68_T, 67.83, "minutes"), ("F-18", F18_T, 109.77, "minutes"), ("F-18", F18_T, 1.8295, "hours")],
)
def test_half_life_written_in_minutes_or_hours_is_refused(tmp_path, nuclide, seconds, written, unit):
    # 67.83 (min) read as seconds decays 60 min of uptake by 2**-53: SUVs of 1e17, refused before
    # only by the SUVmax limit, whose message blamed the weight, the dose or the units
    write_pet_series(tmp_path / "p", activity(), AFFINE, nuclide=nuclide, half_life_s=written)
    with pytest.raises(
        DicomError, match=rf"Half Life \(0018,1075\) is {written:g}, the half-life of {nuclide} in {unit}"
    ):
        suv_conversion(headers(tmp_path / "p"), source="p")
    # a half-life merely far from the nuclide's contradicts it too; the user can state the right one
    write_pet_series(tmp_path / "q", activity(), AFFINE, nuclide=nuclide, half_life_s=seconds * 0.5)
    with pytest.raises(DicomError, match=f"contradicts the radionuclide {nuclide}"):
        suv_conversion(headers(tmp_path / "q"), source="q")
    stated = suv_conversion(headers(tmp_path / "q"), source="q", half_life_s=seconds * 0.5)
    assert stated.half_life_s == pytest.approx(seconds * 0.5)


@pytest.mark.parametrize(
    ("name", "nuclide"),
    [("64Cu-DOTATATE", "Cu-64"), ("Cu-64 DOTATATE", "Cu-64"), ("Ga68-DOTATATE", "Ga-68"), ("DOTATATE", "Ga-68")],
)
def test_the_named_nuclide_beats_the_ligand(tmp_path, name, nuclide):
    # Detectnet (64Cu-DOTATATE) read as Ga-68 through "DOTATATE": without (0018,1075) the decay used
    # Ga-68's 67.8 min instead of Cu-64's 12.7 h, SUV 1.7 x too high at 60 min
    a = activity(seed=22)
    write_pet_series(tmp_path / "p", a, AFFINE, slopes=SLOPES, nuclide=None, radiopharmaceutical=name, half_life_s=None)
    vol = load_suv_volume(tmp_path / "p")
    t_half = {"Cu-64": 12.701 * 3600.0, "Ga-68": 67.83 * 60.0}[nuclide]  # NUDAT half-lives, written here
    np.testing.assert_allclose(vol.array, qiba_suv(a, WEIGHT_KG, DOSE_BQ, 3600.0, t_half), rtol=2e-4)
    assert vol.meta["suv"]["nuclide"] == nuclide


def test_cu64_dose_in_mbq_is_refused_by_its_own_range(tmp_path):
    # Detectnet's 148 MBq written as 148 (Bq): the Cu-64 table of the rules file refuses it
    write_pet_series(
        tmp_path / "p",
        activity(),
        AFFINE,
        nuclide=None,
        radiopharmaceutical="64Cu-DOTATATE",
        dose_bq=148.0,
        half_life_s=12.701 * 3600.0,  # Cu-64's own (the factory's default is Ga-68's)
    )
    with pytest.raises(InputError, match=r"148 Bq = 0.000148 MBq, outside the plausible 10-1000 MBq for Cu-64"):
        suv_conversion(headers(tmp_path / "p"), source="p")


def test_nuclide_from_radiopharmaceutical_name_when_no_code(tmp_path):
    write_pet_series(
        tmp_path / "p", activity(), AFFINE, nuclide=None, radiopharmaceutical="68Ga-DOTATATE", half_life_s=4100.0
    )
    conv = suv_conversion(headers(tmp_path / "p"), source="p")
    assert conv.nuclide == "Ga-68"
    assert any("4100 s disagrees with Ga-68" in w for w in conv.warnings)  # 0.7 % off: used, with the warning


def test_decay_none_with_decay_factor(tmp_path):
    a = activity(seed=15)
    dfs = [1.02, 1.05, 1.08, 1.11]
    vol = load(
        tmp_path, values=a, slopes=SLOPES, decay_correction="NONE", decay_factors=dfs, corrected_image=["ATTN", "SCAT"]
    )
    expected = qiba_suv(a * np.asarray(dfs)[None, None, :], WEIGHT_KG, DOSE_BQ, 3600.0, GA68_T)
    np.testing.assert_allclose(vol.array, expected, rtol=2e-6)
    assert any("Decay Factor" in w for w in vol.meta["warnings"])


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("kw", "exc", "pattern"),
    [
        ({"weight_kg": None}, InputError, r"Patient's Weight \(0010,1030\) is missing.*--weight"),
        ({"dose_bq": None}, InputError, r"Radionuclide Total Dose \(0018,1074\) is missing"),
        ({"units": "CM2ML"}, UnsupportedError, r"Units \(0054,1001\) is 'CM2ML'.*BQML"),
        ({"units": "CNTS"}, UnsupportedError, r"\(7053,1000\).*\(7053,1009\) are missing"),
        ({"decay_correction": "NONE"}, UnsupportedError, r"NONE and Decay Factor \(0054,1321\) is missing"),
        ({"decay_correction": "FOO"}, UnsupportedError, r"Decay Correction \(0054,1102\) is 'FOO'"),
        ({"corrected_image": ["DECY"]}, UnsupportedError, r"lacks ATTN"),
        ({"injection_time": None}, DicomError, r"RadiopharmaceuticalStartTime \(0018,1072\)"),
        ({"half_life_s": None, "nuclide": None, "radiopharmaceutical": "X"}, DicomError, r"Half Life \(0018,1075\)"),
        ({"injection_datetime": "20240102120000"}, DicomError, r"injection .* is after the scan"),
    ],
)
def test_bad_headers_raise_clear_errors(tmp_path, kw, exc, pattern):
    write_pet_series(tmp_path / "bad", activity(), AFFINE, **kw)
    with pytest.raises(exc, match=pattern) as info:
        load_suv_volume(tmp_path / "bad")
    assert isinstance(info.value, NetlmError)
    assert "\n" not in str(info.value)
    assert "Doe" not in str(info.value)
    assert "SECRET" not in str(info.value)


def test_without_weight_the_factors_give_activity_concentration(tmp_path):
    a = activity(seed=21)
    write_pet_series(tmp_path / "p", a, AFFINE, slopes=SLOPES, weight_kg=None)
    conv = suv_conversion(headers(tmp_path / "p"), source="p", require_weight=False)
    np.testing.assert_array_equal(conv.factors, np.ones(SHAPE[2]))  # BQML START: the values are Bq/mL already
    assert conv.weight_kg is None
    assert "(0010,1030) is missing" in conv.suv_unavailable
    with pytest.raises(InputError, match=r"\(0010,1030\) is missing.*--weight"):
        suv_conversion(headers(tmp_path / "p"), source="p")


def test_bad_weight_option(tmp_path):
    write_pet_series(tmp_path / "p", activity(), AFFINE)
    with pytest.raises(InputError, match=r"--weight -3"):
        load_suv_volume(tmp_path / "p", weight_kg=-3)


def test_ct_is_not_pet(tmp_path):
    from dicom_factory import write_image_series

    write_image_series(tmp_path / "ct", np.zeros(SHAPE), AFFINE, modality="CT")
    with pytest.raises(InputError, match="not PT"):
        load_suv_volume(tmp_path / "ct")


def test_no_identifiers_in_suv_meta(tmp_path):
    vol = load(tmp_path, values=activity())
    text = repr(vol.meta["suv"])
    for identifier in ("Doe", "SECRET", "19700101"):
        assert identifier not in text


# ------------------------------------------------------------------ the real FDG PET
# oncoray/mirp test data, TCIA Soft-tissue-Sarcoma STS_001 (CC BY 3.0; Vallieres et al. 2015,
# doi 10.7937/K9/TCIA.2015.7GO2GSKS). Facts from ../shared/data/MANIFEST.md.
FDG_DIR = ("mirp_sts_fdg_pet", "test", "data", "sts_images_raw", "STS_001", "FDG_PET", "image")
# 11:20:11 - 10:35:00 = 2711 s; dose 3.88777e8 Bq, weight 71 kg, half-life 6588 s
FDG_FACTOR = 71.0 * 1000.0 / (3.88777472e8 * 2.0 ** (-2711.0 / 6588.0))


@pytest.fixture(scope="module")
def fdg():
    folder = shared_path(*FDG_DIR)
    return folder, load_suv_volume(folder)


def test_real_fdg_suv_by_hand(fdg):
    _folder, vol = fdg
    assert vol.meta["resampled"] is True  # non-uniform steps handled by position, not rejected
    assert any("non-uniform" in w for w in vol.meta["warnings"])
    s = vol.meta["suv"]
    assert s["decay_time_s"] == pytest.approx(2711.0)
    assert s["half_life_s"] == 6588.0
    assert s["weight_kg"] == 71.0
    # first and last slices sit exactly on original positions: compare whole slices by hand
    for k in (0, vol.shape[2] - 1):
        ds = pydicom.dcmread(vol.meta["files"][k])
        bqml = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_allclose(vol.array[:, :, k], (bqml * FDG_FACTOR).T, rtol=2e-6, atol=1e-6)
    # the hottest voxel of the last slice, written out: stored * slope * 71000 / (dose * 2^(-2711/6588))
    ds = pydicom.dcmread(vol.meta["files"][-1])
    r, c = np.unravel_index(int(np.argmax(ds.pixel_array)), ds.pixel_array.shape)
    by_hand = int(ds.pixel_array[r, c]) * float(ds.RescaleSlope) * 71000.0 / (3.88777472e8 * 2 ** (-2711 / 6588))
    assert float(vol.array[c, r, -1]) == pytest.approx(by_hand, rel=2e-6)


def test_per_slice_factors_on_a_non_uniform_series(tmp_path):
    """Per-slice Philips factors + a non-uniform slice step: SUV per slice first, then linear by position."""
    counts = activity(seed=16)
    scale = [2.5e-4, 1.25e-4, 5e-4, 3.75e-4]
    paths = write_pet_series(tmp_path / "p", counts, AFFINE, slopes=SLOPES, units="CNTS", philips_suv_scale=scale)
    normal = AFFINE[:3, 2] / np.linalg.norm(AFFINE[:3, 2])
    last = pydicom.dcmread(paths[-1])
    last.ImagePositionPatient = [float(x) for x in np.asarray(last.ImagePositionPatient, float) + 1.5 * normal]
    last.save_as(paths[-1])
    vol = load_suv_volume(tmp_path / "p")
    assert vol.meta["resampled"] is True
    positions = np.array([0.0, 4.0, 8.0, 13.5])  # along the normal, mm
    targets = np.linspace(0.0, 13.5, vol.shape[2])
    suv_slices = counts * np.asarray(scale)[None, None, :]
    expected = np.empty(vol.shape)
    for i in range(SHAPE[0]):
        for j in range(SHAPE[1]):
            expected[i, j] = np.interp(targets, positions, suv_slices[i, j])
    np.testing.assert_allclose(vol.array, expected, rtol=2e-6)


def test_suv_reuses_the_folder_scan_not_every_header(shared, monkeypatch):
    """Real 267-slice FDG PET: SUV needs only the first and last headers again, and equals the full re-read."""
    folder = shared("mirp_sts_fdg_pet", "test", "data", "sts_images_raw", "STS_001", "FDG_PET", "image")
    files = sorted(folder.glob("*.dcm"))
    full = suv_conversion([pydicom.dcmread(f, stop_before_pixels=True) for f in files], source="full re-read")
    calls = []
    real = pydicom.dcmread

    def counting(path, *args, **kwargs):
        if kwargs.get("stop_before_pixels"):
            calls.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(pydicom, "dcmread", counting)
    vol = load_suv_volume(folder)
    assert len(files) == 267
    assert len(calls) <= 3  # first and last for SUV, one for the series header facts
    # MANIFEST facts: 71 kg, 3.88777e8 Bq, injection 10:35:00, series 11:20:11, half-life 6588 s
    summary = vol.meta["suv"]
    assert summary["weight_kg"] == 71.0
    assert summary["decay_time_s"] == pytest.approx(45 * 60 + 11.0)
    assert summary["decay_time_s"] == pytest.approx(full.decay_time_s)
    assert summary["factor_min"] == pytest.approx(float(full.factors.min()), rel=1e-12)
    assert summary["scan_datetime"] == full.scan_datetime.isoformat()


def test_without_the_dose_no_suv_and_no_decayed_dose_but_a_zero_dose_is_refused(tmp_path):
    """No Radionuclide Total Dose with require_weight=False: the factors give Bq/mL (BQML START: 1 per slice),
    nothing is reported as injected or decayed dose, and the reason names (0018,1074); a dose of 0 stays refused."""
    write_pet_series(tmp_path / "p", activity(seed=22), AFFINE, slopes=SLOPES, dose_bq=None)
    conv = suv_conversion(headers(tmp_path / "p"), source="p", require_weight=False)
    np.testing.assert_array_equal(conv.factors, np.ones(SHAPE[2]))
    assert (conv.injected_dose_bq, conv.decayed_dose_bq) == (None, None)
    assert conv.summary()["decayed_dose_bq"] is None
    assert "(0018,1074) is missing" in conv.suv_unavailable
    write_pet_series(tmp_path / "z", activity(seed=22), AFFINE, slopes=SLOPES, dose_bq=0.0)
    with pytest.raises(InputError, match=r"^z: injected dose Radionuclide Total Dose \(0018,1074\) is 0\.0; "):
        suv_conversion(headers(tmp_path / "z"), source="z", require_weight=False)


def test_philips_suv_scale_without_header_weight_is_used_as_written_with_a_clinical_file_weight(tmp_path):
    """Philips CNTS with SUV Scale Factor (7053,1000) and no Patient's Weight: the clinical file's weight cannot
    rescale the factor (the scanner's weight is unknown), so it is used as written with a warning; an explicit
    --weight is refused, naming --weight."""
    counts = activity(seed=23)
    scale = [2.5e-4, 1.25e-4, 5e-4, 3.75e-4]
    write_pet_series(
        tmp_path / "p", counts, AFFINE, slopes=SLOPES, units="CNTS", philips_suv_scale=scale, weight_kg=None
    )
    conv = suv_conversion(
        headers(tmp_path / "p"), weight_kg=80.0, source="p", weight_source="the clinical file's weight_kg"
    )
    np.testing.assert_allclose(conv.factors, scale, rtol=1e-12)  # per modality-LUT value, as written
    assert any("used as written" in w and "clinical file's weight_kg" in w for w in conv.warnings)
    with pytest.raises(UnsupportedError, match=r"--weight cannot be applied .*drop --weight"):
        suv_conversion(headers(tmp_path / "p"), weight_kg=80.0, source="p")


@pytest.mark.parametrize("header_weight", [None, 0.0])
@pytest.mark.parametrize("source", ["--weight", "the clinical file's weight_kg"])
def test_philips_cnts_without_header_weight_uses_the_concentration_scale_with_the_given_weight(
    tmp_path, header_weight, source
):
    """Philips CNTS as the scanner writes it, both private factors on every slice, Patient's Weight stripped (or
    0) and the weight given: SUV = counts x (7053,1009) x weight / decayed dose. It was refused ('drop --weight')
    or, with the clinical file's weight, the SUV Scale Factor was used as written for an unknown weight."""
    counts = activity(seed=24)
    conc = [0.75, 0.5, 1.25, 1.0]  # Bq/mL per count, per slice
    # the scanner's SUV factors, for a 70 kg weight it knew: not the 80 kg patient's
    suv_scale = [c * 70e3 / (DOSE_BQ * 2.0 ** (-3600.0 / GA68_T)) for c in conc]
    write_pet_series(
        tmp_path / "p",
        counts,
        AFFINE,
        slopes=SLOPES,
        units="CNTS",
        philips_suv_scale=suv_scale,
        philips_conc_scale=conc,
        weight_kg=header_weight,
    )
    conv = suv_conversion(headers(tmp_path / "p"), weight_kg=80.0, source="p", weight_source=source)
    expected = qiba_suv(np.asarray(conc), 80.0, DOSE_BQ, 3600.0, GA68_T)
    np.testing.assert_allclose(conv.factors, expected, rtol=1e-12)
    assert conv.method == "CNTS:7053,1009"
    assert any("cannot be rescaled" in w and "(7053,1009)" in w for w in conv.warnings)
    if source == "--weight":
        vol = load_suv_volume(tmp_path / "p", weight_kg=80.0)
        a = counts * np.asarray(conc)[None, None, :]
        np.testing.assert_allclose(vol.array, qiba_suv(a, 80.0, DOSE_BQ, 3600.0, GA68_T), rtol=2e-6)


@pytest.mark.parametrize(
    ("series_date", "series_time", "acquisition_date", "acquisition_time", "injection_time", "decay_s"),
    [
        ("20240105", "090000", "20240102", "110000", "100000", 3600.0),  # reconstructed 3 days later
        ("20240103", "090000", "20240102", "110000", "100000", 3600.0),  # the next morning
        ("20240104", "083000", "20240103", "003000", "233000", 3600.0),  # a scan after midnight, re-saved next day
    ],
)
def test_series_post_processed_on_a_later_day_takes_the_injection_on_the_scan_day(
    tmp_path, series_date, series_time, acquisition_date, acquisition_time, injection_time, decay_s
):
    """A Siemens/GE series reconstructed or re-saved on a later day keeps its Acquisition Date; with only
    RadiopharmaceuticalStartTime the injection is on the scan's day (or the day before it), not the Series
    Date's. Three days later it was refused ('injection ... is after the scan'); the next day it was right
    only through a false 'midnight crossing' warning, and a scan after midnight re-saved the next day was
    refused."""
    a = activity(seed=25)
    vol = load(
        tmp_path,
        values=a,
        slopes=SLOPES,
        series_date=series_date,
        series_time=series_time,
        acquisition_date=acquisition_date,
        acquisition_times=[acquisition_time] * SHAPE[2],
        injection_time=injection_time,
    )
    np.testing.assert_allclose(vol.array, qiba_suv(a, WEIGHT_KG, DOSE_BQ, decay_s, GA68_T), rtol=2e-6)
    assert vol.meta["suv"]["decay_time_s"] == pytest.approx(decay_s)
    crossing = any("midnight crossing" in w for w in vol.meta["warnings"])
    assert crossing == (injection_time > acquisition_time)


def _recode(files, value, meaning, radiopharmaceutical):
    for f in files:
        ds = pydicom.dcmread(f)
        info = ds.RadiopharmaceuticalInformationSequence[0]
        info.RadionuclideCodeSequence[0].CodeValue = value
        info.RadionuclideCodeSequence[0].CodingSchemeDesignator = "SCT"
        info.RadionuclideCodeSequence[0].CodeMeaning = meaning
        info.Radiopharmaceutical = radiopharmaceutical
        ds.save_as(f)


def test_snomed_ct_codes_of_carbon_11_and_nitrogen_13():
    """CID 4020 in SNOMED CT (pydicom's concept dictionary is the independent source): ^11^Carbon is 40565003,
    21576001 is ^13^Nitrogen. 21576001 was read as C-11: an N-13 ammonia series without (0018,1075) was
    decay-corrected with C-11's 20.4 min instead of N-13's 10 min (SUV 2.9x too low at 30 min)."""
    from pydicom.sr.codedict import codes

    assert codes.SCT._11Carbon.value == "40565003"
    assert codes.SCT._13Nitrogen.value == "21576001"


def test_nitrogen_13_code_is_not_carbon_11(tmp_path):
    files = write_pet_series(tmp_path / "n13", activity(), AFFINE, half_life_s=None, injection_time="103000")
    _recode(files, "21576001", "^13^Nitrogen", "Ammonia")
    with pytest.raises(DicomError, match=r"Half Life \(0018,1075\) is missing and the radionuclide is unknown"):
        suv_conversion(headers(tmp_path / "n13"), source="n13")
    files = write_pet_series(tmp_path / "c11", activity(), AFFINE, half_life_s=None, injection_time="103000")
    _recode(files, "40565003", "^11^Carbon", "Choline")
    conv = suv_conversion(headers(tmp_path / "c11"), source="c11", plausibility=None)
    assert conv.nuclide == "C-11"
    assert conv.half_life_s == pytest.approx(20.36 * 60.0)  # C-11: 20.36 min


@pytest.mark.parametrize("double", [False, True])
def test_pet_in_float_pixel_data_is_refused_by_name(tmp_path, double):
    """PET Image Storage with the pixels in Float Pixel Data (7FE0,0008) (or Double, 0009), as converters
    write it: refused naming the element. It read 'DICOM file is truncated or corrupt (header ends before
    PixelData)', which sent the user looking for a damaged copy."""
    files = write_pet_series(tmp_path / "p", activity(), AFFINE, slopes=SLOPES)
    for f in files:
        ds = pydicom.dcmread(f)
        values = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope)
        del ds.PixelData, ds.RescaleSlope, ds.RescaleIntercept, ds.PixelRepresentation
        ds.BitsAllocated = ds.BitsStored = 64 if double else 32
        del ds.HighBit
        if double:
            ds.DoubleFloatPixelData = values.tobytes()
        else:
            ds.FloatPixelData = values.astype(np.float32).tobytes()
        ds.save_as(f)
    with pytest.raises(UnsupportedError, match=r"Float Pixel Data \(7FE0,0008/0009\).*original series") as info:
        load_suv_volume(tmp_path / "p")
    assert "truncated" not in str(info.value)


def _average_count_rate_offset_s(duration_s, half_life_s):
    """Seconds into a frame at which the decaying count rate equals its frame mean (numerical quadrature)."""
    t = np.linspace(0.0, duration_s, 200001)
    rate = np.exp(-np.log(2.0) * t / half_life_s)
    mean = float(np.sum((rate[1:] + rate[:-1]) / 2.0) * (t[1] - t[0]) / duration_s)
    return -np.log(mean) * half_life_s / np.log(2.0)


def _frame_times(files, bed_offsets_s, duration_s, half_life_s, manufacturer="SIEMENS"):
    """Frame Reference Time (ms from the series reference) and Actual Frame Duration as Siemens writes them."""
    for f, offset in zip(files, bed_offsets_s, strict=True):
        ds = pydicom.dcmread(f)
        ds.Manufacturer = manufacturer
        ds.FrameReferenceTime = round((offset + _average_count_rate_offset_s(duration_s, half_life_s)) * 1000.0, 3)
        ds.ActualFrameDuration = int(duration_s * 1000)
        ds.save_as(f)


def test_resaved_sub_series_takes_the_decay_reference_from_the_frame_reference_time(tmp_path):
    """Beds 2 and 3 of a Siemens whole-body scan begun 11:00:00 (injection 10:00:00), re-saved at 14:00:00 as a
    series of their own: the pixels stay decay-corrected to 11:00:00, which their Frame Reference Times count
    from (QIBA). The earliest Acquisition Time (11:03:00, bed 2) was taken, decay 3780 s instead of 3600 s:
    every SUV 3.1 % low."""
    a = activity(seed=26)
    files = write_pet_series(
        tmp_path / "p",
        a,
        AFFINE,
        slopes=SLOPES,
        series_time="140000",
        acquisition_times=["110300", "110300", "110600", "110600"],
        injection_time="100000",
    )
    _frame_times(files, [180.0, 180.0, 360.0, 360.0], 180.0, GA68_T)
    vol = load_suv_volume(tmp_path / "p")
    np.testing.assert_allclose(vol.array, qiba_suv(a, WEIGHT_KG, DOSE_BQ, 3600.0, GA68_T), rtol=1e-5)
    assert vol.meta["suv"]["decay_time_s"] == pytest.approx(3600.0, abs=0.01)
    assert any("Frame Reference Time (0054,1300)" in w and "180 s before" in w for w in vol.meta["warnings"])

    # Frame Reference Times that name two references (one slice 60 s off) are not believed
    _frame_times(files, [180.0, 180.0, 360.0, 420.0], 180.0, GA68_T)
    vol = load_suv_volume(tmp_path / "p")
    assert vol.meta["suv"]["decay_time_s"] == pytest.approx(3780.0)
    assert any("were not used" in w for w in vol.meta["warnings"])
    # nor those of another vendor (Philips counts them from elsewhere: tests/test_suv_vendor_headers.py)
    _frame_times(files, [180.0, 180.0, 360.0, 360.0], 180.0, GA68_T, manufacturer="Philips Medical Systems")
    assert load_suv_volume(tmp_path / "p").meta["suv"]["decay_time_s"] == pytest.approx(3780.0)


def test_gml_is_rescaled_to_the_given_weight(tmp_path):
    """Units GML: SUVbw a workstation computed with Patient's Weight 70 kg; --weight 80 makes every SUV 80/70 of it
    (SUVbw = A x weight / dose). The values were left as they were while the report said weight 80 kg."""
    a = activity(seed=27) / 1000.0
    slopes = [s / 1000.0 for s in SLOPES]
    write_pet_series(tmp_path / "p", a, AFFINE, slopes=slopes, units="GML", weight_kg=70.0)
    vol = load_suv_volume(tmp_path / "p", weight_kg=80.0)
    np.testing.assert_allclose(vol.array, a * 80.0 / 70.0, rtol=2e-6)
    assert vol.meta["suv"]["weight_kg"] == 80.0
    assert any("values: rescaled from the header weight 70 kg to --weight 80 kg" in w for w in vol.meta["warnings"])
    # without Patient's Weight the scale cannot be moved: --weight is refused, a clinical file's weight ignored
    write_pet_series(tmp_path / "q", a, AFFINE, slopes=slopes, units="GML", weight_kg=None)
    with pytest.raises(
        UnsupportedError, match=r"--weight cannot be applied to the GML \(SUVbw\) values.*drop --weight"
    ):
        load_suv_volume(tmp_path / "q", weight_kg=80.0)
    conv = suv_conversion(
        headers(tmp_path / "q"), weight_kg=80.0, source="q", weight_source="the clinical file's weight_kg"
    )
    assert np.all(conv.factors == 1.0)
    assert any("GML (SUVbw) values: used as written" in w for w in conv.warnings)


def _without_dates(files):
    """De-identified as HIPAA asks: every date blanked, the times of day kept."""
    for f in files:
        ds = pydicom.dcmread(f)
        for kw in ("SeriesDate", "AcquisitionDate", "StudyDate", "ContentDate"):
            if kw in ds:
                setattr(ds, kw, "")
        ds.save_as(f)


@pytest.mark.parametrize(
    ("series_time", "injection_time", "decay_s"),
    [("110000", "100000", 3600.0), ("003000", "233000", 3600.0), ("101500", "093000", 2700.0)],
)
def test_undated_pet_takes_the_uptake_from_the_times_of_day(tmp_path, series_time, injection_time, decay_s):
    """Dates removed by de-identification, times kept: for Ga-68 (imaged within 300 min) the uptake is the
    difference of the times of day, across midnight when the injection is later in the day. It was refused as
    'Series Date/Time ... missing' though the Series Time was there."""
    a = activity(seed=28)
    files = write_pet_series(
        tmp_path / "p", a, AFFINE, slopes=SLOPES, series_time=series_time, injection_time=injection_time
    )
    _without_dates(files)
    vol = load_suv_volume(tmp_path / "p")
    np.testing.assert_allclose(vol.array, qiba_suv(a, WEIGHT_KG, DOSE_BQ, decay_s, GA68_T), rtol=2e-6)
    assert vol.meta["suv"]["decay_time_s"] == pytest.approx(decay_s)
    assert any("PET dates missing" in w for w in vol.meta["warnings"])


def test_undated_lu177_is_refused_since_days_may_be_missing(tmp_path):
    # post-therapy Lu-177 imaging is 4 h to 7 days after injection: 11:00 - 10:00 may be 1 h or 1 h + N days
    files = write_pet_series(
        tmp_path / "p",
        activity(),
        AFFINE,
        nuclide=None,
        radiopharmaceutical="177Lu-DOTATATE",
        half_life_s=574300.0,
        dose_bq=7.4e9,
    )
    _without_dates(files)
    with pytest.raises(DicomError, match=r"dates are missing .* Lu-177 may be imaged days after injection"):
        load_suv_volume(tmp_path / "p")


def test_suv_values_written_as_bqml_are_refused(tmp_path):
    """A workstation's re-saved SUV series (values 0.5-20) labelled Units BQML: the QIBA factor (weight 70 kg, dose
    150 MBq decayed 60 min) makes the hottest voxel SUV 20 x 70e3 / (150e6 x 2^(-3600/4069.8)) = 0.017, and the
    liver 0.004. It was reported as measured, without a warning."""
    rng = np.random.default_rng(29)
    suv = rng.uniform(0.5, 20.0, size=SHAPE)
    suv.flat[0] = 20.0
    expected_max = qiba_suv(20.0, WEIGHT_KG, DOSE_BQ, 3600.0, GA68_T)
    assert expected_max < 0.02
    write_pet_series(tmp_path / "p", suv, AFFINE, slopes=[1.0 / 1024] * SHAPE[2])
    with pytest.raises(InputError, match=rf"SUVmax {expected_max:.4g} is below 0.5.*Units \(GML for SUV values\)"):
        load_suv_volume(tmp_path / "p")
