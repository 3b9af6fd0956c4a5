"""Plausibility of the PET header values SUV depends on (weight, injected dose, uptake time, SUVmax).

A value that cannot be right (``*_range`` in ``rules["pet_plausibility"]``)
stops the analysis with :class:`~netlm_imaging.errors.InputError` (exit 3)
naming the file, the value and the fix (``--weight``, or a corrected header);
a value that is merely unusual (``*_usual``) gives a warning. Typical causes:
weight in grams or pounds, dose written in MBq where DICOM wants Bq, an
injection time from another day.

Examples
--------
>>> limits = plausibility_limits(None)
>>> limits["weight_kg_range"], limits["nuclides"]["Ga-68"]["dose_mbq_range"]
([2.0, 350.0], [10.0, 1000.0])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import InputError
from ..rules_data import default_section

__all__ = ["check_conversion", "check_suv_max", "plausibility_limits"]


def _pair(value: Any, name: str) -> list[float]:
    ok = isinstance(value, list | tuple) and len(value) == 2
    if ok:
        lo, hi = (float(v) for v in value)
        if math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi:
            return [lo, hi]
    raise InputError(f"rules file: [pet_plausibility] {name} = {value!r} must be [low, high] with 0 <= low < high.")


def plausibility_limits(rules_section: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validated limits: ``rules["pet_plausibility"]`` over the shipped rules file's table.

    Raises
    ------
    InputError
        A range that is not ``[low, high]``, or a non-positive SUVmax limit or weight disagreement.
    """
    out = default_section("pet_plausibility")
    if not rules_section:
        return out
    for key in ("weight_kg_range", "weight_kg_usual"):
        if key in rules_section:
            out[key] = _pair(rules_section[key], key)
    for key in (
        "suv_max_limit",
        "suv_max_minimum",
        "weight_disagreement_warn_kg",
        "half_life_warn_fraction",
        "half_life_refuse_fraction",
        "scanner_suv_disagreement_warn",
    ):
        if key in rules_section:
            limit = float(rules_section[key])
            if not limit > 0:
                raise InputError(f"rules file: [pet_plausibility] {key} = {limit!r} must be positive.")
            out[key] = limit
    for nuclide, table in dict(rules_section.get("nuclides") or {}).items():
        entry = dict(out["nuclides"].get(nuclide, {}))
        for key, value in dict(table).items():
            entry[key] = _pair(value, f"nuclides.{nuclide}.{key}")
        out["nuclides"][nuclide] = entry
    if not out["half_life_warn_fraction"] < out["half_life_refuse_fraction"]:
        raise InputError(
            f"rules file: [pet_plausibility] half_life_warn_fraction = {out['half_life_warn_fraction']!r} must be "
            f"below half_life_refuse_fraction = {out['half_life_refuse_fraction']!r}."
        )
    return out


def _outside(value: float, pair: list[float]) -> bool:
    return not pair[0] <= value <= pair[1]


def check_conversion(
    *,
    weight_kg: float | None,
    weight_from_option: bool,
    dose_bq: float | None,
    uptake_s: float | None,
    nuclide: str | None,
    limits: Mapping[str, Any],
    source: str,
    option_name: str = "--weight",
) -> list[str]:
    """Refuse impossible weight / dose / uptake time; return warnings for unusual ones.

    Parameters
    ----------
    weight_kg : float or None
        Weight used for SUVbw.
    weight_from_option : bool
        It came from the user (``option_name``), else Patient's Weight (0010,1030).
    dose_bq, uptake_s : float or None
        Radionuclide Total Dose (0018,1074) and scan - injection time.
    nuclide : str or None
        ``"Ga-68"``, ``"F-18"``, ``"Lu-177"`` ...; dose and time are checked
        only for nuclides with limits.
    limits : mapping
        From :func:`plausibility_limits`.
    source : str
        The PET series, named in messages.
    option_name : str
        Where a user's weight came from (``"--weight"``, or the clinical file's key).

    Returns
    -------
    list of str
        Warnings.

    Raises
    ------
    InputError
        A value outside its ``*_range``.
    """
    warnings: list[str] = []
    if weight_kg is not None:
        lo, hi = limits["weight_kg_range"]
        if _outside(weight_kg, limits["weight_kg_range"]):
            if weight_from_option:
                raise InputError(
                    f"{source}: {option_name} {weight_kg:g} kg is outside the plausible {lo:g}-{hi:g} kg; "
                    f"fix {option_name}."
                )
            raise InputError(
                f"{source}: Patient's Weight (0010,1030) is {weight_kg:g} kg, outside the plausible {lo:g}-{hi:g} kg "
                "(grams or pounds?); SUV would be wrong. Pass the body weight with --weight KG."
            )
        if _outside(weight_kg, limits["weight_kg_usual"]):
            ulo, uhi = limits["weight_kg_usual"]
            warnings.append(f"body weight {weight_kg:g} kg is unusual (outside {ulo:g}-{uhi:g} kg): check it")
    table = limits["nuclides"].get(nuclide) if nuclide else None
    if table is None:
        if dose_bq is not None:
            warnings.append(f"radionuclide {nuclide or 'unknown'}: injected dose and uptake time not checked")
        return warnings
    if dose_bq is not None and "dose_mbq_range" in table:
        mbq = dose_bq / 1e6
        lo, hi = table["dose_mbq_range"]
        if _outside(mbq, table["dose_mbq_range"]):
            hint = " (written in MBq or GBq instead of Bq?)" if mbq < lo else ""
            raise InputError(
                f"{source}: Radionuclide Total Dose (0018,1074) is {dose_bq:g} Bq = {mbq:g} MBq, outside the plausible "
                f"{lo:g}-{hi:g} MBq for {nuclide}{hint}; SUV would be wrong. Correct the header (DICOM wants Bq)."
            )
        if "dose_mbq_usual" in table and _outside(mbq, table["dose_mbq_usual"]):
            ulo, uhi = table["dose_mbq_usual"]
            warnings.append(f"injected dose {mbq:g} MBq is unusual for {nuclide} (outside {ulo:g}-{uhi:g} MBq)")
    if uptake_s is not None and "uptake_min_range" in table:
        minutes = uptake_s / 60.0
        lo, hi = table["uptake_min_range"]
        if _outside(minutes, table["uptake_min_range"]):
            raise InputError(
                f"{source}: uptake time {minutes:.1f} min (injection to scan) is outside the plausible {lo:g}-{hi:g} "
                f"min for {nuclide}; SUV would be wrong. Correct the injection time "
                "(RadiopharmaceuticalStartDateTime (0018,1078) / StartTime (0018,1072)) or the Series Date/Time."
            )
        if "uptake_min_usual" in table and _outside(minutes, table["uptake_min_usual"]):
            ulo, uhi = table["uptake_min_usual"]
            warnings.append(f"uptake time {minutes:.1f} min is unusual for {nuclide} (outside {ulo:g}-{uhi:g} min)")
    return warnings


def check_suv_max(suv_max: float, summary: Mapping[str, Any], limits: Mapping[str, Any], source: str) -> None:
    """Refuse an SUV image whose maximum is above ``suv_max_limit`` or below ``suv_max_minimum`` (wrong SUV scale).

    Below the minimum no tissue reaches the body's mean uptake (SUV 1 by definition): the values were
    SUVs already, written with Units BQML (a workstation's re-saved SUV series), or the dose or weight
    is far off.

    Raises
    ------
    InputError
        ``suv_max`` outside the limits; the message names the weight, dose and
        units used and the fix.
    """
    limit, minimum = float(limits["suv_max_limit"]), float(limits["suv_max_minimum"])
    if minimum <= suv_max <= limit:
        return
    w, d = summary.get("weight_kg"), summary.get("injected_dose_bq")
    facts = ", ".join(
        f
        for f in (
            f"weight {w:g} kg" if isinstance(w, int | float) else "",
            f"dose {d:g} Bq" if isinstance(d, int | float) else "",
            f"units {summary.get('units')}" if summary.get("units") else "",
        )
        if f
    )
    if suv_max < minimum:
        raise InputError(
            f"{source}: SUVmax {suv_max:.4g} is below {minimum:g}, lower than any patient's PET ({facts}); the SUV "
            "scale is wrong: values that are SUVs already are written with Units BQML, or the dose or weight is far "
            "off. Correct Units (GML for SUV values), Radionuclide Total Dose (Bq) or Patient's Weight (kg) in the "
            "header."
        )
    raise InputError(
        f"{source}: SUVmax {suv_max:.4g} is above {limit:g}, not a physiological value ({facts}); the SUV scale "
        "is wrong. Correct Patient's Weight (kg), Radionuclide Total Dose (Bq) or Units in the header, or pass "
        "--weight KG."
    )
