"""PET without a known SUV scale: which fields are SUV-valued and are nulled.

When the body weight or the injected dose is unknown (:mod:`netlm_imaging.io.suv`, ``suv_unavailable``) the PET
volume holds the activity concentration (Bq/mL), a constant multiple of SUVbw. Everything that
is a ratio of uptake (the Krenning estimate against liver and spleen, its confidence, a
``rel:`` or ``liver:`` delineation's voxel counts and volumes) is measured as usual; every
field in SUV, SUL or SUV x mL units is set to ``null`` here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["drop_absolute_uptake", "without_suv_scale"]

#: Fields in SUV (or SUL, or SUV x mL) units: unknown when the body weight is (the Krenning grade and
#: its confidence, the voxel counts and the volumes of a liver-relative or lesion-relative delineation are ratios).
_ABSOLUTE_BLOCK = (
    "liver_suv_mean",
    "spleen_suv_mean",
    "suv_max",
    "tlsre",
    "liver_suv_sd",
    "liver_suv_max",
    "hepatic_lesion_suv_max",
    "whole_body_tlsre",
    "sretv_avid_floor_suv",
    "sul",
    "liver_sul_mean",
    "sul_max",
)
_ABSOLUTE_LESION = (
    "suv_max",
    "suv_mean",
    "suv_peak",
    "suv_mean_core",
    "suv_peak_inside",
    "krenning_statistic_suv",
    "sul_max",
    "sul_peak",
    "sul_mean",
    "tlsre",
    "sretv_threshold_suv",
)


def drop_absolute_uptake(block: dict[str, Any], updates: dict[int, dict[str, Any]], keep_sretv: bool) -> None:
    """Null every SUV-valued field of the block and the lesions (the values are Bq/mL, not SUV).

    Parameters
    ----------
    block : dict
        The report's ``pet`` block, changed in place.
    updates : dict of int to dict
        Per-lesion PET fields, changed in place.
    keep_sretv : bool
        The delineation and the avid floor are ratios of uptake (``rel:``, ``liver:``, no absolute
        cut-off), so the SRETV volumes stand; otherwise they are nulled too.
    """
    for key in _ABSOLUTE_BLOCK:
        if key in block:
            block[key] = None
    for key in ("liver_reference", "upper_reference"):
        ref = block.get(key)
        if isinstance(ref, dict):
            block[key] = {**ref, "suv_mean": None, "suv_sd": None, "suv_max": None}
    if not keep_sretv:
        block["sretv_ml"] = block["whole_body_sretv_ml"] = None
    for upd in updates.values():
        for key in _ABSOLUTE_LESION:
            if key in upd:
                upd[key] = None
        if not keep_sretv and "sretv_ml" in upd:
            upd["sretv_ml"] = None


#: The facts of SUVbw a PET series may lack (SuvConversion field, name in missing_inputs).
_SUV_FACTS = (("weight_kg", "body weight"), ("injected_dose_bq", "injected dose"))


def without_suv_scale(
    block: dict[str, Any], updates: dict[int, dict[str, Any]], suv_meta: Mapping[str, Any], sretv_kept: str | None
) -> tuple[list[str], str]:
    """Null the SUV-valued fields of a PET whose SUV scale is unknown; the missing inputs and the warning.

    Parameters
    ----------
    block, updates
        As :func:`drop_absolute_uptake`; ``block["suv_missing_inputs"]`` is set to the reason.
    suv_meta : mapping
        The PET's ``meta["suv"]`` (``suv_unavailable``, ``weight_kg``, ``injected_dose_bq``).
    sretv_kept : str or None
        The delineation when it is a ratio of uptake (its SRETV stands), else None (SRETV nulled).

    Returns
    -------
    tuple of (list of str, str)
        The missing inputs (``"body weight (for SUV)"``, ``"injected dose (for SUV)"``) and the warning.
    """
    drop_absolute_uptake(block, updates, sretv_kept is not None)
    block["suv_missing_inputs"] = [str(suv_meta.get("suv_unavailable"))]
    lacking = [name for key, name in _SUV_FACTS if suv_meta.get(key) is None] or ["body weight"]
    warning = (
        f"PET without {' and '.join(lacking)}: every SUV is null; the Krenning estimate"
        + (f" and SRETV ({sretv_kept})" if sretv_kept is not None else "")
        + " are ratios of uptake and were measured on the activity concentration"
    )
    return [f"{name} (for SUV)" for name in lacking], warning
