"""The measure stage: every quantity of one study, from the loaded volumes only.

Burden, lesions and segments (:func:`netlm_imaging.measure.burden.measure_burden`), the
whole-liver facts of the report's ``liver`` block, the PET block and the MR signal. Nothing
here decides (that is the classify stage) or reads a file (that was the load stage).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..measure.context import MeasurementContext
from ..measure.segments import SegmentTable
from ..measure.vessels import VascularContact
from .load import LoadedStudy
from .measure_mr import MrMeasurement
from .measure_pet import PetMeasurement
from .options import AnalyzeOptions

__all__ = ["Measurements", "ct_values_warning", "measure_study"]


@dataclass(frozen=True)
class Measurements:
    """What the measure stage measured.

    Attributes
    ----------
    ctx : MeasurementContext
        Masks, lesions and totals on the image grid (the lesions carry their PET values).
    method : dict
        How the burden was measured (the report's ``method``).
    liver : dict
        The report's ``liver`` block: volume, voxel count, border contact, mean intensity.
    tumor : dict
        The report's ``tumor`` block: intra- and extrahepatic volumes and lesion counts.
    non_tumorous_liver_ml : float or None
        Total liver minus intrahepatic tumour (None without a liver volume).
    segments : SegmentTable or None
        Per-Couinaud-segment liver and tumour volumes and each lesion's segment (None without a
        segment map).
    remnants : tuple of dict
        The FLR of every standard resection of the rules and of each ``--resection`` (none
        without a segment map).
    pet : PetMeasurement or None
    pet_derived : str or None
        The PET delineation of the lesions when no lesion mask was given.
    mr : MrMeasurement or None
    warnings : tuple of str
    vascular : VascularContact
        Each lesion's gap to each hepatic vessel given (not assessed without one; measure/vessels.py).
    """

    ctx: MeasurementContext
    method: dict[str, Any]
    liver: dict[str, Any]
    tumor: dict[str, Any]
    non_tumorous_liver_ml: float | None
    segments: SegmentTable | None
    remnants: tuple[dict[str, Any], ...]
    pet: PetMeasurement | None
    pet_derived: str | None
    mr: MrMeasurement | None
    warnings: tuple[str, ...]
    vascular: VascularContact = field(default_factory=lambda: VascularContact((), {}))


def measure_study(loaded: LoadedStudy, opts: AnalyzeOptions) -> Measurements:
    """Measure one loaded study.

    Without a lesion mask, a PET study's lesions are first delineated on PET inside the liver
    (``rules["pet"]["derived_delineation"]``).

    Parameters
    ----------
    loaded : LoadedStudy
        From the load stage.
    opts : AnalyzeOptions
        The margin, connectivity, fractional threshold, PET delineation and N4 switch.

    Returns
    -------
    Measurements
    """
    from ..measure.burden import measure_burden
    from ..measure.pet import derive_pet_lesions
    from ..measure.remnant import standard_resections
    from ..measure.segments import compute_segment_table
    from ..measure.summary import (
        liver_border_warning,
        liver_facts,
        non_tumorous_liver_ml,
        segmentation_refs,
        tumor_facts,
    )
    from ..measure.vessels import measure_vascular_contact
    from ..rules_data import section_or_default
    from ..segmentation import MaskLayer, role_union
    from .measure_mr import measure_study_mr
    from .measure_pet import measure_study_pet

    img, suv, rules = loaded.image, loaded.suv, loaded.rules
    layers = list(loaded.grid_layers)
    warnings: list[str] = []
    liver = role_union(layers, "liver", img.shape) if suv is not None else None
    pet_derived = None
    if suv is not None and liver is not None and not any(la.role == "lesion" for la in layers):
        pet_derived = f"pet-derived:{section_or_default(rules, 'pet')['derived_delineation']}"
        mask = img.with_array(derive_pet_lesions(suv, liver, img, rules=rules))
        layers.append(
            MaskLayer("lesion", mask, label="pet-derived", source=str(loaded.inputs.pet or loaded.inputs.image))
        )
        warnings.append(f"no lesion mask: lesions were delineated on PET inside the liver ({pet_derived})")
    burden = measure_burden(
        img,
        layers,
        margin_mm=opts.margin_mm,
        connectivity=opts.connectivity,
        fractional_threshold=opts.fractional_threshold,
    )
    warnings.extend(burden.warnings)
    ctx = burden.ctx
    if not loaded.lesions_segmented and pet_derived is None:
        ctx.lesions_segmented = False
        roles = ", ".join(sorted({la.role for la in layers})) or "none"
        warnings.append(
            f"no lesion segmentation among the inputs (roles found: {roles}): the tumour volume and lesion count "
            "of 0 are not measurements, and the involvement and the decisions that need it are left null; give the "
            "lesion segmentation too, or map its labels or segments (--labels lesion=N, --segment-pattern REGEX=lesion)"
        )
    vascular = measure_vascular_contact(ctx, layers)
    for les in ctx.lesions:  # additive lesion fields: {vessel name: surface gap mm}, and the nearest for the tables
        gaps = vascular.distances_mm.get(les.id)
        if gaps:
            les.extra["vessel_distances_mm"] = {name: round(gap, 3) for name, gap in gaps.items()}
            nearest = min(gaps, key=lambda name: gaps[name])
            les.extra["nearest_vessel"], les.extra["nearest_vessel_distance_mm"] = nearest, gaps[nearest]
    ctx.header.setdefault("modality", loaded.modality)
    ctx.header["segmentation_refs"] = segmentation_refs(loaded.layers, img.shape, opts.fractional_threshold)
    pet = None
    if suv is not None:
        ctx.pet_suv = suv
        pet = measure_study_pet(
            ctx,
            suv,
            layers,
            delineation=opts.delineation,
            rules=rules,
            pet_derived=pet_derived,
            clinical=loaded.clinical,
        )
        warnings.extend(pet.warnings)
    mr = measure_study_mr(ctx, loaded.mr, rules, n4=opts.n4) if loaded.mr is not None else None
    table = compute_segment_table(ctx)
    non_tumorous = non_tumorous_liver_ml(ctx)
    remnants = standard_resections(
        table, rules["resections"], extra=opts.resections, non_tumorous_total_ml=non_tumorous
    )
    liver_block = liver_facts(ctx, burden.extra, burden.liver_sums)
    if liver_block.get("touches_image_border"):
        warnings.extend(liver_border_warning(ctx))
    if loaded.modality == "CT":
        warnings.extend(ct_values_warning(liver_block.get("mean_intensity"), rules, str(img.source)))
    return Measurements(
        ctx=ctx,
        method=burden.method,
        liver=liver_block,
        tumor=tumor_facts(ctx, burden.extra),
        non_tumorous_liver_ml=non_tumorous,
        segments=table,
        remnants=tuple(remnants),
        pet=pet,
        pet_derived=pet_derived,
        mr=mr,
        warnings=tuple(warnings),
        vascular=vascular,
    )


def ct_values_warning(liver_mean: float | None, rules: Any, source: str) -> list[str]:
    """A warning when a CT's mean liver value cannot be in HU (``ct_plausibility.liver_mean_hu_range``).

    Parameters
    ----------
    liver_mean : float or None
        The mean image value inside the whole-liver mask (None: no liver, nothing to say).
    rules : Rules or mapping
        The loaded rules.
    source : str
        The image, named in the warning.

    Returns
    -------
    list of str
        One warning, or none.

    Examples
    --------
    >>> ct_values_warning(60.0, None, "ct.nii.gz")
    []
    >>> ct_values_warning(1084.0, None, "ct.nii.gz")[0][:61]
    'ct.nii.gz: the mean CT value of the liver is 1084.0, outside '
    """
    from ..rules_data import section_or_default

    low, high = (float(v) for v in section_or_default(rules, "ct_plausibility")["liver_mean_hu_range"])
    if liver_mean is None or low <= liver_mean <= high:
        return []
    return [
        f"{source}: the mean CT value of the liver is {liver_mean:.1f}, outside {low:g} to {high:g} HU "
        "(ct_plausibility.liver_mean_hu_range): the image values are probably not Hounsfield units (an export "
        "that dropped RescaleIntercept, or a NIfTI without its scl_inter, leaves stored values, often 1024 "
        "higher); the volumes do not depend on them, but every mean intensity of this report does. Re-export "
        "the image with its rescale, or check it"
    ]
