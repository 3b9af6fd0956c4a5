"""Property tests: hostile input never crashes a loader or ``netlm analyze``.

The only allowed outcomes of feeding a mutated, truncated, bit-flipped or
absurd file to a loader are a result that passes the test's own checks or a
:class:`~netlm_imaging.errors.NetlmError` subclass; through the CLI, exit 0
with a schema-valid report whose volumes the test recomputes, or exit 3 with
one ``netlm: error:`` line on stderr and no traceback. Declared sizes are
refused before anything of that size is allocated (tracemalloc proves it).

All examples are derandomized (``derandomize=True``): the same inputs run on
every machine. Seeds for the starting files are fixed. Starting files are
written by ``tests/dicom_factory.py`` / ``tests/seg_factory.py`` and by
nibabel here; one real file is mutated too: ``dcmqi_ct3slice_seg/liver.dcm``
(QIICR/dcmqi @b6137d9e, BSD-3-Clause; shared/data/MANIFEST.md).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import struct
import tempfile
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.sr.codedict import codes

from netlm_imaging.cli import main as cli_main
from netlm_imaging.errors import GeometryError, NetlmError, ResourceLimitError
from netlm_imaging.io.dicom_seg import read_dicom_seg
from netlm_imaging.io.dicom_series import read_dicom_series
from netlm_imaging.io.label_spec import parse_label_spec
from netlm_imaging.io.loader import load_image, load_segmentation
from netlm_imaging.io.nifti import read_nifti
from netlm_imaging.io.rtstruct import read_rtstruct
from netlm_imaging.io.sitk_io import read_itk
from netlm_imaging.report.model import validate_report
from netlm_imaging.volume import Volume, lps_to_ras
from tests.conftest import oblique_affine, shared_path
from tests.dicom_factory import write_enhanced_series, write_image_series
from tests.seg_factory import Contour, RoiSpec, SegmentSpec, ellipse_points, write_rtstruct, write_seg

FUZZ = settings(
    derandomize=True,
    deadline=None,
    max_examples=int(os.environ.get("NETLM_FUZZ_EXAMPLES", "40")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
SPEC = parse_label_spec(None)
SHAPE = (10, 9, 6)
AFFINE = oblique_affine(spacing=(0.8, 0.9, 2.5))
TMP_ROOT = Path(tempfile.mkdtemp(prefix="netlm_fuzz_"))


#: Open crash findings (reported to the lead; their owners fix them). Each gets a strict-xfail regression
#: test below (``test_finding_*``); while it is open the property tests tolerate exactly that signature
#: (exception type, module of the innermost netlm frame, message fragment) and nothing else. When its
#: regression test XPASSes, delete the entry and the xfail mark. The crash findings of this suite
#: (AttributeError/TypeError/ValueError/NotImplementedError/IndexError escaping _dicom_pixels,
#: _dicom_common, _seg_frames, dicom_seg, rtstruct and dicom_series) were fixed in b13607f; their
#: ``test_finding_*`` tests now guard them.
KNOWN_FINDINGS: list[tuple[type[BaseException], str, str]] = []


def _innermost_netlm_module(exc: BaseException) -> str:
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "netlm_imaging" in f.filename]
    return frames[-1].filename.split("netlm_imaging/")[-1] if frames else "?"


def _is_known(exc: BaseException) -> bool:
    where = _innermost_netlm_module(exc)
    return any(isinstance(exc, t) and where == m and frag in str(exc) for t, m, frag in KNOWN_FINDINGS)


def _outcome(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; return its result or the NetlmError it raised. Anything else fails the test."""
    try:
        return fn()
    except NetlmError as exc:
        msg = str(exc)
        assert msg, "empty NetlmError message"
        assert "\n" not in msg, f"NetlmError message must be one line: {msg!r}"
        return exc
    except Exception as exc:
        if os.environ.get("NETLM_FUZZ_SURVEY"):  # exploration mode: record every unexpected exception
            with open(os.environ["NETLM_FUZZ_SURVEY"], "a") as fh:
                rec = {"exc": type(exc).__name__, "msg": str(exc)[:160], "where": _innermost_netlm_module(exc)}
                fh.write(json.dumps(rec) + "\n")
            return exc
        if _is_known(exc):
            return exc
        raise


def _phantom() -> tuple[np.ndarray, np.ndarray]:
    """Image (HU) and LiTS label map: a liver block with a lesion inside, the test's own truth."""
    rng = np.random.default_rng(7)
    img = rng.normal(40.0, 10.0, SHAPE).round()
    lab = np.zeros(SHAPE, dtype=np.uint8)
    lab[2:8, 2:7, 1:5] = 1
    lab[4:6, 3:5, 2:4] = 2
    img[lab == 1] = 60.0
    img[lab == 2] = 110.0
    return img, lab


def _write_nifti(path: Path, arr: np.ndarray, affine_lps: np.ndarray) -> Path:
    ras = lps_to_ras(affine_lps)
    im = nib.Nifti1Image(arr, ras)
    im.set_sform(ras, code=1)
    im.set_qform(ras, code=1)
    nib.save(im, str(path))
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict[str, Path]:
    """Valid starting files: NIfTI image + labels, a DICOM series with SEG and RTSTRUCT."""
    root = tmp_path_factory.mktemp("fuzzbase")
    img, lab = _phantom()
    out = {
        "nii_img": _write_nifti(root / "image.nii", img.astype(np.int16), AFFINE),
        "nii_lab": _write_nifti(root / "labels.nii", lab, AFFINE),
        "mha": root / "image.mha",
    }
    import SimpleITK as sitk

    sitk.WriteImage(sitk.GetImageFromArray(img.astype(np.int16).transpose(2, 1, 0)), str(out["mha"]))
    series = root / "series"
    files = write_image_series(series, img, AFFINE, seed=11)
    out["series"] = series
    out["seg"] = write_seg(
        root / "seg.dcm",
        files,
        [
            SegmentSpec("Liver", lab == 1),
            SegmentSpec(
                "Lesion",
                lab == 2,
                property_type=codes.SCT.Neoplasm,
                property_category=codes.SCT.MorphologicallyAbnormalStructure,
            ),
        ],
        seed=11,
    )
    centre = AFFINE[:3, :3] @ np.array([4.5, 4.0, 2.0]) + AFFINE[:3, 3]
    u, v = AFFINE[:3, 0], AFFINE[:3, 1]
    contours = []
    for k in range(1, 5):
        c = centre + (k - 2) * AFFINE[:3, 2]
        contours.append(Contour(ellipse_points(c, u, v, 3.0, 2.5, n=24)))
    out["rt"] = write_rtstruct(root / "rt.dcm", files, [RoiSpec("Liver", contours)], seed=11)
    return out


@pytest.fixture(scope="module")
def reference(base) -> Volume:
    """The series as the loaders read it (SEG/RTSTRUCT are placed on it)."""
    return read_dicom_series(base["series"])


def _fresh_dir() -> Path:
    return Path(tempfile.mkdtemp(dir=TMP_ROOT))


# --------------------------------------------------------------------------- byte-level mutation
@st.composite
def byte_mutations(draw, max_len: int = 4096) -> list[tuple[str, int, int]]:
    """A short list of (kind, position, value) edits: bit flip, byte set, or truncate."""
    n = draw(st.integers(1, 4))
    return [
        (
            draw(st.sampled_from(["flip", "set", "truncate"])),
            draw(st.integers(0, max_len)),
            draw(st.integers(0, 255)),
        )
        for _ in range(n)
    ]


def _mutate_bytes(data: bytes, edits: list[tuple[str, int, int]], *, header_len: int | None = None) -> bytes:
    buf = bytearray(data)
    for kind, pos, val in edits:
        if not buf:
            break
        limit = len(buf) if header_len is None else min(len(buf), header_len)
        p = pos % max(1, limit)
        if kind == "flip":
            buf[p] ^= 1 << (val % 8)
        elif kind == "set":
            buf[p] = val
        else:
            del buf[p:]
    return bytes(buf)


def _ok(res: Any) -> bool:
    """A result (not an exception) came back."""
    return not isinstance(res, Exception)


def _check_volume(vol: Any) -> None:
    if isinstance(vol, Volume):
        assert vol.array.ndim == 3
        assert np.all(np.isfinite(vol.affine))


@FUZZ
@given(edits=byte_mutations(400))
def test_nifti_header_mutations_never_crash(base, edits):
    d = _fresh_dir()
    for key in ("nii_img", "nii_lab"):
        data = base[key].read_bytes()
        p = d / base[key].name
        p.write_bytes(_mutate_bytes(data, edits, header_len=400))
        res = _outcome(lambda p=p: read_nifti(p, max_voxels=10**7))
        _check_volume(res)
        _outcome(lambda p=p: load_image(p, max_voxels=10**7))
    ref = Volume(np.zeros(SHAPE, np.float32), AFFINE)
    _outcome(lambda: load_segmentation(str(d / "labels.nii"), ref, SPEC, max_voxels=10**7))
    shutil.rmtree(d)


@FUZZ
@given(edits=byte_mutations(2000))
def test_itk_file_mutations_never_crash(base, edits):
    d = _fresh_dir()
    p = d / "image.mha"
    p.write_bytes(_mutate_bytes(base["mha"].read_bytes(), edits, header_len=600))
    _check_volume(_outcome(lambda: read_itk(p, max_voxels=10**7)))
    shutil.rmtree(d)


@FUZZ
@given(edits=byte_mutations(2000), which=st.integers(0, 5))
def test_dicom_slice_byte_mutations_never_crash(base, edits, which):
    d = _fresh_dir()
    shutil.copytree(base["series"], d / "s")
    victim = sorted((d / "s").iterdir())[which % SHAPE[2]]
    victim.write_bytes(_mutate_bytes(victim.read_bytes(), edits, header_len=1600))
    _check_volume(_outcome(lambda: read_dicom_series(d / "s", max_voxels=10**7)))
    shutil.rmtree(d)


@FUZZ
@given(edits=byte_mutations(6000))
def test_dicom_seg_and_rtstruct_byte_mutations_never_crash(base, reference, edits):
    d = _fresh_dir()
    for key in ("seg", "rt"):
        p = d / f"{key}.dcm"
        p.write_bytes(_mutate_bytes(base[key].read_bytes(), edits))
        _outcome(lambda p=p: load_segmentation(str(p), reference, SPEC, max_voxels=10**7))
    shutil.rmtree(d)


def test_real_dcmqi_seg_truncations_never_crash(tmp_path):
    """Every truncation point of the real dcmqi liver SEG header region gives a NetlmError or a valid SEG."""
    src = shared_path("dcmqi_ct3slice_seg", "data", "segmentations", "liver.dcm")
    ct = read_dicom_series(shared_path("dcmqi_ct3slice_seg", "data", "segmentations", "ct-3slice"))
    data = src.read_bytes()
    for cut in [*range(0, 3000, 97), len(data) // 2, len(data) - 200]:
        p = tmp_path / f"cut{cut}.dcm"
        p.write_bytes(data[:cut])
        res = _outcome(lambda p=p: read_dicom_seg(p, ct, SPEC))
        assert isinstance(res, NetlmError), f"truncated at {cut} of {len(data)} bytes but accepted"


# --------------------------------------------------------------------------- header (tag) mutation
HOSTILE_VALUES = st.one_of(
    st.none(),  # delete the element
    st.sampled_from(["", "abc", "NaN", "inf", "-1", "0", "1e308", "\\", "1\\2\\3", "65535", "4294967295"]),
    st.integers(-(2**31), 2**31),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=0, max_size=7),
)
IMAGE_TAGS = [
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PixelSpacing",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "RescaleSlope",
    "RescaleIntercept",
    "NumberOfFrames",
    "SOPClassUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "Modality",
    "PixelData",
    "SliceThickness",
    "InstanceNumber",
]
SEG_TAGS = [
    "Rows",
    "Columns",
    "NumberOfFrames",
    "BitsAllocated",
    "SegmentationType",
    "SegmentSequence",
    "PerFrameFunctionalGroupsSequence",
    "SharedFunctionalGroupsSequence",
    "PixelData",
    "FrameOfReferenceUID",
    "ReferencedSeriesSequence",
    "MaximumFractionalValue",
    "SegmentationFractionalType",
    "SOPClassUID",
]


def _set_tag(ds: pydicom.Dataset, keyword: str, value: Any) -> None:
    if value is None:
        if keyword in ds:
            delattr(ds, keyword)
        return
    if keyword == "PixelData":
        if "PixelData" not in ds:  # deleted by an earlier edit of the same example
            return
        ds.PixelData = ds.PixelData[: abs(int(value)) % (len(ds.PixelData) + 1)] if isinstance(value, int) else b""
        return
    if keyword.endswith("Sequence"):
        seq = ds.get(keyword)
        if seq is not None and len(seq):
            del seq[zlib.crc32(repr(value).encode()) % len(seq)]  # stable across processes (hash() is salted)
        return
    vr = pydicom.datadict.dictionary_VR(keyword)
    try:
        if vr in ("US", "UL", "SS", "SL"):
            v = int(value[0]) if isinstance(value, list) and value and np.isfinite(value[0]) else value
            v = int(v) if isinstance(v, (int, float)) and np.isfinite(v) else 0
            bits = {
                "US": (0, 2**16 - 1),
                "SS": (-(2**15), 2**15 - 1),
                "UL": (0, 2**32 - 1),
                "SL": (-(2**31), 2**31 - 1),
            }
            lo, hi = bits[vr]
            setattr(ds, keyword, min(max(v, lo), hi))
        elif vr in ("DS", "IS"):
            vals = value if isinstance(value, list) else [value]
            setattr(ds, keyword, [str(x)[:16] for x in vals] if len(vals) != 1 else str(vals[0])[:16])
        else:
            setattr(ds, keyword, str(value)[:64])
    except (ValueError, TypeError, OverflowError):  # pydicom refuses the value: store it as text under that tag
        ds.add_new(pydicom.datadict.tag_for_keyword(keyword), "LO", str(value)[:64])


def _save_raw(ds: pydicom.Dataset, path: Path) -> None:
    with warnings_suppressed():
        ds.save_as(path, enforce_file_format=False)


@contextlib.contextmanager
def warnings_suppressed():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@FUZZ
@given(
    edits=st.lists(st.tuples(st.sampled_from(IMAGE_TAGS), HOSTILE_VALUES), min_size=1, max_size=3),
    which=st.integers(0, 5),
    all_slices=st.booleans(),
)
def test_dicom_series_tag_mutations_never_crash(base, edits, which, all_slices):
    d = _fresh_dir()
    shutil.copytree(base["series"], d / "s")
    files = sorted((d / "s").iterdir())
    for f in files if all_slices else [files[which % len(files)]]:
        ds = pydicom.dcmread(f)
        for kw, val in edits:
            _set_tag(ds, kw, val)
        try:
            _save_raw(ds, f)
        except Exception:  # the mutation cannot even be written: nothing to test
            f.write_bytes(b"")
    res = _outcome(lambda: read_dicom_series(d / "s", max_voxels=10**7))
    _check_volume(res)
    shutil.rmtree(d)


@FUZZ
@given(edits=st.lists(st.tuples(st.sampled_from(SEG_TAGS), HOSTILE_VALUES), min_size=1, max_size=3))
def test_dicom_seg_tag_mutations_never_crash(base, reference, edits):
    d = _fresh_dir()
    ds = pydicom.dcmread(base["seg"])
    for kw, val in edits:
        _set_tag(ds, kw, val)
    p = d / "seg.dcm"
    try:
        _save_raw(ds, p)
    except Exception:
        p.write_bytes(b"\0" * 200)
    res = _outcome(lambda: read_dicom_seg(p, reference, SPEC, max_voxels=10**7))
    if _ok(res):
        for layer in res:
            assert layer.mask.shape == reference.shape
    shutil.rmtree(d)


RT_EDITS = st.sampled_from(
    ["odd_points", "nan_point", "huge_point", "wrong_count", "no_rois", "empty_contour", "bad_type", "no_for"]
)


def _rt_mutate(ds: pydicom.Dataset, what: str) -> None:
    c = ds.ROIContourSequence[0].ContourSequence[0]
    if what == "odd_points":
        c.ContourData = list(c.ContourData)[:-1]
    elif what == "nan_point" and len(c.ContourData) > 3:
        vals = list(c.ContourData)
        vals[3] = "NaN"
        c.ContourData = vals
    elif what == "huge_point" and len(c.ContourData) > 0:
        vals = list(c.ContourData)
        vals[0] = "1e300"
        c.ContourData = vals
    elif what == "wrong_count":
        c.NumberOfContourPoints = 100000
    elif what == "no_rois":
        del ds.StructureSetROISequence
    elif what == "empty_contour":
        c.ContourData = []
        c.NumberOfContourPoints = 0
    elif what == "bad_type":
        c.ContourGeometricType = "WHATEVER"
    elif what == "no_for":
        del ds.ReferencedFrameOfReferenceSequence


@FUZZ
@given(edits=st.lists(RT_EDITS, min_size=1, max_size=3, unique=True))
def test_rtstruct_mutations_never_crash(base, reference, edits):
    d = _fresh_dir()
    ds = pydicom.dcmread(base["rt"])
    for e in edits:
        _rt_mutate(ds, e)
    p = d / "rt.dcm"
    _save_raw(ds, p)
    res = _outcome(lambda: read_rtstruct(p, reference, SPEC, max_voxels=10**7))
    if _ok(res):
        for layer in res:
            assert layer.mask.shape == reference.shape
    shutil.rmtree(d)


# --------------------------------------------------------------------------- affines and voxel values
AFFINE_ENTRIES = st.one_of(
    st.floats(-50, 50, allow_nan=False),
    st.sampled_from([0.0, 1e-9, float("nan"), float("inf"), -float("inf"), 1e12]),
)


@FUZZ
@given(entries=st.lists(AFFINE_ENTRIES, min_size=12, max_size=12))
def test_random_affines_are_valid_or_refused(entries):
    aff = np.eye(4)
    aff[:3, :] = np.array(entries).reshape(3, 4)
    res = _outcome(lambda: Volume(np.zeros((2, 2, 2)), aff))
    m = aff[:3, :3]
    ok_geometry = bool(np.all(np.isfinite(aff)))
    if ok_geometry:
        norms = np.linalg.norm(m, axis=0)
        ok_geometry = bool(np.all(norms > 1e-6))
        if ok_geometry:
            u = m / norms
            ok_geometry = bool(np.allclose(u.T @ u, np.eye(3), atol=1e-3))
    if isinstance(res, Volume):
        # accepted: the test's own orthogonality check must agree, and the voxel volume is |det|
        assert ok_geometry
        assert res.voxel_volume_mm3 == pytest.approx(abs(np.linalg.det(m)), rel=1e-6)
    else:
        assert isinstance(res, GeometryError)
        assert not ok_geometry or np.allclose(m, 0)


def _run_cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli_main(args)
    return rc, out.getvalue(), err.getvalue()


def _assert_clean_error(rc: int, err: str) -> None:
    assert rc == 3, f"exit {rc}, stderr: {err}"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines, "nothing on stderr"
    assert lines[-1].startswith("netlm: error:"), err
    assert "Traceback" not in err
    assert sum(ln.startswith("netlm: error:") for ln in lines) == 1


def _orthogonal(rot_deg: tuple[float, float, float], spacing: tuple[float, float, float]) -> np.ndarray:
    return oblique_affine(spacing=spacing, angles_deg=rot_deg, origin=(12.0, -30.0, 55.5))


@FUZZ
@given(
    angles=st.tuples(*[st.floats(-90, 90)] * 3),
    spacing=st.tuples(*[st.sampled_from([0.5, 0.8, 1.0, 2.5, 5.0])] * 3),
    shear=st.sampled_from([0.0, 0.0, 0.0, 0.3]),
    tilt=st.sampled_from([0.0, 0.0, 0.0, 25.0]),
    singular=st.booleans(),
    special=st.sampled_from(["none", "nan", "inf", "-inf"]),
    n_special=st.integers(0, 3),
    mask_kind=st.sampled_from(["phantom", "empty", "full_liver", "full_lesion", "lesion_only", "random"]),
)
def test_analyze_cli_on_random_geometry_and_values(
    angles, spacing, shear, tilt, singular, special, n_special, mask_kind
):
    """`netlm analyze` gives exit 0 with volumes the test recomputes, or exit 3 with one clean line.

    ``shear`` leans the columns onto the rows (no scanner's grid: refused); ``tilt`` leans the slice
    axis toward the columns by that angle, as a gantry tilt does (measured on that sheared grid).
    """
    d = _fresh_dir()
    img, lab = _phantom()
    img = img.astype(np.float32)
    aff = _orthogonal(angles, spacing)
    if shear:
        aff[:3, 1] += shear * aff[:3, 0]
    if tilt:
        col = aff[:3, 1] / np.linalg.norm(aff[:3, 1])
        aff[:3, 2] += math.tan(math.radians(tilt)) * np.linalg.norm(aff[:3, 2]) * col
    if singular:
        aff[:3, 2] = aff[:3, 0] * 0.5
    rng = np.random.default_rng(n_special)
    if special != "none" and n_special:
        idx = tuple(rng.integers(0, s, n_special) for s in SHAPE)
        img[idx] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}[special]
    if mask_kind == "empty":
        lab[:] = 0
    elif mask_kind == "full_liver":
        lab[:] = 1
    elif mask_kind == "full_lesion":
        lab[:] = 2
    elif mask_kind == "lesion_only":
        lab[lab == 1] = 0
    elif mask_kind == "random":
        lab = rng.integers(0, 3, SHAPE).astype(np.uint8)
    ip = d / "image.nii.gz"
    sp = d / "labels.nii.gz"
    ras = lps_to_ras(aff)
    for arr, path in ((img, ip), (lab, sp)):
        im = nib.Nifti1Image(arr, ras)
        im.set_sform(ras, code=1)
        im.set_qform(None, code=0)
        nib.save(im, str(path))
    rc, out, err = _run_cli(["analyze", "--image", str(ip), "--seg", str(sp), "--json", "-", "--quiet"])
    if rc == 0:
        report = json.loads(out)
        validate_report(report)
        voxel_ml = abs(np.linalg.det(aff[:3, :3])) / 1000.0
        liver_truth = float(np.count_nonzero(lab >= 1)) * voxel_ml if np.any(lab == 1) else None
        tumour_truth = float(np.count_nonzero(lab == 2)) * voxel_ml
        assert report["tumor"]["intrahepatic_volume_ml"] + report["tumor"]["extrahepatic_volume_ml"] == (
            pytest.approx(tumour_truth, rel=1e-5, abs=1e-6)
        )
        if liver_truth is not None:
            assert report["liver"]["volume_ml"] == pytest.approx(liver_truth, rel=1e-5)
        assert not (special != "none" and n_special), "NaN/inf voxels must not give a report"
        assert not singular, "a singular affine must not give a report"
        assert not shear, "a sheared affine must not give a report"
    else:
        _assert_clean_error(rc, err)
    shutil.rmtree(d)


# --------------------------------------------------------------------------- huge declared sizes
def _traced(fn: Callable[[], Any]) -> tuple[Any, int, float]:
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        res = _outcome(fn)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return res, peak, time.perf_counter() - t0


PEAK_LIMIT = 32 * 2**20  # far below any of the declared sizes (>= 10^12 voxels)


def test_nifti_declaring_10_to_15_voxels_is_refused_without_allocating(tmp_path):
    hdr = nib.Nifti2Header()  # NIfTI-2: 64-bit dimensions
    hdr.set_data_dtype(np.int16)
    hdr.set_data_shape((100000, 100000, 100000))
    hdr.set_sform(np.diag([1.0, 1.0, 1.0, 1.0]), code=1)
    hdr["vox_offset"] = len(hdr.binaryblock) + 4
    p = tmp_path / "huge.nii"
    p.write_bytes(hdr.binaryblock + b"\0" * 4 + b"\1\0" * 64)  # then 64 voxels only
    for fn in (lambda: read_nifti(p), lambda: load_image(p), lambda: read_nifti(p, max_voxels=10**6)):
        res, peak, dt = _traced(fn)
        assert isinstance(res, ResourceLimitError), res
        assert "1,000,000,000,000,000" in str(res)
        assert peak < PEAK_LIMIT, f"peak {peak} bytes"
        assert dt < 5.0
    rc, _, err = _run_cli(["analyze", "--image", str(p), "--seg", str(p), "--max-voxels", "1000000", "--json", "-"])
    _assert_clean_error(rc, err)
    assert "--max-voxels" in err


def test_itk_header_declaring_huge_dimensions_is_refused_without_allocating(tmp_path):
    p = tmp_path / "huge.mha"
    header = (
        "ObjectType = Image\nNDims = 3\nDimSize = 100000 100000 100000\nElementSpacing = 1 1 1\n"
        "ElementType = MET_SHORT\nElementDataFile = LOCAL\n"
    )
    p.write_bytes(header.encode() + b"\0" * 128)
    res, peak, dt = _traced(lambda: read_itk(p))
    assert isinstance(res, ResourceLimitError), res
    assert peak < PEAK_LIMIT, f"peak {peak} bytes"
    assert dt < 5.0


def test_dicom_declaring_65535_squared_by_many_frames_is_refused_without_allocating(tmp_path):
    img, _ = _phantom()
    path = write_enhanced_series(tmp_path / "enh.dcm", img, AFFINE, modality="CT", seed=3)
    ds = pydicom.dcmread(path)
    ds.Rows = 65535
    ds.Columns = 65535
    ds.NumberOfFrames = 10000
    ds.save_as(path, enforce_file_format=True)
    res, peak, dt = _traced(lambda: read_dicom_series(path))
    assert isinstance(res, ResourceLimitError), res
    assert peak < PEAK_LIMIT, f"peak {peak} bytes"
    assert dt < 5.0


def test_seg_declaring_huge_frames_is_refused_without_allocating(base, reference, tmp_path):
    ds = pydicom.dcmread(base["seg"])
    ds.Rows = 65535
    ds.Columns = 65535
    ds.NumberOfFrames = 60000
    p = tmp_path / "huge_seg.dcm"
    ds.save_as(p, enforce_file_format=True)
    res, peak, dt = _traced(lambda: read_dicom_seg(p, reference, SPEC))
    assert isinstance(res, NetlmError), res
    assert peak < PEAK_LIMIT, f"peak {peak} bytes"
    assert dt < 5.0


def test_max_voxels_refuses_a_normal_study_through_the_cli(base):
    n = int(np.prod(SHAPE))
    rc, _, err = _run_cli(
        [
            "analyze",
            "--image",
            str(base["series"]),
            "--seg",
            str(base["seg"]),
            "--max-voxels",
            str(n - 1),
            "--json",
            "-",
        ]
    )
    _assert_clean_error(rc, err)
    assert f"{n:,}" in err
    assert f"{n - 1:,}" in err
    rc, out, err = _run_cli(
        ["analyze", "--image", str(base["series"]), "--seg", str(base["seg"]), "--max-voxels", str(n), "--json", "-"]
    )
    assert rc == 0, err
    _, lab = _phantom()
    voxel_ml = abs(np.linalg.det(AFFINE[:3, :3])) / 1000.0
    assert json.loads(out)["liver"]["volume_ml"] == pytest.approx(np.count_nonzero(lab) * voxel_ml, rel=1e-6)


def test_struct_level_garbage_is_not_a_nifti(tmp_path):
    """A file with a NIfTI extension and a plausible sizeof_hdr but random content."""
    p = tmp_path / "x.nii"
    rng = np.random.default_rng(5)
    p.write_bytes(struct.pack("<i", 348) + rng.integers(0, 256, 600, dtype=np.uint8).tobytes())
    res = _outcome(lambda: read_nifti(p))
    assert isinstance(res, NetlmError)


# --------------------------------------------------------------------------- regression tests of open findings
def _series_copy(base: dict[str, Path]) -> tuple[Path, Path]:
    d = _fresh_dir()
    shutil.copytree(base["series"], d / "s")
    return d / "s", sorted((d / "s").iterdir())[0]


def test_finding_file_meta_without_transfer_syntax(base):
    """Bit 0 of byte 132 flipped (the first file-meta tag): pydicom finds no TransferSyntaxUID."""
    folder, first = _series_copy(base)
    data = bytearray(first.read_bytes())
    data[132] ^= 1
    first.write_bytes(bytes(data))
    with pytest.raises(NetlmError, match=first.name):
        read_dicom_series(folder)


@pytest.mark.parametrize("keyword", ["RescaleSlope", "NumberOfFrames"])
def test_finding_multivalued_scalar_tags(base, keyword):
    """A scalar tag (RescaleSlope DS, NumberOfFrames IS) holding two values."""
    folder, first = _series_copy(base)
    ds = pydicom.dcmread(first)
    setattr(ds, keyword, ["2", "3"])
    ds.save_as(first)
    with pytest.raises(NetlmError, match=first.name):
        read_dicom_series(folder)


def test_finding_seg_with_empty_pixeldata(base, reference, tmp_path):
    """PixelData present with length 0 (pydicom reads it back as None)."""
    ds = pydicom.dcmread(base["seg"])
    ds.PixelData = b""
    p = tmp_path / "nopixels.dcm"
    ds.save_as(p)
    with pytest.raises(NetlmError, match=p.name):
        read_dicom_seg(p, reference, SPEC)


def test_finding_seg_garbage_position(base, reference, tmp_path):
    ds = pydicom.dcmread(base["seg"])
    item = ds.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0]
    item.add_new(pydicom.datadict.tag_for_keyword("ImagePositionPatient"), "LO", "1\\x\\3")
    p = tmp_path / "badpos.dcm"
    ds.save_as(p)
    with pytest.raises(NetlmError, match=p.name):
        read_dicom_seg(p, reference, SPEC)


def test_finding_rtstruct_garbage_contour(base, reference, tmp_path):
    ds = pydicom.dcmread(base["rt"])
    c = ds.ROIContourSequence[0].ContourSequence[0]
    vals = [str(v) for v in c.ContourData]
    vals[1] = "37.7<28"
    c.add_new(pydicom.datadict.tag_for_keyword("ContourData"), "LO", "\\".join(vals))
    p = tmp_path / "badcontour.dcm"
    ds.save_as(p)
    with pytest.raises(NetlmError, match=p.name):
        read_rtstruct(p, reference, SPEC)


@pytest.mark.parametrize("corruption", ["dicm_magic", "zero_columns"])
def test_finding_corrupt_end_slice_is_not_silent(base, corruption):
    """A broken first slice shortens the volume by one slice: refuse it, or say so in the warnings."""
    folder, first = _series_copy(base)
    if corruption == "dicm_magic":
        data = bytearray(first.read_bytes())
        data[128] ^= 1  # "DICM" -> "EICM"
        first.write_bytes(bytes(data))
    else:
        ds = pydicom.dcmread(first)
        ds.Columns = 0
        ds.save_as(first)
    res = _outcome(lambda: read_dicom_series(folder))
    assert not _ok(res) or any(first.name in w for w in res.meta.get("warnings", [])), (
        f"{first.name} was dropped silently: shape {res.shape} instead of {SHAPE}"
    )


@pytest.mark.parametrize("spacing_mm", [2.5, 4.0, 5.0])
def test_finding_enclosed_lesion_on_coarse_grid_is_intrahepatic(tmp_path, spacing_mm):
    """LiTS label map (liver label excludes the lesion), lesion fully surrounded by liver, isotropic grid.

    Truth (computed here): total liver = 120 voxels, tumour = 8 voxels, all intrahepatic,
    involvement = 100 x 8 / 120 = 6.667 %.
    """
    _, lab = _phantom()
    img = np.full(SHAPE, 50, np.int16)
    aff = _orthogonal((0.0, 0.0, 0.0), (spacing_mm,) * 3)
    ip = _write_nifti(tmp_path / "image.nii.gz", img, aff)
    sp = _write_nifti(tmp_path / "labels.nii.gz", lab, aff)
    rc, out, err = _run_cli(["analyze", "--image", str(ip), "--seg", str(sp), "--json", "-"])
    assert rc == 0, err
    report = json.loads(out)
    voxel_ml = spacing_mm**3 / 1000.0
    assert report["tumor"]["intrahepatic_volume_ml"] == pytest.approx(8 * voxel_ml)
    assert report["liver"]["volume_ml"] == pytest.approx(120 * voxel_ml)
    assert report["involvement_percent"] == pytest.approx(100 * 8 / 120, abs=1e-3)


def test_finding_slice_cut_inside_the_columns_value(base):
    """Found by tests/fuzz_atheris.py: a slice ending one byte into its Columns (US) value."""
    folder, first = _series_copy(base)
    data = first.read_bytes()
    tag = b"\x28\x00\x11\x00US\x02\x00"  # (0028,0011) Columns, explicit VR little endian, length 2
    at = data.index(tag) + len(tag)
    first.write_bytes(data[: at + 1])
    with pytest.raises(NetlmError, match=first.name):
        read_dicom_series(folder)
