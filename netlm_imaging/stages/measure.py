"""The measure stage: every quantity of one study, from the loaded volumes only.

Burden, lesions and segments (:func:`netlm_imaging.measure.burden.measure_burden`), the
whole-liver facts of the report's ``liver`` block, the PET block and the MR signal. Nothing
here decides (that is the classify stage) or reads a file (that was the load stage).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..measure.context import MeasurementContext
from ..segmentation import MaskLayer
from ..volume import Volume
from .load import LoadedStudy
from .measure_mr import MrMeasurement
from .measure_pet import PetMeasurement
from .options import AnalyzeOptions
from .rounding import round_or_none

__all__ = ["Measurements", "measure_study"]

_SEG_REF_KEYS = ("sop_instance_uid", "series_instance_uid", "segment_number", "segment_label", "roi_number", "roi_name")


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
    pet : PetMeasurement or None
    pet_derived : str or None
        The PET delineation of the lesions when no lesion mask was given.
    mr : MrMeasurement or None
    warnings : tuple of str
    """

    ctx: MeasurementContext
    method: dict[str, Any]
    liver: dict[str, Any]
    tumor: dict[str, Any]
    non_tumorous_liver_ml: float | None
    pet: PetMeasurement | None
    pet_derived: str | None
    mr: MrMeasurement | None
    warnings: tuple[str, ...]


def measure_study(loaded: LoadedStudy, opts: AnalyzeOptions) -> Measurements:
    """Measure one loaded study.

    Parameters
    ----------
    loaded : LoadedStudy
        From the load stage.
    opts : AnalyzeOptions
        The margin, connectivity, fractional threshold and PET delineation.

    Returns
    -------
    Measurements
    """
    from ..measure.burden import measure_burden
    from .measure_mr import measure_study_mr
    from .measure_pet import derive_pet_lesions, measure_study_pet

    img, suv, rules = loaded.image, loaded.suv, loaded.rules
    layers = list(loaded.grid_layers)
    warnings: list[str] = []
    pet_derived = None
    if suv is not None and not any(la.role == "lesion" for la in layers):
        source = str(loaded.inputs.pet or loaded.inputs.image)
        derived = derive_pet_lesions(img, suv, layers, rules, source)
        if derived is not None:
            layer, pet_derived, warning = derived
            layers.append(layer)
            warnings.append(warning)
    burden = measure_burden(
        img,
        layers,
        margin_mm=opts.margin_mm,
        connectivity=opts.connectivity,
        fractional_threshold=opts.fractional_threshold,
    )
    warnings.extend(burden.warnings)
    ctx = burden.ctx
    ctx.header.setdefault("modality", loaded.modality)
    ctx.header["segmentation_refs"] = [_segmentation_ref(la, img, opts) for la in loaded.layers]
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
    return Measurements(
        ctx=ctx,
        method=burden.method,
        liver=_liver_facts(ctx, img, burden.extra),
        tumor=_tumor_facts(ctx, burden.extra),
        non_tumorous_liver_ml=_non_tumorous_ml(ctx),
        pet=pet,
        pet_derived=pet_derived,
        mr=mr,
        warnings=tuple(warnings),
    )


def _segmentation_ref(layer: MaskLayer, img: Volume, opts: AnalyzeOptions) -> dict[str, Any]:
    """Where a role layer came from, and its voxel count on the image grid when it is a SEG segment.

    The SR references a segment only when it is the region measured.
    """
    ref = {k: v for k, v in layer.mask.meta.items() if k in _SEG_REF_KEYS}
    voxels = None
    if layer.mask.meta.get("sop_instance_uid") and layer.mask.shape == img.shape:
        voxels = int(np.count_nonzero(layer.binary(opts.fractional_threshold)))
    return ref | {"role": layer.role, "label": layer.label, "source": layer.source, "voxel_count": voxels}


def _liver_facts(ctx: MeasurementContext, img: Volume, extra: dict[str, Any]) -> dict[str, Any]:
    """The report's ``liver`` block: volume, voxel count, border contact and mean intensity."""
    liver: dict[str, Any] = {"volume_ml": round_or_none(ctx.liver_volume_ml, 6)}
    if ctx.liver is None:
        return liver
    # whole-liver reductions on the liver's bounding box: nothing of the liver lies outside it
    box = ctx.liver_bbox if ctx.liver_bbox is not None else (slice(None),) * 3
    in_box = ctx.liver[box]
    liver["voxel_count"] = int(np.count_nonzero(in_box))
    if ctx.liver_bbox is not None:
        liver["touches_image_border"] = any(box[a].start == 0 or box[a].stop == ctx.liver.shape[a] for a in range(3))
    else:
        bb_any = [np.any(ctx.liver, axis=tuple(a for a in range(3) if a != ax)) for ax in range(3)]
        liver["touches_image_border"] = bool(any(b[0] or b[-1] for b in bb_any))
    n_liver = liver["voxel_count"]
    if n_liver:
        # a masked reduction (any memory order); boolean indexing of F-ordered arrays is ~10x slower
        total = np.add.reduce(img.array[box], axis=None, where=in_box, dtype=np.float64)
        liver["mean_intensity"] = round_or_none(float(total) / n_liver, 3)
    else:
        liver["mean_intensity"] = None
    for key in ("liver_volume_ml_binary", "liver_mask_included_lesions"):
        if key in extra:
            value = extra[key]
            name = key.replace("liver_", "", 1) if key.startswith("liver_volume") else key
            liver[name] = round_or_none(value, 6) if isinstance(value, float) else value
    return liver


def _tumor_facts(ctx: MeasurementContext, extra: dict[str, Any]) -> dict[str, Any]:
    """The report's ``tumor`` block: intra- and extrahepatic volumes and lesion counts."""
    tumor: dict[str, Any] = {
        "intrahepatic_volume_ml": round_or_none(ctx.intrahepatic_tumor_ml, 6),
        "extrahepatic_volume_ml": round_or_none(ctx.extrahepatic_tumor_ml, 6),
        "lesion_count": sum(les.location == "intrahepatic" for les in ctx.lesions),
        "extrahepatic_lesion_count": sum(les.location == "extrahepatic" for les in ctx.lesions),
    }
    if "intrahepatic_volume_ml_binary" in extra:
        tumor["intrahepatic_volume_ml_binary"] = round_or_none(extra["intrahepatic_volume_ml_binary"], 6)
    return tumor


def _non_tumorous_ml(ctx: MeasurementContext) -> float | None:
    """Total liver minus intrahepatic tumour, mL (never below 0; None without a liver volume)."""
    liver_ml = ctx.liver_volume_ml
    if liver_ml is None or liver_ml <= 0:
        return None
    return max(0.0, liver_ml - ctx.intrahepatic_tumor_ml)
