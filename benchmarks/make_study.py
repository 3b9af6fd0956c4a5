"""Generate a realistic synthetic liver study for the benchmarks.

One seeded study: a 512 x 512 x N abdominal CT (int16 HU-like texture: air,
body, spine, liver, hyper-enhancing lesions, Gaussian noise), a liver and 40
ellipsoidal lesions of 4-40 mm diameter placed inside it, written

* as NIfTI: ``image.nii`` (int16 HU) + ``labels.nii`` (uint8; 0 background,
  1 liver, 2 lesion: the LiTS convention), and gzip-compressed copies
  ``image.nii.gz`` + ``labels.nii.gz``,
* as a DICOM study folder: ``dicom/CT/slice_NNNN.dcm`` (uncompressed explicit
  VR little endian, one file per slice, RescaleIntercept -1024) and
  ``dicom/seg.dcm`` (highdicom BINARY SEG, segment 1 "Liver" SCT 10200004,
  segment 2 "Lesions" SCT 108369006 Neoplasm),
* plus ``truth.json``: the lesion ellipsoids (centre LPS mm, semi-axes mm,
  rotation) used to draw the masks.

The in-plane spacing is 0.75 mm (384 mm field of view) and the z field of view
is fixed at 300 mm, so 200 slices are 1.5 mm apart and 400 slices 0.75 mm.
Everything goes to ``benchmarks/_work/`` (git-ignored); nothing generated is
ever committed.

Usage::

    python benchmarks/make_study.py --slices 200 [--out benchmarks/_work] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["StudyPaths", "make_nifti_study", "make_study", "study_affine"]

logger = logging.getLogger(__name__)

WORK = Path(__file__).resolve().parent / "_work"
IN_PLANE_MM = 0.75
Z_FOV_MM = 300.0
N_ROWS = N_COLS = 512
N_LESIONS = 40
LESION_DIAMETER_RANGE_MM = (4.0, 40.0)
#: Gap kept between lesion surfaces (and to the liver surface), so instances stay separate.
LESION_GAP_MM = 4.0
HU = {"air": -1000, "body": 40, "liver": 60, "lesion": 115, "bone": 450}
NOISE_SD_HU = 12.0
#: Main liver ellipsoid (centre LPS mm, semi-axes mm) and a left lobe.
LIVER_MAIN = ((-60.0, -20.0, 0.0), (85.0, 70.0, 75.0))
LIVER_LEFT = ((15.0, -35.0, 25.0), (55.0, 40.0, 40.0))
GEN_VERSION = 1


@dataclass(frozen=True)
class StudyPaths:
    """Where one generated study lives."""

    root: Path
    n_slices: int

    @property
    def image_nifti(self) -> Path:
        """int16 HU image (NIfTI, uncompressed)."""
        return self.root / "image.nii"

    @property
    def labels_nifti(self) -> Path:
        """uint8 label map: 1 liver, 2 lesion."""
        return self.root / "labels.nii"

    @property
    def image_nifti_gz(self) -> Path:
        """The image as gzip-compressed NIfTI (how NIfTI studies are usually shared)."""
        return self.root / "image.nii.gz"

    @property
    def labels_nifti_gz(self) -> Path:
        """The label map as gzip-compressed NIfTI."""
        return self.root / "labels.nii.gz"

    @property
    def dicom_dir(self) -> Path:
        """Study folder: CT slices + SEG."""
        return self.root / "dicom"

    @property
    def ct_dir(self) -> Path:
        """The CT series (one file per slice)."""
        return self.root / "dicom" / "CT"

    @property
    def seg_file(self) -> Path:
        """The BINARY DICOM SEG (liver + lesions)."""
        return self.root / "dicom" / "seg.dcm"

    @property
    def truth_json(self) -> Path:
        """Generator parameters and lesion ellipsoids."""
        return self.root / "truth.json"


def study_affine(n_slices: int) -> np.ndarray:
    """Index (i column, j row, k slice) -> LPS mm affine of the generated CT.

    Axial slices, head-first supine: i runs to patient left, j to posterior,
    k to superior; the origin centres the field of view on (0, 0, 0).
    """
    step = Z_FOV_MM / n_slices
    aff = np.eye(4)
    aff[:3, :3] = np.diag([IN_PLANE_MM, IN_PLANE_MM, step])
    aff[:3, 3] = [
        -IN_PLANE_MM * (N_COLS - 1) / 2,
        -IN_PLANE_MM * (N_ROWS - 1) / 2,
        -step * (n_slices - 1) / 2,
    ]
    return aff


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _inside_ellipsoid(pts: np.ndarray, centre, semi, rot: np.ndarray | None = None) -> np.ndarray:
    d = pts - np.asarray(centre)
    if rot is not None:
        d = d @ rot  # coordinates in the ellipsoid's own axes
    return ((d / np.asarray(semi)) ** 2).sum(-1) <= 1.0


def _lesions(rng: np.random.Generator) -> list[dict]:
    """40 non-overlapping ellipsoids well inside the main liver ellipsoid."""
    (c0, a0) = LIVER_MAIN
    out: list[dict] = []
    diameters = np.sort(rng.uniform(*LESION_DIAMETER_RANGE_MM, size=N_LESIONS))[::-1]
    diameters[0], diameters[-1] = LESION_DIAMETER_RANGE_MM[1], LESION_DIAMETER_RANGE_MM[0]
    for d in diameters:
        r = d / 2.0
        semi = np.array([r, r * rng.uniform(0.8, 1.0), r * rng.uniform(0.7, 1.0)])
        for _ in range(10000):
            room = np.asarray(a0) - r - LESION_GAP_MM
            u = rng.uniform(-1, 1, size=3)
            if (u**2).sum() > 1:
                continue
            c = np.asarray(c0) + u * room
            if all(
                np.linalg.norm(c - np.asarray(o["centre_lps_mm"])) > r + o["radius_mm"] + LESION_GAP_MM for o in out
            ):
                break
        else:  # pragma: no cover - the liver is large enough for 40 lesions
            raise RuntimeError("could not place the lesions")
        out.append(
            {
                "centre_lps_mm": [float(x) for x in c],
                "semi_axes_mm": [float(x) for x in semi],
                "rotation": _rotation(rng).tolist(),
                "radius_mm": float(r),
                "diameter_mm": float(d),
            }
        )
    return out


def _draw(n_slices: int, lesions: list[dict], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The HU image [i, j, k] (int16) and label map (uint8) of the study."""
    aff = study_affine(n_slices)
    shape = (N_COLS, N_ROWS, n_slices)
    labels = np.zeros(shape, dtype=np.uint8)
    ii, jj = np.meshgrid(np.arange(N_COLS), np.arange(N_ROWS), indexing="ij")
    x = aff[0, 0] * ii + aff[0, 3]
    y = aff[1, 1] * jj + aff[1, 3]
    for k in range(n_slices):
        z = aff[2, 2] * k + aff[2, 3]
        pts = np.stack([x, y, np.full_like(x, z)], axis=-1)
        liver = _inside_ellipsoid(pts, *LIVER_MAIN) | _inside_ellipsoid(pts, *LIVER_LEFT)
        labels[:, :, k][liver] = 1
    inv = np.linalg.inv(aff)
    for les in lesions:
        c = np.asarray(les["centre_lps_mm"])
        r = max(les["semi_axes_mm"]) + 1.0
        lo = np.floor((inv @ np.r_[c - r, 1.0])[:3]).astype(int)
        hi = np.ceil((inv @ np.r_[c + r, 1.0])[:3]).astype(int) + 1
        lo = np.maximum(lo, 0)
        hi = np.minimum(hi, shape)
        g = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij"), -1).astype(float)
        p = g @ aff[:3, :3].T + aff[:3, 3]
        m = _inside_ellipsoid(p, c, les["semi_axes_mm"], np.asarray(les["rotation"]))
        box = labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        box[m] = 2
    rng = np.random.default_rng(seed + 1)
    image = np.empty(shape, dtype=np.int16)
    body = (x / 170.0) ** 2 + ((y - 10.0) / 125.0) ** 2 <= 1.0
    spine = ((x - 0.0) ** 2 + (y - 95.0) ** 2) <= 18.0**2
    base = np.where(body, HU["body"], HU["air"]).astype(np.float32)
    base[spine] = HU["bone"]
    for k in range(n_slices):
        sl = base.copy()
        lab = labels[:, :, k]
        sl[lab == 1] = HU["liver"]
        sl[lab == 2] = HU["lesion"]
        sl += rng.normal(0.0, NOISE_SD_HU, size=sl.shape).astype(np.float32) * body
        image[:, :, k] = np.clip(np.rint(sl), -1024, 3071).astype(np.int16)
    return image, labels


def _write_nifti(paths: StudyPaths, image: np.ndarray, labels: np.ndarray, aff_lps: np.ndarray) -> None:
    import nibabel as nib

    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ aff_lps
    for arr, path in ((image, paths.image_nifti), (labels, paths.labels_nifti)):
        img = nib.Nifti1Image(arr, ras)
        img.set_sform(ras, code=1)
        img.set_qform(ras, code=1)
        nib.save(img, str(path))


def _write_nifti_gz(paths: StudyPaths) -> None:
    """gzip-compressed copies of the two NIfTI files (nibabel's default compression level)."""
    import nibabel as nib

    for src, dst in ((paths.image_nifti, paths.image_nifti_gz), (paths.labels_nifti, paths.labels_nifti_gz)):
        if not dst.exists():
            img = nib.load(str(src))
            tmp = dst.with_name(dst.name.replace(".nii.gz", ".tmp.nii.gz"))
            nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine, img.header), str(tmp))
            tmp.replace(dst)


def _uid(*parts: object) -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=[str(p) for p in parts]))


def _write_dicom(paths: StudyPaths, image: np.ndarray, aff: np.ndarray, seed: int) -> list[Path]:
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    paths.ct_dir.mkdir(parents=True, exist_ok=True)
    n = image.shape[2]
    study, series, frame_uid = _uid("bench-study", seed, n), _uid("bench-series", seed, n), _uid("bench-for", seed, n)
    files: list[Path] = []
    for k in range(n):
        sop = _uid("bench-sop", seed, n, k)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = sop
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = sop
        ds.Modality = "CT"
        ds.PatientName = "BENCHMARK^SYNTHETIC"
        ds.PatientID = "BENCH-0001"
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.FrameOfReferenceUID = frame_uid
        ds.StudyID = "1"
        ds.StudyDate = "20240101"
        ds.StudyTime = "120000"
        ds.AccessionNumber = ""
        ds.ReferringPhysicianName = ""
        ds.SeriesNumber = 2
        ds.InstanceNumber = k + 1
        ds.Manufacturer = "netlm benchmarks"
        ds.PositionReferenceIndicator = ""
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [float(v) for v in (aff @ np.array([0.0, 0.0, k, 1.0]))[:3]]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [IN_PLANE_MM, IN_PLANE_MM]
        ds.SliceThickness = round(float(aff[2, 2]), 4)
        ds.RescaleSlope = 1
        ds.RescaleIntercept = -1024
        ds.RescaleType = "HU"
        ds.KVP = 120
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = N_ROWS, N_COLS
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        stored = (image[:, :, k].T.astype(np.int32) + 1024).astype(np.int16)
        ds.PixelData = np.ascontiguousarray(stored).tobytes()
        path = paths.ct_dir / f"slice_{k:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def _write_seg(paths: StudyPaths, files: list[Path], labels: np.ndarray, seed: int) -> None:
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    sources = [pydicom.dcmread(str(f)) for f in files]
    # (frames = k, rows = j, columns = i, segments)
    pixels = np.stack([labels.transpose(2, 1, 0) == 1, labels.transpose(2, 1, 0) == 2], axis=-1).astype(np.uint8)
    descs = [
        hd.seg.SegmentDescription(
            segment_number=1,
            segment_label="Liver",
            segmented_property_category=codes.SCT.Organ,
            segmented_property_type=codes.SCT.Liver,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        ),
        hd.seg.SegmentDescription(
            segment_number=2,
            segment_label="Lesions",
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Neoplasm,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        ),
    ]
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descs,
        series_instance_uid=_uid("bench-seg-series", seed, len(files)),
        series_number=99,
        sop_instance_uid=_uid("bench-seg-sop", seed, len(files)),
        instance_number=1,
        manufacturer="netlm benchmarks",
        manufacturer_model_name="make_study",
        software_versions=str(GEN_VERSION),
        device_serial_number="0",
    )
    seg.save_as(str(paths.seg_file))


def make_nifti_study(n_slices: int, folder: str | Path, *, seed: int = 0) -> Path:
    """Write (or reuse) only the gzip NIfTI pair of a study: ``folder/image.nii.gz`` + ``labels.nii.gz``.

    The same CT, liver and 40 lesions as :func:`make_study` (seeded by ``seed``),
    without the uncompressed copies and the DICOM files: the studies of a
    NIfTI cohort (``cohort_throughput.py``).

    Parameters
    ----------
    n_slices : int
        Number of axial slices (>= 50); the z field of view stays 300 mm.
    folder : str or Path
        The study folder (created).
    seed : int
        Seeds the lesion placement and the noise.

    Returns
    -------
    Path
        ``folder``.
    """
    import nibabel as nib

    if n_slices < 50:
        raise ValueError("n_slices must be >= 50 (the liver spans ~170 mm of the 300 mm field of view)")
    folder = Path(folder)
    stamp = folder / ".params.json"  # hidden: not a study file
    params = {"n_slices": n_slices, "seed": seed, "version": GEN_VERSION}
    if stamp.exists() and json.loads(stamp.read_text()) == params:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    image, labels = _draw(n_slices, _lesions(np.random.default_rng(seed)), seed)
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ study_affine(n_slices)
    for arr, name in ((image, "image.nii.gz"), (labels, "labels.nii.gz")):
        img = nib.Nifti1Image(arr, ras)
        img.set_sform(ras, code=1)
        img.set_qform(ras, code=1)
        nib.save(img, str(folder / name))
    stamp.write_text(json.dumps(params))
    return folder


def make_study(n_slices: int = 200, *, out: str | Path = WORK, seed: int = 0, force: bool = False) -> StudyPaths:
    """Generate (or reuse) the study with ``n_slices`` slices under ``out``.

    Parameters
    ----------
    n_slices : int
        Number of axial slices (>= 50); the z field of view stays 300 mm.
    out : str or Path
        Parent folder; the study goes to ``out/study_<n_slices>_s<seed>``.
    seed : int
        Seeds the lesion placement and the noise.
    force : bool
        Regenerate even when a complete study with the same parameters exists.

    Returns
    -------
    StudyPaths
    """
    if n_slices < 50:
        raise ValueError("n_slices must be >= 50 (the liver spans ~170 mm of the 300 mm field of view)")
    root = Path(out) / f"study_{n_slices}_s{seed}"
    paths = StudyPaths(root, n_slices)
    params = {"n_slices": n_slices, "seed": seed, "version": GEN_VERSION}
    if not force and paths.truth_json.exists():
        truth = json.loads(paths.truth_json.read_text())
        if truth.get("params") == params and paths.seg_file.exists():
            _write_nifti_gz(paths)  # studies generated before the .nii.gz copies existed
            return paths
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    lesions = _lesions(rng)
    image, labels = _draw(n_slices, lesions, seed)
    aff = study_affine(n_slices)
    _write_nifti(paths, image, labels, aff)
    _write_nifti_gz(paths)
    files = _write_dicom(paths, image, aff, seed)
    _write_seg(paths, files, labels, seed)
    truth = {
        "params": params,
        "affine_lps": aff.tolist(),
        "shape": list(image.shape),
        "liver_voxels_including_lesions": int(np.count_nonzero(labels)),
        "lesion_voxels": int(np.count_nonzero(labels == 2)),
        "lesions": lesions,
    }
    paths.truth_json.write_text(json.dumps(truth, indent=1))
    logger.info("generated %s in %.1f s", root, time.perf_counter() - t0)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python benchmarks/make_study.py --slices 200``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--slices", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(WORK))
    p.add_argument("--force", action="store_true")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("highdicom").setLevel(logging.WARNING)
    paths = make_study(a.slices, out=a.out, seed=a.seed, force=a.force)
    sys.stdout.write(f"{paths.root}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
