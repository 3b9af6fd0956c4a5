"""The patient's body size in the remnant decisions: BSA, the TELV it predicts, and the standardized FLR.

Formulas (clinical_rules.md sections 6 and 10):

- Mosteller BSA = sqrt(height_cm x weight_kg / 3600) [C];
  DuBois BSA = 0.007184 x height_cm^0.725 x weight_kg^0.425 [C];
- TELV (Vauthey) = -794.41 + 1267.28 x BSA (mL) [S]/[C] (the rules keys ``body.*``);
- sFLR = FLR / TELV.

The height and weight come from :func:`netlm_imaging.clinical.inputs.resolve_body_size`
(the clinical file, else the header, within the rules' plausible ranges); the FLR of each
resection from :mod:`netlm_imaging.measure.remnant`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..clinical.inputs import ClinicalInputs, resolve_body_size, source_label
from ..errors import InputError
from ..rules_data import default_section
from .rules import Rules

__all__ = [
    "FlrBasis",
    "bsa_m2",
    "condition_conflict_warnings",
    "flr_basis",
    "standardized",
    "telv_ml",
    "threshold_key",
    "threshold_or_none",
]

logger = logging.getLogger(__name__)


def bsa_m2(height_cm: float, weight_kg: float, formula: str = "mosteller") -> float:
    """Body surface area (m²).

    Parameters
    ----------
    height_cm : float
    weight_kg : float
    formula : {"mosteller", "dubois"}

    Returns
    -------
    float

    Raises
    ------
    InputError
        Unknown formula or non-positive height/weight.

    Examples
    --------
    >>> round(bsa_m2(180, 81), 4)  # sqrt(180 * 81 / 3600) = sqrt(4.05)
    2.0125
    """
    if not (height_cm > 0 and weight_kg > 0):
        raise InputError(f"BSA needs positive height and weight, got {height_cm!r} cm and {weight_kg!r} kg")
    if formula == "mosteller":
        return math.sqrt(height_cm * weight_kg / 3600.0)
    if formula == "dubois":
        return 0.007184 * height_cm**0.725 * weight_kg**0.425
    raise InputError(f"unknown BSA formula {formula!r}; use mosteller or dubois (rules key body.bsa_formula)")


def telv_ml(bsa: float, *, intercept_ml: float | None = None, slope_ml_per_m2: float | None = None) -> float:
    """Total estimated liver volume (Vauthey): ``intercept + slope x BSA`` (mL).

    ``intercept_ml`` and ``slope_ml_per_m2`` default to the shipped rules keys
    ``body.telv_intercept_ml`` and ``body.telv_slope_ml_per_m2``.

    Examples
    --------
    >>> round(telv_ml(2.0), 2)
    1740.15
    """
    body = default_section("body")
    a = float(body["telv_intercept_ml"]) if intercept_ml is None else intercept_ml
    b = float(body["telv_slope_ml_per_m2"]) if slope_ml_per_m2 is None else slope_ml_per_m2
    value = a + b * bsa
    if value <= 0:
        raise InputError(f"TELV {value:.1f} mL from BSA {bsa:.3f} m² is not positive; check height and weight")
    return value


def standardized(remnant: Mapping[str, Any], telv: float | None) -> dict[str, Any]:
    """A measured remnant (:func:`~netlm_imaging.measure.remnant.remnant_for_resection`) with its
    ``standardized_flr_percent`` (FLR / TELV, None without a TELV) and ``telv_ml`` added.

    Examples
    --------
    >>> standardized({"flr_ml": 435.0}, 1740.0)
    {'flr_ml': 435.0, 'standardized_flr_percent': 25.0, 'telv_ml': 1740.0}
    """
    flr = remnant["flr_ml"]
    return {**remnant, "standardized_flr_percent": 100.0 * flr / telv if telv else None, "telv_ml": telv}


def threshold_key(condition: str | None, basis: str) -> str:
    """The rules key of the FLR threshold of a liver condition on a denominator.

    Examples
    --------
    >>> threshold_key("chemotherapy", "non_tumorous")
    'flr.non_tumorous_threshold_percent.chemotherapy'
    """
    table = "threshold_percent" if basis == "telv" else "non_tumorous_threshold_percent"
    return f"flr.{table}.{condition or 'normal'}"


def threshold_or_none(rules: Rules, condition: str | None, basis: str) -> float | None:
    """The FLR threshold of ``condition`` on ``basis`` (:meth:`Rules.flr_threshold_percent`); None when the
    rules have none for it (a missing input of the FLR decisions, not a reason to stop the analysis)."""
    try:
        return rules.flr_threshold_percent(condition, basis)
    except InputError:
        return None


@dataclass(frozen=True)
class FlrBasis:
    """What an FLR is judged against: the body size, the TELV, the liver condition's threshold and its denominator.

    Attributes
    ----------
    height_cm, weight_kg : float or None
        From :func:`~netlm_imaging.clinical.inputs.resolve_body_size`.
    bsa_m2, telv_ml : float or None
        None without height and weight.
    liver_condition : str or None
        The clinical file's (None: the normal-liver threshold is used).
    threshold_percent : float or None
        The FLR threshold (rules ``flr.threshold_percent`` or ``flr.non_tumorous_threshold_percent``);
        None when the rules have none for the liver condition on the deciding denominator (the
        rules key that would give it is in ``missing_inputs``).
    basis : str
        The denominator the threshold is for (``"telv"`` or ``"non_tumorous"``; the fallback when
        the rules' denominator is missing).
    denominator_ml : float or None
        Its volume (None when missing).
    rationale, missing_inputs : list of str
    warnings : list of str
        Clinical inputs that disagreed on the liver condition, with the threshold used.
    """

    height_cm: float | None
    weight_kg: float | None
    bsa_m2: float | None
    telv_ml: float | None
    liver_condition: str | None
    threshold_percent: float | None
    basis: str
    denominator_ml: float | None
    rationale: list[str]
    missing_inputs: list[str]
    warnings: list[str] = field(default_factory=list)


def flr_basis(
    clinical: ClinicalInputs | None, header: Mapping[str, Any], rules: Rules, non_tumorous_ml: float | None
) -> FlrBasis:
    """The body size, TELV and FLR threshold of one study (clinical_rules.md section 6).

    Parameters
    ----------
    clinical : ClinicalInputs or None
    header : mapping
        The image's non-identifying header facts (PatientSize, PatientWeight).
    rules : Rules
        Its ``body`` and ``flr`` tables.
    non_tumorous_ml : float or None
        The non-tumorous liver volume (the ``non_tumorous`` denominator).
    """
    height, weight, rationale = resolve_body_size(clinical, header, rules["body"])
    missing: list[str] = []
    bsa = telv = None
    body = rules["body"]
    if height is not None and weight is not None:
        bsa = bsa_m2(height, weight, body["bsa_formula"])
        telv = telv_ml(bsa, intercept_ml=body["telv_intercept_ml"], slope_ml_per_m2=body["telv_slope_ml_per_m2"])
        rationale.append(
            f"BSA {bsa:.3f} m² ({body['bsa_formula']}), TELV {telv:.1f} mL "
            f"({body['telv_intercept_ml']:g} + {body['telv_slope_ml_per_m2']:g} x BSA, Vauthey)"
        )
    else:
        missing.append("height/weight")
        rationale.append("height/weight unknown: no BSA, TELV or standardized FLR")
    condition = clinical.liver_condition if clinical else None
    if condition is None:
        missing.append("liver_condition")
        rationale.append(
            "liver condition not given: decided with the normal-liver FLR threshold where the most demanding "
            "condition's threshold decides alike, else left open (liver_condition missing)"
        )
    flr_rules = rules["flr"]

    basis = flr_rules["denominator"]
    denom = telv if basis == "telv" else non_tumorous_ml
    threshold = threshold_or_none(rules, condition, basis)
    if threshold is None:  # e.g. chemotherapy on the non-tumorous liver: no study gives one (CR section 6)
        key = threshold_key(condition, basis)
        missing.append(key)
        rationale.append(
            f"no FLR threshold for liver condition '{condition}' on the '{basis}' denominator in the rules "
            f"({key}; none is sourced in clinical_rules.md section 6): FLR adequacy, the debulking plan and the "
            "decisions on it are not judged; give the key in a rules file to judge them"
        )
    if threshold is not None and denom is None and flr_rules["fallback_denominator"] != "none":
        fb = flr_rules["fallback_denominator"]
        fb_denom = telv if fb == "telv" else non_tumorous_ml
        fb_table = flr_rules["threshold_percent" if fb == "telv" else "non_tumorous_threshold_percent"]
        if fb_denom is not None and (condition or "normal") in fb_table:
            threshold = rules.flr_threshold_percent(condition, fb)
            rationale.append(
                f"FLR adequacy judged on the fallback denominator '{fb}' because '{basis}' is missing, with the "
                f"threshold published for that denominator ({threshold:g}%, flr."
                f"{'threshold_percent' if fb == 'telv' else 'non_tumorous_threshold_percent'})"
            )
            basis, denom = fb, fb_denom
        elif fb_denom is not None:
            rationale.append(
                f"no fallback: no sourced FLR threshold for liver condition '{condition or 'normal'}' on the "
                f"'{fb}' denominator; adequacy needs '{basis}'"
            )
    warnings = [] if clinical is None else condition_conflict_warnings(clinical, rules, threshold, basis)
    return FlrBasis(height, weight, bsa, telv, condition, threshold, basis, denom, rationale, missing, warnings)


def condition_conflict_warnings(
    clinical: ClinicalInputs, rules: Rules, threshold: float | None, basis: str
) -> list[str]:
    """A warning naming the clinical inputs that disagreed on the liver condition and the FLR threshold used.

    The most demanding condition decides (clinical_rules.md section 6: the FLR threshold is higher after
    chemotherapy, Shindoh 30 % of TELV for chemotherapy > 3 months, and with steatosis, fibrosis or cirrhosis);
    ``liver_condition: normal`` beside ``chemotherapy: yes`` got that higher threshold without a word.
    """
    if clinical.condition_conflict is None:
        return []
    condition = clinical.liver_condition or "normal"
    normal = threshold_or_none(rules, "normal", basis)
    than = f", not the normal liver's {normal:g}%" if normal is not None and condition != "normal" else ""
    key = threshold_key(condition, basis)
    used = (
        f"the FLR threshold used is the '{condition}' one, {threshold:g}% of {basis} ({key}){than}"
        if threshold is not None
        else f"the '{condition}' liver has no FLR threshold on {basis} ({key}): the FLR is not judged"
    )
    text = (
        f"{source_label(clinical)}: {clinical.condition_conflict}: {used}; the most demanding condition given decides "
        "(clinical_rules.md section 6); give one liver condition if this is not the patient's"
    )
    logger.warning(text)
    return [text]
