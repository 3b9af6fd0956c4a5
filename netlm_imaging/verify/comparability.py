"""What makes two time points' measurements not comparable by RECIST 1.1 (clinical_rules.md section 8).

RECIST 1.1 measures on CT or MRI, each lesion with the same technique at every assessment, and
liver lesions in the same contrast phase (the same sequence for MRI); ``netlm compare`` warns
when its two studies differ in these.
"""

from __future__ import annotations

__all__ = ["technique_warnings"]


def technique_warnings(
    modality_b: str | None, modality_f: str | None, phase_b: str | None = None, phase_f: str | None = None
) -> list[str]:
    """What makes the two time points' diameters not comparable by RECIST 1.1 (clinical_rules.md section 8).

    RECIST measures CT or MRI, each lesion with the same technique at every assessment, liver
    lesions in the same contrast phase (same sequence for MRI).

    Examples
    --------
    >>> technique_warnings("CT", "MR")[0][:46]
    'baseline CT, follow-up MR: RECIST 1.1 measures'
    >>> technique_warnings("MR", "MR", "hepatobiliary", "portal_venous")[0][:40]
    'MR contrast phase hepatobiliary at basel'
    >>> technique_warnings("CT", "CT", None, None)
    []
    """
    out = []
    if modality_b and modality_f and modality_b != modality_f:
        out.append(
            f"baseline {modality_b}, follow-up {modality_f}: RECIST 1.1 measures each lesion with the same "
            "modality and technique at every assessment; the diameters may not be comparable"
        )
    for mod in sorted({m for m in (modality_b, modality_f) if m and m not in ("CT", "MR")}):
        out.append(f"{mod}: RECIST 1.1 measures on CT or MRI; the {mod} sizes are not RECIST measurements")
    known = {"unknown", None, ""}
    if phase_b not in known and phase_f not in known and phase_b != phase_f:
        out.append(
            f"MR contrast phase {phase_b} at baseline, {phase_f} at follow-up: liver lesions are measured in the "
            "same contrast phase on every exam (RECIST 1.1, clinical_rules.md section 8)"
        )
    return out
