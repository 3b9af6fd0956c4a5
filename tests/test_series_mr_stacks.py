"""MR series that hold several volumes under one SeriesInstanceUID: the b-values of a diffusion series, echoes.

A liver DWI exported as one series (b 0, 50, 400, 800 at the same slice positions, told apart only by
DiffusionBValue (0018,9087)), or a multi-echo series (EchoNumbers / EchoTime), was refused with "4
images share the slice position" although the SEG or RTSTRUCT drawn on the b-400 images names exactly
those images. Such series are now split like two reconstructions of a CT: the stack the segmentation
references is measured, with a note naming it; a label map (which references nothing) is exit 3
listing the stacks and the flag that picks one.

Phantom: an oblique MR whose liver box holds 100 x (volume number) in each volume; the truth of the
liver is its voxel count x |det(affine)| and the mean signal of the volume drawn on.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pydicom
import pytest
from pydicom.uid import ImplicitVRLittleEndian

from netlm_imaging.io._dicom_common import read_header
from netlm_imaging.io._dicom_fast import _fast_header
from netlm_imaging.io._dicom_header import _read_header_pydicom
from tests.conftest import oblique_affine
from tests.dicom_factory import deterministic_uid, write_image_series
from tests.phantoms import write_nifti
from tests.seg_factory import RoiSpec, SegmentSpec, box_outline, write_rtstruct, write_seg

AFF = oblique_affine(spacing=(1.5, 1.5, 3.0), angles_deg=(0.0, 0.0, 8.0), origin=(-30.0, -30.0, 40.0))
SHAPE = (24, 22, 10)
BOX = ((4, 20), (3, 18), (2, 8))
B_VALUES = (0.0, 50.0, 400.0, 800.0)


def _liver() -> np.ndarray:
    ijk = np.indices(SHAPE)
    return np.logical_and.reduce([(ijk[a] >= lo) & (ijk[a] < hi) for a, (lo, hi) in enumerate(BOX)])


def _one_series(root, tags_of, n, **kw):
    """``n`` volumes of one MR series (folders v1..vn), volume v's liver at 100 v; the files of each."""
    liver = _liver()
    common = {"series_uid": deterministic_uid("mr-stacks", root.name), "study_uid": deterministic_uid("mr-study")}
    common["frame_of_reference_uid"] = deterministic_uid("mr-for")
    return [
        write_image_series(
            root / "mr" / f"v{v}",
            np.where(liver, 100.0 * v, 10.0),
            AFF,
            modality="MR",
            seed=60 + v,
            extra_tags={"ImageType": ["ORIGINAL", "PRIMARY", "M", "ND"], **tags_of(v)},
            **common,
            **kw,
        )
        for v in range(1, n + 1)
    ]


def _analyze(*args):
    return subprocess.run(
        [sys.executable, "-m", "netlm_imaging.cli", "analyze", *map(str, args), "--json", "-"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _dwi(v):
    return {"DiffusionBValue": B_VALUES[v - 1]}


def test_a_seg_on_the_b400_images_of_a_diffusion_series(tmp_path):
    study = tmp_path / "study"
    volumes = _one_series(study, _dwi, 4)
    write_seg(study / "seg.dcm", volumes[2], [SegmentSpec("Liver", _liver())])
    res = _analyze(study)
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert rep["liver"]["voxel_count"] == int(_liver().sum())
    assert rep["liver"]["volume_ml"] == pytest.approx(int(_liver().sum()) * abs(np.linalg.det(AFF[:3, :3])) / 1000)
    assert rep["liver"]["mean_intensity"] == pytest.approx(300.0)  # the b-400 volume's signal
    assert rep["study"]["grid"]["shape"] == list(SHAPE)
    assert any("b-value 400 " in n and "holds 4 reconstructions" in n for n in rep["notes"])


def test_an_rtstruct_on_the_second_echo_of_a_multi_echo_series(tmp_path):
    study = tmp_path / "study"
    volumes = _one_series(study, lambda v: {"EchoNumbers": v, "EchoTime": 2.3 * v}, 3)
    (i0, i1), (j0, j1), (k0, k1) = BOX
    rois = [RoiSpec("Liver", [box_outline(AFF, ((i0, i1), (j0, j1)), k) for k in range(k0, k1)])]
    write_rtstruct(study / "rt.dcm", volumes[1], rois)
    rep = json.loads(_analyze(study).stdout)
    assert rep["liver"]["voxel_count"] == int(_liver().sum())
    assert rep["liver"]["mean_intensity"] == pytest.approx(200.0)
    assert any("EchoNumbers 2, EchoTime 4.6 " in n for n in rep["notes"])


def test_a_label_map_on_a_diffusion_series_lists_the_b_values_and_the_flag(tmp_path):
    study = tmp_path / "study"
    _one_series(study, _dwi, 4)
    seg = write_nifti(tmp_path / "liver_label.nii.gz", _liver().astype(np.uint8), AFF)
    res = _analyze("--image", study / "mr", "--seg", seg)
    assert res.returncode == 3
    line = res.stderr.strip()
    assert "4 image series found" in line
    listed = [line.index(f"#{n} (MR, reconstruction b-value {b:g}, 10 slices)") for n, b in enumerate(B_VALUES, 1)]
    assert listed == sorted(listed)  # in b-value order, numbered so
    assert "--image-series" in line
    uid = re.search(r"([0-9.]+#4) \(MR, reconstruction b-value 800, 10 slices\)", line)  # listed by b-value
    assert uid is not None, line
    rep = json.loads(_analyze("--image", study / "mr", "--seg", seg, "--image-series", uid.group(1)).stdout)
    assert rep["liver"]["mean_intensity"] == pytest.approx(400.0)  # the b-800 volume


@pytest.mark.parametrize("syntax", [None, ImplicitVRLittleEndian])
def test_the_fast_header_reads_b_value_and_echo_as_pydicom(tmp_path, syntax):
    kw = {} if syntax is None else {"transfer_syntax": syntax}
    tags = {"DiffusionBValue": 800.0, "EchoNumbers": 2, "EchoTime": 4.6}
    (files,) = _one_series(tmp_path, lambda v: tags, 1, **kw)
    fast = _fast_header(files[0])
    assert fast is not None
    assert fast == _read_header_pydicom(files[0])
    assert (fast.diffusion_b_value, fast.echo_number, fast.echo_time) == (800.0, 2, 4.6)
    ds = pydicom.dcmread(files[0])
    ds.EchoNumbers = [1, 2]  # several values: no single echo to tell volumes apart
    ds.save_as(files[0])
    info = read_header(files[0])
    assert info is not None
    assert info.echo_number is None
    assert info == _read_header_pydicom(files[0])
