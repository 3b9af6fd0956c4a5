"""3D Slicer's ``Segmentation.seg.nrrd`` saved into the DICOM study folder it was drawn on.

Slicer loads the DICOM CT, the user segments it and saves the segmentation beside the series:
a layered ``.seg.nrrd`` cropped to the segments' bounding box (its ``space origin`` moved to the
box's first voxel). Its voxels are the series' voxels, so it lies on the series' grid and is
measured there, copied into place voxel for voxel; so is a label map whose axes run in another
order or direction (dcm2niix writes the rows of a DICOM CT flipped). A crop half a voxel off the
series' voxels is on no series' grid and is refused.

Truths: the ellipsoids' voxel counts drawn here times the voxel volume of the spacing chosen here;
the NRRD and NIfTI headers are written from the affine read back from the DICOM files' own
ImageOrientationPatient / ImagePositionPatient / PixelSpacing.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from conftest import analyze_json
from dicom_factory import write_image_series
from test_dicom_nifti_beside import _ras_affine_from_files
from test_faults_messages import netlm, one_line
from test_slicer_seg_nrrd_exports import LIVER_TAG, LPS, NEOPLASM_TAG, VOXEL_ML, _masks, _segment, _write_seg_nrrd

TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _study(tmp_path):
    liver, lesion_a, lesion_b = _masks()
    hu = np.where(lesion_a | lesion_b, 20.0, np.where(liver, 60.0, -80.0))
    write_image_series(tmp_path / "ct", hu, LPS, seed=5)
    written = TO_RAS @ _ras_affine_from_files(tmp_path / "ct")  # LPS, from the files' headers
    assert np.allclose(written, LPS, atol=1e-4)  # the .seg.nrrd below is written from LPS
    return liver, lesion_a, lesion_b


def _slicer_layers(liver, lesion_a, lesion_b):
    layers = np.stack([liver.astype(np.uint8), (lesion_a * 1 + lesion_b * 2).astype(np.uint8)])
    segments = [_segment(1, 0, 1, LIVER_TAG), _segment(2, 1, 1, NEOPLASM_TAG), _segment(3, 1, 2, NEOPLASM_TAG)]
    return layers, segments


@pytest.mark.parametrize("space", ["left-posterior-superior", "right-anterior-superior"])
def test_a_cropped_layered_seg_nrrd_beside_its_dicom_ct_is_measured_on_the_series(tmp_path, space):
    liver, lesion_a, lesion_b = _study(tmp_path)
    layers, segments = _slicer_layers(liver, lesion_a, lesion_b)
    _write_seg_nrrd(tmp_path / "Segmentation.seg.nrrd", layers, segments, space=space, crop=True)
    report = analyze_json(str(tmp_path))
    assert report["study"]["modality"] == "CT"
    assert report["liver"]["volume_ml"] == pytest.approx(np.count_nonzero(liver) * VOXEL_ML, abs=1e-6)
    tumour = np.count_nonzero(lesion_a | lesion_b) * VOXEL_ML
    assert report["tumor"]["intrahepatic_volume_ml"] == pytest.approx(tumour, abs=1e-6)
    assert report["tumor"]["lesion_count"] == 2
    assert report["study"]["grid"]["resampled"] is False  # copied into place, not interpolated
    assert any("crop of it" in n for n in report["notes"])


def test_a_label_map_with_flipped_rows_beside_its_dicom_ct_is_measured_on_the_series(tmp_path):
    liver, lesion_a, lesion_b = _study(tmp_path)
    labels = np.where(lesion_a | lesion_b, 2, np.where(liver, 1, 0)).astype(np.uint8)
    flipped = LPS.copy()  # dcm2niix: the j axis (DICOM rows) reversed, the first voxel the last row's
    flipped[:3, 1] = -LPS[:3, 1]
    flipped[:3, 3] = LPS[:3, :3] @ np.array([0.0, labels.shape[1] - 1, 0.0]) + LPS[:3, 3]
    nib.save(nib.Nifti1Image(labels[:, ::-1, :].copy(), TO_RAS @ flipped), tmp_path / "ct_seg.nii.gz")
    report = analyze_json(str(tmp_path))
    assert report["liver"]["volume_ml"] == pytest.approx(np.count_nonzero(liver | lesion_a | lesion_b) * VOXEL_ML)
    assert report["tumor"]["intrahepatic_volume_ml"] == pytest.approx(np.count_nonzero(lesion_a | lesion_b) * VOXEL_ML)


def test_a_crop_half_a_voxel_off_the_series_voxels_is_refused(tmp_path):
    liver, lesion_a, lesion_b = _study(tmp_path)
    layers, segments = _slicer_layers(liver, lesion_a, lesion_b)
    path = _write_seg_nrrd(tmp_path / "Segmentation.seg.nrrd", layers, segments, space="left-posterior-superior")
    text = path.read_bytes()
    head, _, data = text.partition(b"\n\n")
    lines = head.decode().splitlines()
    k = next(i for i, line in enumerate(lines) if line.startswith("space origin: "))
    origin = np.array([float(v) for v in lines[k][len("space origin: (") : -1].split(",")])
    shifted = origin + 0.5 * LPS[:3, 0]  # half a voxel along i
    lines[k] = "space origin: (" + ",".join(f"{v:.10g}" for v in shifted) + ")"
    path.write_bytes("\n".join(lines).encode() + b"\n\n" + data)
    r = netlm("analyze", str(tmp_path))
    assert r.returncode == 3
    line = one_line(r)
    for said in ("Segmentation.seg.nrrd", "not on the grid of DICOM series", "--image PATH --seg PATH"):
        assert said in line
