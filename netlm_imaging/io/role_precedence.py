"""The precedence of a segment's role: the user mapping, then codes, then name patterns (docs/roles.md).

:func:`decide_role` decides one named segment / ROI with one :class:`~netlm_imaging.io.role_decision.RoleDecision`,
from the user's ``--labels`` / ``--segment-pattern`` (:mod:`netlm_imaging.io.label_spec`), the codes,
types and name rules (:mod:`netlm_imaging.io.role_patterns`); :func:`assign_roles` decides every item
of one file and logs the decisions, checked by :mod:`netlm_imaging.io.role_checks`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from .label_spec import LabelSpec
from .role_checks import check_decisions, summarize_decisions
from .role_decision import RoleDecision
from .role_patterns import (
    DEFAULT_CODE_ROLES,
    GENERIC_CODES,
    IGNORED_INTERPRETED_TYPES,
    PLANNING_NAME,
    ROLE_MASK_PATTERNS,
    pattern_roles,
    role_by_name,
)

logger = logging.getLogger(__name__)

__all__ = ["assign_roles", "decide_label_name", "decide_role", "role_for_segment"]


def decide_role(
    name: str | None,
    code: tuple[str, str] | None,
    spec: LabelSpec,
    *,
    number: int = 0,
    code_meaning: str = "",
    interpreted_type: str | None = None,
    source: str = "",
    code_roles: Mapping[tuple[str, str], str] | None = None,
) -> RoleDecision:
    """Decide the role of one named segment / ROI (the precedence of docs/roles.md).

    With a user mapping (names in ``--labels`` or ``--segment-pattern``) only
    the user decides: an exact name (case-insensitive), then the user's
    patterns; everything else is ``unmatched-ignored``. Without one: an
    ignored RTROIInterpretedType or a planning-volume name, Couinaud name
    patterns, a specific code (a known one gives its role, an unknown one
    ignores the segment), then the built-in name patterns, where compound
    names and names of other structures are never guessed.

    Parameters
    ----------
    name : str or None
        Segment label / ROI name.
    code : (str, str) or None
        (CodingSchemeDesignator, CodeValue).
    spec : LabelSpec
        The user mapping and name patterns.
    number, code_meaning, interpreted_type, source
        Recorded in the decision.
    code_roles : mapping, optional
        Code -> role table (default :data:`~netlm_imaging.io.role_patterns.DEFAULT_CODE_ROLES`).

    Returns
    -------
    RoleDecision
    """
    text = (name or "").strip()
    itype = (str(interpreted_type).strip().upper() or None) if interpreted_type else None
    key = (str(code[0]).strip().upper(), str(code[1]).strip()) if code is not None else None

    def out(role: str | None, reason: str, note: str, name_role: str | None = None) -> RoleDecision:
        return RoleDecision(source, number, text, key, code_meaning, itype, role, reason, note, name_role)

    if spec.exclusive:
        explicit = spec.role_of_name(text) if text else None
        if explicit:
            return out(explicit, "user", f"--labels {explicit}={text}")
        for pattern, role in spec.name_patterns[: spec.user_pattern_count]:
            if text and re.search(pattern, text, flags=re.IGNORECASE):
                return out(role, "user", f"--segment-pattern {pattern}={role}")
        return out(None, "unmatched-ignored", "not in the user mapping (--labels / --segment-pattern)")
    if itype in IGNORED_INTERPRETED_TYPES:
        return out(None, "type-ignored", f"RTROIInterpretedType {itype} is never liver, lesion or spleen")
    if PLANNING_NAME.search(text):
        return out(None, "type-ignored", "a planning volume by name (PTV/CTV/ITV/PRV)")
    builtin = spec.name_patterns[spec.user_pattern_count :]
    couinaud = [r for r in pattern_roles(text, builtin) if r.startswith("segment")] if text else []
    table = DEFAULT_CODE_ROLES if code_roles is None else code_roles
    liver_or_generic = key is None or key in GENERIC_CODES or table.get(key) == "liver"
    if len(couinaud) == 1 and liver_or_generic:  # Couinaud names win over the liver code (segment maps are coded Liver)
        return out(couinaud[0], "pattern", f"name matches the Couinaud segment pattern of {couinaud[0]}")
    if key is not None and key not in GENERIC_CODES and key[1]:
        coded = table.get(key)
        if coded:
            note = f"code {key[0]} {key[1]} {code_meaning}".rstrip() + f" is {coded}"
            named = role_by_name(text, builtin)[0] if text else None
            if named is not None and named != coded:
                return out(coded, "code", f"{note}; its name matches the {named} pattern (the code decides)", named)
            return out(coded, "code", note)
        return out(None, "unmatched-ignored", f"code {key[0]} {key[1]} {code_meaning}".rstrip() + " has no role")
    if not text:
        return out(None, "unmatched-ignored", "no name and no informative code")
    return out(*role_by_name(text, builtin))


def role_for_segment(
    name: str | None,
    code: tuple[str, str] | None,
    spec: LabelSpec,
    *,
    code_roles: Mapping[tuple[str, str], str] | None = None,
    interpreted_type: str | None = None,
) -> str | None:
    """Role of a named segment (see :func:`decide_role`), or ``None`` when it is ignored by the rules.

    Parameters
    ----------
    name : str or None
        Segment label / ROI name.
    code : (str, str) or None
        (CodingSchemeDesignator, CodeValue) of SegmentedPropertyType.
    spec : LabelSpec
        User mapping and name patterns.
    code_roles : mapping, optional
        Code -> role table (default :data:`~netlm_imaging.io.role_patterns.DEFAULT_CODE_ROLES`).
    interpreted_type : str, optional
        RTROIInterpretedType.

    Returns
    -------
    str or None
    """
    return decide_role(name, code, spec, code_roles=code_roles, interpreted_type=interpreted_type).role


def decide_label_name(
    name: str,
    spec: LabelSpec,
    *,
    value: int = 0,
    code: tuple[str, str] | None = None,
    code_meaning: str = "",
    source: str = "",
) -> RoleDecision:
    """The role of one value of a label map by the name its exporter gave it (nnU-Net, TotalSegmentator, Slicer ...).

    :func:`decide_role` first; a name it leaves without a role and without a code (and with no
    user mapping) is then compared whole with :data:`~netlm_imaging.io.role_patterns.ROLE_MASK_PATTERNS`,
    the names TotalSegmentator gives its structures (``liver_tumor``, ``kidney_left``), spaces read as
    ``_`` (Slicer color tables store ``liver_tumor`` and read it back as ``liver tumor``).

    Examples
    --------
    >>> from netlm_imaging.io.label_spec import parse_label_spec
    >>> spec = parse_label_spec(None)
    >>> [decide_label_name(n, spec).role for n in ("liver", "liver_tumor", "kidney left", "liver_vessels")]
    ['liver', 'lesion', 'kidney', 'vessel']
    """
    decision = decide_role(name, code, spec, number=value, code_meaning=code_meaning, source=source)
    if decision.role is not None or spec.exclusive or code is not None:
        return decision
    whole = re.sub(r"\s+", "_", decision.name.lower())
    for pattern, role in ROLE_MASK_PATTERNS:
        if role != "segment" and re.fullmatch(pattern, whole):
            return RoleDecision(
                source, value, decision.name, None, "", None, role, "pattern", f"TotalSegmentator's name of the {role}"
            )
    return decision


def assign_roles(
    items: Iterable[Any],
    spec: LabelSpec,
    source: str,
    *,
    noun: str = "segments",
    log: list[RoleDecision] | None = None,
) -> dict[int, str]:
    """Roles of numbered, named items (DICOM SEG segments, RTSTRUCT ROIs, .seg.nrrd segments).

    Parameters
    ----------
    items : iterable
        Objects with ``number``, ``label`` or ``name``, ``code`` and optionally
        ``meaning`` / ``interpreted_type``.
    spec : LabelSpec
        User mapping and patterns.
    source : str
        File named in messages and decisions.
    noun : str
        What the items are called in the message.
    log : list of RoleDecision, optional
        Collects one decision per item (the caller checks the whole study with
        :func:`~netlm_imaging.io.role_checks.check_decisions`). Without it the items of this file alone must
        give a liver or a lesion, else :class:`~netlm_imaging.errors.LabelError`.

    Returns
    -------
    dict
        item number -> role, for the items that got one (``ignore`` included).

    Raises
    ------
    LabelError
        Without ``log``: when no item is a liver or a lesion (listing every item and the flag that maps it).
    """
    decisions: list[RoleDecision] = []
    for item in items:
        name = getattr(item, "label", None) or getattr(item, "name", None)
        # a name the reader made up for an unlabelled segment ("Segment 2") says nothing: only a user mapping
        # may take it (it is the name messages show), the rules judge the segment by its code
        made_up = bool(getattr(item, "unnamed", False)) and not spec.exclusive
        decision = decide_role(
            None if made_up else name,
            item.code,
            spec,
            number=int(item.number),
            code_meaning=str(getattr(item, "meaning", "") or ""),
            interpreted_type=getattr(item, "interpreted_type", None),
            source=source,
        )
        decisions.append(replace(decision, name=str(name or "")) if made_up else decision)
    if log is not None:
        log.extend(decisions)
    else:
        check_decisions(decisions, spec, noun=noun, require_role=True)
        for line in summarize_decisions(decisions, spec):
            logger.warning("%s", line)
    return {d.number: d.role for d in decisions if d.role is not None}
