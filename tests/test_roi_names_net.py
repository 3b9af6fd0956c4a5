"""ROI / segment names of neuroendocrine liver metastases as planning systems and readers write them.

``NETs`` (the plural of NET), ``NELM`` (neuroendocrine liver metastases) and ``Carcinoid 2`` are
lesions; ``LiverMets``, ``LIVERMETS``, ``Liver NETs`` and ``HepaticMets`` name the tumour by the organ
it lies in: lesions too (docs/roles.md step 6). Before, the short words met / mets / NET counted only
between non-letters, so ``LiverMets`` was the liver (its tumour measured as liver, the tumour volume
0) and ``NETs`` nothing; then, as a name matching two roles, it was ignored and the study had no
lesion (involvement null) until the user mapped it.

Phantom: an oblique anisotropic CT, boxes outlined through voxel edges (``box_outline``), so each
ROI's voxel count is its box's, computed here.
"""

from __future__ import annotations

import numpy as np
import pytest

from netlm_imaging.api import analyze
from netlm_imaging.io.label_spec import parse_label_spec
from netlm_imaging.io.role_precedence import decide_role
from tests.conftest import oblique_affine
from tests.dicom_factory import write_image_series
from tests.seg_factory import RoiSpec, box_outline, write_rtstruct

SPACING = (0.9, 0.8, 2.0)
SHAPE = (30, 28, 12)
AFFINE = oblique_affine(spacing=SPACING, angles_deg=(6.0, -4.0, 15.0), origin=(-40.0, 20.0, 300.0))
LIVER = ((4, 26), (3, 25), range(2, 10))
TUMOUR = ((10, 16), (9, 14), range(4, 7))
VOXEL_ML = float(np.prod(SPACING)) / 1000.0


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("NETs", "lesion"),
        ("NET 3", "lesion"),
        ("NELM", "lesion"),
        ("NELM_2", "lesion"),
        ("Carcinoid 1", "lesion"),
        ("LiverMets", "lesion"),
        ("LIVERMETS", "lesion"),
        ("LiverNET", "lesion"),
        ("Liver NETs", "lesion"),
        ("HepaticMets", "lesion"),
        ("LiverMet1", "lesion"),
        ("NormalLiver", "liver"),
        ("Magnets", None),
        ("Helmet", None),
        ("MetalArtifact", None),
        ("Cabinet", None),
    ],
)
def test_names_of_nets_and_of_the_organ_with_its_tumour(name, role):
    assert decide_role(name, None, parse_label_spec(None)).role == role


def _box_voxels(box) -> int:
    (i0, i1), (j0, j1), ks = box
    return (i1 - i0) * (j1 - j0) * len(ks)


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    folder = tmp_path_factory.mktemp("net_names")
    return folder, write_image_series(folder / "ct", np.zeros(SHAPE), AFFINE, seed=41)


def _rois(tumour_name: str) -> list[RoiSpec]:
    return [
        RoiSpec("Liver", [box_outline(AFFINE, LIVER, k) for k in LIVER[2]]),
        RoiSpec(tumour_name, [box_outline(AFFINE, TUMOUR, k) for k in TUMOUR[2]], interpreted_type="GTV"),
    ]


def test_an_roi_named_nets_is_measured_as_the_tumour(ct, tmp_path):
    folder, paths = ct
    rt = write_rtstruct(tmp_path / "rt.dcm", paths, _rois("NETs"))
    rep = analyze(image=folder / "ct", segs=[rt])
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(_box_voxels(TUMOUR) * VOXEL_ML, rel=1e-6)
    assert rep.liver["volume_ml"] == pytest.approx(_box_voxels(LIVER) * VOXEL_ML, rel=1e-6)
    assert rep.involvement_percent == pytest.approx(100.0 * _box_voxels(TUMOUR) / _box_voxels(LIVER), abs=0.01)


def test_an_roi_named_livermets_is_the_tumour_not_a_second_liver(ct, tmp_path):
    """It was the liver (the study had no tumour), then ignored; it is the tumour, as the mapping says too."""
    folder, paths = ct
    rt = write_rtstruct(tmp_path / "rt.dcm", paths, _rois("LiverMets"))
    rep = analyze(image=folder / "ct", segs=[rt])
    assert [(r["name"], r["role"]) for r in rep.study["segment_roles"]] == [("Liver", "liver"), ("LiverMets", "lesion")]
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(_box_voxels(TUMOUR) * VOXEL_ML, rel=1e-6)
    assert rep.liver["volume_ml"] == pytest.approx(_box_voxels(LIVER) * VOXEL_ML, rel=1e-6)
    rep = analyze(image=folder / "ct", segs=[rt], labels="liver=Liver,lesion=LiverMets")
    assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(_box_voxels(TUMOUR) * VOXEL_ML, rel=1e-6)
