"""MITK multilabel segmentations (.nrrd): label names and values in the header's JSON, a layer per group.

MITK stores its labels in ``org.mitk.multilabel.segmentation.labelgroups`` (``[{"labels": [{"name":
"Liver", "value": 1, ...}]}, ...]``, one group per layer, the group axis first, kind ``vector``). The
values are the order the labels were made in: read as a LiTS label map, a tumour drawn before the
liver (value 1) was measured as the liver and the liver as the tumour, and every group after the
first was dropped. The header is written byte by byte here, as MITK's writer lays it out.

Truths: the ellipsoids' voxel counts on the oblique image grid x the voxel volume.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from netlm_imaging.api import analyze
from netlm_imaging.errors import InputError
from tests.test_slicer_seg_nrrd_exports import LPS, SHAPE, VOXEL_ML, _ct, _masks, _vec

KEY = "org.mitk.multilabel.segmentation.labelgroups"


def _label(name: str, value: int) -> dict:
    return {"color": {"type": "ColorProperty", "value": [1.0, 0.0, 0.0]}, "locked": True, "name": name,
            "opacity": 0.6, "value": value, "visible": True}  # fmt: skip


def _write_mitk(path, groups: np.ndarray, labels: list[list[dict]], *, header_groups: str | None = None):
    """``groups`` [group, i, j, k] uint16 on LPS; 3-D when it has one group (as MITK writes it)."""
    one = groups.shape[0] == 1
    data = groups[0] if one else groups
    lines = [
        "NRRD0004",
        "type: unsigned short",
        f"dimension: {data.ndim}",
        "space: left-posterior-superior",
        "sizes: " + " ".join(map(str, data.shape)),
        "space directions: " + ("" if one else "none ") + " ".join(_vec(LPS[:3, c]) for c in range(3)),
        "kinds: " + ("" if one else "vector ") + "domain domain domain",
        "endian: little",
        "encoding: gzip",
        "space origin: " + _vec(LPS[:3, 3]),
        "modality:=org.mitk.multilabel.segmentation",
        f"{KEY}:=" + (header_groups if header_groups is not None else json.dumps([{"labels": g} for g in labels])),
        "org.mitk.multilabel.segmentation.unlabeledlabellock:=0",
        "org.mitk.multilabel.segmentation.version:=1",
    ]
    raw = np.ascontiguousarray(data.astype("<u2")).tobytes(order="F")
    path.write_bytes(("\n".join(lines) + "\n\n").encode() + gzip.compress(raw))
    return path


def test_one_group_with_the_tumour_drawn_first(tmp_path):
    liver, lesion_a, lesion_b = _masks()
    tumour = lesion_a | lesion_b
    lab = np.zeros((1, *SHAPE), np.uint16)
    lab[0][liver] = 2
    lab[0][tumour] = 1  # the tumour was labelled first: value 1
    seg = _write_mitk(tmp_path / "Segmentation.nrrd", lab, [[_label("Tumor", 1), _label("Liver", 2)]])
    rep = analyze(image=_ct(tmp_path), segs=[seg])
    assert rep.liver["volume_ml"] == pytest.approx(liver.sum() * VOXEL_ML, rel=1e-6)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(tumour.sum() * VOXEL_ML, rel=1e-6)
    assert rep.tumor["lesion_count"] == 2
    assert [(r["name"], r["role"]) for r in rep.study["segment_roles"]] == [("Tumor", "lesion"), ("Liver", "liver")]


def test_overlapping_labels_in_two_groups(tmp_path):
    liver, lesion_a, lesion_b = _masks()
    groups = np.zeros((2, *SHAPE), np.uint16)
    groups[0][liver] = 1
    groups[1][lesion_a] = 2
    groups[1][lesion_b] = 3
    labels = [[_label("Liver", 1)], [_label("Metastasis 1", 2), _label("Metastasis 2", 3)]]
    seg = _write_mitk(tmp_path / "seg.nrrd", groups, labels)
    rep = analyze(image=_ct(tmp_path), segs=[seg])
    assert rep.liver["volume_ml"] == pytest.approx(liver.sum() * VOXEL_ML, rel=1e-6)
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx((lesion_a | lesion_b).sum() * VOXEL_ML, rel=1e-6)
    assert rep.tumor["lesion_count"] == 2


@pytest.mark.parametrize(
    ("header_groups", "says"),
    [
        ('[{"labels": [{"name": "Liver", "value": 1}]', "label groups .* cannot be read"),
        (json.dumps([{"labels": [_label("Liver", 1)]}] * 3), "declares 3 label groups but the file has 2 layers"),
    ],
)
def test_a_damaged_mitk_header_is_refused(tmp_path, header_groups, says):
    groups = np.zeros((2, *SHAPE), np.uint16)
    groups[0][_masks()[0]] = 1
    seg = _write_mitk(tmp_path / "seg.nrrd", groups, [], header_groups=header_groups)
    with pytest.raises(InputError, match=r"seg\.nrrd: .*" + says):
        analyze(image=_ct(tmp_path), segs=[seg])
