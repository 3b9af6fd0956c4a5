"""Cross-check of the SUVbw factor against the one a Philips scanner stored, SUV Scale Factor (7053,1000).

Philips PET images carry the scanner's own SUVbw scale in the private element (7053,1000) "SUV Scale
Factor" (creator ``Philips PET Private Group``), by which the modality-LUT values are multiplied to give
SUVbw (QIBA vendor-neutral pseudo-code; clinical_rules.md 7.1), and the Activity Concentration Scale Factor
(7053,1009) giving Bq/mL. When the series also lets the QIBA factor be computed from its own header
(weight / (dose decayed to the scan start)), the two should agree: a difference says the scanner and
the header disagree on the dose, the weight or the decay reference time, so one of the SUVs is wrong.
A difference above ``pet_plausibility.scanner_suv_disagreement_warn`` (a fraction) gives a warning naming
both factors and which one the SUV used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["compare_with_scanner"]


def compare_with_scanner(
    scanner: np.ndarray,
    computed: np.ndarray,
    *,
    limit: float,
    used: str,
    facts: str,
    warnings: list[str],
) -> dict[str, Any] | None:
    """Compare per-slice SUV factors with the scanner's; warn when they disagree by more than ``limit``.

    Parameters
    ----------
    scanner : numpy.ndarray
        The Philips SUV Scale Factor (7053,1000) per slice, NaN where the slice does not carry it.
    computed : numpy.ndarray
        The factor computed from the header (QIBA), per slice, at the same body weight.
    limit : float
        ``pet_plausibility.scanner_suv_disagreement_warn``: the relative difference that warns.
    used : str
        Which factor the SUV used, named in the warning.
    facts : str
        The inputs of the computed factor (weight, dose, uptake, half-life), named in the warning.
    warnings : list of str
        Appended to.

    Returns
    -------
    dict or None
        ``{"scanner_suv_factor", "computed_suv_factor", "disagreement_fraction", "slices_compared"}`` of the
        slice that differs most; None when no slice carries a scanner factor.

    Examples
    --------
    >>> w = []
    >>> out = compare_with_scanner(np.array([1e-3, np.nan]), np.array([8e-4, 8e-4]), limit=0.05, used="computed",
    ...                            facts="weight 70 kg", warnings=w)
    >>> round(out["disagreement_fraction"], 6), len(w)
    (0.25, 1)
    """
    have = np.isfinite(scanner) & (scanner != 0.0) & np.isfinite(computed) & (computed > 0.0)
    if not np.any(have):
        return None
    rel = np.abs(scanner[have] - computed[have]) / computed[have]
    k = int(np.argmax(rel))
    worst = float(rel[k])
    s, c = float(scanner[have][k]), float(computed[have][k])
    if worst > limit:
        warnings.append(
            f"Philips SUV Scale Factor (7053,1000) {s:.6g} disagrees with the SUVbw factor {c:.6g} computed from the "
            f"header ({facts}) by {100 * worst:.1f} % (more than pet_plausibility.scanner_suv_disagreement_warn "
            f"{100 * limit:g} %); the SUV uses {used}: check the injected dose, the weight and the injection and "
            "scan times against the scanner's"
        )
    return {
        "scanner_suv_factor": s,
        "computed_suv_factor": c,
        "disagreement_fraction": worst,
        "slices_compared": int(np.count_nonzero(have)),
    }
