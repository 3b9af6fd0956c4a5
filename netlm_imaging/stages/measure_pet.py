"""PET in the measure stage: the PET block of :func:`netlm_imaging.measure.pet.measure_pet`
(SUV references, SUL, SRETV, per-lesion SUV and the Krenning estimate), as the report states it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..measure.context import MeasurementContext
from ..rounding import rounded
from ..segmentation import MaskLayer
from ..volume import Volume

__all__ = ["PetMeasurement", "measure_study_pet"]


@dataclass(frozen=True)
class PetMeasurement:
    """The report's ``pet`` block, the PET inputs the measurement lacked, and its warnings."""

    block: dict[str, Any]
    missing_inputs: list[str]
    warnings: list[str]


def measure_study_pet(
    ctx: MeasurementContext,
    suv: Volume,
    layers: list[MaskLayer],
    *,
    delineation: str | None,
    rules: Any,
    pet_derived: str | None,
    clinical: Any = None,
) -> PetMeasurement:
    """Measure the PET of one study; the per-lesion SUV values go onto ``ctx.lesions``.

    Parameters
    ----------
    ctx : MeasurementContext
        The burden measured on the image grid.
    suv : Volume
        The SUVbw image (its own grid).
    layers : list of MaskLayer
        The role layers on the image grid (a kidney layer is a second uptake reference).
    delineation : str, optional
        ``--delineation``.
    rules : Rules
    pet_derived : str, optional
        The delineation of lesions derived from PET (none was given), named in the block.
    clinical : ClinicalInputs, optional
        Height and sex for SUL (before the PET header's).
    """
    from ..measure.pet import measure_pet
    from ..measure.sul import sul_body
    from ..rules_data import section_or_default
    from ..segmentation import role_union

    header = suv.meta.get("header")
    height_m, sex, body_sources = sul_body(
        header if isinstance(header, dict) else {},
        getattr(clinical, "height_cm", None),
        getattr(clinical, "sex", None),
        section_or_default(rules, "pet")["sul_height_m_range"],
    )
    kidney = role_union(layers, "kidney", ctx.image.shape)
    res = measure_pet(
        ctx,
        suv,
        delineation=delineation,
        rules=rules,
        height_m=height_m,
        sex=sex,
        body_sources=body_sources,
        extra_organs={"kidney": kidney} if kidney is not None else {},
    )
    for les in ctx.lesions:
        upd = dict(res.lesion_updates.get(les.id, {}))
        for key in ("suv_max", "suv_mean", "suv_peak", "krenning_score"):
            val = upd.pop(key, None)
            setattr(les, key, None if val is None else (round(float(val), 3) if key != "krenning_score" else int(val)))
        les.extra.update(rounded(upd, 4))
    if suv.meta.get("suv", {}).get("suv_unavailable") and ctx.pet_suv is suv:
        ctx.pet_suv = None  # Bq/mL, not SUV: the QA page's SUV scales would misread it
    block = dict(res.block)
    for key, val in list(block.items()):
        if isinstance(val, float):
            block[key] = round(val, 4 if key.endswith("_ml") else 3)
        elif isinstance(val, dict):
            block[key] = rounded(val, 4)
    if pet_derived:
        block["sretv_delineation"] = block.get("delineation")
        block["delineation"] = pet_derived
    return PetMeasurement(block, list(res.missing_inputs), list(res.warnings))
