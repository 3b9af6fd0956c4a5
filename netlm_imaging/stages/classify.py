"""The classify stage: every decision of one study, from its measurements.

Couinaud segments, remnant and FLR adequacy, the debulking plan, the classifications and
RECIST (:func:`netlm_imaging.classify.surgical.assess`), and for an MR study the functional
FLR of each resection (:func:`netlm_imaging.classify.functional_flr.functional_remnant`).
The decisions stay here: the measurements (``Measurements.ctx``) are not changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..classify.functional_flr import FunctionalRemnant
from .measure import Measurements
from .options import AnalyzeOptions

if TYPE_CHECKING:
    from ..classify.rules import Rules
    from ..classify.surgical import SurgicalAssessment

__all__ = ["Decisions", "classify_study"]


@dataclass(frozen=True)
class Decisions:
    """What the classify stage decided.

    Attributes
    ----------
    surgical : SurgicalAssessment
        Remnant, segments, classification, warnings and summary lines.
    remnant : dict
        The remnant block (standard resections, FLR adequacy, the plan) rounded as the report states it.
    lesion_fields : dict
        ``{lesion id: {field: value}}``: the Couinaud segment and the RECIST fields of each lesion.
    functional_remnant : FunctionalRemnant or None
        An MR study's functional FLR.
    vascular_warnings, vascular_notes : tuple of str
        What the plans' treatments next to a given vessel call for (classify/vascular.py); no plan is changed.
    classification : dict or None
        The classification block as the report states it (its staged strategies with their vessel notes);
        None: ``surgical.classification``.
    """

    surgical: SurgicalAssessment
    remnant: dict[str, Any]
    lesion_fields: dict[int, dict[str, Any]]
    functional_remnant: FunctionalRemnant | None
    vascular_warnings: tuple[str, ...] = ()
    vascular_notes: tuple[str, ...] = ()
    classification: dict[str, Any] | None = None


def classify_study(measured: Measurements, clinical: Any, rules: Rules, opts: AnalyzeOptions) -> Decisions:
    """Decide everything that follows from the measurements and the clinical inputs."""
    from ..classify.functional_flr import functional_remnant
    from ..classify.surgical import assess
    from ..rounding import rounded

    ctx = measured.ctx
    sa = assess(
        ctx,
        clinical,
        rules,
        table=measured.segments,
        non_tumorous_ml=measured.non_tumorous_liver_ml,
        remnants=measured.remnants,
        resections=opts.resections,
    )
    segment_of = {lid: {"couinaud_segment": int(s)} for lid, s in sa.lesion_segments.items() if s is not None}
    lesion_fields = {les.id: {**segment_of.get(les.id, {}), **sa.lesion_recist.get(les.id, {})} for les in ctx.lesions}
    remnant = rounded(sa.remnant or {})
    vascular_warnings: list[str] = []
    vascular_notes: list[str] = []
    classification = sa.classification
    if measured.vascular.assessed:  # every plan naming its lesions' treatments: the tool's, the user's, staged
        from ..classify.vascular import every_plan_messages

        said = every_plan_messages(
            remnant, classification.get("staged_strategies"), measured.vascular.distances_mm, rules["planner"]
        )
        vascular_warnings, vascular_notes, remnant = said.warnings, said.plan_notes, said.remnant
        if said.staged is not None:
            classification = {**classification, "staged_strategies": said.staged}
    functional = None
    if measured.mr is not None:  # read from the remnant as the report states it
        functional = functional_remnant(
            ctx,
            measured.mr.signal,
            remnant,
            hepatobiliary=measured.mr.functional,
            unassigned_note_percent=float(rules["mri"]["hui_unassigned_note_percent"]),
        )
    return Decisions(
        surgical=sa,
        remnant=remnant,
        lesion_fields=lesion_fields,
        functional_remnant=functional,
        vascular_warnings=tuple(vascular_warnings),
        vascular_notes=tuple(vascular_notes),
        classification=classification,
    )
