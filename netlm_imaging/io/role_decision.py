"""The record of one role decision: :class:`RoleDecision`, and why it was taken (:data:`REASONS`).

One per named segment / ROI / named label value of a study; the log of them is checked
(:mod:`netlm_imaging.io.role_checks`) and written to report.json as ``study.segment_roles``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["REASONS", "RoleDecision"]


#: Why a segment / ROI got its role (``segment_roles[].reason`` in the report).
REASONS = ("user", "code", "pattern", "type-ignored", "unmatched-ignored")


@dataclass(frozen=True)
class RoleDecision:
    """The role one named segment / ROI got, and why.

    Parameters
    ----------
    source : str
        File the segment came from.
    number : int
        SegmentNumber / ROINumber.
    name : str
        SegmentLabel / ROIName.
    code : (str, str) or None
        (CodingSchemeDesignator, CodeValue) of the property type / identification code.
    code_meaning : str
        CodeMeaning, for messages.
    interpreted_type : str or None
        RTROIInterpretedType (RTSTRUCT only).
    role : str or None
        The role, ``"ignore"`` when the user ignored it, ``None`` when ignored by the rules.
    reason : str
        One of :data:`REASONS`.
    note : str
        What decided it, in words.
    name_role : str or None
        When a code decided: the different role the name alone would give (``"Tumor"`` coded
        SCT Liver), else None. The code wins (docs/roles.md); the summary warns of the conflict.
    """

    source: str
    number: int
    name: str
    code: tuple[str, str] | None
    code_meaning: str
    interpreted_type: str | None
    role: str | None
    reason: str
    note: str
    name_role: str | None = None

    def describe(self) -> str:
        """``3 'BODY' [EXTERNAL] (SCT 123 Meaning)`` for messages."""
        typ = f" [{self.interpreted_type}]" if self.interpreted_type else ""
        code = f" ({self.code[0]} {self.code[1]} {self.code_meaning})".rstrip(" ") if self.code else ""
        return f"{self.number} {self.name!r}{typ}{code.replace(' )', ')')}"

    def to_report(self) -> dict[str, Any]:
        """The ``study.segment_roles[]`` item of report.json."""
        return {
            "source": self.source,
            "number": self.number,
            "name": self.name,
            "code": None
            if self.code is None
            else {"scheme": self.code[0], "value": self.code[1], "meaning": self.code_meaning or None},
            "interpreted_type": self.interpreted_type,
            "role": None if self.role == "ignore" else self.role,
            "reason": self.reason,
            "note": self.note,
        }
