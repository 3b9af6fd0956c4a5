"""Each key of [krenning], [pet], [pet_reference], [pet_plausibility]: changed in a rules file, the outcome moves.

Phantoms are balls in patient (LPS) space sampled on an oblique 4 mm grid. Expected
outcomes come from the test: the Krenning rule of clinical_rules.md 7.3 written here
(:func:`published_grade`), voxel counts of the balls, region depths computed with a
k-d tree between LPS voxel centres (not the code's distance transform), and analytic
sphere volumes. Each test runs the same study with the shipped rules and with a user
rules file changing one key (loaded as ``--rules`` does), and checks both outcomes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import oblique_affine
from rules_coverage import covers, user_rules
from scipy.spatial import cKDTree

from netlm_imaging.errors import InputError
from netlm_imaging.io.pet_plausibility import check_conversion, check_suv_max, plausibility_limits
from netlm_imaging.measure.context import Lesion, MeasurementContext
from netlm_imaging.measure.pet import derive_pet_lesions, measure_pet
from netlm_imaging.volume import Volume

FOR = "1.2.826.0.1.3680043.8.498.77"
SHAPE = (50, 36, 36)
_ROT = oblique_affine(spacing=(4.0, 4.0, 4.0), angles_deg=(7.0, -5.0, 11.0), origin=(0.0, 0.0, 0.0))[:3, :3]
AFFINE = np.eye(4)
AFFINE[:3, :3] = _ROT
AFFINE[:3, 3] = -_ROT @ ((np.array(SHAPE) - 1) / 2.0)  # grid centred on the LPS origin
VOXEL_ML = 0.064
LIVER_C, LIVER_R, L_SUV = np.array([-20.0, 0.0, 0.0]), 60.0, 5.0
SPLEEN_C, SPLEEN_R, S_SUV = np.array([75.0, 0.0, 0.0]), 22.0, 15.0


def points(shape=SHAPE, affine=AFFINE) -> np.ndarray:
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).astype(np.float64)
    return ijk @ affine[:3, :3].T + affine[:3, 3]


PTS = points()


def ball(centre, radius) -> np.ndarray:
    return np.linalg.norm(PTS - np.asarray(centre, dtype=np.float64), axis=-1) <= radius


def depth_mm(mask: np.ndarray) -> np.ndarray:
    """Distance (mm) from each voxel centre of ``mask`` to the nearest voxel centre outside it (k-d tree in LPS)."""
    out = np.zeros(mask.shape)
    out[mask] = cKDTree(PTS[~mask]).query(PTS[mask], k=1)[0]
    return out


def published_grade(m, liver, upper, *, band=0.10, no_uptake=0.25, ratio=1.0):
    """clinical_rules.md 7.3 (project rule): 0 below f L; 2 when m differs from L by less than b (the band,
    edges excluded); 1 below it, 3 above it; 4 greater than ratio x S."""
    if m < no_uptake * liver:
        return 0
    if abs(m - liver) < band * liver:
        return 2
    if m < liver:
        return 1
    return 4 if m > ratio * upper else 3


def lesion(lid: int, location: str = "intrahepatic") -> Lesion:
    return Lesion(lid, location, 0.0, 0, [0.0, 0.0, 0.0], 0.0, None, 0.0, None, False, None)


class Scene:
    """Liver ball (SUV 5) with optional spleen (SUV 15), lesions and noise, background SUV 1."""

    def __init__(self, *, spleen: bool = True, liver_noise_sd: float = 0.0) -> None:
        self.liver = ball(LIVER_C, LIVER_R)
        self.suv = np.ones(SHAPE)
        self.suv[self.liver] = L_SUV
        if liver_noise_sd:
            rng = np.random.default_rng(11)
            self.suv[self.liver] += rng.normal(0.0, liver_noise_sd, int(self.liver.sum()))
        self.spleen = ball(SPLEEN_C, SPLEEN_R) if spleen else None
        if self.spleen is not None:
            self.suv[self.spleen] = S_SUV
        self.labels = np.zeros(SHAPE, dtype=np.int32)
        self.lesions: list[Lesion] = []
        self.meta: dict = {}

    def add(self, offset, radius, value, location="intrahepatic", centre=None) -> np.ndarray:
        c = (LIVER_C if centre is None else np.asarray(centre)) + np.asarray(offset, dtype=np.float64)
        m = ball(c, radius)
        assert m.any() or radius == 0.0, "phantom lesion off the grid"
        self.labels[m] = len(self.lesions) + 1
        self.suv[m] = value
        self.lesions.append(lesion(len(self.lesions) + 1, location))
        if location == "intrahepatic" and centre is None:
            self.liver |= m  # the liver mask holds its lesions
        return m

    def run(self, rules=None, **kw):
        vol = Volume(self.suv.astype(np.float32), AFFINE, FOR, source="pet", meta={"suv": dict(self.meta)})
        ctx = MeasurementContext(
            image=vol, liver=self.liver, lesion_labels=self.labels, lesions=self.lesions, spleen=self.spleen
        )
        return measure_pet(ctx, vol, rules=rules, **kw)


def _score(res, lid=1):
    return res.lesion_updates[lid]["krenning_score"]


# ------------------------------------------------------------------ [krenning]
@covers("krenning.liver_band_fraction")
def test_liver_band_fraction_moves_the_grade_2_3_boundary(tmp_path):
    s = Scene()
    s.add((0.0, 0.0, 0.0), 14.0, 5.4)  # 8 % above the liver
    assert _score(s.run(user_rules(tmp_path))) == published_grade(5.4, L_SUV, S_SUV) == 2
    changed = s.run(user_rules(tmp_path, {"krenning.liver_band_fraction": 0.05}))
    assert _score(changed) == published_grade(5.4, L_SUV, S_SUV, band=0.05) == 3


@covers("krenning.spleen_ratio")
def test_spleen_ratio_moves_the_grade_3_4_boundary(tmp_path):
    s = Scene()
    s.add((0.0, 0.0, 0.0), 14.0, 10.0)
    assert _score(s.run(user_rules(tmp_path))) == published_grade(10.0, L_SUV, S_SUV) == 3
    changed = s.run(user_rules(tmp_path, {"krenning.spleen_ratio": 0.5}))
    assert _score(changed) == published_grade(10.0, L_SUV, S_SUV, ratio=0.5) == 4


@covers("krenning.no_uptake_suv_fraction")
def test_no_uptake_fraction_moves_the_grade_0_1_boundary(tmp_path):
    s = Scene()
    s.add((0.0, 0.0, 0.0), 14.0, 1.5)  # 0.3 x liver
    assert _score(s.run(user_rules(tmp_path))) == published_grade(1.5, L_SUV, S_SUV) == 1
    changed = s.run(user_rules(tmp_path, {"krenning.no_uptake_suv_fraction": 0.35}))
    assert _score(changed) == published_grade(1.5, L_SUV, S_SUV, no_uptake=0.35) == 0


@covers("krenning.lesion_statistic")
def test_lesion_statistic_chooses_what_is_graded(tmp_path):
    """SUV 4 lesion with one hot edge voxel (SUV 20): the core mean grades 1, SUVmax grades 4."""
    s = Scene()
    m = s.add((0.0, 0.0, 0.0), 16.0, 4.0)
    edge = np.argmax(np.where(m, np.linalg.norm(PTS - LIVER_C, axis=-1), -1.0))
    edge_ijk = np.unravel_index(edge, SHAPE)
    assert depth_mm(m)[edge_ijk] < 7.0  # outside the 1 x FWHM (7 mm) core
    s.suv[edge_ijk] = 20.0
    default = s.run(user_rules(tmp_path))
    assert default.lesion_updates[1]["suv_mean_core"] == pytest.approx(4.0)
    assert _score(default) == published_grade(4.0, L_SUV, S_SUV) == 1
    changed = s.run(user_rules(tmp_path, {"krenning.lesion_statistic": "suv_max"}))
    assert _score(changed) == published_grade(20.0, L_SUV, S_SUV) == 4


@covers("krenning.core_margin_fwhm")
def test_core_margin_decides_which_voxels_the_core_mean_uses(tmp_path):
    """Cold interior (SUV 3) inside an avid 7 mm rim (SUV 12): core mean 3 (grade 1); margin 0 = all voxels."""
    s = Scene()
    m = s.add((0.0, 0.0, 0.0), 16.0, 3.0)
    rim = m & (depth_mm(m) < 7.0)
    s.suv[rim] = 12.0
    all_mean = float(s.suv[m].mean())
    default = s.run(user_rules(tmp_path))
    assert default.lesion_updates[1]["suv_mean_core"] == pytest.approx(3.0)
    assert _score(default) == published_grade(3.0, L_SUV, S_SUV) == 1
    changed = s.run(user_rules(tmp_path, {"krenning.core_margin_fwhm": 0.0}))
    assert changed.lesion_updates[1]["suv_mean_core"] == pytest.approx(all_mean)
    assert _score(changed) == published_grade(all_mean, L_SUV, S_SUV) != 1


@covers("krenning.confidence_z")
def test_confidence_z_is_the_noise_band_around_a_grade_boundary(tmp_path):
    """Noisy liver (SD 0.75 per voxel): a lesion 0.4 SUV above the 2/3 boundary is 'low' only within z SDs."""
    s = Scene(liver_noise_sd=0.75)
    s.add((0.0, 0.0, 0.0), 16.0, 5.9)

    def boundary_reasons(res):
        return [r for r in res.lesion_updates[1]["krenning_confidence_reasons"] if "noise SD" in r]

    never = s.run(user_rules(tmp_path, {"krenning.confidence_z": 0.0}))
    always = s.run(user_rules(tmp_path, {"krenning.confidence_z": 1e6}))
    margin = always.lesion_updates[1]["krenning_boundary_margin_sd"]
    assert margin is not None
    assert 0.0 < margin < 1e6
    assert boundary_reasons(never) == []
    assert never.lesion_updates[1]["krenning_confidence"] == "high"
    assert boundary_reasons(always)
    assert always.lesion_updates[1]["krenning_confidence"] == "low"


@covers("krenning.noise_correlation_fwhm_multiple")
def test_noise_correlation_lags_make_the_1ml_noise_that_of_correlated_noise(tmp_path):
    """Liver noise smoothed by a 6 mm filter (15 % per voxel): with lags up to 2 x FWHM the 1 mL noise is the
    exact SD of a 1 mL mean of that noise; with 0 (voxels independent) it is the white-noise value, 15 % x
    ||w|| / sum(w), far lower (test_pet_noise computes both from the filter kernel and the sphere weights)."""
    from test_pet_noise import NOISE, _sphere_weights, correlated_noise, mean_cv

    s = Scene()
    s.add((0.0, 0.0, 0.0), 14.0, 10.0)
    s.suv[s.liver] *= 1.0 + NOISE * correlated_noise(3, SHAPE)[s.liver]
    w = _sphere_weights(1.0)
    default = s.run(user_rules(tmp_path)).block["krenning_noise_cv_1ml"]
    white_rules = user_rules(tmp_path, {"krenning.noise_correlation_fwhm_multiple": 0.0})
    white = s.run(white_rules).block["krenning_noise_cv_1ml"]
    assert default == pytest.approx(mean_cv(w), rel=0.2)
    assert white == pytest.approx(NOISE * math.sqrt(float((w**2).sum())) / float(w.sum()), rel=0.1)
    assert white < 0.6 * default


@covers("krenning.fdg_advice_max_score")
def test_fdg_advice_max_score_flags_grades_up_to_it(tmp_path):
    s = Scene()
    s.add((0.0, 0.0, 0.0), 14.0, 10.0)  # grade 3
    default = s.run(user_rules(tmp_path))
    assert default.lesion_updates[1]["fdg_pet_advised"] is False
    changed = s.run(user_rules(tmp_path, {"krenning.fdg_advice_max_score": 3}))
    assert changed.lesion_updates[1]["fdg_pet_advised"] is True
    assert changed.block["fdg_pet_advised_lesion_ids"] == [1]


@covers("krenning.upper_reference_fallback")
def test_upper_reference_fallback_grades_against_the_kidney_without_a_spleen(tmp_path):
    s = Scene(spleen=False)
    kidney = ball(SPLEEN_C, SPLEEN_R)
    s.suv[kidney] = 8.0
    s.add((0.0, 0.0, 0.0), 14.0, 10.0)
    default = s.run(user_rules(tmp_path), extra_organs={"kidney": kidney})
    assert _score(default) == published_grade(10.0, L_SUV, 8.0) == 4
    changed = s.run(
        user_rules(tmp_path, {"krenning.upper_reference_fallback": "none"}), extra_organs={"kidney": kidney}
    )
    assert _score(changed) is None
    assert changed.lesion_updates[1]["krenning_score_lower_bound"] == 3
    assert "spleen mask" in changed.missing_inputs


@covers("krenning.heterogeneity_z")
def test_heterogeneity_z_decides_when_an_avid_part_makes_the_grade_uncertain(tmp_path):
    """Half the lesion SUV 7.5 (grade 3), half 2.5: the core mean grades 2, a 1 mL part grades 3."""
    s = Scene(liver_noise_sd=0.75)
    c = LIVER_C + np.array([0.0, 0.0, 0.0])
    m = s.add((0.0, 0.0, 0.0), 20.0, 2.5)
    hot = m & (PTS[..., 0] > c[0])
    s.suv[hot] = 7.5
    core = m & (depth_mm(m) >= 7.0)
    core_mean = float(s.suv[core].mean())
    assert published_grade(core_mean, L_SUV, S_SUV) == 2 < published_grade(7.5, L_SUV, S_SUV)

    def flagged(res):
        return any("heterogeneous" in r for r in res.lesion_updates[1]["krenning_confidence_reasons"])

    assert flagged(s.run(user_rules(tmp_path)))
    assert not flagged(s.run(user_rules(tmp_path, {"krenning.heterogeneity_z": 1000.0})))


@covers("krenning.heterogeneity_z")
def test_an_avid_part_above_the_band_is_flagged_without_a_spleen_too(tmp_path):
    """The lesion of the test above on a study without a spleen or kidney mask: the 1 mL part above the liver
    band is 3 or 4 (which one needs the spleen) and still above the core mean's grade 2, so the grade is as
    uncertain as with a spleen (it was "high": an undecided 3-or-4 peak was not compared)."""
    s = Scene(spleen=False, liver_noise_sd=0.75)
    m = s.add((0.0, 0.0, 0.0), 20.0, 2.5)
    s.suv[m & (PTS[..., 0] > LIVER_C[0])] = 7.5
    u = s.run(user_rules(tmp_path)).lesion_updates[1]
    assert u["krenning_score"] == published_grade(u["suv_mean_core"], L_SUV, math.inf) == 2
    assert u["suv_peak_inside"] >= 1.1 * L_SUV  # the avid part lies above the liver band
    assert u["krenning_confidence"] == "low"
    assert any(r.startswith("heterogeneous uptake") for r in u["krenning_confidence_reasons"])


# ------------------------------------------------------------------ [pet]
def _sretv(res, lid=1):
    return res.lesion_updates[lid]["sretv_ml"]


@covers("pet.default_delineation")
def test_default_delineation_sets_the_sretv_threshold(tmp_path):
    s = Scene()
    m = s.add((0.0, 0.0, 0.0), 14.0, 10.0)
    default = s.run(user_rules(tmp_path))  # rel:0.45 -> SUV >= 4.5 (and > the liver max 5): every voxel
    assert default.block["delineation"] == "rel:0.45"
    assert _sretv(default) == pytest.approx(int(m.sum()) * VOXEL_ML)
    changed = s.run(user_rules(tmp_path, {"pet.default_delineation": "abs:12"}))
    assert changed.block["delineation"] == "abs:12"
    assert _sretv(changed) == 0.0


@covers("pet.suv_peak_sphere_ml")
def test_suv_peak_sphere_volume_is_the_averaging_volume(tmp_path):
    """One voxel of SUV 100 in uniform liver: SUVpeak = 5 + 95 x voxel volume / sphere volume."""
    s = Scene()
    s.add((0.0, 0.0, 0.0), 0.0, 100.0)
    centre = np.unravel_index(np.argmin(np.linalg.norm(PTS - LIVER_C, axis=-1)), SHAPE)
    s.labels[centre], s.suv[centre] = 1, 100.0
    assert int((s.labels == 1).sum()) == 1
    for sphere_ml, rules in ((1.0, user_rules(tmp_path)), (8.0, user_rules(tmp_path, {"pet.suv_peak_sphere_ml": 8}))):
        peak = s.run(rules).lesion_updates[1]["suv_peak"]
        assert peak == pytest.approx(L_SUV + (100.0 - L_SUV) * VOXEL_ML / sphere_ml, rel=0.03)


@covers("pet.intrahepatic_margin_mm")
def test_intrahepatic_margin_is_how_far_outside_the_liver_mask_hepatic_sretv_reaches(tmp_path):
    """An 'intrahepatic' lesion 30 mm outside the liver mask: not hepatic at 2 mm, wholly hepatic at 100 mm."""
    s = Scene(spleen=False)
    m = s.add((0.0, 0.0, 0.0), 8.0, 10.0, centre=LIVER_C + np.array([LIVER_R + 30.0, 0.0, 0.0]))
    assert m.sum() > 20
    assert not (m & s.liver).any()
    default = s.run(user_rules(tmp_path))
    assert default.block["sretv_ml"] == 0.0
    assert default.block["whole_body_sretv_ml"] == pytest.approx(int(m.sum()) * VOXEL_ML)
    changed = s.run(user_rules(tmp_path, {"pet.intrahepatic_margin_mm": 100.0}))
    assert changed.block["sretv_ml"] == pytest.approx(int(m.sum()) * VOXEL_ML)


def _derived(s: Scene, rules) -> np.ndarray:
    vol = Volume(s.suv.astype(np.float32), AFFINE, FOR, source="pet")
    return derive_pet_lesions(vol, s.liver, vol, rules=rules)


@covers("pet.derived_delineation")
def test_derived_delineation_is_the_threshold_of_pet_derived_lesions(tmp_path):
    s = Scene()
    m = s.add((0.0, 0.0, 0.0), 14.0, 10.0)  # 2 x the liver median
    assert np.array_equal(_derived(s, user_rules(tmp_path)), m)  # liver:1.5 -> SUV >= 7.5
    assert not _derived(s, user_rules(tmp_path, {"pet.derived_delineation": "liver:2.5"})).any()  # >= 12.5


@covers("pet.derived_min_volume_ml")
def test_derived_min_volume_drops_smaller_components(tmp_path):
    s = Scene()
    m = s.add((0.0, 0.0, 0.0), 14.0, 10.0)
    ml = int(m.sum()) * VOXEL_ML
    assert 0.5 < ml < 20.0
    assert np.array_equal(_derived(s, user_rules(tmp_path)), m)
    assert not _derived(s, user_rules(tmp_path, {"pet.derived_min_volume_ml": 20.0})).any()


def _d_eq_mm(mask) -> float:
    return (6.0 * int(mask.sum()) * VOXEL_ML * 1000.0 / math.pi) ** (1.0 / 3.0)


@covers("pet.resolution_fwhm_mm")
def test_resolution_fwhm_sets_the_partial_volume_size(tmp_path):
    s = Scene()
    m = s.add((0.0, 0.0, 0.0), 12.0, 10.0)
    assert 21.0 < _d_eq_mm(m) < 30.0  # between 3 x 7 mm and 3 x 10 mm
    default = s.run(user_rules(tmp_path))
    assert default.block["resolution_fwhm_mm"] == 7.0
    assert default.lesion_updates[1]["partial_volume_warning"] is False
    changed = s.run(user_rules(tmp_path, {"pet.resolution_fwhm_mm": 10.0}))
    assert changed.lesion_updates[1]["partial_volume_warning"] is True


@covers("pet.system_fwhm_mm")
def test_system_fwhm_combines_with_the_header_filter_in_quadrature(tmp_path):
    s = Scene()
    s.meta = {"convolution_kernel": "Gauss5.00"}
    m = s.add((0.0, 0.0, 0.0), 12.0, 10.0)
    assert 3 * math.hypot(5.0, 5.0) < _d_eq_mm(m) < 3 * math.hypot(5.0, 10.0)
    default = s.run(user_rules(tmp_path))
    assert default.block["resolution_fwhm_mm"] == pytest.approx(math.hypot(5.0, 5.0))
    assert default.lesion_updates[1]["partial_volume_warning"] is False
    changed = s.run(user_rules(tmp_path, {"pet.system_fwhm_mm": 10.0}))
    assert changed.block["resolution_fwhm_mm"] == pytest.approx(math.hypot(5.0, 10.0))
    assert changed.lesion_updates[1]["partial_volume_warning"] is True


@covers("pet.partial_volume_fwhm_multiple")
def test_partial_volume_multiple_scales_the_warning_size(tmp_path):
    s = Scene()
    m = s.add((0.0, 0.0, 0.0), 12.0, 10.0)
    assert 3 * 7.0 < _d_eq_mm(m) < 4 * 7.0
    assert s.run(user_rules(tmp_path)).lesion_updates[1]["partial_volume_warning"] is False
    changed = s.run(user_rules(tmp_path, {"pet.partial_volume_fwhm_multiple": 4.0}))
    assert changed.lesion_updates[1]["partial_volume_warning"] is True
    assert changed.block["partial_volume_diameter_mm"] == pytest.approx(28.0)


@covers("pet.avid_threshold")
def test_avid_threshold_none_counts_tissue_below_the_liver(tmp_path):
    s = Scene()
    m = s.add((0.0, 0.0, 0.0), 14.0, 4.8)  # below the liver reference SUVmax 5
    assert _sretv(s.run(user_rules(tmp_path))) == 0.0
    changed = s.run(user_rules(tmp_path, {"pet.avid_threshold": "none"}))
    assert _sretv(changed) == pytest.approx(int(m.sum()) * VOXEL_ML)


@covers("pet.avid_liver_mean_multiple")
def test_avid_liver_mean_multiple_is_the_floor_multiple(tmp_path):
    s = Scene()
    m = s.add((0.0, 0.0, 0.0), 14.0, 8.0)
    method = {"pet.avid_threshold": "liver_suv_mean_multiple"}
    assert _sretv(s.run(user_rules(tmp_path, method))) == pytest.approx(int(m.sum()) * VOXEL_ML)  # 8 > 1.5 x 5
    changed = s.run(user_rules(tmp_path, {**method, "pet.avid_liver_mean_multiple": 2.0}))  # 8 < 2 x 5
    assert _sretv(changed) == 0.0


@covers("pet.avid_liver_sd_multiple")
def test_avid_liver_sd_multiple_is_the_floor_in_liver_sds(tmp_path):
    """Liver SUV 5 with voxel SD 0.75: floor 5 + k x 0.75; a 6.2 lesion is avid at k = 1, not at k = 2."""
    s = Scene(liver_noise_sd=0.75)
    m = s.add((0.0, 0.0, 0.0), 14.0, 6.2)
    method = {"pet.avid_threshold": "liver_suv_mean_plus_sd"}
    one = s.run(user_rules(tmp_path, {**method, "pet.avid_liver_sd_multiple": 1.0}))
    assert _sretv(one) == pytest.approx(int(m.sum()) * VOXEL_ML)
    assert _sretv(s.run(user_rules(tmp_path, method))) == 0.0  # shipped k = 2


@covers("pet.avid_min_suv")
def test_avid_min_suv_is_an_absolute_floor(tmp_path):
    s = Scene()
    m = s.add((0.0, 0.0, 0.0), 14.0, 8.0)
    assert _sretv(s.run(user_rules(tmp_path))) == pytest.approx(int(m.sum()) * VOXEL_ML)
    assert _sretv(s.run(user_rules(tmp_path, {"pet.avid_min_suv": 9.0}))) == 0.0


# ------------------------------------------------------------------ [pet_reference]
def two_lobe_liver():
    """Right lobe (LPS x < 0) ball r 35 mm SUV 5, left lobe ball r 45 mm SUV 7, no lesion."""
    s = Scene(spleen=False)
    right, left = ball((-50.0, 0.0, 0.0), 35.0), ball((50.0, 0.0, 0.0), 45.0)
    s.liver = right | left
    s.suv = np.ones(SHAPE)
    s.suv[right], s.suv[left] = 5.0, 7.0
    return s


def _eroded_liver_mean(s: Scene, erosion_mm: float = 10.0) -> float:
    return float(s.suv[s.liver & (depth_mm(s.liver) >= erosion_mm)].mean())


@covers("pet_reference.prefer_right_lobe")
def test_prefer_right_lobe_puts_the_liver_sphere_in_the_right_lobe(tmp_path):
    s = two_lobe_liver()
    assert s.run(user_rules(tmp_path)).block["liver_suv_mean"] == pytest.approx(5.0)
    changed = s.run(user_rules(tmp_path, {"pet_reference.prefer_right_lobe": False}))  # deepest point: left lobe
    assert changed.block["liver_suv_mean"] == pytest.approx(7.0)


@covers("pet_reference.liver_sphere_diameter_mm")
def test_liver_sphere_diameter_too_large_falls_back_to_the_eroded_liver(tmp_path):
    s = two_lobe_liver()
    assert s.run(user_rules(tmp_path)).block["liver_suv_mean"] == pytest.approx(5.0)
    changed = s.run(user_rules(tmp_path, {"pet_reference.liver_sphere_diameter_mm": 80.0}))  # needs 50 mm depth
    assert changed.block["liver_suv_mean"] == pytest.approx(_eroded_liver_mean(s))


@covers("pet_reference.liver_sphere_margin_mm")
def test_liver_sphere_margin_too_large_falls_back_to_the_eroded_liver(tmp_path):
    s = two_lobe_liver()
    assert s.run(user_rules(tmp_path)).block["liver_suv_mean"] == pytest.approx(5.0)
    changed = s.run(user_rules(tmp_path, {"pet_reference.liver_sphere_margin_mm": 40.0}))  # needs 55 mm depth
    assert changed.block["liver_suv_mean"] == pytest.approx(_eroded_liver_mean(s))


def layered_spleen():
    """Spleen ball r 26 mm: SUV 18 within 12 mm of its centre, 12 outside."""
    s = Scene(spleen=False)
    centre = np.array([68.0, 0.0, 0.0])
    s.spleen = ball(centre, 26.0)
    s.suv[s.spleen] = 12.0
    s.suv[ball(centre, 12.0)] = 18.0
    return s


def _spleen_mean(s: Scene, min_depth_mm: float) -> float:
    return float(s.suv[s.spleen & (depth_mm(s.spleen) >= min_depth_mm)].mean())


@covers("pet_reference.erosion_mm")
def test_erosion_depth_of_the_spleen_reference(tmp_path):
    s = layered_spleen()
    default = s.run(user_rules(tmp_path)).block["spleen_suv_mean"]
    assert default == pytest.approx(_spleen_mean(s, 10.0))
    changed = s.run(user_rules(tmp_path, {"pet_reference.erosion_mm": 0.0})).block["spleen_suv_mean"]
    assert changed == pytest.approx(float(s.suv[s.spleen].mean()))
    assert changed < default


@covers("pet_reference.min_reference_ml")
def test_min_reference_volume_falls_back_to_the_deepest_half(tmp_path):
    s = layered_spleen()
    d = depth_mm(s.spleen)
    default = s.run(user_rules(tmp_path)).block["spleen_suv_mean"]
    assert int((s.spleen & (d >= 10.0)).sum()) * VOXEL_ML > 2.0
    assert default == pytest.approx(_spleen_mean(s, 10.0))
    changed = s.run(user_rules(tmp_path, {"pet_reference.min_reference_ml": 1000.0})).block["spleen_suv_mean"]
    assert changed == pytest.approx(_spleen_mean(s, float(d.max()) / 2.0))
    assert changed != pytest.approx(default)


# ------------------------------------------------------------------ [pet_plausibility]
def _check(rules, **kw):
    args = {"weight_kg": 70.0, "weight_from_option": False, "dose_bq": 150e6, "uptake_s": 3600.0, "nuclide": "Ga-68"}
    args.update(kw)
    return check_conversion(**args, limits=plausibility_limits(rules["pet_plausibility"]), source="pet")


@covers("pet_plausibility.weight_kg_range")
def test_weight_range_refuses_impossible_weights(tmp_path):
    with pytest.raises(InputError, match="400 kg, outside the plausible 2-350 kg"):
        _check(user_rules(tmp_path), weight_kg=400.0)
    assert any(
        "400 kg is unusual" in w
        for w in _check(user_rules(tmp_path, {"pet_plausibility.weight_kg_range": [2, 500]}), weight_kg=400.0)
    )


@covers("pet_plausibility.weight_kg_usual")
def test_weight_usual_range_warns(tmp_path):
    assert any("250 kg is unusual" in w for w in _check(user_rules(tmp_path), weight_kg=250.0))
    assert _check(user_rules(tmp_path, {"pet_plausibility.weight_kg_usual": [30, 300]}), weight_kg=250.0) == []


@covers("pet_plausibility.suv_max_limit")
def test_suv_max_limit_refuses_a_wrong_suv_scale(tmp_path):
    with pytest.raises(InputError, match="SUVmax 250 is above 200"):
        check_suv_max(250.0, {}, plausibility_limits(user_rules(tmp_path)["pet_plausibility"]), "pet")
    changed = user_rules(tmp_path, {"pet_plausibility.suv_max_limit": 300.0})
    check_suv_max(250.0, {}, plausibility_limits(changed["pet_plausibility"]), "pet")  # no longer refused


@covers("pet_plausibility.weight_disagreement_warn_kg")
def test_weight_disagreement_with_the_header_warns(tmp_path):
    """A given weight 3 kg from Patient's Weight (70 kg in the series) is named beside the SUV; 0.5 kg is not,
    and a 5 kg tolerance silences the 3 kg one. The given weight is used either way (SUV scales with it)."""
    import glob

    import pydicom
    from pet_factory import write_pet_series

    from netlm_imaging.io.suv import suv_conversion

    aff = oblique_affine(spacing=(3.0, 3.0, 4.0), angles_deg=(5.0, 0.0, 10.0), origin=(0.0, 0.0, 0.0))
    write_pet_series(tmp_path / "pet", np.full((4, 4, 3), 1000.0), aff, weight_kg=70.0)
    hdr = [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted(glob.glob(str(tmp_path / "pet" / "*.dcm")))]

    def named(weight, rules):
        conv = suv_conversion(hdr, weight_kg=weight, source="pet", plausibility=rules["pet_plausibility"])
        assert conv.weight_kg == weight
        return any("not Patient's Weight (0010,1030) 70 kg" in w for w in conv.warnings)

    defaults = user_rules(tmp_path)
    assert named(73.0, defaults)
    assert not named(70.5, defaults)
    assert not named(73.0, user_rules(tmp_path, {"pet_plausibility.weight_disagreement_warn_kg": 5.0}))
    with pytest.raises(InputError, match=r"weight_disagreement_warn_kg = 0\.0 must be positive"):
        plausibility_limits({"weight_disagreement_warn_kg": 0.0})


@covers("pet_plausibility.nuclides.*.dose_mbq_range")
def test_nuclide_dose_range_refuses_impossible_doses(tmp_path):
    with pytest.raises(InputError, match="1200 MBq, outside the plausible 10-1000 MBq for Ga-68"):
        _check(user_rules(tmp_path), dose_bq=1200e6)
    changed = user_rules(tmp_path, {"pet_plausibility.nuclides.Ga-68.dose_mbq_range": [10, 2000]})
    assert any("1200 MBq is unusual" in w for w in _check(changed, dose_bq=1200e6))


@covers("pet_plausibility.nuclides.*.dose_mbq_usual")
def test_nuclide_dose_usual_range_warns(tmp_path):
    assert any("400 MBq is unusual" in w for w in _check(user_rules(tmp_path), dose_bq=400e6))
    changed = user_rules(tmp_path, {"pet_plausibility.nuclides.Ga-68.dose_mbq_usual": [50, 500]})
    assert _check(changed, dose_bq=400e6) == []


@covers("pet_plausibility.nuclides.*.uptake_min_range")
def test_nuclide_uptake_range_refuses_impossible_times(tmp_path):
    with pytest.raises(InputError, match="for Ga-68"):
        _check(user_rules(tmp_path), uptake_s=400 * 60.0)
    changed = user_rules(tmp_path, {"pet_plausibility.nuclides.Ga-68.uptake_min_range": [5, 500]})
    assert any("400.0 min is unusual" in w for w in _check(changed, uptake_s=400 * 60.0))


@covers("pet_plausibility.nuclides.*.uptake_min_usual")
def test_nuclide_uptake_usual_range_warns(tmp_path):
    assert any("150.0 min is unusual" in w for w in _check(user_rules(tmp_path), uptake_s=150 * 60.0))
    changed = user_rules(tmp_path, {"pet_plausibility.nuclides.Ga-68.uptake_min_usual": [30, 200]})
    assert _check(changed, uptake_s=150 * 60.0) == []


@covers("pet_plausibility.suv_max_minimum")
def test_suv_max_minimum_refuses_a_wrong_suv_scale(tmp_path):
    """Below 0.5 no tissue reaches half the body's mean uptake (SUV 1 by definition): the scale is wrong."""
    with pytest.raises(InputError, match=r"SUVmax 0.02 is below 0.5, lower than any patient's PET"):
        check_suv_max(0.02, {}, plausibility_limits(user_rules(tmp_path)["pet_plausibility"]), "pet")
    check_suv_max(0.5, {}, plausibility_limits(user_rules(tmp_path)["pet_plausibility"]), "pet")  # the edge: kept
    changed = user_rules(tmp_path, {"pet_plausibility.suv_max_minimum": 0.01})
    check_suv_max(0.02, {}, plausibility_limits(changed["pet_plausibility"]), "pet")  # no longer refused
