"""Couinaud anatomy as data: which remnants are surgically possible, and what a resection is called.

The rules file's ``[anatomy.couinaud]`` table gives each segment's neighbours
and the inflow, outflow and biliary structures it depends on;
``[anatomy.vessels]`` says when a structure is lost (every segment of its
``lost_when_resected`` list resected). :func:`remnant_check` applies the
consensus resectability rule: the kept segments must be contiguous, at least
``min_remnant_segments`` of them, each with inflow, outflow and biliary
drainage. :func:`resection_name` names a resected segment set by the
Brisbane 2000 terms of ``[resections]`` (hemihepatectomies, trisectionectomies,
sectionectomies), then segmentectomies for the rest ("bisegmentectomy" for two
adjacent segments, the Brisbane 2000 third-order term [U]).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import InputError
from ..measure.segments import SegmentTable

__all__ = ["ROLES", "candidate_resections", "parse_segments", "remnant_check", "resection_name", "validate_anatomy"]

ROLES = ("inflow", "outflow", "biliary")
_SEGMENTS = tuple(range(1, 9))


_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8}
#: One segment as surgeons write it: 5, S5, seg5, V, 4a / 4b / IVa (a sub-segment of 4).
_ONE = r"(?:s|seg|segment)?\s*(\d+|viii|vii|vi|iv|v|iii|ii|i)([ab])?"
_ITEM = re.compile(rf"^{_ONE}(?:\s*(?:-|–|to)\s*{_ONE})?$", re.IGNORECASE)


def _segment_number(token: str) -> int:
    n = _ROMAN.get(token.lower())
    return n if n is not None else int(token)


def parse_segments(text: str) -> tuple[int, ...]:
    """The Couinaud segments of a resection as surgeons write it, sorted.

    Items are separated by commas, ``+``, ``/``, ``;``, ``&``, "and" or spaces; each is a segment (``5``, ``S5``,
    ``seg 5``, Roman ``V``) or a range (``5-8``, ``S5-S8``, ``V-VIII``). A leading "segments" is
    ignored. Sub-segments 4a and 4b count as segment 4 only together: the segment map has one
    segment 4, so 4a or 4b alone cannot be evaluated.

    Raises
    ------
    ValueError
        A text naming no segment, or 4a / 4b alone; the message says what to write. (Whether the
        numbers lie in 1-8 is the caller's to check.)

    Examples
    --------
    >>> parse_segments("5-8"), parse_segments("S6, S7"), parse_segments("IV-VIII"), parse_segments("4a+4b,5")
    ((5, 6, 7, 8), (6, 7), (4, 5, 6, 7, 8), (4, 5))
    """
    body = re.sub(r"^\s*(?:segments?|segs?)\b\.?", "", text.strip(), flags=re.IGNORECASE)
    body = re.sub(r"\s*(-|–|\bto\b)\s*", r"\1", body)  # "5 - 8" is one range item
    items = [t for t in re.split(r"[,+/;&\s]+|\band\b", body, flags=re.IGNORECASE) if t]
    segs: set[int] = set()
    halves: set[str] = set()
    for item in items:
        m = _ITEM.match(item)
        if m is None:
            raise ValueError(f"{item!r} is not a Couinaud segment (write 5, S5, V, or a range such as 5-8)")
        first = _segment_number(m.group(1))
        last = first if m.group(3) is None else _segment_number(m.group(3))
        for sub, seg in ((m.group(2), first), (m.group(4), last)):
            if sub is not None:
                if seg != 4:
                    raise ValueError(f"{item!r}: only segment 4 has sub-segments (4a, 4b)")
                halves.add(sub.lower())
        lo, hi = sorted((first, last))  # 1-8 is the caller's to check (AnalyzeOptions names the option)
        if m.group(2) is not None and m.group(3) is None:
            continue  # 4a / 4b alone: counted below
        segs.update(range(lo, hi + 1))
    if halves and 4 not in segs:
        if halves != {"a", "b"}:
            raise ValueError(
                f"segment 4{halves.pop()} alone cannot be evaluated: the segment map has one segment 4 "
                "(write 4 to remove all of it)"
            )
        segs.add(4)
    if not segs:
        raise ValueError("no segment named (write the removed segments, e.g. 5,6,7,8 or 5-8)")
    return tuple(sorted(segs))


def _seg_table(anatomy: Mapping[str, Any]) -> dict[int, Mapping[str, Any]]:
    return {int(k): v for k, v in anatomy["couinaud"]["segments"].items()}


def _component(start: int, within: set[int], table: Mapping[int, Mapping[str, Any]]) -> set[int]:
    """Segments of ``within`` connected to ``start`` through the adjacency table."""
    seen, stack = {start}, [start]
    while stack:
        s = stack.pop()
        for t in table[s]["adjacent"]:
            if t in within and t not in seen:
                seen.add(t)
                stack.append(t)
    return seen


def remnant_check(
    kept: Iterable[int], anatomy: Mapping[str, Any], present: Iterable[int] | None = None
) -> tuple[bool, str]:
    """Whether a remnant is surgically possible, and why not.

    Parameters
    ----------
    kept : iterable of int
        Segments left in place.
    anatomy : Mapping
        ``rules["anatomy"]``.
    present : iterable of int, optional
        Segments that exist in the segment map (others are ignored); all 8 by default.

    Returns
    -------
    (bool, str)
        Feasible, and the reason (the failing rule, or "contiguous ...").

    Examples
    --------
    >>> from netlm_imaging.classify.rules import load_rules
    >>> anat = load_rules()["anatomy"]
    >>> remnant_check({3, 7}, anat)
    (False, 'remnant segments 3,7 are not contiguous')
    >>> remnant_check({1, 2, 3}, anat)[0]
    True
    """
    table = _seg_table(anatomy)
    vessels = anatomy["vessels"]
    pres = set(_SEGMENTS if present is None else present)
    keep = sorted(set(kept) & pres)
    resected = pres - set(keep)
    need = int(anatomy["couinaud"]["min_remnant_segments"])
    label = ",".join(map(str, keep)) or "none"
    if len(keep) < need:
        return False, f"remnant {label} keeps fewer than {need} segments"
    if len(_component(keep[0], set(keep), table)) != len(keep):
        return False, f"remnant segments {label} are not contiguous"
    lost = {name for name, v in vessels.items() if set(v["lost_when_resected"]) <= resected}
    for s in keep:
        for role in ROLES:
            if all(name in lost for name in table[s][role]):
                names = "/".join(table[s][role])
                return False, f"segment {s} loses its {role} ({names} taken by the resection)"
    return True, f"contiguous remnant {label} with inflow, outflow and biliary drainage"


def candidate_resections(
    table: SegmentTable, anatomy: Mapping[str, Any], allow_resection: bool
) -> tuple[dict[frozenset[int], str], int]:
    """Resected segment sets whose remnant passes the anatomy test -> the test's verdict; and how many failed.

    Only segments present in the map (any liver voxel) are considered.
    """
    present = [k for k in range(1, len(_SEGMENTS) + 1) if table.liver_voxels[k] > 0]
    out: dict[frozenset[int], str] = {}
    rejected = 0
    sizes = range(len(present) + 1) if allow_resection else range(1)
    for r in sizes:
        for c in itertools.combinations(present, r):
            s = frozenset(c)
            ok, why = remnant_check(set(present) - s, anatomy, present)
            if ok:
                out[s] = why
            else:
                rejected += 1
    return out, rejected


def resection_name(resected: Iterable[int], anatomy: Mapping[str, Any], resections: Mapping[str, Any]) -> str:
    """Name a resected segment set: Brisbane resections of ``[resections]``, then segmentectomies.

    Each connected part of the resected set (in the adjacency table) is named
    on its own; a part equal to a named resection (with or without segment 1)
    takes its label, else the largest named resections inside it are named and the
    rest is "segmentectomy N", "bisegmentectomy a+b" (two adjacent segments) or "segmentectomies a+b+c".

    Examples
    --------
    >>> from netlm_imaging.classify.rules import load_rules
    >>> r = load_rules()
    >>> resection_name({5, 6, 7, 8}, r["anatomy"], r["resections"])
    'Right hemihepatectomy'
    >>> resection_name({2, 3, 6}, r["anatomy"], r["resections"])
    'Left lateral sectionectomy + segmentectomy 6'
    >>> resection_name({6, 7, 8}, r["anatomy"], r["resections"])
    'Right posterior sectionectomy + segmentectomy 8'
    >>> resection_name({5, 6}, r["anatomy"], r["resections"])
    'bisegmentectomy 5+6'
    """
    table = _seg_table(anatomy)
    rest = set(resected)
    if not rest:
        return "no resection"
    parts: list[set[int]] = []
    while rest:
        comp = _component(min(rest), rest, table)
        rest -= comp
        parts.append(comp)
    names = []
    for comp in sorted(parts, key=min):
        label = None
        for r in resections.values():
            segs = set(r["segments"])
            if comp in (segs, segs | {1}):
                label = r["label"] + (" with segment 1" if comp == segs | {1} and 1 not in segs else "")
                break
        names.append(label if label is not None else _decomposed(comp, resections, table))
    return " + ".join(names)


def _segmentectomies(segs: Iterable[int], table: Mapping[int, Mapping[str, Any]]) -> str:
    """Segments no named resection takes: Brisbane 2000's third order, "segmentectomy 6", "bisegmentectomy 5+6"
    for two adjacent segments (the planner wrote "segmentectomies 5+6") [U: term from the Brisbane system, its
    table not retrieved], else "segmentectomies a+b+c"."""
    s = sorted(segs)
    if len(s) == 1:
        return f"segmentectomy {s[0]}"
    if len(s) == 2 and s[1] in table[s[0]]["adjacent"]:
        return f"bisegmentectomy {s[0]}+{s[1]}"
    return f"segmentectomies {'+'.join(map(str, s))}"


def _decomposed(comp: set[int], resections: Mapping[str, Any], table: Mapping[int, Mapping[str, Any]]) -> str:
    """A connected resected set that is no named resection: the largest named resections inside it, then
    segmentectomies of the rest ({6, 7, 8}: "Right posterior sectionectomy + segmentectomy 8", which
    read "segmentectomies 6+7+8" while {2, 3, 6} read "Left lateral sectionectomy + segmentectomy 6")."""
    left, names = set(comp), []
    while True:
        inside = [r for r in resections.values() if len(r["segments"]) >= 2 and set(r["segments"]) <= left]
        if not inside:
            break
        best = max(inside, key=lambda r: len(r["segments"]))  # the first of the largest, in table order
        names.append(str(best["label"]))
        left -= set(best["segments"])
    return " + ".join([*names, *([_segmentectomies(left, table)] if left else [])])


def validate_anatomy(anatomy: Mapping[str, Any], source: str) -> None:
    """Check the anatomy table: 8 segments, symmetric adjacency, known structures with the right roles.

    Raises
    ------
    InputError
        Naming the key and what is wrong.
    """
    segs = anatomy["couinaud"]["segments"]
    if sorted(segs) != [str(s) for s in _SEGMENTS]:
        raise InputError(f"{source}: 'anatomy.couinaud.segments' must have segments 1-8, got {sorted(segs)}")
    table = _seg_table(anatomy)
    vessels = anatomy["vessels"]
    for s, entry in table.items():
        for t in entry["adjacent"]:
            if t not in table or t == s:
                raise InputError(f"{source}: 'anatomy.couinaud.segments.{s}.adjacent' has invalid segment {t}")
            if s not in table[t]["adjacent"]:
                raise InputError(
                    f"{source}: adjacency must be symmetric: segment {s} lists {t} as adjacent but "
                    f"'anatomy.couinaud.segments.{t}.adjacent' lacks {s}"
                )
        for role in ROLES:
            if not entry[role]:
                raise InputError(f"{source}: 'anatomy.couinaud.segments.{s}.{role}' must name at least one structure")
            for name in entry[role]:
                if name not in vessels:
                    raise InputError(
                        f"{source}: 'anatomy.couinaud.segments.{s}.{role}' names unknown structure {name!r}; "
                        f"add it to [anatomy.vessels]"
                    )
                if vessels[name]["role"] != role:
                    raise InputError(
                        f"{source}: structure {name!r} has role {vessels[name]['role']!r}, "
                        f"listed as {role} of segment {s}"
                    )
    for name, v in vessels.items():
        if v["role"] not in ROLES or not v["lost_when_resected"] or not set(v["lost_when_resected"]) <= set(table):
            raise InputError(
                f"{source}: 'anatomy.vessels.{name}' needs role in {ROLES} and lost_when_resected segments 1-8"
            )
