"""Response categories of a follow-up: the thresholds read from the rules (:class:`ResponseThresholds`),
RECIST 1.1 on the target diameter sums (:func:`recist_response`) and the volumetric response on the
intrahepatic tumour volume (:func:`volumetric_response`); see :mod:`.longitudinal` for the method."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..classify.rules import DIAMETER_REL_TOL
from ..rules_data import default_section

__all__ = ["ResponseThresholds", "recist_response", "volumetric_response"]


#: ResponseThresholds field -> (rules table, key) it is read from.
_RULE_OF_FIELD: dict[str, tuple[str, str]] = {
    **{f"recist_{k}": ("recist", k) for k in ("pr_decrease_percent", "pd_increase_percent", "pd_min_increase_mm")},
    **{k: ("response", k) for k in ("volume_pr_decrease_percent", "volume_pd_increase_percent")},
    **{k: ("response", k) for k in ("match_distance_mm", "registration_min_liver_dice")},
    **{k: ("recist", k) for k in ("max_targets", "max_targets_per_organ")},
    "measurable_diameter_mm": ("recist", "measurable_min_diameter_mm"),
}


def _shipped(name: str) -> Any:
    """The default of field ``name``: its key in the shipped rules file (the one place its value is written)."""
    table, key = _RULE_OF_FIELD[name]
    return default_section(table)[key]


@dataclass(frozen=True)
class ResponseThresholds:
    """Response thresholds and matching parameters ([D] marks design choices).

    Parameters
    ----------
    recist_pr_decrease_percent : float
        RECIST 1.1 PR: decrease of the target sum from baseline (rules ``recist.pr_decrease_percent``, 30).
    recist_pd_increase_percent : float
        RECIST 1.1 PD: increase over the nadir (rules ``recist.pd_increase_percent``, 20) ...
    recist_pd_min_increase_mm : float
        ... and at least this absolute increase (rules ``recist.pd_min_increase_mm``, 5 mm).
    volume_pr_decrease_percent : float
        [D] volumetric PR: total tumour volume decrease (rules ``response.volume_pr_decrease_percent``).
    volume_pd_increase_percent : float
        [D] volumetric PD: total tumour volume increase (rules ``response.volume_pd_increase_percent``).
    match_distance_mm : float
        [D] largest centroid distance matching two non-overlapping lesions (rules ``response.match_distance_mm``).
    registration_min_liver_dice : float
        [D] registered livers with a lower Dice get a warning (rules ``response.registration_min_liver_dice``).
    max_targets, max_targets_per_organ, measurable_diameter_mm
        Kept for callers; not used: target limits and measurability come from
        the rules file's ``[recist]`` table, as in ``analyze``.
    """

    @classmethod
    def from_rules(cls, rules: Any = None, **overrides: Any) -> ResponseThresholds:
        """The thresholds of the rules file's ``[response]`` section (default rules when None), then ``overrides``.

        Examples
        --------
        >>> ResponseThresholds.from_rules(None).volume_pd_increase_percent
        73.0
        """
        from ..classify.rules import Rules, load_rules

        tree = rules if isinstance(rules, Rules) else load_rules(rules)
        known: dict[str, Any] = {
            name: tree[table][key] for name, (table, key) in _RULE_OF_FIELD.items() if key in tree.get(table, {})
        }
        known.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**known)

    recist_pr_decrease_percent: float = field(default_factory=lambda: _shipped("recist_pr_decrease_percent"))
    recist_pd_increase_percent: float = field(default_factory=lambda: _shipped("recist_pd_increase_percent"))
    recist_pd_min_increase_mm: float = field(default_factory=lambda: _shipped("recist_pd_min_increase_mm"))
    volume_pr_decrease_percent: float = field(default_factory=lambda: _shipped("volume_pr_decrease_percent"))
    volume_pd_increase_percent: float = field(default_factory=lambda: _shipped("volume_pd_increase_percent"))
    match_distance_mm: float = field(default_factory=lambda: _shipped("match_distance_mm"))
    registration_min_liver_dice: float = field(default_factory=lambda: _shipped("registration_min_liver_dice"))
    max_targets: int = field(default_factory=lambda: _shipped("max_targets"))
    max_targets_per_organ: int = field(default_factory=lambda: _shipped("max_targets_per_organ"))
    measurable_diameter_mm: float = field(default_factory=lambda: _shipped("measurable_diameter_mm"))


def recist_response(
    baseline_sum_mm: float,
    followup_sum_mm: float,
    *,
    new_lesions: int = 0,
    nadir_sum_mm: float | None = None,
    thresholds: ResponseThresholds | None = None,
    targets_resolved: bool | None = None,
) -> tuple[str, list[str]]:
    """RECIST 1.1 target-lesion response category with its rationale.

    Parameters
    ----------
    baseline_sum_mm, followup_sum_mm : float
        Sums of target diameters (mm).
    new_lesions : int
        Number of new lesions at follow-up.
    nadir_sum_mm : float, optional
        Smallest sum so far (default: the baseline sum).
    thresholds : ResponseThresholds, optional
    targets_resolved : bool, optional
        Whether every target resolved: non-nodal targets gone and nodal targets' short axes below
        10 mm (RECIST 1.1 CR: "any pathological lymph nodes must have reduction in short axis to
        < 10 mm", so a CR may keep a non-zero sum). Default: the follow-up sum is 0.

    Returns
    -------
    (str, list of str)
        ``"CR"``, ``"PR"``, ``"SD"``, ``"PD"`` or ``"NE"``, and the reasons.

    Examples
    --------
    >>> recist_response(50.0, 35.0)[0]
    'PR'
    >>> recist_response(20.0, 24.0)[0]  # +20 % but only +4 mm
    'SD'
    """
    t = thresholds or ResponseThresholds()
    nadir = baseline_sum_mm if nadir_sum_mm is None else nadir_sum_mm
    why = [f"{new_lesions} new lesion(s): progressive disease"] if new_lesions else []
    if baseline_sum_mm <= 0:
        if new_lesions:
            return "PD", why
        return "NE", ["no measurable target lesion at baseline"]
    inc_mm = followup_sum_mm - nadir
    inc_pct = 100.0 * inc_mm / nadir if nadir > 0 else (np.inf if inc_mm > 0 else 0.0)
    change_pct = 100.0 * (followup_sum_mm - baseline_sum_mm) / baseline_sum_mm
    tol = DIAMETER_REL_TOL * max(nadir, followup_sum_mm, baseline_sum_mm)  # edges met within the diameters' noise
    pd_size = inc_mm >= max(t.recist_pd_increase_percent / 100.0 * nadir, t.recist_pd_min_increase_mm) - tol
    if pd_size:
        why.append(
            f"target sum {followup_sum_mm:.1f} mm is {inc_pct:+.1f}% ({inc_mm:+.1f} mm) over the nadir "
            f"{nadir:.1f} mm (PD needs >= +{t.recist_pd_increase_percent:g}% "
            f"and >= +{t.recist_pd_min_increase_mm:g} mm)"
        )
    if new_lesions or pd_size:
        return "PD", why
    if followup_sum_mm <= 0 if targets_resolved is None else targets_resolved:
        if followup_sum_mm > 0:
            return "CR", [
                f"all non-nodal targets disappeared and every nodal target's short axis is < 10 mm "
                f"(target sum {followup_sum_mm:.1f} mm, lymph nodes only)"
            ]
        return "CR", ["all target lesions disappeared"]
    if baseline_sum_mm - followup_sum_mm >= t.recist_pr_decrease_percent / 100.0 * baseline_sum_mm - tol:
        return "PR", [
            f"target sum {baseline_sum_mm:.1f} -> {followup_sum_mm:.1f} mm ({change_pct:+.1f}%; PR needs "
            f"<= -{t.recist_pr_decrease_percent:g}%)"
        ]
    return "SD", [
        f"target sum {baseline_sum_mm:.1f} -> {followup_sum_mm:.1f} mm ({change_pct:+.1f}% from baseline, "
        f"{inc_mm:+.1f} mm over the nadir): neither PR nor PD"
    ]


def volumetric_response(
    baseline_ml: float,
    followup_ml: float,
    *,
    new_lesions: int = 0,
    thresholds: ResponseThresholds | None = None,
) -> tuple[str, list[str]]:
    """[D] Volumetric response on the total intrahepatic tumour volume (see the module docstring).

    Examples
    --------
    >>> volumetric_response(10.0, 3.0)[0]
    'PR'
    """
    t = thresholds or ResponseThresholds()
    if new_lesions:
        return "PD", [f"{new_lesions} new lesion(s)"]
    if baseline_ml <= 0:
        return "NE", ["no tumour volume at baseline"]
    change = 100.0 * (followup_ml - baseline_ml) / baseline_ml
    text = f"total tumour volume {baseline_ml:.2f} -> {followup_ml:.2f} mL ({change:+.1f}%)"
    if change >= t.volume_pd_increase_percent - 1e-9:
        return "PD", [f"{text}; PD at >= +{t.volume_pd_increase_percent:g}% [D]"]
    if followup_ml <= 0:
        return "CR", [f"{text}; no tumour left"]
    if change <= -t.volume_pr_decrease_percent + 1e-9:
        return "PR", [f"{text}; PR at <= -{t.volume_pr_decrease_percent:g}% [D]"]
    return "SD", [f"{text}; SD between -{t.volume_pr_decrease_percent:g}% and +{t.volume_pd_increase_percent:g}% [D]"]
