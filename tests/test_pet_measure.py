"""PET uptake measurements on phantoms whose truth the tests compute, and on the real FDG PET.

Phantoms are defined in patient (LPS) space by closed-form shapes (balls,
half-spaces, radial profiles) and sampled on oblique grids; the expected
numbers are counted or integrated here, independently of the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import oblique_affine, shared_path

from netlm_imaging.errors import GeometryError, InputError, UsageError
from netlm_imaging.measure.context import Lesion, MeasurementContext
from netlm_imaging.measure.pet import derive_pet_lesions, measure_pet, parse_delineation
from netlm_imaging.volume import Volume

FOR = "1.2.826.0.1.3680043.8.498.1"


def grid_points(shape, affine):
    """LPS positions (mm) of every voxel centre, shape (*shape, 3)."""
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).astype(np.float64)
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def dist(points, centre):
    return np.linalg.norm(points - np.asarray(centre, dtype=np.float64), axis=-1)


def lesion(lid, location="intrahepatic"):
    return Lesion(
        id=lid,
        location=location,
        volume_ml=0.0,
        voxel_count=0,
        centroid_lps_mm=[0.0, 0.0, 0.0],
        longest_axial_diameter_mm=0.0,
        short_axis_diameter_mm=None,
        max_3d_diameter_mm=0.0,
        recist_measurable=None,
        touches_image_border=False,
        mean_intensity=None,
    )


def context(image, liver, labels, lesions, spleen=None):
    return MeasurementContext(image=image, liver=liver, lesion_labels=labels, lesions=lesions, spleen=spleen)


# ------------------------------------------------------------------ the Krenning phantom
# Liver ball (SUV 5.0) holding five uniform lesions, a spleen ball (SUV 15.0), background 1.0.
PET_AFFINE = oblique_affine(spacing=(4.0, 4.0, 3.0), angles_deg=(6.0, -4.0, 12.0), origin=(-110.0, -95.0, -60.0))
PET_SHAPE = (56, 52, 60)
LIVER_C, LIVER_R = np.array([-20.0, -5.0, 25.0]), 70.0
SPLEEN_C, SPLEEN_R = np.array([90.0, 20.0, 30.0]), 25.0
L_SUV, S_SUV = 5.0, 15.0
# id: (centre offset from the liver centre, radius mm, SUV, expected Krenning with spleen)
LESIONS = {
    1: ((-35.0, 0.0, 0.0), 14.0, 20.0, 4),  # above spleen
    2: ((30.0, 10.0, 0.0), 12.0, 10.0, 3),  # above the liver band, below spleen
    3: ((0.0, -35.0, 5.0), 12.0, 5.2, 2),  # within 10 % of the liver
    4: ((0.0, 30.0, -20.0), 12.0, 3.0, 1),  # below the band
    5: ((5.0, 0.0, 35.0), 12.0, 0.5, 0),  # no uptake (<= 0.25 x liver)
}


def krenning_phantom(shape, affine):
    """Masks and SUV on a grid: (suv, liver_union_lesions, labels, spleen)."""
    pts = grid_points(shape, affine)
    liver = dist(pts, LIVER_C) <= LIVER_R
    spleen = dist(pts, SPLEEN_C) <= SPLEEN_R
    suv = np.ones(shape)
    suv[liver] = L_SUV
    suv[spleen] = S_SUV
    labels = np.zeros(shape, dtype=np.int32)
    for lid, (off, r, v, _) in LESIONS.items():
        ball = dist(pts, LIVER_C + np.array(off)) <= r
        labels[ball] = lid
        suv[ball] = v
    return suv, liver | (labels > 0), labels, spleen


@pytest.fixture(scope="module")
def pet_phantom():
    suv, liver, labels, spleen = krenning_phantom(PET_SHAPE, PET_AFFINE)
    vol = Volume(
        suv.astype(np.float32),
        PET_AFFINE,
        FOR,
        source="pet",
        meta={"suv": {"units": "BQML", "decay_correction": "START"}},
    )
    return vol, liver, labels, spleen


def test_lesion_suvs_and_krenning_on_pet_grid(pet_phantom):
    vol, liver, labels, spleen = pet_phantom
    res = measure_pet(context(vol, liver, labels, [lesion(i) for i in LESIONS], spleen), vol)
    # healthy liver = liver minus lesions: exactly the SUV-5 voxels of the phantom
    assert res.block["liver_suv_mean"] == pytest.approx(L_SUV, rel=1e-6)
    assert res.block["spleen_suv_mean"] == pytest.approx(S_SUV, rel=1e-6)
    assert res.block["suv_max"] == pytest.approx(20.0, rel=1e-6)
    assert res.block["measured_on_grid"] == "pet"
    assert res.block["mask_resampling"] == "none"
    for lid, (_, _, v, score) in LESIONS.items():
        u = res.lesion_updates[lid]
        assert u["suv_max"] == pytest.approx(v, rel=1e-6)
        assert u["suv_mean"] == pytest.approx(v, rel=1e-6)
        if v > L_SUV:  # hot uniform balls > 1 mL: the best sphere lies inside, peak = value
            assert u["suv_peak"] == pytest.approx(v, rel=1e-6)
        else:  # cold lesions: spheres centred at the edge reach into brighter liver
            assert v < u["suv_peak"] < L_SUV
        assert u["krenning_score"] == score, lid
    assert sorted(u["krenning_score"] for u in res.lesion_updates.values()) == [0, 1, 2, 3, 4]
    assert res.missing_inputs == []


def test_without_spleen_scores_above_liver_are_null(pet_phantom):
    vol, liver, labels, _ = pet_phantom
    res = measure_pet(context(vol, liver, labels, [lesion(i) for i in LESIONS]), vol)
    assert res.block["spleen_suv_mean"] is None
    assert "spleen mask" in res.missing_inputs
    for lid, (_, _, _, score) in LESIONS.items():
        u = res.lesion_updates[lid]
        if score >= 3:
            assert u["krenning_score"] is None
            assert u["krenning_score_lower_bound"] == 3
        else:
            assert u["krenning_score"] == score


def test_krenning_band_comes_from_rules(pet_phantom):
    vol, liver, labels, spleen = pet_phantom
    rules = {"krenning": {"liver_band_fraction": 0.02}}  # 5.2 is now above the band (> 5.1)
    res = measure_pet(context(vol, liver, labels, [lesion(3)], spleen), vol, rules=rules)
    assert res.lesion_updates[3]["krenning_score"] == 3
    # spleen_ratio: score 4 only above 1.5 x spleen SUVmean (22.5) -> the SUV-20 lesion becomes 3
    res = measure_pet(context(vol, liver, labels, [lesion(1)], spleen), vol, rules={"krenning": {"spleen_ratio": 1.5}})
    assert res.lesion_updates[1]["krenning_score"] == 3
    with pytest.raises(InputError, match=r"\[krenning\] liver_band_fraction = 'x' is not a number"):
        measure_pet(
            context(vol, liver, labels, [lesion(3)], spleen), vol, rules={"krenning": {"liver_band_fraction": "x"}}
        )


def test_masks_on_ct_grid_give_the_pet_grid_suvs(pet_phantom):
    """Same FoR, finer oblique CT grid: masks resampled to PET by position; same SUVs and scores."""
    vol, *_ = pet_phantom
    ct_affine = oblique_affine(spacing=(1.6, 1.7, 2.5), angles_deg=(-3.0, 5.0, -8.0), origin=(-112.0, -100.0, -62.0))
    ct_shape = (140, 130, 72)
    _, liver_ct, labels_ct, spleen_ct = krenning_phantom(ct_shape, ct_affine)
    ct = Volume(np.zeros(ct_shape, dtype=np.float32), ct_affine, FOR, source="ct")
    res = measure_pet(context(ct, liver_ct, labels_ct, [lesion(i) for i in LESIONS], spleen_ct), vol)
    assert res.block["mask_resampling"].startswith("nearest")
    assert res.block["liver_suv_mean"] == pytest.approx(L_SUV, rel=0.03)
    assert res.block["spleen_suv_mean"] == pytest.approx(S_SUV, rel=0.03)
    for lid, (_, _, v, score) in LESIONS.items():
        u = res.lesion_updates[lid]
        # boundary PET voxels change with the grid: at most 10 % of them take the liver value
        assert abs(u["suv_mean"] - v) <= 0.1 * abs(L_SUV - v)
        if v > L_SUV:  # hot lesions: max and peak are interior voxels, identical on both grids
            assert u["suv_max"] == pytest.approx(v, rel=1e-6)
            assert u["suv_peak"] == pytest.approx(v, rel=1e-6)
            assert u["krenning_score"] == score
        else:  # cold lesions: a boundary PET voxel may carry liver SUV (the partial-volume problem)
            assert v <= u["suv_max"] <= L_SUV
            assert u["krenning_score"] in (score, score + 1, 2)


def test_different_frame_of_reference_is_refused(pet_phantom):
    vol, liver, labels, spleen = pet_phantom
    other = Volume(np.zeros(PET_SHAPE, dtype=np.float32), PET_AFFINE, "1.2.3.4.5", source="ct-other")
    with pytest.raises(GeometryError, match="FrameOfReferenceUID differs"):
        measure_pet(context(other, liver, labels, [lesion(1)], spleen), vol)


# ------------------------------------------------------------------ SUVpeak with a hot core
def test_suv_peak_hot_core():
    aff = oblique_affine(spacing=(1.0, 1.0, 1.0), angles_deg=(20.0, 10.0, -15.0), origin=(5.0, -7.0, 11.0))
    shape = (44, 44, 44)
    pts = grid_points(shape, aff)
    centre = aff[:3, :3] @ np.array([22.0, 22.0, 22.0]) + aff[:3, 3]  # on a voxel centre
    d = dist(pts, centre)
    les = d <= 15.0
    core = d <= 4.0
    suv = np.where(les, 5.0, 1.0)
    suv[core] = 25.0
    vol = Volume(suv.astype(np.float32), aff, FOR)
    res = measure_pet(context(vol, les.copy(), les.astype(np.int32), [lesion(1)]), vol)
    # 1 mL sphere (radius 6.20 mm) centred on the core: the whole core plus shell voxels.
    n_core = int(core.sum())  # voxel volume 1 mm^3
    expected = (25.0 * n_core + 5.0 * (1000.0 - n_core)) / 1000.0
    u = res.lesion_updates[1]
    assert u["suv_peak"] == pytest.approx(expected, rel=5e-3)
    assert u["suv_max"] == pytest.approx(25.0)
    assert u["suv_mean"] == pytest.approx((25.0 * n_core + 5.0 * (les.sum() - n_core)) / les.sum(), rel=1e-6)
    assert u["suv_mean"] < u["suv_peak"] < u["suv_max"]


# ------------------------------------------------------------------ SRETV / TLSRE
def radial_phantom():
    """Lesion ball radius 20 mm with SUV = 30 - r (mm); liver ball around it with SUV 5 (liver:K reference)."""
    aff = oblique_affine(spacing=(2.0, 2.0, 2.0), angles_deg=(9.0, -6.0, 14.0), origin=(-60.0, -50.0, -40.0))
    shape = (56, 56, 56)
    pts = grid_points(shape, aff)
    centre = aff[:3, :3] @ np.array([28.0, 28.0, 28.0]) + aff[:3, 3]
    r = dist(pts, centre)
    les = r <= 20.0
    liver = r <= 45.0
    suv = np.where(liver, 5.0, 1.0)
    suv[les] = 30.0 - r[les]
    return Volume(suv.astype(np.float32), aff, FOR), liver, les, r


@pytest.mark.parametrize(
    ("text", "radius_mm", "lattice_rel"),
    # lattice_rel: how far a voxel count of a ball of that radius on 2 mm voxels may be from 4/3 pi r^3
    [("rel:0.5", 15.0, 0.05), ("liver:4", 10.0, 0.08), ("abs:25", 5.0, 0.3), ("rel:0.45", 16.5, 0.05)],
)
def test_sretv_and_tlsre_analytic(text, radius_mm, lattice_rel):
    vol, liver, les, r = radial_phantom()
    res = measure_pet(context(vol, liver, les.astype(np.int32), [lesion(1)]), vol, delineation=text)
    sel = les & (r <= radius_mm + 1e-9)  # SUV >= threshold  <=>  r <= 30 - threshold
    voxel_ml = 8.0 / 1000.0
    assert res.block["sretv_ml"] == pytest.approx(sel.sum() * voxel_ml, rel=1e-9)
    assert res.block["tlsre"] == pytest.approx(sel.sum() * voxel_ml * float((30.0 - r[sel]).mean()), rel=1e-5)
    # the closed forms: V = 4/3 pi rho^3, mean of (30 - r) over the ball = 30 - 3 rho / 4
    v_ml = 4.0 / 3.0 * math.pi * radius_mm**3 / 1000.0
    assert res.block["sretv_ml"] == pytest.approx(v_ml, rel=lattice_rel)
    assert res.block["tlsre"] == pytest.approx(v_ml * (30.0 - 0.75 * radius_mm), rel=lattice_rel)
    assert res.block["delineation"] == str(parse_delineation(text))
    assert res.block["whole_body_sretv_ml"] == pytest.approx(res.block["sretv_ml"])


def test_hepatic_sretv_restricted_to_dilated_liver():
    """A lesion straddling the liver edge: hepatic SRETV counts only the part within 2 mm of the liver."""
    aff = np.array([[3.0, 0, 0, -50.0], [0, 2.5, 0, 20.0], [0, 0, 2.0, 100.0], [0, 0, 0, 1]])
    shape = (40, 40, 40)
    pts = grid_points(shape, aff)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    liver = ijk[..., 0] <= 19  # liver edge at i = 19 (x = 7 mm); next voxel 3 mm away
    centre = aff[:3, :3] @ np.array([19.0, 20.0, 20.0]) + aff[:3, 3]
    les = dist(pts, centre) <= 15.0
    suv = np.where(liver, 5.0, 1.0)
    suv[les] = 20.0
    vol = Volume(suv.astype(np.float32), aff, FOR)
    # ctx.liver normally includes intrahepatic lesions (then the restriction keeps them whole); here the
    # liver mask is the anatomical half-space only, to see the restriction act on the exophytic half
    res = measure_pet(context(vol, liver, les.astype(np.int32), [lesion(1)]), vol, delineation="abs:10")
    # dilated liver on this grid: i <= 19 (the i = 20 voxel centres are 3 mm > 2 mm away)
    assert res.block["sretv_ml"] == pytest.approx((les & liver).sum() * 0.015, rel=1e-9)
    assert res.block["whole_body_sretv_ml"] == pytest.approx(les.sum() * 0.015, rel=1e-9)
    assert res.block["tlsre"] == pytest.approx((les & liver).sum() * 0.015 * 20.0, rel=1e-6)


def test_liver_delineation_without_liver_gives_null():
    vol, _, les, _ = radial_phantom()
    res = measure_pet(context(vol, None, les.astype(np.int32), [lesion(1, "extrahepatic")]), vol, delineation="liver:2")
    assert res.block["sretv_ml"] is None
    assert res.block["liver_suv_mean"] is None
    assert "liver mask" in res.missing_inputs
    assert res.lesion_updates[1]["krenning_score"] is None


@pytest.mark.parametrize("bad", ["rel:1.5", "foo:1", "liver:-1", "abs:0", "rel:", "0.45"])
def test_bad_delineation(bad):
    with pytest.raises(UsageError, match="--delineation"):
        parse_delineation(bad)


# ------------------------------------------------------------------ PET-derived lesions
def test_pet_derived_lesions_inside_liver_only():
    rng = np.random.default_rng(42)
    pet_aff = oblique_affine(spacing=(4.0, 4.0, 3.0), angles_deg=(4.0, 3.0, -10.0), origin=(-120.0, -110.0, -50.0))
    pet_shape = (60, 56, 50)
    pts = grid_points(pet_shape, pet_aff)
    liver_c = np.array([-20.0, -5.0, 25.0])
    in_liver = dist(pts, liver_c) <= 70.0
    hot = {1: liver_c + np.array([-30.0, 0.0, 0.0]), 2: liver_c + np.array([30.0, 15.0, 0.0])}
    extra = liver_c + np.array([110.0, 0.0, 0.0])  # hot lesion outside the liver
    suv = np.ones(pet_shape) + rng.normal(0.0, 0.1, pet_shape)
    suv[in_liver] = 5.0 + rng.normal(0.0, 0.5, int(in_liver.sum()))  # 10 % voxel noise
    for c in [*hot.values(), extra]:
        suv[dist(pts, c) <= 12.0] = 20.0
    vol = Volume(suv.astype(np.float32), pet_aff, FOR)
    ct_aff = oblique_affine(spacing=(2.0, 2.0, 2.5), angles_deg=(-2.0, 1.0, 5.0), origin=(-125.0, -112.0, -52.0))
    ct_shape = (120, 112, 62)
    ct_pts = grid_points(ct_shape, ct_aff)
    liver_ct = dist(ct_pts, liver_c) <= 70.0
    ct = Volume(np.zeros(ct_shape, dtype=np.float32), ct_aff, FOR)
    mask = derive_pet_lesions(vol, liver_ct, ct)
    assert mask.shape == ct_shape
    assert not (mask & ~liver_ct).any()
    from scipy import ndimage

    comps, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    assert n == 2
    for c in hot.values():
        truth = dist(ct_pts, c) <= 12.0
        dice = 2 * (truth & mask).sum() / (truth.sum() + mask[comps == comps[tuple(np.argwhere(truth)[0])]].sum())
        assert dice > 0.8
    assert not mask[dist(ct_pts, extra) <= 12.0].any()
    with pytest.raises(UsageError, match="rel:P needs lesion regions"):
        derive_pet_lesions(vol, liver_ct, ct, delineation="rel:0.45")


# ------------------------------------------------------------------ the real FDG PET and its GTV
# oncoray/mirp test data, TCIA Soft-tissue-Sarcoma STS_001 (CC BY 3.0; Vallieres et al. 2015,
# doi 10.7937/K9/TCIA.2015.7GO2GSKS); RTSTRUCT mask/1-1.dcm with ROI GTV_Mass (about 365 mL).
FDG = ("mirp_sts_fdg_pet", "test", "data", "sts_images_raw", "STS_001", "FDG_PET")
FDG_FACTOR = 71.0 * 1000.0 / (3.88777472e8 * 2.0 ** (-(11 * 3600 + 20 * 60 + 11 - (10 * 3600 + 35 * 60)) / 6588.0))


def test_real_fdg_gtv_uptake_by_hand():
    from netlm_imaging.io.dicom_series import read_dicom_series
    from netlm_imaging.io.label_spec import parse_label_spec
    from netlm_imaging.io.pet import load_suv_volume
    from netlm_imaging.io.rtstruct import read_rtstruct

    folder = shared_path(*FDG, "image")
    rt = shared_path(*FDG, "mask", "1-1.dcm")
    suv = load_suv_volume(folder)
    bqml = read_dicom_series(folder, nonuniform="resample")  # activity concentration, Bq/mL
    layers = read_rtstruct(rt, suv, parse_label_spec("lesion=GTV_Mass,ignore=GTV_Edema"))
    gtv = next(layer for layer in layers if layer.role == "lesion").binary()
    assert gtv.sum() * suv.voxel_volume_ml == pytest.approx(365.0, rel=0.1)
    res = measure_pet(context(suv, None, gtv.astype(np.int32), [lesion(1, "extrahepatic")]), suv)
    u = res.lesion_updates[1]
    a = bqml.array[gtv].astype(np.float64)
    assert u["suv_max"] == pytest.approx(float(a.max()) * FDG_FACTOR, rel=1e-5)
    assert u["suv_mean"] == pytest.approx(float(a.mean()) * FDG_FACTOR, rel=1e-5)
    assert u["suv_mean"] <= u["suv_peak"] <= u["suv_max"]
    assert res.block["units"] == "BQML"
    assert res.block["decay_correction"] == "START"


def test_lesion_smaller_than_a_pet_voxel_keeps_its_suv():
    """A 1.5 mm-radius CT lesion between PET voxel centres still gets the PET voxel(s) containing it."""
    pet_aff = oblique_affine(spacing=(4.0, 4.0, 4.0), angles_deg=(0.0, 0.0, 10.0), origin=(-40.0, -40.0, -40.0))
    pet_shape = (20, 20, 20)
    pts = grid_points(pet_shape, pet_aff)
    # lesion centre halfway between PET voxel centres (10, 10, 10) and (11, 11, 11)
    centre = pet_aff[:3, :3] @ np.array([10.5, 10.5, 10.5]) + pet_aff[:3, 3]
    suv = np.where(dist(pts, centre) <= 9.0, 12.0, 2.0)  # hot region around it in the PET
    pet = Volume(suv.astype(np.float32), pet_aff, FOR)
    ct_aff = oblique_affine(spacing=(0.5, 0.5, 0.5), angles_deg=(0.0, 0.0, 10.0), origin=(-10.0, -10.0, -10.0))
    ct_shape = (40, 40, 40)
    tiny = dist(grid_points(ct_shape, ct_aff), centre) <= 1.5
    assert tiny.sum() > 0
    ct = Volume(np.zeros(ct_shape, dtype=np.float32), ct_aff, FOR)
    res = measure_pet(context(ct, None, tiny.astype(np.int32), [lesion(1, "extrahepatic")]), pet)
    assert res.lesion_updates[1]["suv_max"] == pytest.approx(12.0)
    assert any("smaller than a PET voxel" in w for w in res.warnings)


def test_default_rules_file_keys_are_read(pet_phantom):
    """The shipped rules file's [krenning] and [pet] tables drive the defaults (rel:0.45 delineation)."""
    from netlm_imaging.classify.rules import load_rules

    vol, liver, labels, spleen = pet_phantom
    rules = load_rules()
    res = measure_pet(context(vol, liver, labels, [lesion(i) for i in LESIONS], spleen), vol, rules=rules)
    assert res.block["delineation"] == "rel:0.45"
    assert res.block["suv_peak_sphere_ml"] == rules["pet"]["suv_peak_sphere_ml"]
    assert [res.lesion_updates[i]["krenning_score"] for i in LESIONS] == [LESIONS[i][3] for i in LESIONS]


def test_pet_without_rules_uses_the_shipped_rules_file(pet_phantom):
    """API callers without rules get the shipped file's PET settings: measure.pet keeps no copy of them."""
    import netlm_imaging.measure.pet as pet_module
    from netlm_imaging.classify.rules import load_rules

    assert not [n for n in dir(pet_module) if n.startswith("DEFAULT_")]
    vol, liver, labels, spleen = pet_phantom
    ctx = context(vol, liver, labels, [lesion(i) for i in LESIONS], spleen)
    plain = measure_pet(ctx, vol)
    shipped = measure_pet(ctx, vol, rules=load_rules())
    assert plain.block["krenning_rules"] == shipped.block["krenning_rules"]
    assert plain.lesion_updates == shipped.lesion_updates


def test_sretv_threshold_reported_is_the_avid_floor_when_it_is_higher():
    """abs:10 under an absolute avid floor of 20 (rules [pet] avid_min_suv): the voxels counted are those above 20,
    and the threshold the lesion states is 20, the one that counted (truth: the phantom's SUV = 30 - r)."""
    vol, liver, les, _r = radial_phantom()
    rules = {"pet": {"avid_threshold": "none", "avid_min_suv": 20.0}}
    res = measure_pet(context(vol, liver, les.astype(np.int32), [lesion(1)]), vol, delineation="abs:10", rules=rules)
    u = res.lesion_updates[1]
    assert u["sretv_threshold_suv"] == 20.0
    suv = np.asarray(vol.array)
    assert u["sretv_ml"] == pytest.approx(np.count_nonzero(les & (suv > 20.0)) * 0.008, rel=1e-9)
    assert np.count_nonzero(les & (suv > 20.0)) < np.count_nonzero(les & (suv >= 10.0))  # the floor matters here


def test_no_hepatic_sretv_without_a_liver_mask():
    """Without a liver mask there is no liver to restrict to: hepatic SRETV is null, the whole-body one is counted."""
    vol, _, les, _ = radial_phantom()
    res = measure_pet(context(vol, None, les.astype(np.int32), [lesion(1)]), vol, delineation="abs:10")
    assert res.block["sretv_ml"] is None
    assert res.block["tlsre"] is None
    suv = np.asarray(vol.array)
    assert res.block["whole_body_sretv_ml"] == pytest.approx(np.count_nonzero(les & (suv >= 10.0)) * 0.008, rel=1e-9)


def test_extrahepatic_lesion_never_counts_in_hepatic_sretv():
    """An extrahepatic lesion within a wide PET margin of the liver (rules [pet] intrahepatic_margin_mm 30) is still
    extrahepatic: the hepatic SRETV is the intrahepatic lesion's alone."""
    aff = oblique_affine(spacing=(2.0, 2.0, 2.0), angles_deg=(5.0, 3.0, -8.0), origin=(-70.0, -60.0, -50.0))
    shape = (64, 60, 56)
    pts = grid_points(shape, aff)
    centre = aff[:3, :3] @ np.array([30.0, 30.0, 28.0]) + aff[:3, 3]
    liver = dist(pts, centre) <= 30.0
    inside = dist(pts, centre + np.array([-10.0, 0.0, 0.0])) <= 8.0
    outside = dist(pts, centre + np.array([45.0, 0.0, 0.0])) <= 8.0  # 7 mm from the liver surface
    suv = np.where(liver, 5.0, 1.0)
    suv[inside | outside] = 20.0
    labels = inside.astype(np.int32) + 2 * outside.astype(np.int32)
    vol = Volume(suv.astype(np.float32), aff, FOR)
    ctx = context(vol, liver, labels, [lesion(1), lesion(2, "extrahepatic")])
    res = measure_pet(ctx, vol, delineation="abs:10", rules={"pet": {"intrahepatic_margin_mm": 30.0}})
    assert res.block["sretv_ml"] == pytest.approx(np.count_nonzero(inside) * 0.008, rel=1e-9)
    assert res.block["whole_body_sretv_ml"] == pytest.approx(np.count_nonzero(inside | outside) * 0.008, rel=1e-9)


def test_spleen_reference_equal_to_the_liver_is_flagged(pet_phantom):
    """Krenning 4 is uptake above the spleen, the spleen above the liver: a spleen equal to the liver warns."""
    vol, liver, labels, spleen = pet_phantom
    suv = np.array(vol.array)
    suv[spleen] = L_SUV
    flat = vol.with_array(suv)
    res = measure_pet(context(flat, liver, labels, [lesion(i) for i in LESIONS], spleen), flat)
    assert res.block["spleen_suv_mean"] == pytest.approx(res.block["liver_suv_mean"], rel=1e-6)
    assert any("is not above the liver reference" in w for w in res.warnings)


def test_suv_peak_of_every_lesion_equals_the_whole_image_definition(pet_phantom):
    """SUVpeak is computed on each lesion's box padded by the sphere's reach: it must equal the definition on the
    whole image (the best 1 mL sphere centred on a lesion voxel, parts outside the image left out), also for the
    cold lesions whose best sphere reaches into the brighter liver around them."""
    from netlm_imaging.measure.pet_kernels import peak_map, suv_peak_kernel

    vol, liver, labels, spleen = pet_phantom
    res = measure_pet(context(vol, liver, labels, [lesion(i) for i in LESIONS], spleen), vol)
    whole = peak_map(np.asarray(vol.array, dtype=np.float64), suv_peak_kernel(vol.spacing, 1.0))
    for lid in LESIONS:
        assert res.lesion_updates[lid]["suv_peak"] == pytest.approx(float(whole[labels == lid].max()), rel=1e-9), lid
    # on 1.5 mm voxels the sphere reaches four voxels beyond a cold lesion's edge into the liver
    aff = oblique_affine(spacing=(1.5, 1.5, 1.5), angles_deg=(7.0, -5.0, 10.0), origin=(-45.0, -40.0, -35.0))
    shape = (60, 56, 52)
    pts = grid_points(shape, aff)
    centre = aff[:3, :3] @ np.array([30.0, 28.0, 26.0]) + aff[:3, 3]
    liver2 = dist(pts, centre) <= 35.0
    cold = dist(pts, centre) <= 7.0
    suv = np.where(liver2, 5.0, 1.0)
    suv[cold] = 0.5
    fine = Volume(suv.astype(np.float32), aff, FOR)
    res2 = measure_pet(context(fine, liver2, cold.astype(np.int32), [lesion(1)]), fine)
    whole2 = peak_map(np.asarray(fine.array, dtype=np.float64), suv_peak_kernel(fine.spacing, 1.0))
    assert res2.lesion_updates[1]["suv_peak"] == pytest.approx(float(whole2[cold].max()), rel=1e-9)
    assert res2.lesion_updates[1]["suv_peak"] > 2.0  # the best sphere sits on the edge, mostly in the liver


def test_a_lesion_outside_the_pet_field_of_view_has_no_suv_and_the_others_keep_theirs():
    """A PET/CT whose PET beds cover less than the CT: lesion 1 lies beyond the PET's axial extent (no SUV, a
    warning), lesion 2 inside it keeps its SUV, lesion 3 is cut by the PET's first plane and its hottest voxels
    lie on it; the hepatic SUVmax is lesion 2's (truths: the phantom's values)."""
    ct_aff = oblique_affine(spacing=(2.0, 2.0, 2.0), angles_deg=(0.0, 0.0, 0.0), origin=(-80.0, -80.0, -150.0))
    ct_shape = (80, 80, 150)  # z from -150 to +148 mm
    pet_aff = oblique_affine(spacing=(4.0, 4.0, 4.0), angles_deg=(0.0, 0.0, 0.0), origin=(-82.0, -82.0, -42.0))
    pet_shape = (42, 42, 22)  # z from -42 to +42 mm
    ct_pts, pet_pts = grid_points(ct_shape, ct_aff), grid_points(pet_shape, pet_aff)
    liver_c, far_c, near_c = np.array([0.0, 0.0, 0.0]), np.array([0.0, 0.0, 110.0]), np.array([10.0, 5.0, 0.0])
    labels = np.zeros(ct_shape, np.int32)
    labels[dist(ct_pts, far_c) <= 10.0] = 1
    labels[dist(ct_pts, near_c) <= 10.0] = 2
    edge_c = np.array([-50.0, -40.0, -44.0])  # lesion 3 reaches below the PET's first plane (z = -42 mm)
    labels[dist(ct_pts, edge_c) <= 10.0] = 3
    liver = (dist(ct_pts, liver_c) <= 35.0) | (labels == 2)
    suv = np.where(dist(pet_pts, liver_c) <= 35.0, 5.0, 1.0)
    suv[dist(pet_pts, near_c) <= 10.0] = 12.0
    suv[dist(pet_pts, edge_c) <= 13.0] = 9.0  # beyond the lesion's edge on either grid
    hottest = (dist(pet_pts, edge_c) <= 7.0) & (np.arange(pet_shape[2]) == 0)[None, None, :]
    assert hottest.any()
    suv[hottest] = 16.0  # its hottest voxels lie on the PET's first plane
    ct = Volume(np.zeros(ct_shape, np.float32), ct_aff, FOR)
    pet = Volume(suv.astype(np.float32), pet_aff, FOR)
    res = measure_pet(
        context(ct, liver, labels, [lesion(1, "extrahepatic"), lesion(2), lesion(3, "extrahepatic")]), pet
    )
    assert res.lesion_updates[1] == {"suv_max": None, "suv_mean": None, "suv_peak": None, "krenning_score": None}
    assert any("lesion 1 lies outside the PET field of view" in w for w in res.warnings)
    assert res.lesion_updates[2]["suv_max"] == pytest.approx(12.0, rel=1e-6)
    assert res.block["hepatic_lesion_suv_max"] == pytest.approx(12.0, rel=1e-6)
    assert res.lesion_updates[3]["suv_max"] == pytest.approx(16.0, rel=1e-6)  # the border plane is measured
    assert res.block["mask_resampling"] == "nearest-neighbour onto the PET grid"
