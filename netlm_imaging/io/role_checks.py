"""Checking a study's role decisions and telling the user: refusals, warnings, and the flag that maps a segment.

:func:`check_decisions` refuses what cannot be measured (user-given names that match nothing, no
liver and no lesion at all), :func:`summarize_decisions` words the warnings of what was ignored, and
:func:`flag_for` writes the exact ``--labels`` / ``--segment-pattern`` that maps a name to a role.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ..errors import LabelError
from .label_spec import LabelSpec
from .role_decision import RoleDecision
from .role_patterns import DEFAULT_NAME_PATTERNS, names_another_structure, pattern_roles

__all__ = ["check_decisions", "couinaud_only", "flag_for", "summarize_decisions"]


_UNSAFE_FOR_LABELS = re.compile(r"[,+|=\"']")


#: At most this many ignored segment names are listed in the warning (study.segment_roles lists them all).
_SHOWN_IGNORED = 10


def flag_for(name: str, role: str = "lesion") -> str:
    """The exact command-line flag that maps ``name`` to ``role``.

    ``--labels ROLE="NAME"`` unless the name holds a character ``--labels``
    splits on (``, + | =`` or a quote): then ``--segment-pattern`` with the
    escaped name.

    Examples
    --------
    >>> flag_for("GTV_Mass")
    '--labels lesion="GTV_Mass"'
    >>> print(flag_for("Liver+2mm", "liver"))
    --segment-pattern '^Liver\\+2mm$=liver'
    """
    if _UNSAFE_FOR_LABELS.search(name) or not name.strip():
        return f"--segment-pattern '^{re.escape(name)}$={role}'"
    return f'--labels {role}="{name}"'


def summarize_decisions(decisions: Sequence[RoleDecision], spec: LabelSpec) -> list[str]:
    """One line per source file naming the segments / ROIs that were ignored, and how to map them.

    A user mapping turns this into the warning the issue asks for ("not in
    --labels and ignored"); without one it is the note of what the rules ignored.
    """
    lines: list[str] = []
    by_source: dict[str, list[RoleDecision]] = {}
    for d in decisions:
        if d.role is None:
            by_source.setdefault(d.source, []).append(d)
    for d in decisions:
        if d.reason == "code" and d.name_role is not None:
            lines.append(
                f"{d.source}: segment {d.describe()} was taken as {d.role} by its code although its name says "
                f"{d.name_role}; if the name is right, map the segments yourself, e.g. "
                f"{_mapping_flag(decisions, d)}"
            )
    for source, ignored in by_source.items():
        # a TotalSegmentator map names 100+ structures: the first few say what kind they are
        shown = ", ".join(f"{d.name!r} ({d.reason})" for d in ignored[:_SHOWN_IGNORED])
        more = f" and {len(ignored) - _SHOWN_IGNORED} more" if len(ignored) > _SHOWN_IGNORED else ""
        if spec.exclusive:
            lines.append(
                f"{source}: {len(ignored)} segment(s)/ROI(s) not in the user mapping were ignored: {shown}{more} "
                "(report.json study.segment_roles lists them)"
            )
        else:
            lines.append(
                f"{source}: {len(ignored)} segment(s)/ROI(s) got no role and were ignored: {shown}{more}; "
                f"map one with e.g. {_flag_adding(decisions, ignored[0], _suggested_role(decisions, ignored[0]))} "
                "(study.segment_roles in report.json says "
                "why)"
            )
    return lines


def _suggested_role(decisions: Sequence[RoleDecision], ignored: RoleDecision, *, by_name_only: bool = False) -> str:
    """The role an example flag offers for ``ignored``: the one its name suggests, else the one the study lacks.

    A compound or qualified name matching one role pattern (``Liver_2cm``, ``肝臓_2``) suggests that role; any
    other name the role the other segments leave missing (the liver before the lesion), ``ROLE`` when both
    are there (the user must say) or ``by_name_only`` (a study with neither: which is which is the user's to say).

    Examples
    --------
    >>> liver = RoleDecision("rt.dcm", 1, "Liver", None, "", "ORGAN", "liver", "pattern", "")
    >>> blob = RoleDecision("rt.dcm", 2, "Blob", None, "", None, None, "unmatched-ignored", "")
    >>> _suggested_role([liver, blob], blob), _suggested_role([blob], blob)
    ('lesion', 'liver')
    """
    named = pattern_roles(ignored.name, DEFAULT_NAME_PATTERNS) if ignored.name else []
    # a name of another structure that mentions the organ (TotalSegmentator's liver_vessels, a hepatic vein)
    # suggests no role: offered as the liver the study lacks, the vessels were its liver volume
    other = bool(named) and names_another_structure(ignored.name, named[0])
    if len(named) == 1 and not other:
        return named[0]
    if by_name_only or other:
        return "ROLE"
    found = {d.role for d in decisions}
    for role in ("liver", "lesion"):
        if role not in found:
            return role
    return "ROLE"


def _flag_adding(decisions: Sequence[RoleDecision], ignored: RoleDecision, role: str = "lesion") -> str:
    """The ``--labels`` that maps ``ignored`` to ``role`` and keeps the roles its file's other segments got.

    A user mapping is exclusive: ``--labels lesion="Target A"`` alone would drop the ``Liver`` the
    rules had found, so the example names it too.

    Examples
    --------
    >>> liver = RoleDecision("rt.dcm", 1, "Liver", None, "", "ORGAN", "liver", "pattern", "")
    >>> other = RoleDecision("rt.dcm", 2, "Target A", None, "", "GTV", None, "unmatched-ignored", "")
    >>> _flag_adding([liver, other], other)
    '--labels liver="Liver",lesion="Target A"'

    The mapping applies to every file of the study, so the roles of the other files' segments are named too
    (a TotalSegmentator ``liver_vessels`` map beside its ``total`` map keeps the total map's liver):

    >>> total = RoleDecision("total.nii.gz", 5, "liver", None, "", None, "liver", "pattern", "")
    >>> tumour = RoleDecision("vessels.nii.gz", 2, "liver_tumor", None, "", None, "lesion", "pattern", "")
    >>> vessels = RoleDecision("vessels.nii.gz", 1, "liver_vessels", None, "", None, None, "unmatched-ignored", "")
    >>> _flag_adding([total, tumour, vessels], vessels, _suggested_role([total, tumour, vessels], vessels))
    '--labels liver="liver",lesion="liver_tumor",ROLE="liver_vessels"'
    """
    pairs = list(dict.fromkeys((d.role, d.name) for d in decisions if d.role not in (None, "ignore")))
    pairs.append((role, ignored.name))
    if any(_UNSAFE_FOR_LABELS.search(name) or not name.strip() for _, name in pairs):
        return flag_for(ignored.name, role) + (" (and the other segments' roles)" if len(pairs) > 1 else "")
    return "--labels " + ",".join(f'{r}="{name}"' for r, name in pairs)


def _mapping_flag(decisions: Sequence[RoleDecision], changed: RoleDecision) -> str:
    """The ``--labels`` of every segment of ``changed``'s file that has a role, ``changed`` under its name's role.

    A user mapping is exclusive, so the flag names every role wanted, not only the changed one.

    Examples
    --------
    >>> liver = RoleDecision("seg.dcm", 1, "Liver", ("SCT", "10200004"), "Liver", None, "liver", "code", "")
    >>> tumor = RoleDecision("seg.dcm", 2, "Tumor", ("SCT", "10200004"), "Liver", None, "liver", "code", "", "lesion")
    >>> _mapping_flag([liver, tumor], tumor)
    '--labels liver="Liver",lesion="Tumor"'
    """
    pairs = []
    for d in decisions:
        if d.source != changed.source or d.role in (None, "ignore"):
            continue
        role = changed.name_role if d is changed else d.role
        pairs.append((role, d.name))
    if any(_UNSAFE_FOR_LABELS.search(name) or not name.strip() for _, name in pairs):
        return flag_for(changed.name, changed.name_role or "lesion") + " (and the other segments' roles)"
    return "--labels " + ",".join(f'{role}="{name}"' for role, name in pairs)


def couinaud_only(sources: Sequence[str], roles: Sequence[str]) -> str:
    """The message for segmentations that hold Couinaud segments and no liver or lesion.

    TotalSegmentator's ``liver_segments`` task alone: the segments need the liver and its lesions
    from another input; mapping a segment as the lesion (the generic advice) would be wrong.

    Examples
    --------
    >>> couinaud_only(["seg.dcm"], ["segment1", "segment2"])[:62]
    'seg.dcm: Couinaud segments only (segment1, segment2), no liver'
    """
    where = ", ".join(sources[:3]) + (f" and {len(sources) - 3} more" if len(sources) > 3 else "")
    return (
        f"{where}: Couinaud segments only ({', '.join(roles)}), no liver and no lesion: give the liver and the "
        "lesions too (e.g. TotalSegmentator's total task liver.nii.gz or --ml map beside its liver_vessels / "
        "liver_lesions output, or --seg liver=PATH --seg lesion=PATH), with this map as --seg segments=PATH or "
        "beside them."
    )


def check_decisions(
    decisions: Sequence[RoleDecision],
    spec: LabelSpec,
    *,
    noun: str = "segments/ROIs",
    require_role: bool = True,
    found_roles: Iterable[str] = (),
) -> None:
    """Refuse what cannot be measured: user-given names that match nothing, or no liver and no lesion at all.

    Parameters
    ----------
    decisions : sequence of RoleDecision
        Every named segment / ROI of the study.
    spec : LabelSpec
        The mapping in force.
    noun : str
        What the items are called in the message.
    require_role : bool
        Raise when no decision (nor ``found_roles``) gives a liver or a lesion.
    found_roles : iterable of str
        Roles found elsewhere (label maps, ``ROLE=PATH`` masks).

    Raises
    ------
    LabelError
    """
    if not decisions:
        return
    names = [n for vals in spec.mapping.values() for n in vals if isinstance(n, str)] if spec.user_given else []
    present = {d.name.strip().lower() for d in decisions}
    missing = [n for n in names if n.strip().lower() not in present]
    if missing:
        listed = ", ".join(repr(d.name) for d in decisions[:40])
        raise LabelError(
            f"{decisions[0].source}: --labels names {missing} match no segment/ROI; the names present are: "
            f"{listed}{' ...' if len(decisions) > 40 else ''}. Check the spelling (names compare case-insensitively)."
        )
    roles = set(found_roles) | {d.role for d in decisions if d.role}
    if not require_role or roles & {"liver", "lesion"}:
        return
    sources = sorted({d.source for d in decisions})
    couinaud = sorted({d.role for d in decisions if d.role and d.role.startswith("segment")})
    if couinaud:  # TotalSegmentator's liver_segments alone: the segments of a liver no input gives
        raise LabelError(couinaud_only(sources, couinaud))
    listed = "; ".join(
        f"{d.describe()} {d.reason}"
        + (f" as {d.role}" if d.role else "")
        + (f" -> {flag_for(d.name, _suggested_role(decisions, d, by_name_only=True))}" if d.name else "")
        for d in decisions
    )
    how = "--labels / --segment-pattern matched none of them. " if spec.exclusive else ""
    raise LabelError(
        f"{', '.join(sources)}: no liver and no lesion among the {noun}: {listed}. {how}Map the ones you mean "
        "with --labels ROLE=NAME (roles: liver, lesion, spleen, kidney, segment1..segment8, ignore) or "
        "--segment-pattern REGEX=ROLE."
    )
