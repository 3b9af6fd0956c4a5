"""Coverage-guided fuzzing of the loaders with atheris (run by hand, not collected by pytest).

Each input's first byte picks the target (NIfTI image, NIfTI label map, MHA,
DICOM slice in a 3-slice series, DICOM SEG, RTSTRUCT); the rest replaces the
bytes of a valid seed file from that position on (so most inputs stay close to
a real file). Any exception other than a NetlmError is a crash.

Usage (atheris 3.0 installs from PyPI on Python 3.11)::

    python tests/fuzz_atheris.py -atheris_runs=20000          # bounded run
    python tests/fuzz_atheris.py -max_total_time=600 corpus/  # keep a corpus

Seeds are written once to a temporary folder with the tests' own factories.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    import numpy as np

    from netlm_imaging.errors import NetlmError
    from netlm_imaging.io.label_spec import parse_label_spec
    from netlm_imaging.io.loader import load_image, load_segmentation
    from netlm_imaging.io.sitk_io import read_itk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SPEC = parse_label_spec(None)
WORK = Path(tempfile.mkdtemp(prefix="netlm_atheris_"))


def _seeds() -> tuple[dict[str, bytes], object, Path]:
    import SimpleITK as sitk
    from pydicom.sr.codedict import codes

    from netlm_imaging.io.dicom_series import read_dicom_series
    from tests.conftest import oblique_affine
    from tests.dicom_factory import write_image_series
    from tests.phantoms import write_nifti
    from tests.seg_factory import Contour, RoiSpec, SegmentSpec, ellipse_points, write_rtstruct, write_seg

    shape = (8, 7, 3)
    aff = oblique_affine(spacing=(0.8, 0.9, 2.5))
    img = np.arange(np.prod(shape), dtype=float).reshape(shape)
    lab = np.zeros(shape, np.uint8)
    lab[2:6, 2:5, :] = 1
    lab[3:5, 3:4, 1] = 2
    seed_dir = WORK / "seed"
    seed_dir.mkdir()
    write_nifti(seed_dir / "image.nii", img.astype(np.int16), aff)
    write_nifti(seed_dir / "labels.nii", lab, aff)
    sitk.WriteImage(sitk.GetImageFromArray(img.astype(np.int16).transpose(2, 1, 0)), str(seed_dir / "image.mha"))
    files = write_image_series(seed_dir / "series", img, aff, seed=1)
    write_seg(
        seed_dir / "seg.dcm",
        files,
        [SegmentSpec("Liver", lab == 1), SegmentSpec("Lesion", lab == 2, property_type=codes.SCT.Neoplasm)],
    )
    centre = aff[:3, :3] @ np.array([4.0, 3.5, 1.0]) + aff[:3, 3]
    write_rtstruct(
        seed_dir / "rt.dcm", files, [RoiSpec("Liver", [Contour(ellipse_points(centre, aff[:3, 0], aff[:3, 1], 2, 2))])]
    )
    seeds = {
        "nii_img": (seed_dir / "image.nii").read_bytes(),
        "nii_lab": (seed_dir / "labels.nii").read_bytes(),
        "mha": (seed_dir / "image.mha").read_bytes(),
        "slice": files[0].read_bytes(),
        "seg": (seed_dir / "seg.dcm").read_bytes(),
        "rt": (seed_dir / "rt.dcm").read_bytes(),
    }
    return seeds, read_dicom_series(seed_dir / "series"), seed_dir / "series"


SEEDS, REFERENCE, SERIES = _seeds()
TARGETS = list(SEEDS)


def test_one_input(data: bytes) -> None:
    """Build one hostile file from ``data`` and feed it to the matching loader."""
    if len(data) < 3:
        return
    target = TARGETS[data[0] % len(TARGETS)]
    seed = SEEDS[target]
    pos = int.from_bytes(data[1:3], "little") % (len(seed) + 1)
    blob = seed[:pos] + data[3:]
    d = Path(tempfile.mkdtemp(dir=WORK))
    try:
        if target in ("nii_img", "nii_lab"):
            p = d / "x.nii"
            p.write_bytes(blob)
            if target == "nii_img":
                load_image(p, max_voxels=10**6)
            else:
                load_segmentation(str(p), REFERENCE, SPEC, max_voxels=10**6)
        elif target == "mha":
            p = d / "x.mha"
            p.write_bytes(blob)
            read_itk(p, max_voxels=10**6)
        elif target == "slice":
            import shutil

            shutil.copytree(SERIES, d / "s")
            first = sorted((d / "s").iterdir())[0]
            first.write_bytes(blob)
            load_image(d / "s", max_voxels=10**6)
        else:
            p = d / "x.dcm"
            p.write_bytes(blob)
            load_segmentation(str(p), REFERENCE, SPEC, max_voxels=10**6)
    except NetlmError:
        pass
    finally:
        import shutil

        shutil.rmtree(d, ignore_errors=True)


def main() -> None:
    """Entry point: ``python tests/fuzz_atheris.py [libFuzzer options]``."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
