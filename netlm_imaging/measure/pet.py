"""PET uptake: healthy-liver and spleen reference, lesion SUVs, Krenning score, SRETV / TLSRE.

Why one module (~820 lines): the PET measurements share the grid rule and the resampling
of masks onto the PET grid; reference regions are already in pet_reference.py.

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
    ``M <= no_uptake_suv_fraction * L`` (0.25); 1 if ``M < (1 - b) L``; 2 if
    ``(1 - b) L <= M <= (1 + b) L``; above the band 4 if
    ``M > spleen_ratio * S`` (1.0), else 3. Without ``S`` a lesion above the
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
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import GeometryError, InputError, UsageError
from ..geometry import bbox, crop_affine, dilate_mm_affine, resample_array
from ..rules_data import default_section
from ..volume import Volume
from .context import MeasurementContext
from .pet_kernels import peak_map, suv_peak_kernel
from .pet_krenning import KrenningSetting, assess_lesion, grade
from .pet_reference import liver_reference, organ_reference

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

_STRING_CHOICES: dict[str, tuple[str, ...]] = {
    "lesion_statistic": ("suv_mean_core", "suv_peak", "suv_max"),
    "avid_threshold": ("liver_suv_max", "liver_suv_mean_multiple", "liver_suv_mean_plus_sd", "none"),
    "upper_reference_fallback": ("kidney", "none"),
}

_DELINEATION_RE = re.compile(r"^\s*(rel|liver|abs)\s*:\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*$", re.IGNORECASE)


# ------------------------------------------------------------------ delineation
@dataclass(frozen=True)
class Delineation:
    """A PET lesion delineation rule.

    Attributes
    ----------
    kind : {"rel", "liver", "abs"}
        Threshold family.
    value : float
        ``P`` (fraction of lesion SUVmax), ``K`` (multiple of healthy-liver
        SUVmean) or ``T`` (SUV).
    """

    kind: str
    value: float

    def __str__(self) -> str:
        return f"{self.kind}:{self.value:g}"

    def threshold(self, *, lesion_suv_max: float | None, liver_suv_mean: float | None) -> float | None:
        """SUV threshold for one lesion, or None when its reference is unknown."""
        if self.kind == "abs":
            return self.value
        if self.kind == "rel":
            return None if lesion_suv_max is None else self.value * lesion_suv_max
        return None if liver_suv_mean is None else self.value * liver_suv_mean


def parse_delineation(text: str) -> Delineation:
    """Parse ``rel:P``, ``liver:K`` or ``abs:T``.

    Parameters
    ----------
    text : str
        E.g. ``"rel:0.45"`` (45 % of lesion SUVmax), ``"liver:1.5"``,
        ``"abs:3"``.

    Returns
    -------
    Delineation

    Raises
    ------
    UsageError
        Unknown form, ``P`` outside (0, 1], ``K`` or ``T`` not positive.

    Examples
    --------
    >>> str(parse_delineation("REL:0.45")), parse_delineation("abs:3").value
    ('rel:0.45', 3.0)
    """
    m = _DELINEATION_RE.match(str(text))
    if not m:
        raise UsageError(
            f"--delineation {text!r}: expected rel:P (fraction of lesion SUVmax), liver:K (multiple of the "
            "healthy-liver SUVmean) or abs:T (SUV), e.g. rel:0.45."
        )
    kind, value = m.group(1).lower(), float(m.group(2))
    if kind == "rel" and not 0.0 < value <= 1.0:
        raise UsageError(f"--delineation {text!r}: rel:P needs 0 < P <= 1 (a fraction of SUVmax), e.g. rel:0.45.")
    if value <= 0.0 or not math.isfinite(value):
        raise UsageError(f"--delineation {text!r}: the threshold must be positive, e.g. {kind}:1.5.")
    return Delineation(kind, value)


# ------------------------------------------------------------------ rules
def _shipped_settings(name: str) -> dict[str, Any]:
    """The settings of table ``name`` of the shipped rules file (its ``source`` texts left out)."""
    return {k: v for k, v in default_section(name).items() if k != "source" and not k.endswith("_source")}


def _rules_section(rules: Mapping[str, Any] | None, name: str) -> dict[str, Any]:
    """Table ``name`` of ``rules`` over the shipped one, type-checked (the shipped file is the only default)."""
    defaults = _shipped_settings(name)
    out = dict(defaults)
    section = (rules or {}).get(name) if rules is not None else None
    if section is None:
        return out
    if not isinstance(section, Mapping):
        raise InputError(f"rules file: [{name}] must be a table of settings, got {type(section).__name__}.")
    for key, value in section.items():
        if key not in defaults:
            continue
        default = defaults[key]
        if key in ("derived_delineation", "default_delineation"):
            parse_delineation(str(value))
            out[key] = str(value)
            continue
        if isinstance(default, bool) or isinstance(default, str):
            if type(value) is not type(default):
                raise InputError(
                    f"rules file: [{name}] {key} = {value!r} must be a {type(default).__name__}; fix the rules file."
                )
            if key in _STRING_CHOICES and value not in _STRING_CHOICES[key]:
                raise InputError(
                    f"rules file: [{name}] {key} = {value!r}: use one of {', '.join(_STRING_CHOICES[key])}."
                )
            out[key] = value
            continue
        if isinstance(default, list):  # a [low, high] range (checked by the rules loader)
            out[key] = list(value) if isinstance(value, list) else value
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
            raise InputError(f"rules file: [{name}] {key} = {value!r} is not a number; fix the rules file.")
        if float(value) < 0:
            raise InputError(f"rules file: [{name}] {key} = {value!r} is negative; fix the rules file.")
        out[key] = float(value)
    return out


def check_pet_rules(rules: Mapping[str, Any]) -> None:
    """Refuse bad [krenning], [pet] and [pet_reference] values now (choices, delineations, signs, band order).

    Raises
    ------
    InputError
        As :func:`measure_pet` would, naming the table and key.
    """
    _krenning_rules(rules)
    _rules_section(rules, "pet")
    _rules_section(rules, "pet_reference")


def _krenning_rules(rules: Mapping[str, Any] | None) -> dict[str, Any]:
    k = _rules_section(rules, "krenning")
    if not k["liver_band_fraction"] < 1.0 or not k["no_uptake_suv_fraction"] < 1.0 - k["liver_band_fraction"]:
        raise InputError(
            "rules file: [krenning] needs no_uptake_suv_fraction < 1 - liver_band_fraction < 1 "
            f"(got {k['no_uptake_suv_fraction']} and {k['liver_band_fraction']}); fix the rules file."
        )
    if k["spleen_ratio"] <= 0:
        raise InputError(f"rules file: [krenning] spleen_ratio = {k['spleen_ratio']} must be positive.")
    return k


def krenning_score(
    lesion_suv: float | None,
    liver_suv_mean: float | None,
    spleen_suv_mean: float | None,
    *,
    rules: Mapping[str, Any] | None = None,
) -> tuple[int | None, int | None]:
    """Estimated Krenning score of one lesion (rule in the module docstring).

    Parameters
    ----------
    lesion_suv : float or None
        The lesion statistic (``rules["krenning"]["lesion_statistic"]``).
    liver_suv_mean, spleen_suv_mean : float or None
        Liver-reference and spleen- (or kidney-) reference SUVmean.
    rules : mapping, optional
        Rules with an optional ``"krenning"`` table.

    Returns
    -------
    (score, lower_bound) : tuple of int or None
        ``score`` None when undecidable; ``lower_bound`` 3 when only the
        spleen is missing to tell 3 from 4, else equal to ``score``.

    Examples
    --------
    >>> krenning_score(5.2, 5.0, 15.0), krenning_score(20.0, 5.0, 15.0), krenning_score(9.0, 5.0, None)
    ((2, 2), (4, 4), (None, 3))
    """
    return grade(lesion_suv, liver_suv_mean, spleen_suv_mean, _krenning_rules(rules))


# ------------------------------------------------------------------ geometry helpers
def _check_frame_of_reference(a: Volume, b: Volume, what: str, warnings: list[str]) -> None:
    fa, fb = a.frame_of_reference_uid, b.frame_of_reference_uid
    if fa and fb and fa != fb:
        raise GeometryError(
            f"{b.source}: PET FrameOfReferenceUID differs from that of {what} ({a.source}); the masks were drawn "
            "on a scan in another patient coordinate system. Use the CT of the same PET/CT acquisition, or "
            "register and resample the masks onto the PET first."
        )
    if not (fa and fb) and not a.same_grid(b):
        warnings.append(f"FrameOfReferenceUID unknown for the PET or {what}: assumed they share patient coordinates")


def _to_pet_grid(array: np.ndarray, grid: Volume, pet: Volume) -> np.ndarray:
    """Nearest-neighbour resampling of a mask / label map onto the PET grid (cropped to its content)."""
    box = bbox(array != 0, 1)
    if box is None:
        return np.zeros(pet.shape, dtype=array.dtype)
    lo, hi = box
    crop = np.ascontiguousarray(array[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]])
    return resample_array(crop, crop_affine(grid.affine, lo), pet.shape, pet.affine)


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
    from scipy import ndimage

    kr = _krenning_rules(rules)
    pr = _rules_section(rules, "pet")
    rr = _rules_section(rules, "pet_reference")
    delin = parse_delineation(delineation if delineation is not None else str(pr["default_delineation"]))
    warnings: list[str] = []
    missing: list[str] = []
    grid = ctx.image
    if suv.sheared:  # a PET gantry does not tilt: the SUV kernels and references assume orthogonal axes
        raise InputError(
            f"{suv.source}: the PET grid is sheared ({suv.shear_deg:.1f} degrees, as a gantry tilt); resample the "
            "PET series onto an orthogonal grid first (e.g. dcm2niix), then pass it with --pet."
        )
    _check_frame_of_reference(grid, suv, "the image the masks were drawn on", warnings)
    values = np.asarray(suv.array, dtype=np.float64)
    same = grid.same_grid(suv)
    spacing = np.asarray(suv.spacing, dtype=np.float64)

    def on_pet(arr: np.ndarray) -> np.ndarray:
        return np.asarray(arr) if same else _to_pet_grid(np.asarray(arr), grid, suv)

    labels = on_pet(np.asarray(ctx.lesion_labels, dtype=np.int32))
    if not same:
        labels = _add_tiny_lesions(ctx, labels, suv, warnings)
    liver = on_pet(np.asarray(ctx.liver, dtype=bool)) if ctx.liver is not None else None
    spleen = on_pet(np.asarray(ctx.spleen, dtype=bool)) if ctx.spleen is not None else None
    hepatic = None
    if ctx.liver is not None:
        dil = dilate_mm_affine(np.asarray(ctx.liver, dtype=bool), grid.affine, float(pr["intrahepatic_margin_mm"]))
        hepatic = on_pet(dil)

    fwhm, fwhm_source = _resolution_fwhm(suv, pr)
    kernel = suv_peak_kernel(suv.spacing, float(pr["suv_peak_sphere_ml"]))
    liver_ref = None
    if liver is None:
        missing.append("liver mask")
    else:
        liver_ref = liver_reference(
            values,
            liver & (labels == 0),
            suv,
            sphere_diameter_mm=float(rr["liver_sphere_diameter_mm"]),
            sphere_margin_mm=float(rr["liver_sphere_margin_mm"]),
            erosion_mm=float(rr["erosion_mm"]),
            kernel=kernel,
            prefer_right_lobe=bool(rr["prefer_right_lobe"]),
        )
        warnings.extend(liver_ref.warnings)
    upper_ref = None
    fallback = str(kr["upper_reference_fallback"])
    if spleen is not None:
        upper_ref = organ_reference(
            values,
            spleen,
            suv,
            "spleen",
            erosion_mm=float(rr["erosion_mm"]),
            min_reference_ml=float(rr["min_reference_ml"]),
        )
    elif fallback != "none" and extra_organs and extra_organs.get(fallback) is not None:
        upper_ref = organ_reference(
            values,
            on_pet(np.asarray(extra_organs[fallback], dtype=bool)),
            suv,
            fallback,
            erosion_mm=float(rr["erosion_mm"]),
            min_reference_ml=float(rr["min_reference_ml"]),
        )
        warnings.append(f"no spleen mask: the Krenning grade-4 reference is the {fallback} (as after splenectomy)")
    if upper_ref is not None:
        warnings.extend(upper_ref.warnings)
    liver_mean = liver_ref.suv_mean if liver_ref else None
    liver_sd = liver_ref.suv_sd if liver_ref else None
    liver_max = liver_ref.suv_max if liver_ref else None
    upper_mean = upper_ref.suv_mean if upper_ref else None
    if upper_mean is not None and liver_mean is not None and upper_mean <= liver_mean:
        warnings.append(
            f"{upper_ref.organ if upper_ref else 'spleen'} reference SUVmean {upper_mean:.2f} is not above the "
            f"liver reference SUVmean {liver_mean:.2f}; Krenning 4 (above it) is unreliable"
        )
    # noise of a 1 mL mean, relative (for the confidence band)
    cv_1ml = liver_ref.cv_1ml if liver_ref else None
    cv_voxel = (liver_sd / liver_mean) if (liver_sd is not None and liver_mean) else None
    floor, floor_method = _avid_floor(pr, liver_mean, liver_sd, liver_max)
    if floor_method.startswith("liver") and liver_mean is None:
        warnings.append("no liver reference: SRETV counts voxels above the absolute cut-off only (avid_min_suv)")

    sul_factor, sul_block, sul_missing = _sul(_meta_weight(suv), height_m, sex, body_sources)

    half = np.array(kernel.shape) // 2
    voxel_ml = suv.voxel_volume_ml
    core_margin = float(kr["core_margin_fwhm"]) * fwhm
    pv_diameter = float(pr["partial_volume_fwhm_multiple"]) * fwhm
    statistic = str(kr["lesion_statistic"])
    ksetting = KrenningSetting(
        rules=kr,
        liver_mean=liver_mean,
        upper_mean=upper_mean,
        cv_1ml=cv_1ml,
        cv_voxel=cv_voxel,
        core_margin_mm=core_margin,
        pv_diameter_mm=pv_diameter,
        kernel=kernel,
        spacing=spacing,
        voxel_ml=voxel_ml,
    )
    updates: dict[int, dict[str, Any]] = {}
    n_ids = int(labels.max()) if labels.size else 0
    slices = ndimage.find_objects(labels) if n_ids > 0 else []
    hep_sretv = hep_tlsre = wb_sretv = wb_tlsre = 0.0
    lesion_maxima: list[float] = []
    hepatic_maxima: list[float] = []
    need_upper = False
    pv_ids: list[int] = []
    low_ids: list[int] = []
    fdg_ids: list[int] = []
    for les in ctx.lesions:
        sl = slices[les.id - 1] if 0 < les.id <= len(slices) else None
        if sl is None:
            warnings.append(f"lesion {les.id} lies outside the PET field of view: no SUV")
            updates[les.id] = {"suv_max": None, "suv_mean": None, "suv_peak": None, "krenning_score": None}
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
        need_upper = need_upper or (score is None and bound == 3)
        if kren["partial_volume_warning"]:
            pv_ids.append(les.id)
        if kren["krenning_confidence"] == "low":
            low_ids.append(les.id)
        if kren["fdg_pet_advised"]:
            fdg_ids.append(les.id)
        thr = delin.threshold(lesion_suv_max=smax, liver_suv_mean=liver_mean)
        upd: dict[str, Any] = {
            "suv_max": smax,
            "suv_mean": smean,
            "suv_peak": peak,
            "krenning_score": score,
            "pet_voxel_count": int(les_vals.size),
            **kren,
        }
        if sul_factor is not None:
            upd.update(sul_max=smax * sul_factor, sul_peak=peak * sul_factor, sul_mean=smean * sul_factor)
        if score is None and bound is not None:
            upd["krenning_score_lower_bound"] = bound
        if thr is not None:
            sel = in_les & (sub_vals >= thr)
            if floor is not None:
                sel &= sub_vals > floor
            v_ml, tl = _volume_and_tl(sub_vals[sel], voxel_ml)
            upd["sretv_ml"], upd["tlsre"] = v_ml, tl
            upd["sretv_threshold_suv"] = max(thr, floor) if floor is not None else thr
            wb_sretv += v_ml
            wb_tlsre += tl
            if les.location == "intrahepatic" and hepatic is not None:
                h_ml, h_tl = _volume_and_tl(sub_vals[sel & hepatic[region]], voxel_ml)
                hep_sretv += h_ml
                hep_tlsre += h_tl
        else:
            upd["sretv_ml"] = upd["tlsre"] = None
        lesion_maxima.append(smax)
        if les.location == "intrahepatic":
            hepatic_maxima.append(smax)
        updates[les.id] = upd
    if need_upper and "spleen mask" not in missing:
        missing.append("spleen mask")
    if pv_ids:
        warnings.append(
            f"{len(pv_ids)} lesion(s) smaller than {pv_diameter:g} mm (3 x the PET FWHM {fwhm:g} mm): SUVs "
            f"underestimated by partial volume, Krenning estimate uncertain (lesions {_ids(pv_ids)})"
        )
    if fdg_ids:
        warnings.append(
            f"{len(fdg_ids)} lesion(s) with estimated Krenning <= {int(kr['fdg_advice_max_score'])} (low SSTR "
            f"expression; FDG PET is often advised): lesions {_ids(fdg_ids)}"
        )

    liver_ref_ok = delin.kind != "liver" or liver_mean is not None
    hepatic_ok = hepatic is not None and liver_ref_ok
    suv_meta = suv.meta.get("suv", {}) if isinstance(suv.meta.get("suv"), dict) else {}
    block: dict[str, Any] = {
        "suv_type": "SUVbw",
        "units": str(suv_meta.get("units") or suv.meta.get("units") or "SUVbw"),
        "decay_correction": str(suv_meta.get("decay_correction") or "unknown"),
        "liver_suv_mean": liver_mean,
        "spleen_suv_mean": upper_mean if upper_ref is not None and upper_ref.organ == "spleen" else None,
        "suv_max": max(lesion_maxima) if lesion_maxima else None,
        "sretv_ml": hep_sretv if hepatic_ok else None,
        "tlsre": hep_tlsre if hepatic_ok else None,
        "delineation": str(delin),
        "measured_on_grid": "pet",
        "mask_resampling": "none" if same else "nearest-neighbour onto the PET grid",
        "liver_suv_sd": liver_sd,
        "liver_suv_max": liver_max,
        "liver_reference": liver_ref.to_dict() if liver_ref else None,
        "upper_reference": upper_ref.to_dict() if upper_ref else None,
        "hepatic_lesion_suv_max": max(hepatic_maxima) if hepatic_maxima else None,
        "whole_body_sretv_ml": wb_sretv if liver_ref_ok else None,
        "whole_body_tlsre": wb_tlsre if liver_ref_ok else None,
        "sretv_avid_floor_suv": floor,
        "sretv_avid_floor_method": floor_method,
        "suv_peak_sphere_ml": float(pr["suv_peak_sphere_ml"]),
        "intrahepatic_margin_mm": float(pr["intrahepatic_margin_mm"]),
        "krenning_lesion_statistic": statistic,
        "krenning_core_margin_mm": core_margin,
        "krenning_noise_cv_1ml": cv_1ml,
        "krenning_low_confidence_lesion_ids": low_ids,
        "fdg_pet_advised_lesion_ids": fdg_ids,
        "partial_volume_lesion_ids": pv_ids,
        "resolution_fwhm_mm": fwhm,
        "resolution_fwhm_source": fwhm_source,
        "partial_volume_diameter_mm": pv_diameter,
        "krenning_rules": dict(kr),
        "pet_voxel_volume_ml": voxel_ml,
        "sul": sul_block,
        "sul_missing_inputs": sul_missing,
        "liver_sul_mean": liver_mean * sul_factor if (sul_factor is not None and liver_mean is not None) else None,
        "sul_max": max(lesion_maxima) * sul_factor if (sul_factor is not None and lesion_maxima) else None,
    }
    if delin.kind == "liver" and liver_mean is None:
        warnings.append(f"delineation {delin} needs the healthy-liver SUVmean: no SRETV without a liver mask")
    return PetResult(block=block, lesion_updates=updates, warnings=warnings, missing_inputs=missing)


def _sul(
    weight: float | None, height_m: float | None, sex: str | None, sources: Mapping[str, str] | None
) -> tuple[float | None, dict[str, Any] | None, list[str]]:
    """(SUL per SUVbw, the report's ``pet.sul`` object, missing inputs) by the Janmahasatian LBM."""
    from .sul import lean_body_mass_kg

    missing = [
        name
        for name, value in (
            ("body weight", weight),
            ("height", height_m if height_m and height_m > 0 else None),
            ("sex (male/female)", sex if sex in ("M", "F") else None),
        )
        if value is None
    ]
    if missing or weight is None or height_m is None or sex is None:
        return None, None, missing
    factor = lean_body_mass_kg(weight, float(height_m), sex) / weight
    srcs = dict(sources or {})
    block = {
        "formula": "Janmahasatian 2005",
        "sul_per_suvbw": factor,
        "height_source": srcs.get("height"),
        "sex_source": srcs.get("sex"),
    }
    return factor, block, []


def _ids(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids[:20]) + (" ..." if len(ids) > 20 else "")


def _meta_weight(suv: Volume) -> float | None:
    meta = suv.meta.get("suv")
    w = meta.get("weight_kg") if isinstance(meta, dict) else None
    try:
        return float(w) if w is not None and float(w) > 0 else None
    except (TypeError, ValueError):
        return None


def _avid_floor(
    pr: Mapping[str, Any], liver_mean: float | None, liver_sd: float | None, liver_max: float | None
) -> tuple[float | None, str]:
    """(SUV floor of avid tissue or None, method text) from ``rules["pet"]``."""
    method = str(pr["avid_threshold"])
    abs_min = float(pr["avid_min_suv"])
    liver_value: float | None = None
    text = method
    if method == "liver_suv_max":
        liver_value = liver_max
    elif method == "liver_suv_mean_multiple":
        k = float(pr["avid_liver_mean_multiple"])
        liver_value = None if liver_mean is None else k * liver_mean
        text = f"liver_suv_mean_multiple:{k:g}"
    elif method == "liver_suv_mean_plus_sd":
        n = float(pr["avid_liver_sd_multiple"])
        liver_value = None if liver_mean is None or liver_sd is None else liver_mean + n * liver_sd
        text = f"liver_suv_mean_plus_sd:{n:g}"
    values = [v for v in (liver_value, abs_min if abs_min > 0 else None) if v is not None]
    if abs_min > 0:
        text += f" and abs:{abs_min:g}"
    return (max(values) if values else None), text


#: A post-reconstruction filter width in ConvolutionKernel: "Gauss5.00", "XYZGAUSSIAN5.00", "6.4 mm", "FWHM 4".
_KERNEL_FWHM_RE = re.compile(
    r"(?:gauss[a-z_]*|fwhm|filter)\s*[:=]?\s*([0-9]+(?:\.[0-9]+)?)|([0-9]+(?:\.[0-9]+)?)\s*mm", re.IGNORECASE
)


def _resolution_fwhm(suv: Volume, pr: Mapping[str, Any]) -> tuple[float, str]:
    """PET resolution FWHM (mm) and where it came from (header filter + system, or the rules)."""
    meta = suv.meta.get("suv")
    kernel = meta.get("convolution_kernel") if isinstance(meta, dict) else None
    if kernel:
        m = _KERNEL_FWHM_RE.search(str(kernel))
        if m:
            filt = float(m.group(1) or m.group(2))
            if 0.0 < filt < float(pr["header_filter_fwhm_max_mm"]):
                system = float(pr["system_fwhm_mm"])
                fwhm = math.sqrt(filt**2 + system**2)
                return fwhm, (
                    f"ConvolutionKernel (0018,1210) {str(kernel)!r}: {filt:g} mm filter combined with "
                    f"system_fwhm_mm {system:g} (rules)"
                )
    return float(pr["resolution_fwhm_mm"]), "rules [pet] resolution_fwhm_mm (no filter FWHM in the header)"


def _volume_and_tl(vals: np.ndarray, voxel_ml: float) -> tuple[float, float]:
    if vals.size == 0:
        return 0.0, 0.0
    v = vals.size * voxel_ml
    return v, v * float(vals.mean())


def _add_tiny_lesions(ctx: MeasurementContext, labels: np.ndarray, pet: Volume, warnings: list[str]) -> np.ndarray:
    """Give lesions with no PET voxel centre the PET voxels containing their voxel centres."""
    present = set(np.unique(labels).tolist())
    out = labels
    for les in ctx.lesions:
        if les.id in present:
            continue
        ijk = np.argwhere(np.asarray(ctx.lesion_labels) == les.id)
        if ijk.size == 0:
            continue
        idx = np.rint(pet.lps_to_index(ctx.image.index_to_lps(ijk))).astype(np.int64)
        ok = np.all((idx >= 0) & (idx < np.array(pet.shape)), axis=1)
        if not ok.any():
            continue
        if out is labels:
            out = labels.copy()
        idx = idx[ok]
        free = out[idx[:, 0], idx[:, 1], idx[:, 2]] == 0
        idx = idx[free]
        if idx.size == 0:
            continue
        out[idx[:, 0], idx[:, 1], idx[:, 2]] = les.id
        warnings.append(
            f"lesion {les.id} is smaller than a PET voxel: its SUV comes from the {len(np.unique(idx, axis=0))} "
            "PET voxel(s) containing it (partial-volume effect: SUV underestimated)"
        )
    return out


# ------------------------------------------------------------------ PET-derived lesions
def derive_pet_lesions(
    suv: Volume,
    liver: np.ndarray,
    liver_grid: Volume,
    *,
    delineation: str | None = None,
    rules: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """PET-avid lesion voxels inside the liver, for studies without a lesion mask.

    The SUV is resampled (linear) onto the liver grid, cropped to the liver's
    bounding box. Voxels of the liver mask at or above the threshold are
    kept; 26-connected components smaller than
    ``rules["pet"]["derived_min_volume_ml"]`` (0.5 mL) are dropped as noise.

    The default ``liver:1.5`` (``rules["pet"]["derived_delineation"]``)
    marks voxels at least 1.5 x the liver background: clearly above the
    Krenning "equal to liver" band (+-10 %) so only uptake greater than liver
    (Krenning 3-4, the lesions SSTR PET is read for) is segmented, while the
    voxel noise of normal liver (about 15-20 % SD) rarely forms 0.5 mL
    components at +50 %. Because the lesions are not known yet, the liver
    background is the **median** SUV of the liver mask (robust to the
    lesions it contains), not the healthy-liver mean. ``abs:T`` is accepted;
    ``rel:P`` is refused (it needs lesion regions).

    Parameters
    ----------
    suv : Volume
        SUVbw volume.
    liver : numpy.ndarray
        Boolean liver mask on ``liver_grid``.
    liver_grid : Volume
        Grid of ``liver`` (the study image).
    delineation : str, optional
        ``liver:K`` or ``abs:T``; default from the rules (``liver:1.5``).
    rules : mapping, optional
        Rules with an optional ``"pet"`` table.

    Returns
    -------
    numpy.ndarray
        Boolean mask on ``liver_grid``, inside ``liver``.

    Raises
    ------
    UsageError
        ``rel:P`` or malformed delineation.
    GeometryError
        Different FrameOfReferenceUIDs or a liver mask of the wrong shape.
    """
    from scipy import ndimage

    pr = _rules_section(rules, "pet")
    delin = parse_delineation(delineation if delineation is not None else str(pr["derived_delineation"]))
    if delin.kind == "rel":
        raise UsageError(
            f"--delineation {delin}: PET-derived lesions need liver:K or abs:T (rel:P needs lesion regions, "
            "and no lesion mask was given)."
        )
    liver = np.asarray(liver, dtype=bool)
    if liver.shape != liver_grid.shape:
        raise GeometryError(
            f"{liver_grid.source}: liver mask shape {liver.shape} differs from grid {liver_grid.shape}."
        )
    _check_frame_of_reference(liver_grid, suv, "the liver mask", [])
    out = np.zeros(liver.shape, dtype=bool)
    box = bbox(liver)
    if box is None:
        return out
    lo, hi = box
    crop_liver = liver[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    crop_aff = crop_affine(liver_grid.affine, lo)
    crop_suv = resample_array(
        np.asarray(suv.array, dtype=np.float32), suv.affine, crop_liver.shape, crop_aff, interpolation="linear"
    )
    inside = crop_suv[crop_liver]
    if delin.kind == "liver":
        background = float(np.median(inside))
        threshold = delin.value * background
        logger.info("PET-derived lesions: liver median SUV %.3f, threshold %.3f", background, threshold)
    else:
        threshold = delin.value
    cand = crop_liver & (crop_suv >= threshold)
    comps, n = ndimage.label(cand, structure=np.ones((3, 3, 3), dtype=bool))
    if n:
        sizes = np.bincount(comps.ravel())
        voxel_ml = liver_grid.voxel_volume_ml
        keep = sizes * voxel_ml >= float(pr["derived_min_volume_ml"])
        keep[0] = False
        cand = keep[comps]
    out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = cand
    return out
