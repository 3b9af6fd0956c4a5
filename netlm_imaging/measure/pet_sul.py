"""SUL (SUV normalised by lean body mass): the factor per SUVbw by the Janmahasatian LBM and the report's
``pet.sul`` object, from the body weight the SUV was scaled with, the height and the sex."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..volume import Volume

__all__ = ["meta_weight", "sul_factor"]


def sul_factor(
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


def meta_weight(suv: Volume) -> float | None:
    """The body weight (kg) the SUV was scaled with, from its ``suv`` metadata (None when unknown)."""
    meta = suv.meta.get("suv")
    w = meta.get("weight_kg") if isinstance(meta, dict) else None
    try:
        return float(w) if w is not None and float(w) > 0 else None
    except (TypeError, ValueError):
        return None
