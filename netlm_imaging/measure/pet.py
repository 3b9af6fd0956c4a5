"""PET uptake: healthy-liver and spleen reference, lesion SUVs, Krenning score, SRETV / TLSRE.

The measurement is here; its settings (the delineation rule and the rules tables) are in
pet_settings.py, the masks' way onto the PET grid in pet_grid.py, the reference regions in
pet_reference.py, the Krenning estimate in pet_krenning.py and PET-derived lesions in pet_derive.py.

Grid rule
---------
Everything is measured **on the PET grid** (``measured_on_grid = "pet"``).
When the masks were drawn on another grid (the CT of a PET/CT, same
FrameOfReference), the lesion instance map, the liver and the spleen are
resampled onto the PET grid by physical (LPS) position with nearest
neighbour (a PET voxel belongs to a mask when its centre falls inside it).
So SUVmax is a real PET voxel value, as on the scanner console, and SUVpeak
averages native PET voxels; interpolating SUV onto a finer CT grid would
smooth the maximum. A lesion smaller than a PET voxel that gets no PET
voxel centre is given the PET voxels containing its voxel centres (with a
warning), so no lesion silently loses its SUV. Different FrameOfReferenceUIDs
are refused (:class:`~netlm_imaging.errors.GeometryError`).

Definitions
-----------
healthy liver
    Liver mask (``ctx.liver``: liver UNION intrahepatic lesions) minus every
    lesion voxel.
SUVpeak
    Highest mean SUV in a sphere of ``rules["pet"]["suv_peak_sphere_ml"]``
    (1 mL: radius 6.20 mm) defined in physical space, whose **centre is a
    voxel centre of the lesion** (the sphere may extend beyond the lesion).
    Each PET voxel is weighted by the fraction of its volume inside the
    sphere (7 x 7 x 7 sub-samples), so the sphere is 1 mL on any voxel
    size; parts outside the image are left out of the mean. Computed for all
    centres at once by an FFT convolution with that kernel. For a lesion
    colder than its surroundings the best sphere sits at the lesion edge and
    SUVpeak can exceed the lesion's SUVmax (the definition is made for hot
    lesions).
Reference regions (:mod:`netlm_imaging.measure.pet_reference`)
    ``L`` = SUVmean of the liver reference (3 cm sphere in healthy liver away
    from lesions and edges, else the eroded healthy liver); ``S`` = SUVmean of
    the eroded spleen, or of the eroded kidney when there is no spleen mask
    (``rules["krenning"]["upper_reference_fallback"]``).
Krenning score (estimated, clinical_rules.md 7.3, project decision)
    ``M`` = the lesion statistic ``rules["krenning"]["lesion_statistic"]``:
    ``suv_mean_core`` (default; SUVmean of the lesion voxels at least
    ``core_margin_fwhm`` x the PET FWHM inside the lesion edge, its deepest
    voxels when none is that deep), ``suv_peak`` or ``suv_max``;
    ``b = liver_band_fraction`` (0.10): 0 if
    ``M < no_uptake_suv_fraction * L`` (0.25); 1 if ``M <= (1 - b) L``; 2 if
    ``(1 - b) L < M < (1 + b) L`` (differs from the liver by less than ``b``);
    above the band 4 if ``M > spleen_ratio * S`` (1.0), else 3; each edge met
    within a relative ``SUV_EDGE_REL_TOL`` (float32 rounding). Without ``S`` a lesion above the
    band is 3 or 4: score null, lower bound 3, and "spleen mask" in
    ``missing_inputs``. Confidence is "low" within ``confidence_z`` noise SDs
    of a boundary, for lesions below 3 x FWHM (partial volume) or without a
    core (``docs/pet.md``).
SRETV / TLSRE
    Per lesion the delineated voxels are the lesion's voxels with SUV at or
    above the threshold of :class:`Delineation` (``rel:P``: ``P x`` the
    lesion's SUVmax; ``liver:K``: ``K x L``; ``abs:T``: ``T``) **and above the
    avid floor** (``rules["pet"]["avid_threshold"]``, default the liver
    reference SUVmax; ``avid_min_suv``), so no delineation counts tissue at
    or below the liver level. Hepatic SRETV counts intrahepatic lesions'
    delineated voxels inside the liver mask dilated by
    ``rules["pet"]["intrahepatic_margin_mm"]`` (2 mm). As ``ctx.liver``
    already contains the intrahepatic lesions, their delineated voxels stay
    whole; the restriction guards masks that do not;
    ``TLSRE = sum(SRETV_lesion x SUVmean over the delineated voxels)`` in
    mL x SUV. ``whole_body_*`` are the same over all lesions without the
    liver restriction.
SUL
    ``SUL = SUVbw x LBM / weight`` (Janmahasatian, :mod:`netlm_imaging.measure.sul`)
    when height and sex are given.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..geometry import dilate_mm_affine
from ..volume import Volume
from .context import MeasurementContext
from .pet_derive import derive_pet_lesions
from .pet_grid import add_tiny_lesions, check_frame_of_reference, fov_fractions, to_pet_grid
from .pet_inputs import suv_inputs
from .pet_kernels import peak_map, suv_peak_kernel
from .pet_krenning import KrenningSetting, assess_lesion
from .pet_reference import ReferenceRegion, liver_reference, organ_reference
from .pet_settings import (
    Delineation,
    avid_floor,
    check_pet_rules,
    krenning_rules,
    krenning_score,
    parse_delineation,
    resolution_fwhm,
    rules_section,
)
from .pet_sul import meta_weight, sul_factor
from .pet_unscaled import without_suv_scale

__all__ = [
    "Delineation",
    "PetResult",
    "check_pet_rules",
    "derive_pet_lesions",
    "krenning_score",
    "measure_pet",
    "parse_delineation",
    "suv_peak_kernel",
]

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------ result
@dataclass
class PetResult:
    """What :func:`measure_pet` returns.

    Attributes
    ----------
    block : dict
        The report's ``pet`` object (schema fields plus additive ones).
    lesion_updates : dict of int to dict
        Lesion id -> ``suv_max``, ``suv_mean``, ``suv_peak``,
        ``krenning_score`` (schema fields) and additive ``sretv_ml``,
        ``tlsre``, ``pet_voxel_count``, ``krenning_score_lower_bound``.
    warnings : list of str
    missing_inputs : list of str
        E.g. ``"spleen mask"``, ``"liver mask"``.
    """

    block: dict[str, Any]
    lesion_updates: dict[int, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    missing_inputs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _PetMasks:
    """The masks on the PET grid: lesion labels, liver, spleen and the liver dilated by the margin."""

    labels: np.ndarray
    liver: np.ndarray | None
    spleen: np.ndarray | None
    hepatic: np.ndarray | None
    same_grid: bool
    grid: Volume  # the grid the masks were drawn on
    pet: Volume

    def onto_pet(self, mask: np.ndarray) -> np.ndarray:
        """A mask of the drawing grid on the PET grid (as it is when that is the PET's)."""
        return _onto_pet(mask, self.grid, self.pet, self.same_grid)


def _onto_pet(mask: np.ndarray, grid: Volume, pet: Volume, same: bool) -> np.ndarray:
    arr = np.asarray(mask)
    return arr if same else to_pet_grid(arr, grid, pet)


def _masks_on_pet(ctx: MeasurementContext, suv: Volume, margin_mm: float, warnings: list[str]) -> _PetMasks:
    """The study's masks on the PET grid (as they are when the masks were drawn on the PET)."""
    grid = ctx.image
    same = grid.same_grid(suv)
    labels = _onto_pet(np.asarray(ctx.lesion_labels, dtype=np.int32), grid, suv, same)
    if not same:
        labels = add_tiny_lesions(ctx, labels, suv, warnings)
    liver = _onto_pet(np.asarray(ctx.liver, dtype=bool), grid, suv, same) if ctx.liver is not None else None
    spleen = _onto_pet(np.asarray(ctx.spleen, dtype=bool), grid, suv, same) if ctx.spleen is not None else None
    hepatic = None
    if ctx.liver is not None:
        dilated = dilate_mm_affine(np.asarray(ctx.liver, dtype=bool), grid.affine, margin_mm)
        hepatic = _onto_pet(dilated, grid, suv, same)
    return _PetMasks(labels, liver, spleen, hepatic, same, grid, suv)


def _references(
    suv: Volume,
    values: np.ndarray,
    masks: _PetMasks,
    kernel: np.ndarray,
    settings: tuple[dict[str, Any], dict[str, Any]],
    extra_organs: Mapping[str, np.ndarray] | None,
    warnings: list[str],
    noise_lag_mm: float,
) -> tuple[ReferenceRegion | None, ReferenceRegion | None]:
    """The healthy-liver reference and the grade-4 (spleen, else the fallback organ's) reference."""
    kr, rr = settings
    liver_ref = None
    if masks.liver is not None:
        liver_ref = liver_reference(
            values,
            masks.liver & (masks.labels == 0),
            suv,
            sphere_diameter_mm=float(rr["liver_sphere_diameter_mm"]),
            sphere_margin_mm=float(rr["liver_sphere_margin_mm"]),
            erosion_mm=float(rr["erosion_mm"]),
            kernel=kernel,
            prefer_right_lobe=bool(rr["prefer_right_lobe"]),
            noise_lag_mm=noise_lag_mm,
        )
        warnings.extend(liver_ref.warnings)
    upper_ref = None
    fallback = str(kr["upper_reference_fallback"])
    organ = masks.spleen
    if organ is None and fallback != "none" and extra_organs and extra_organs.get(fallback) is not None:
        organ = masks.onto_pet(np.asarray(extra_organs[fallback], dtype=bool))
    if organ is not None:
        upper_ref = organ_reference(
            values,
            organ,
            suv,
            "spleen" if masks.spleen is not None else fallback,
            erosion_mm=float(rr["erosion_mm"]),
            min_reference_ml=float(rr["min_reference_ml"]),
            noise_lag_mm=noise_lag_mm,
        )
        if masks.spleen is None:
            warnings.append(f"no spleen mask: the Krenning grade-4 reference is the {fallback} (as after splenectomy)")
        warnings.extend(upper_ref.warnings)
    liver_mean = liver_ref.suv_mean if liver_ref else None
    upper_mean = upper_ref.suv_mean if upper_ref else None
    if upper_mean is not None and liver_mean is not None and upper_mean <= liver_mean:
        warnings.append(
            f"{upper_ref.organ if upper_ref else 'spleen'} reference SUVmean {upper_mean:.2f} is not above the "
            f"liver reference SUVmean {liver_mean:.2f}; Krenning 4 (above it) is unreliable"
        )
    return liver_ref, upper_ref


@dataclass
class _Uptake:
    """Every lesion's uptake and the sums over them (hepatic and whole-body SRETV / TLSRE, maxima, id lists)."""

    updates: dict[int, dict[str, Any]] = field(default_factory=dict)
    hep_sretv: float = 0.0
    hep_tlsre: float = 0.0
    wb_sretv: float = 0.0
    wb_tlsre: float = 0.0
    lesion_maxima: list[float] = field(default_factory=list)
    hepatic_maxima: list[float] = field(default_factory=list)
    need_upper: bool = False
    pv_ids: list[int] = field(default_factory=list)
    low_ids: list[int] = field(default_factory=list)
    fdg_ids: list[int] = field(default_factory=list)
    cut_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Delineated:
    """What SRETV counts: the delineation, the avid floor, the voxel volume and the SUL factor."""

    delineation: Delineation
    floor: float | None
    liver_mean: float | None
    voxel_ml: float
    sul_factor: float | None


def _lesion_uptake(
    ctx: MeasurementContext,
    suv: Volume,
    values: np.ndarray,
    masks: _PetMasks,
    kernel: np.ndarray,
    ksetting: KrenningSetting,
    counted: _Delineated,
    warnings: list[str],
) -> _Uptake:
    """SUVmax / mean / peak, the Krenning estimate and SRETV / TLSRE of each lesion, on the PET grid."""
    from scipy import ndimage

    labels, hepatic, voxel_ml, floor = masks.labels, masks.hepatic, counted.voxel_ml, counted.floor
    half = np.array(kernel.shape) // 2
    n_ids = int(labels.max()) if labels.size else 0
    slices = ndimage.find_objects(labels) if n_ids > 0 else []
    inside = {} if masks.same_grid else fov_fractions(ctx, suv)
    up = _Uptake()
    for les in ctx.lesions:
        sl = slices[les.id - 1] if 0 < les.id <= len(slices) else None
        if sl is None:
            warnings.append(f"lesion {les.id} lies outside the PET field of view: no SUV")
            up.updates[les.id] = {"suv_max": None, "suv_mean": None, "suv_peak": None, "krenning_score": None}
            continue
        lo = np.array([s.start for s in sl])
        hi = np.array([s.stop for s in sl])
        plo = np.maximum(lo - half, 0)
        phi = np.minimum(hi + half, np.array(suv.shape))
        region = tuple(slice(int(a), int(b)) for a, b in zip(plo, phi))
        sub_vals = values[region]
        in_les = labels[region] == les.id
        les_vals = sub_vals[in_les]
        smax, smean = float(les_vals.max()), float(les_vals.mean())
        peak = float(peak_map(sub_vals, kernel)[in_les].max())
        kren = assess_lesion(sub_vals, in_les, smax, peak, ksetting)
        score, bound = kren.pop("krenning_score"), kren.pop("krenning_score_lower_bound")
        up.need_upper = up.need_upper or (score is None and bound == 3)
        if kren["partial_volume_warning"]:
            up.pv_ids.append(les.id)
        if kren["krenning_confidence"] == "low":
            up.low_ids.append(les.id)
        if kren["fdg_pet_advised"]:
            up.fdg_ids.append(les.id)
        thr = counted.delineation.threshold(lesion_suv_max=smax, liver_suv_mean=counted.liver_mean)
        upd: dict[str, Any] = {
            "suv_max": smax,
            "suv_mean": smean,
            "suv_peak": peak,
            "krenning_score": score,
            "pet_voxel_count": int(les_vals.size),
            **kren,
        }
        if inside.get(les.id, 1.0) < 1.0:
            upd["pet_fov_fraction"] = inside[les.id]
            up.cut_ids.append(les.id)
            warnings.append(
                f"lesion {les.id} lies partly outside the PET field of view ({100.0 * inside[les.id]:.0f} % of its "
                "volume inside): its SUVs, Krenning estimate and SRETV describe only that part"
            )
        if counted.sul_factor is not None:
            f = counted.sul_factor
            upd.update(sul_max=smax * f, sul_peak=peak * f, sul_mean=smean * f)
        if score is None and bound is not None:
            upd["krenning_score_lower_bound"] = bound
        if thr is not None:
            sel = in_les & (sub_vals >= thr)
            if floor is not None:
                sel &= sub_vals > floor
            v_ml, tl = _volume_and_tl(sub_vals[sel], voxel_ml)
            upd["sretv_ml"], upd["tlsre"] = v_ml, tl
            upd["sretv_threshold_suv"] = max(thr, floor) if floor is not None else thr
            up.wb_sretv += v_ml
            up.wb_tlsre += tl
            if les.location == "intrahepatic" and hepatic is not None:
                h_ml, h_tl = _volume_and_tl(sub_vals[sel & hepatic[region]], voxel_ml)
                up.hep_sretv += h_ml
                up.hep_tlsre += h_tl
        else:
            upd["sretv_ml"] = upd["tlsre"] = None
        up.lesion_maxima.append(smax)
        if les.location == "intrahepatic":
            up.hepatic_maxima.append(smax)
        up.updates[les.id] = upd
    return up


def measure_pet(
    ctx: MeasurementContext,
    suv: Volume,
    *,
    delineation: str | None = None,
    rules: Mapping[str, Any] | None = None,
    height_m: float | None = None,
    sex: str | None = None,
    body_sources: Mapping[str, str] | None = None,
    extra_organs: Mapping[str, np.ndarray] | None = None,
) -> PetResult:
    """Measure uptake of the reference organs and every lesion on an SUVbw volume.

    The steps: the masks onto the PET grid, the liver and grade-4 references, the avid floor
    and SUL factor, each lesion's uptake, then the report's ``pet`` block.

    Parameters
    ----------
    ctx : MeasurementContext
        Masks on ``ctx.image``'s grid (the PET itself, or the CT of a PET/CT).
    suv : Volume
        SUVbw (:func:`netlm_imaging.io.pet.load_suv_volume`).
    delineation : str or None
        SRETV threshold rule (:func:`parse_delineation`); None uses
        ``rules["pet"]["default_delineation"]`` (``rel:0.45``).
    rules : mapping, optional
        Rules with optional ``"krenning"``, ``"pet"`` and ``"pet_reference"``
        tables; a table or key not given comes from the shipped rules file
        (:mod:`netlm_imaging.rules_data`).
    height_m, sex : float, str or None
        Body height and sex (``"M"``/``"F"``) for SUL; SUL is null without them.
    body_sources : mapping, optional
        Where height and sex came from (``{"height": "clinical file", ...}``).
    extra_organs : mapping of str to numpy.ndarray, optional
        Boolean organ masks on ``ctx.image``'s grid by role (``"kidney"``):
        the grade-4 reference when there is no spleen mask.

    Returns
    -------
    PetResult

    Raises
    ------
    GeometryError
        PET and masks have different FrameOfReferenceUIDs.
    UsageError
        Bad ``delineation``.
    InputError
        Invalid rules values.
    """
    kr = krenning_rules(rules)
    pr = rules_section(rules, "pet")
    rr = rules_section(rules, "pet_reference")
    delin = parse_delineation(delineation if delineation is not None else str(pr["default_delineation"]))
    warnings: list[str] = []
    missing: list[str] = []
    _check_not_sheared(suv)
    check_frame_of_reference(ctx.image, suv, "the image the masks were drawn on", warnings)
    values = np.asarray(suv.array, dtype=np.float64)
    masks = _masks_on_pet(ctx, suv, float(pr["intrahepatic_margin_mm"]), warnings)
    fwhm, fwhm_source = resolution_fwhm(suv, pr)
    kernel = suv_peak_kernel(suv.spacing, float(pr["suv_peak_sphere_ml"]))
    if masks.liver is None:
        missing.append("liver mask")
    noise_lag_mm = float(kr["noise_correlation_fwhm_multiple"]) * fwhm
    liver_ref, upper_ref = _references(suv, values, masks, kernel, (kr, rr), extra_organs, warnings, noise_lag_mm)
    liver_mean = liver_ref.suv_mean if liver_ref else None
    liver_sd = liver_ref.suv_sd if liver_ref else None
    floor, floor_method = avid_floor(pr, liver_mean, liver_sd, liver_ref.suv_max if liver_ref else None)
    if floor_method.startswith("liver") and liver_mean is None:
        warnings.append("no liver reference: SRETV counts voxels above the absolute cut-off only (avid_min_suv)")
    sul = sul_factor(meta_weight(suv), height_m, sex, body_sources)
    ksetting = _krenning_setting(kr, pr, suv, kernel, fwhm, liver_ref, upper_ref)
    counted = _Delineated(delin, floor, liver_mean, suv.voxel_volume_ml, sul[0])
    up = _lesion_uptake(ctx, suv, values, masks, kernel, ksetting, counted, warnings)
    _uptake_warnings(up, kr, ksetting.pv_diameter_mm, fwhm, missing, warnings)
    block = _pet_block(
        suv,
        delin,
        masks,
        (liver_ref, upper_ref),
        up,
        (floor, floor_method),
        (pr, kr),
        ksetting,
        (fwhm, fwhm_source),
        sul,
    )
    if delin.kind == "liver" and liver_mean is None:
        warnings.append(f"delineation {delin} needs the healthy-liver SUVmean: no SRETV without a liver mask")
    suv_meta = _suv_meta(suv)
    if suv_meta.get("suv_unavailable"):
        scale_free_sretv = delin.kind != "abs" and float(pr["avid_min_suv"]) <= 0
        lacking, warning = without_suv_scale(block, up.updates, suv_meta, str(delin) if scale_free_sretv else None)
        missing.extend(lacking)
        warnings.append(warning)
    return PetResult(block=block, lesion_updates=up.updates, warnings=warnings, missing_inputs=missing)


def _check_not_sheared(suv: Volume) -> None:
    """Refuse a sheared PET grid: the SUV kernels and references assume orthogonal axes."""
    if suv.sheared:  # a PET gantry does not tilt: the SUV kernels and references assume orthogonal axes
        raise InputError(
            f"{suv.source}: the PET grid is sheared ({suv.shear_deg:.1f} degrees, as a gantry tilt); resample the "
            "PET series onto an orthogonal grid first (e.g. dcm2niix), then pass it with --pet."
        )


def _krenning_setting(
    kr: Mapping[str, Any],
    pr: Mapping[str, Any],
    suv: Volume,
    kernel: np.ndarray,
    fwhm: float,
    liver_ref: ReferenceRegion | None,
    upper_ref: ReferenceRegion | None,
) -> KrenningSetting:
    """What each lesion's Krenning estimate needs: the references, their noise, the margins and the kernel."""
    liver_mean = liver_ref.suv_mean if liver_ref else None
    liver_sd = liver_ref.suv_sd if liver_ref else None
    return KrenningSetting(
        rules=kr,
        liver_mean=liver_mean,
        upper_mean=upper_ref.suv_mean if upper_ref else None,
        # noise of a 1 mL mean, relative (for the confidence band)
        cv_1ml=liver_ref.cv_1ml if liver_ref else None,
        cv_voxel=(liver_sd / liver_mean) if (liver_sd is not None and liver_mean) else None,
        core_margin_mm=float(kr["core_margin_fwhm"]) * fwhm,
        pv_diameter_mm=float(pr["partial_volume_fwhm_multiple"]) * fwhm,
        kernel=kernel,
        spacing=np.asarray(suv.spacing, dtype=np.float64),
        voxel_ml=suv.voxel_volume_ml,
        noise=liver_ref.noise if liver_ref else None,
        liver_mean_cv=liver_ref.mean_cv if liver_ref else None,
        upper_mean_cv=upper_ref.mean_cv if upper_ref else None,
    )


def _uptake_warnings(
    up: _Uptake, kr: Mapping[str, Any], pv_diameter: float, fwhm: float, missing: list[str], warnings: list[str]
) -> None:
    """Add the missing spleen mask and the partial-volume and FDG-advice warnings of the lesions' uptake."""
    if up.need_upper and "spleen mask" not in missing:
        missing.append("spleen mask")
    if up.pv_ids:
        warnings.append(
            f"{len(up.pv_ids)} lesion(s) smaller than {pv_diameter:g} mm (3 x the PET FWHM {fwhm:g} mm): SUVs "
            f"underestimated by partial volume, Krenning estimate uncertain (lesions {_ids(up.pv_ids)})"
        )
    if up.fdg_ids:
        warnings.append(
            f"{len(up.fdg_ids)} lesion(s) with estimated Krenning <= {int(kr['fdg_advice_max_score'])} (low SSTR "
            f"expression; FDG PET is often advised): lesions {_ids(up.fdg_ids)}"
        )


def _suv_meta(suv: Volume) -> dict[str, Any]:
    """The SUV volume's ``suv`` metadata (how it was scaled; empty when unknown)."""
    return suv.meta.get("suv", {}) if isinstance(suv.meta.get("suv"), dict) else {}


def _pet_block(
    suv: Volume,
    delin: Delineation,
    masks: _PetMasks,
    refs: tuple[ReferenceRegion | None, ReferenceRegion | None],
    up: _Uptake,
    avid: tuple[float | None, str],
    settings: tuple[Mapping[str, Any], Mapping[str, Any]],
    ksetting: KrenningSetting,
    resolution: tuple[float, str],
    sul: tuple[float | None, dict[str, Any] | None, list[str]],
) -> dict[str, Any]:
    """The report's ``pet`` object from the references, the lesions' uptake and the settings used."""
    liver_ref, upper_ref = refs
    floor, floor_method = avid
    pr, kr = settings
    fwhm, fwhm_source = resolution
    sul_factor, sul_block, sul_missing = sul
    liver_mean = liver_ref.suv_mean if liver_ref else None
    upper_mean = upper_ref.suv_mean if upper_ref else None
    liver_ref_ok = delin.kind != "liver" or liver_mean is not None
    hepatic_ok = masks.hepatic is not None and liver_ref_ok
    suv_meta = _suv_meta(suv)
    return {
        "suv_type": "SUVbw",
        "units": str(suv_meta.get("units") or suv.meta.get("units") or "SUVbw"),
        "decay_correction": str(suv_meta.get("decay_correction") or "unknown"),
        "suv_inputs": suv_inputs(suv_meta),
        "liver_suv_mean": liver_mean,
        "spleen_suv_mean": upper_mean if upper_ref is not None and upper_ref.organ == "spleen" else None,
        "suv_max": max(up.lesion_maxima) if up.lesion_maxima else None,
        "sretv_ml": up.hep_sretv if hepatic_ok else None,
        "tlsre": up.hep_tlsre if hepatic_ok else None,
        "delineation": str(delin),
        "measured_on_grid": "pet",
        "mask_resampling": "none" if masks.same_grid else "nearest-neighbour onto the PET grid",
        "liver_suv_sd": liver_ref.suv_sd if liver_ref else None,
        "liver_suv_max": liver_ref.suv_max if liver_ref else None,
        "liver_reference": liver_ref.to_dict() if liver_ref else None,
        "upper_reference": upper_ref.to_dict() if upper_ref else None,
        "hepatic_lesion_suv_max": max(up.hepatic_maxima) if up.hepatic_maxima else None,
        "whole_body_sretv_ml": up.wb_sretv if liver_ref_ok else None,
        "whole_body_tlsre": up.wb_tlsre if liver_ref_ok else None,
        "sretv_avid_floor_suv": floor,
        "sretv_avid_floor_method": floor_method,
        "suv_peak_sphere_ml": float(pr["suv_peak_sphere_ml"]),
        "intrahepatic_margin_mm": float(pr["intrahepatic_margin_mm"]),
        "krenning_lesion_statistic": str(kr["lesion_statistic"]),
        "krenning_core_margin_mm": ksetting.core_margin_mm,
        "krenning_noise_cv_1ml": ksetting.cv_1ml,
        "krenning_low_confidence_lesion_ids": up.low_ids,
        "fdg_pet_advised_lesion_ids": up.fdg_ids,
        "partial_volume_lesion_ids": up.pv_ids,
        "pet_fov_cut_lesion_ids": up.cut_ids,
        "resolution_fwhm_mm": fwhm,
        "resolution_fwhm_source": fwhm_source,
        "partial_volume_diameter_mm": ksetting.pv_diameter_mm,
        "krenning_rules": dict(kr),
        "pet_voxel_volume_ml": ksetting.voxel_ml,
        "sul": sul_block,
        "sul_missing_inputs": sul_missing,
        "liver_sul_mean": liver_mean * sul_factor if (sul_factor is not None and liver_mean is not None) else None,
        "sul_max": max(up.lesion_maxima) * sul_factor if (sul_factor is not None and up.lesion_maxima) else None,
    }


def _ids(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids[:20]) + (" ..." if len(ids) > 20 else "")


def _volume_and_tl(vals: np.ndarray, voxel_ml: float) -> tuple[float, float]:
    if vals.size == 0:
        return 0.0, 0.0
    v = vals.size * voxel_ml
    return v, v * float(vals.mean())
