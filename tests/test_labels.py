"""Segment roles (io/role_precedence.py, role_patterns.py, label_spec.py): codes, names, patterns, and their precedence.

The expected roles follow the documented order (docs/roles.md): a user mapping
(``--labels`` names, ``--segment-pattern``) is exclusive; without one,
Couinaud name patterns, then the SegmentedPropertyType code (SCT 10200004
Liver, 108369006 Neoplasm, ...), then the built-in name patterns.
"""

from __future__ import annotations

import pytest

from netlm_imaging.errors import UsageError
from netlm_imaging.io.label_spec import parse_label_spec
from netlm_imaging.io.role_precedence import role_for_segment

LIVER = ("SCT", "10200004")
NEOPLASM = ("SCT", "108369006")
METASTATIC = ("SCT", "14799000")
SPLEEN = ("SCT", "78961009")
TISSUE = ("SCT", "85756007")


@pytest.mark.parametrize(
    ("name", "code", "expected"),
    [
        ("Liver", LIVER, "liver"),
        ("anything", LIVER, "liver"),  # the code decides when the name says nothing
        ("Segment VII", LIVER, "segment7"),  # Couinaud names win over the generic liver code
        ("couinaud_seg_4b", LIVER, "segment4"),
        ("seg 1", None, "segment1"),
        ("Lesion 3", NEOPLASM, "lesion"),
        ("Blob", METASTATIC, "lesion"),
        ("Tumour 2", TISSUE, "lesion"),  # an uninformative code: the name pattern decides
        ("NET metastasis", None, "lesion"),
        ("GTV_Mass", None, "lesion"),
        ("Spleen", SPLEEN, "spleen"),
        ("Milz", None, "spleen"),
        ("Leber", None, "liver"),
        ("Blob", TISSUE, None),  # nothing matches: the caller must ask for --labels
        ("Kidney", None, None),
        ("netting", None, None),  # \bnet\b: not a word match
    ],
)
def test_default_roles_from_codes_and_names(name, code, expected):
    assert role_for_segment(name, code, parse_label_spec(None)) == expected


def test_explicit_labels_override_codes_and_patterns():
    spec = parse_label_spec("ignore=Liver,lesion=Blob,spleen=Segment VII")
    assert role_for_segment("liver", LIVER, spec) == "ignore"  # names compare case-insensitively
    assert role_for_segment("Blob", TISSUE, spec) == "lesion"
    assert role_for_segment("Segment VII", LIVER, spec) == "spleen"
    assert role_for_segment("Tumour 2", TISSUE, spec) is None  # a user mapping is exclusive (issue 12)


def test_user_name_patterns_come_before_the_defaults():
    spec = parse_label_spec(None, name_patterns=[(r"^hcc\b", "lesion"), (r"^liver_remnant$", "ignore")])
    assert role_for_segment("HCC 1", None, spec) == "lesion"
    assert role_for_segment("liver_remnant", None, spec) == "ignore"  # before the default 'liver' pattern
    assert role_for_segment("liver_remnant", None, parse_label_spec(None)) is None  # compound: never guessed
    assert role_for_segment("Liver", LIVER, spec) is None  # user patterns are exclusive (issue 12)


def test_custom_code_table():
    table = {("99LOCAL", "L1"): "lesion"}
    assert role_for_segment("x", ("99local", "L1"), parse_label_spec(None), code_roles=table) == "lesion"
    assert role_for_segment("x", LIVER, parse_label_spec(None), code_roles=table) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("liver", r"item 'liver' is not ROLE=VALUE"),
        ("pancreas=3", r"unknown role 'pancreas'"),
        ("liver=5+", r"role 'liver' has an empty value"),
    ],
)
def test_bad_labels_option(text, message):
    with pytest.raises(UsageError, match=message):
        parse_label_spec(text)


def test_labels_values_and_names_parse():
    spec = parse_label_spec("liver=5,lesion=2+3|Tumour A,segment4=14")
    assert spec.mapping == {"liver": [5], "lesion": [2, 3, "Tumour A"], "segment4": [14]}
    assert spec.user_given is True
    assert spec.role_of_value(3) == "lesion"
    assert spec.role_of_value(1) is None  # the LiTS default no longer applies once --labels is given
    assert parse_label_spec(None).role_of_value(1) == "liver"


def test_a_value_of_two_roles_is_in_both_layers(tmp_path):
    """``--labels liver=1+2,lesion=2``: the voxels of 2 are lesion and liver (a region-based liver holds its tumour).

    Truth: the voxel counts of the boxes placed here x |det(affine)| of an oblique grid; the same
    map read with the LiTS numbering (1 liver, 2 lesion) gives the same volumes, since the total
    liver is the union of the liver and its lesions (DESIGN.md).
    """
    import numpy as np
    from conftest import oblique_affine
    from phantoms import write_nifti

    from netlm_imaging.api import analyze

    aff = oblique_affine(spacing=(1.5, 1.5, 3.0))
    lab = np.zeros((40, 36, 20), np.uint8)
    lab[5:35, 5:30, 3:15] = 1  # 30 x 25 x 12 = 9000 voxels
    lab[10:16, 10:16, 5:9] = 2  # 6 x 6 x 4 = 144 voxels
    voxel_ml = abs(np.linalg.det(aff[:3, :3])) / 1000
    write_nifti(tmp_path / "seg.nii.gz", lab, aff)
    write_nifti(tmp_path / "ct.nii.gz", np.full(lab.shape, 50, np.int16), aff)
    for labels in ("liver=1+2,lesion=2", "lesion=2,liver=1+2", None):
        rep = analyze(image=tmp_path / "ct.nii.gz", segs=[tmp_path / "seg.nii.gz"], labels=labels)
        assert rep.liver["volume_ml"] == pytest.approx(9000 * voxel_ml, rel=1e-6), labels
        assert rep.tumor["intrahepatic_volume_ml"] == pytest.approx(144 * voxel_ml, rel=1e-6), labels
        assert rep.tumor["lesion_count"] == 1, labels


@pytest.mark.parametrize("text", ["liver=Liver,spleen=Liver", "lesion=Tumor,ignore=tumor"])
def test_a_segment_name_of_two_roles_other_than_liver_and_lesion_is_refused(text):
    with pytest.raises(UsageError, match=r"has two roles .* a segment has one role"):
        parse_label_spec(text)


@pytest.mark.parametrize(("name", "role"), [("masseter_left", None), ("Masseter_R", None), ("Mass 2", "lesion")])
def test_the_masseter_is_not_a_mass(name, role):
    # TotalSegmentator's head_muscles names (masseter_left / _right) and RTSTRUCT Masseter ROIs held "mass"
    from netlm_imaging.io.role_precedence import decide_label_name

    assert decide_label_name(name, parse_label_spec(None)).role == role


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("A_Hepatic", "vessel"),  # hepatic vessels: measured against the lesions (vascular contact)
        ("V_Hepatic", "vessel"),
        ("LN_Hepatic", None),
        ("Hepatic_Lymph_Nodes", None),
        ("hepatic node", None),
        ("LN_Splenic", None),
        ("V_Splenic", None),  # not a hepatic vessel
    ],
)
def test_vessels_and_lymph_nodes_named_after_the_organ_are_not_the_organ(name, role):
    # AAPM TG-263 names an artery A_*, a vein V_*, lymph nodes LN_*: they were taken for the liver / spleen
    assert role_for_segment(name, None, parse_label_spec(None)) == role


@pytest.mark.parametrize(
    ("name", "role"), [("Liver", "liver"), ("Liver_Normal", "liver"), ("Lymph_Node_Met", "lesion")]
)
def test_the_organ_and_nodal_metastases_keep_their_roles(name, role):
    assert role_for_segment(name, None, parse_label_spec(None)) == role
