"""The body weight of SUVbw: the user's (``--weight``, the clinical file's ``weight_kg``) or Patient's Weight.

A given weight overrides Patient's Weight (0010,1030) (a warning when they differ by more than
``pet_plausibility.weight_disagreement_warn_kg``); SUVs the scanner scaled with Patient's Weight
(Units GML, the Philips SUV Scale Factor) are rescaled to a given weight, SUVbw being linear in it.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, UnsupportedError
from .suv_result import SuvConversion, SuvSeries

__all__ = ["body_weight", "scanner_weighted", "weight_origin"]


def weight_origin(series: SuvSeries) -> str:
    """Where the SUV's body weight came from: the user (naming the option) or the header."""
    return f"user ({series.inputs.weight_source})" if series.inputs.weight_kg is not None else "header (0010,1030)"


def body_weight(series: SuvSeries, src: str) -> float | None:
    header_weight, weight_kg = series.header_weight, series.inputs.weight_kg
    if weight_kg is not None:  # above 0: SuvInputs checked it
        apart = float(series.limits["weight_disagreement_warn_kg"])
        if header_weight is not None and header_weight > 0 and abs(header_weight - float(weight_kg)) > apart:
            series.warnings.append(
                f"SUV uses the weight {float(weight_kg):g} kg of {series.inputs.weight_source}, not Patient's Weight "
                f"(0010,1030) {header_weight:g} kg"
            )
        return float(weight_kg)
    if header_weight is None or header_weight <= 0:
        if not series.inputs.require_weight:
            return None
        raise InputError(
            f"{src}: Patient's Weight (0010,1030) is {'missing' if header_weight is None else header_weight}; "
            "SUVbw needs the body weight. Pass it with --weight KG."
        )
    return header_weight


def scanner_weighted(series: SuvSeries, factors: np.ndarray, label: str, method: str) -> SuvConversion:
    """SUVs the scanner scaled with Patient's Weight (0010,1030), rescaled to a given weight (SUVbw is linear in it).

    Without a header weight the scale cannot be moved: a clinical file's weight is then ignored with a
    warning, an explicit ``--weight`` refused.
    """
    src, weight_kg, header_weight = series.source, series.inputs.weight_kg, series.header_weight
    option = series.inputs.weight_source
    if weight_kg is not None and (header_weight is None or header_weight <= 0) and option != "--weight":
        series.warnings.append(
            f"{label}: used as written; {option} ({float(weight_kg):g} kg) cannot rescale them "
            "because Patient's Weight (0010,1030) is missing"
        )
        weight_kg = None
    if weight_kg is not None:
        if header_weight is None or header_weight <= 0:
            raise UnsupportedError(
                f"{src}: --weight cannot be applied to {label} because Patient's Weight (0010,1030) is "
                f"{'missing' if header_weight is None else f'{header_weight:g}'}; drop --weight."
            )
        factors = factors * (float(weight_kg) / header_weight)
        if float(weight_kg) != header_weight:
            series.warnings.append(
                f"{label}: rescaled from the header weight {header_weight:g} kg to {option} {float(weight_kg):g} kg"
            )
    series.warnings.extend(series.plausible(float(weight_kg) if weight_kg is not None else header_weight, None, None))
    return series.scanner_scaled(factors, float(weight_kg) if weight_kg is not None else None, method)
