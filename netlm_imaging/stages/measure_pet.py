"""PET in the measure stage: lesions delineated on PET when no lesion mask was given, and the
PET block (SUV references, SRETV, per-lesion SUV and the Krenning estimate) of
:func:`netlm_imaging.measure.pet.measure_pet`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..measure.context import MeasurementContext
from ..rules_data import section_or_default
from ..segmentation import MaskLayer
from ..volume import Volume
from .rounding import rounded

__all__ = ["PetMeasurement", "derive_pet_lesions", "measure_study_pet"]


@dataclass(frozen=True)
class PetMeasurement:
    """The report's ``pet`` block and the PET inputs the measurement lacked."""

    block: dict[str, Any]
    missing_inputs: list[str]
    warnings: list[str]


def derive_pet_lesions(
    img: Volume, suv: Volume, layers: list[MaskLayer], rules: Any, source: str
) -> tuple[MaskLayer, str, str] | None:
    """A lesion layer delineated on PET inside the liver, its method and its warning (None without a liver)."""
    from ..measure.pet import derive_pet_lesions as delineate

    liver_layers = [la for la in layers if la.role == "liver"]
    if not liver_layers:
        return None
    liver = np.zeros(img.shape, dtype=bool)
    for la in liver_layers:
        liver |= la.binary()
    mask = delineate(suv, liver, img, rules=rules)
    method = f"pet-derived:{section_or_default(rules, 'pet')['derived_delineation']}"
    layer = MaskLayer("lesion", img.with_array(mask), label="pet-derived", source=source)
    return layer, method, f"no lesion mask: lesions were delineated on PET inside the liver ({method})"


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
    """Measure the PET of one study; the per-lesion SUV values go onto ``ctx.lesions``."""
    from ..measure.pet import measure_pet

    height_m, sex, body_sources = _pet_body(suv, clinical)
    kidney = _role_union(ctx.image, layers, "kidney")
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


def _role_union(img: Volume, layers: list[MaskLayer], role: str) -> np.ndarray | None:
    """Union of the layers of one role on the image grid (None when there is none)."""
    chosen = [la for la in layers if la.role == role]
    if not chosen:
        return None
    out = np.zeros(img.shape, dtype=bool)
    for la in chosen:
        out |= la.binary()
    return out


def _pet_body(suv: Volume, clinical: Any) -> tuple[float | None, str | None, dict[str, str]]:
    """Height (m) and sex (M/F) for SUL: the clinical file first, then the PET header."""
    from ..measure.sul import normalise_sex

    raw_header = suv.meta.get("header")
    header: dict[str, Any] = raw_header if isinstance(raw_header, dict) else {}
    sources: dict[str, str] = {}
    height_m: float | None = None
    sex: str | None = None
    clin_height = getattr(clinical, "height_cm", None)
    if clin_height:
        height_m, sources["height"] = float(clin_height) / 100.0, "clinical file"
    elif header.get("patient_size_m"):
        size = float(header["patient_size_m"])
        if 0.3 <= size <= 2.6:
            height_m, sources["height"] = size, "DICOM PatientSize (0010,1020)"
    clin_sex = normalise_sex(getattr(clinical, "sex", None))
    if clin_sex:
        sex, sources["sex"] = clin_sex, "clinical file"
    elif normalise_sex(header.get("patient_sex")):
        sex, sources["sex"] = normalise_sex(header.get("patient_sex")), "DICOM PatientSex (0010,0040)"
    return height_m, sex, sources
