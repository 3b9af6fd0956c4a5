"""Follow-up vs baseline: lesion matching in patient space, volume change, RECIST 1.1, volumetric response.

Patient space
    When both studies carry the same FrameOfReferenceUID their LPS coordinates
    are the same space (identity). Otherwise the follow-up liver is aligned to
    the baseline liver (:func:`~netlm_imaging.verify.registration.align_liver_masks`,
    rigid then affine) and the alignment quality (liver Dice before/after,
    transform parameters) is reported.
Matching [D]
    :mod:`netlm_imaging.verify.lesion_match`: greedy by overlap after the
    alignment, then by centroid distance up to ``match_distance_mm``; lesions
    that split or coalesced are followed (**split**, **merged**), the others
    unmatched have **disappeared** or are **new**.
RECIST 1.1 (clinical_rules.md section 8)
    Targets and diameters come from :func:`netlm_imaging.classify.recist.recist_assessment`,
    the implementation ``analyze`` reports (organ per lesion, lymph nodes on
    their short axis, at most 5 targets and 2 per organ, edge-to-edge
    diameters, the rules file's ``[recist]`` limits). Follow-up diameter of a disappeared
    target is 0 mm; a target's fragments add their diameters, and a coalesced lesion's
    diameter counts once, for a target of its group (RECIST 1.1, Eisenhauer 2009: lesions
    that split or coalesce [U]). A follow-up lymph node with no baseline counterpart and a short
    axis < 10 mm is normal, not a new lesion (status ``normal_node``). Categories on the target
    sum and new lesions: PD if any new lesion or an increase >= 20 % over the nadir (here the baseline) AND
    >= 5 mm absolute; CR if all non-nodal targets disappeared and every nodal target's
    short axis is < 10 mm (the rules' ``node_pathological_short_axis_mm``); PR if a decrease >= 30 %
    from baseline; else SD; NE without targets. Non-target progression is not
    assessed.
Volumetric response [D] (design choices, configurable)
    On the total intrahepatic tumour volume: PD if any new lesion or an
    increase >= 73 %; PR if a decrease >= 65 %; CR if no tumour remains; else
    SD. 65 % and 73 % are the volume changes of a sphere whose diameter falls
    by 30 % (1 - 0.7^3) or grows by 20 % (1.2^3 - 1), the RECIST thresholds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..classify.recist import recist_assessment
from ..classify.rules import load_rules
from ..errors import InputError
from ..measure.context import Lesion, MeasurementContext
from .comparability import technique_warnings
from .lesion_match import LesionChange, credited_targets, lesion_changes, match_lesions, outside_followup_fractions
from .new_lesions import normal_new_nodes, normal_nodes_note, small_new_lesions, small_pd_note
from .registration import Alignment, study_alignment
from .response import ResponseThresholds, recist_response, volumetric_response

__all__ = [
    "LesionChange",
    "LongitudinalComparison",
    "ResponseThresholds",
    "compare_studies",
    "compare_study_inputs",
    "recist_response",
    "select_targets",
    "volumetric_response",
]

logger = logging.getLogger(__name__)


def _slice_mm(ctx: MeasurementContext | None) -> float | None:
    return None if ctx is None else ctx.image.slice_separation_mm


def select_targets(
    lesions: Sequence[Lesion],
    thresholds: ResponseThresholds | None = None,
    *,
    recist: Mapping[str, Any] | None = None,
    slice_thickness_mm: float | None = None,
) -> list[Lesion]:
    """RECIST 1.1 target lesions, by the one implementation ``analyze`` uses (:mod:`netlm_imaging.classify.recist`).

    Parameters
    ----------
    lesions : sequence of Lesion
    thresholds : ResponseThresholds, optional
        Unused for the selection (kept for callers); the limits come from ``recist``.
    recist : Mapping, optional
        ``rules["recist"]``; the default rules when omitted.
    slice_thickness_mm : float, optional
        For the thick-slice measurability rule.
    """
    rec = recist_assessment(lesions, recist if recist is not None else load_rules()["recist"], slice_thickness_mm)
    by_id = {les.id: les for les in lesions}
    return [by_id[r["lesion_id"]] for r in rec["targets"]]


@dataclass
class LongitudinalComparison:
    """Result of :func:`compare_studies`."""

    alignment: Alignment
    lesions: list[LesionChange]
    baseline_tumor_ml: float
    followup_tumor_ml: float
    baseline_liver_ml: float | None
    followup_liver_ml: float | None
    recist: dict[str, Any]
    volumetric: dict[str, Any]
    thresholds: ResponseThresholds
    warnings: list[str] = field(default_factory=list)

    @property
    def new_lesions(self) -> list[LesionChange]:
        """Follow-up lesions without a baseline match."""
        return [c for c in self.lesions if c.status == "new"]

    @property
    def disappeared_lesions(self) -> list[LesionChange]:
        """Baseline lesions without a follow-up match."""
        return [c for c in self.lesions if c.status == "disappeared"]

    @property
    def tumor_change_ml(self) -> float:
        """Follow-up minus baseline intrahepatic tumour volume (mL)."""
        return self.followup_tumor_ml - self.baseline_tumor_ml

    @property
    def tumor_change_percent(self) -> float | None:
        """Relative change of the intrahepatic tumour volume (``None`` if none at baseline)."""
        return 100.0 * self.tumor_change_ml / self.baseline_tumor_ml if self.baseline_tumor_ml > 0 else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""

        def r(v: float | None) -> float | None:
            return None if v is None else round(float(v), 4)

        return {
            "alignment": self.alignment.to_dict(),
            "tumor": {
                "baseline_intrahepatic_volume_ml": r(self.baseline_tumor_ml),
                "followup_intrahepatic_volume_ml": r(self.followup_tumor_ml),
                "change_ml": r(self.tumor_change_ml),
                "change_percent": r(self.tumor_change_percent),
            },
            "liver": {"baseline_volume_ml": r(self.baseline_liver_ml), "followup_volume_ml": r(self.followup_liver_ml)},
            "lesions": [c.to_dict() for c in self.lesions],
            "new_lesion_ids": [c.followup_id for c in self.new_lesions],
            "disappeared_lesion_ids": [c.baseline_id for c in self.disappeared_lesions],
            "recist_1_1": self.recist,
            "volumetric": self.volumetric,
            "thresholds": asdict(self.thresholds),
            "warnings": list(self.warnings),
        }


def compare_studies(
    baseline: MeasurementContext,
    followup: MeasurementContext,
    *,
    thresholds: ResponseThresholds | None = None,
    registration: str = "auto",
    recist: Mapping[str, Any] | None = None,
) -> LongitudinalComparison:
    """Compare a follow-up study with its baseline.

    Parameters
    ----------
    baseline, followup : MeasurementContext
        From ``api.analyze_with_context`` (or built directly).
    thresholds : ResponseThresholds, optional
        Response thresholds and matching parameters.
    registration : {"auto", "always", "never"}
        ``auto``: identity when the FrameOfReferenceUIDs are equal, else
        register the livers; ``always``: register even with a shared frame;
        ``never``: assume the same patient coordinates.
    recist : Mapping, optional
        ``rules["recist"]`` (default rules when omitted): target selection and
        diameters exactly as ``analyze`` reports them.

    Returns
    -------
    LongitudinalComparison
    """
    if registration not in ("auto", "always", "never"):
        raise ValueError("registration must be 'auto', 'always' or 'never'")
    _check_lesions_segmented(baseline, followup)
    t = thresholds or ResponseThresholds()
    warnings: list[str] = technique_warnings(baseline.header.get("modality"), followup.header.get("modality"))
    al = study_alignment(baseline, followup, registration, warnings, min_dice=t.registration_min_liver_dice)
    warnings.extend(al.warnings)
    pairs, overlap_ml = match_lesions(baseline, followup, al, t.match_distance_mm)
    recist_rules = recist if recist is not None else load_rules()["recist"]
    base_rec = recist_assessment(baseline.lesions, recist_rules, _slice_mm(baseline))
    targets = {r["lesion_id"] for r in base_rec["targets"]}
    fov = outside_followup_fractions(baseline, followup, al)
    changes = lesion_changes(pairs, overlap_ml, baseline, followup, al, targets, fov)
    fu_rec = recist_assessment(followup.lesions, recist_rules, _slice_mm(followup))["lesions"]
    normal_nodes = normal_new_nodes(changes, fu_rec)
    f_by_id = {les.id: les for les in followup.lesions}
    new_intra = [
        c for c in changes if c.status == "new" and f_by_id[int(c.followup_id or 0)].location == "intrahepatic"
    ]
    new_count = len([c for c in changes if c.status == "new"])
    fu_by_target, fu_diam, small = _followup_target_diameters(
        changes, targets, overlap_ml, base_rec, f_by_id, recist_rules
    )
    node_normal_mm = float(recist_rules["node_pathological_short_axis_mm"])
    cat, why, base_sum, fu_sum = _target_response(
        base_rec, fu_diam, new_count, changes, fu_rec, t, node_normal_mm, warnings
    )
    unseen = _field_of_view_warnings(changes, fov, warnings)
    cat, why = _recist_notes(cat, why, changes, unseen, targets, normal_nodes, node_normal_mm, small, recist_rules)
    recist = _recist_block(base_rec, fu_by_target, fu_diam, base_sum, fu_sum, new_count, cat, why)
    return LongitudinalComparison(
        alignment=al,
        lesions=changes,
        baseline_tumor_ml=float(baseline.intrahepatic_tumor_ml),
        followup_tumor_ml=float(followup.intrahepatic_tumor_ml),
        baseline_liver_ml=baseline.liver_volume_ml,
        followup_liver_ml=followup.liver_volume_ml,
        recist=recist,
        volumetric=_volumetric_block(baseline, followup, len(new_intra), unseen, t),
        thresholds=t,
        warnings=warnings,
    )


def _check_lesions_segmented(baseline: MeasurementContext, followup: MeasurementContext) -> None:
    """Refuse a study whose segmentation has no lesions (only a liver): its "no tumour" is not a response."""
    for when, ctx in (("baseline", baseline), ("follow-up", followup)):
        if not ctx.lesions_segmented:  # a liver-only segmentation: its "no tumour" would read as a response
            raise InputError(
                f"{ctx.image.source}: the {when} has no lesion segmentation (only a liver), so lesions that are "
                "absent there were not segmented, not gone; give its lesion segmentation, or map it "
                "(--labels lesion=N or a segment name)."
            )


def _followup_target_diameters(
    changes: Sequence[LesionChange],
    targets: set[int],
    overlap_ml: Mapping[tuple[int, int], float],
    base_rec: Mapping[str, Any],
    f_by_id: Mapping[int, Lesion],
    recist_rules: Mapping[str, Any],
) -> tuple[dict[int, list[int]], dict[int, float], list[int]]:
    """Each target's follow-up lesions and summed diameter (mm), and the lesions counted at the too-small default.

    The same diameter (edge-to-edge long axis, or short axis of a node) at both time points; a target's
    follow-up diameter adds those of the follow-up lesions credited to it (its match, its fragments, the
    lesion it coalesced into: once).
    """
    credit = credited_targets(changes, targets, overlap_ml)
    target_ids = [int(r["lesion_id"]) for r in base_rec["targets"]]
    fu_by_target: dict[int, list[int]] = {b_id: [] for b_id in target_ids}
    for f_id, b_id in sorted(credit.items()):
        fu_by_target[b_id].append(f_id)
    # a non-nodal lesion present but too small to measure counts the rules' default (EORTC: 5 mm)
    too_small = float(recist_rules.get("too_small_default_mm", 0.0))
    small: list[int] = []

    def fu_diameter(f_id: int, nodal: bool) -> float:
        # on the target's own axis (a node's short axis, else the long axis) whatever the follow-up
        # segmentation calls the lesion: the same measurement at both time points
        d = _axis_diameter_mm(f_by_id[f_id], nodal, str(recist_rules["diameter_method"]))
        if not nodal and d < too_small:
            small.append(f_id)
            return too_small
        return d

    nodal_target = {int(r["lesion_id"]): bool(r["lymph_node"]) for r in base_rec["targets"]}
    fu_diam = {
        b_id: float(sum(fu_diameter(f_id, nodal_target[b_id]) for f_id in f_ids))
        for b_id, f_ids in fu_by_target.items()
    }
    return fu_by_target, fu_diam, small


def _target_response(
    base_rec: Mapping[str, Any],
    fu_diam: Mapping[int, float],
    new_count: int,
    changes: Sequence[LesionChange],
    fu_rec: Mapping[int, Mapping[str, Any]],
    t: ResponseThresholds,
    node_normal_mm: float,
    warnings: list[str],
) -> tuple[str, list[str], float, float]:
    """The RECIST 1.1 category from the target diameter sums and the new lesions, and the two sums (mm).

    A progression owed only to new lesions too small to be unequivocal says so in its rationale and in
    ``warnings``.
    """
    target_ids = [int(r["lesion_id"]) for r in base_rec["targets"]]
    base_sum = float(sum(base_rec["lesions"][b_id]["diameter_mm"] or 0.0 for b_id in target_ids))
    fu_sum = float(sum(fu_diam.values()))
    resolved = all(
        fu_diam[r["lesion_id"]] < node_normal_mm if r["lymph_node"] else fu_diam[r["lesion_id"]] <= 0.0
        for r in base_rec["targets"]
    )
    resolved_if_targets = resolved if target_ids else None
    cat, why = recist_response(
        base_sum, fu_sum, new_lesions=new_count, thresholds=t, targets_resolved=resolved_if_targets
    )
    small_new = small_new_lesions(changes, fu_rec)  # RECIST 1.1: a new lesion must be unequivocal
    if cat == "PD" and small_new:
        left = new_count - len(small_new)
        without = recist_response(
            base_sum, fu_sum, new_lesions=left, thresholds=t, targets_resolved=resolved_if_targets
        )
        if without[0] != "PD":
            why.append(small_pd_note(small_new, without[0]))
            warnings.append(why[-1])
    return cat, why, base_sum, fu_sum


def _field_of_view_warnings(
    changes: Sequence[LesionChange], fov: Mapping[int, float], warnings: list[str]
) -> list[int | None]:
    """Warn of baseline lesions partly or wholly outside the follow-up image; return those wholly outside."""
    unseen = [c.baseline_id for c in changes if c.status == "not_imaged"]
    cut = [c.baseline_id for c in changes if c.status == "matched" and fov.get(int(c.baseline_id or 0), 0.0) > 0]
    if cut:
        warnings.append(
            f"baseline lesion(s) {', '.join(map(str, cut))} lie partly outside the follow-up image: their follow-up "
            "volumes and diameters may be cut off by its field of view"
        )
    if unseen:
        warnings.append(
            f"baseline lesion(s) {', '.join(map(str, unseen))} lie outside the follow-up image (its field of view): "
            "not assessable, not disappeared; the follow-up tumour volume does not include them"
        )
    return unseen


def _recist_notes(
    cat: str,
    why: list[str],
    changes: Sequence[LesionChange],
    unseen: Sequence[int | None],
    targets: set[int],
    normal_nodes: Mapping[int, float],
    node_normal_mm: float,
    small: Sequence[int],
    recist_rules: Mapping[str, Any],
) -> tuple[str, list[str]]:
    """NE for a target outside the follow-up image (unless PD), then the rationale's notes on the lesions."""
    too_small = float(recist_rules.get("too_small_default_mm", 0.0))
    unseen_targets = [b_id for b_id in unseen if b_id in targets]
    if unseen_targets and cat != "PD":  # RECIST 1.1: a target not evaluated makes the response NE, unless PD
        cat, why = (
            "NE",
            [
                f"target lesion(s) {', '.join(map(str, unseen_targets))} outside the follow-up image: not evaluable "
                "(RECIST 1.1: NE unless progression)"
            ],
        )
    if normal_nodes:
        why.append(normal_nodes_note(normal_nodes, node_normal_mm))
    if small:
        why.append(
            f"follow-up lesion(s) {', '.join(map(str, small))} present but below {too_small:g} mm: counted as "
            f"{too_small:g} mm (too small to measure: EORTC RECIST 1.1 clarification, recist.too_small_default_mm)"
        )
    for c in changes:
        if c.status == "split":
            why.append(
                f"follow-up lesion {c.followup_id} is a fragment of baseline lesion {c.baseline_id} (it overlaps it): "
                "not new; RECIST 1.1 adds the fragments' diameters"
            )
        elif c.status == "merged":
            why.append(
                f"baseline lesion {c.baseline_id} coalesced into follow-up lesion {c.followup_id}: not gone; "
                "RECIST 1.1 counts the coalesced lesion's diameter once"
            )
    return cat, why


def _recist_block(
    base_rec: Mapping[str, Any],
    fu_by_target: Mapping[int, list[int]],
    fu_diam: Mapping[int, float],
    base_sum: float,
    fu_sum: float,
    new_count: int,
    cat: str,
    why: list[str],
) -> dict[str, Any]:
    """The comparison's ``recist_1_1`` block: targets, diameter sums, category and rationale."""
    target_ids = [int(r["lesion_id"]) for r in base_rec["targets"]]
    return {
        "target_baseline_ids": sorted(target_ids),
        "baseline_sum_mm": round(base_sum, 3),
        "followup_sum_mm": round(fu_sum, 3),
        "change_percent": round(100.0 * (fu_sum - base_sum) / base_sum, 3) if base_sum > 0 else None,
        "new_lesions": new_count,
        "category": cat,
        "rationale": why,
        "targets": [
            {k: r[k] for k in ("lesion_id", "organ", "lymph_node", "diameter_mm", "diameter_axis")}
            for r in base_rec["targets"]
        ],
        "targets_followup": [
            {
                "baseline_id": b_id,
                "followup_ids": fu_by_target[b_id],
                "followup_diameter_mm": round(fu_diam[b_id], 3),
            }
            for b_id in target_ids
        ],
        "method": base_rec["method"],
        "scope": "target lesions (RECIST 1.1: at most 5, 2 per organ, the same selection as analyze) and new "
        "lesions; lesions that split or coalesced are followed, not new or gone; non-target progression not "
        "assessed",
    }


def _volumetric_block(
    baseline: MeasurementContext,
    followup: MeasurementContext,
    new_intrahepatic: int,
    unseen: Sequence[int | None],
    t: ResponseThresholds,
) -> dict[str, Any]:
    """The comparison's ``volumetric`` block: the intrahepatic tumour volume response ([D])."""
    vcat, vwhy = volumetric_response(
        baseline.intrahepatic_tumor_ml, followup.intrahepatic_tumor_ml, new_lesions=new_intrahepatic, thresholds=t
    )
    if unseen and vcat != "PD":
        vcat, vwhy = "NE", [f"baseline lesion(s) {', '.join(map(str, unseen))} not imaged at follow-up [D]"]
    return {
        "category": vcat,
        "rationale": vwhy,
        "thresholds": f"[D] PR <= -{t.volume_pr_decrease_percent:g}%, PD >= +{t.volume_pd_increase_percent:g}% "
        "or a new intrahepatic lesion",
    }


def _axis_diameter_mm(les: Lesion, short_axis: bool, method: str) -> float:
    """A lesion's short axis or longest axial diameter, edge to edge when ``method`` is "edge" and known.

    Examples
    --------
    >>> les = Lesion(1, "extrahepatic", 1.0, 10, [0.0, 0.0, 0.0], 14.0, 8.0, 15.0, None, False, None)
    >>> _axis_diameter_mm(les, True, "edge"), _axis_diameter_mm(les, False, "edge")
    (8.0, 14.0)
    """
    centre = les.short_axis_diameter_mm if short_axis else les.longest_axial_diameter_mm
    edge = les.short_axis_diameter_edge_mm if short_axis else les.longest_axial_diameter_edge_mm
    value = edge if method == "edge" and edge is not None else centre
    return 0.0 if value is None else float(value)


def compare_study_inputs(
    baseline: str | Path,
    followup: str | Path,
    *,
    baseline_segs: Sequence[str | Path] = (),
    followup_segs: Sequence[str | Path] = (),
    labels: str | None = None,
    options: Any = None,
    thresholds: ResponseThresholds | None = None,
    registration: str = "auto",
    recist: Mapping[str, Any] | None = None,
) -> LongitudinalComparison:
    """Analyse two studies with ``api.analyze_with_context`` and compare them.

    Parameters
    ----------
    baseline, followup : str or Path
        Study folders, or image files when ``*_segs`` are given.
    baseline_segs, followup_segs : sequence of str or Path
        Segmentations of an image file (``analyze(image=..., segs=...)``).
    labels : str, optional
        ``--labels`` mapping for both studies.
    options : AnalyzeOptions, optional
        Passed to ``analyze_with_context``.
    thresholds, registration, recist
        See :func:`compare_studies`.

    Returns
    -------
    LongitudinalComparison
    """
    from ..api import analyze_with_context

    phases: list[str | None] = []

    def load(path: str | Path, segs: Sequence[str | Path]) -> MeasurementContext:
        if segs:
            report, ctx = analyze_with_context(image=path, segs=segs, labels=labels, options=options)
        else:
            report, ctx = analyze_with_context(path, labels=labels, options=options)
        phase = ((report.to_dict().get("mri") or {}).get("phase") or {}).get("phase")
        phases.append(None if phase is None else str(phase))
        return ctx

    result = compare_studies(
        load(baseline, baseline_segs),
        load(followup, followup_segs),
        thresholds=thresholds,
        registration=registration,
        recist=recist,
    )
    result.warnings.extend(technique_warnings(None, None, *phases))
    return result
