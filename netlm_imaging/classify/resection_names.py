"""A resection as surgeons name it ("right hepatectomy + 1", "left lateral sectionectomy") -> Couinaud segments.

``--resection`` and ``AnalyzeOptions(resections=...)`` take the removed segments
(:func:`~netlm_imaging.classify.anatomy.parse_segments`: ``5-8``, ``S6+S7``, ``VI-VII``) or the
name of a resection. Names are read from the ``[resections]`` table of the shipped rules (its
keys, ``right_hepatectomy`` / "right hepatectomy", and its labels, "Right hemihepatectomy",
either half of "Extended right hemihepatectomy (right trisectionectomy)"), from the Brisbane 2000
names of the sections that table lacks, and from a few older synonyms whose segment set is not
in doubt (clinical_rules.md section 9):

- central bisectionectomy = segments 4, 5, 8, the table's central hepatectomy (mesohepatectomy):
  left medial plus right anterior section (the segment set follows from the section anatomy [C],
  this name [U]);
- caudate lobectomy / caudatectomy / caudate = segment 1 [C];
- right / left trisegmentectomy (Starzl's terms) = right / left trisectionectomy, left lateral
  segmentectomy (or bisegmentectomy) = left lateral sectionectomy [C] (old "left lateral
  segmentectomy 2-3").

Parts are joined with ``+``, "plus", "with", "and", "extended to", commas: "right hepatectomy with
segment 1", "left hepatectomy extended to segments 5 and 8", "left lateral sectionectomy +
segmentectomy 6" (the tool's own plan names read back). "Segmentectomy 6", "bisegmentectomy
6-7", "segmentectomies 2+3", "resection of segment 4" name segments. Refused, with what to write
instead: names whose segments differ between nomenclatures ("right lobectomy": the anatomical
right lobe includes segment 4 [C]; "left lobectomy" is 2-3 in older and 2-4 in other usage; a
"sectorectomy" of the left liver, whose Couinaud sectors differ from the Brisbane sections) and
non-anatomical treatments (wedge, enucleation, ablation), which are no segment set: the planner
evaluates them itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..rules_data import default_section
from .anatomy import parse_segments

__all__ = ["parse_resection", "resection_names"]

#: Brisbane 2000 section names and synonyms the [resections] table has no entry for (module docstring).
_NAMED_SEGMENTS: dict[str, tuple[int, ...]] = {
    "central bisectionectomy": (4, 5, 8),
    "caudate lobectomy": (1,),
    "caudatectomy": (1,),
    "caudate": (1,),
    "caudate lobe": (1,),
}
#: Older synonyms of [resections] entries (key of the table).
_SYNONYMS: dict[str, str] = {
    "right trisegmentectomy": "extended_right_hepatectomy",
    "left trisegmentectomy": "extended_left_hepatectomy",
    "left lateral segmentectomy": "left_lateral_sectionectomy",
    "left lateral bisegmentectomy": "left_lateral_sectionectomy",
    "right anterior sectorectomy": "right_anterior_sectionectomy",
    "right posterior sectorectomy": "right_posterior_sectionectomy",
}
_AMBIGUOUS = {
    "lobectomy": "a 'lobectomy' names different segments in different nomenclatures (the anatomical right lobe "
    "includes segment 4; a left lobectomy is 2-3 or 2-4)",
    "sectorectomy": "a left 'sectorectomy' removes Couinaud's sectors (left lateral sector = segment 2 only), "
    "not the Brisbane sections",
}
_NON_ANATOMICAL = ("wedge", "enucleation", "ablation", "non anatomical", "nonanatomical", "atypical", "metastasectomy")
#: Words around segment numbers: "segmentectomy 6", "bisegmentectomy 6-7", "anatomical resection of segment 4",
#: "S8 segmentectomy".
_SEGMENT_WORDS = re.compile(
    r"\b(?:anatomic(?:al)?\s+)?(?:(?:bi|tri)?segmentectom(?:y|ies)|(?:bi|tri)?sectionectom(?:y|ies)|resection(?:\s+of)?)\b",
    re.IGNORECASE,
)
#: The approach, not the extent: "laparoscopic right hepatectomy" is a right hepatectomy.
_APPROACH = re.compile(r"\b(?:laparoscopic|lap|robotic|robot assisted|open|formal|anatomic(?:al)?)\b\s*")
#: Joins between parts of one resection (not "-" or "to": those are ranges of segments).
_JOIN = re.compile(r"\s*(?:\+|,|;|&|\bplus\b|\bwith\b|\band\b|\bextended\s+to\b|\bincluding\b)\s*", re.IGNORECASE)


def _norm(text: str) -> str:
    text = text.lower().replace("hemi-hepatectomy", "hemihepatectomy").replace("_", " ")
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text)  # "left-lateral" -> "left lateral"
    return " ".join(re.sub(r"[().]", " ", text).split())


def resection_names(resections: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, tuple[int, ...]]:
    """Every resection name this module reads -> its removed segments.

    Parameters
    ----------
    resections : Mapping, optional
        ``rules["resections"]``; the shipped table by default.

    Examples
    --------
    >>> names = resection_names()
    >>> names["right hepatectomy"], names["right trisectionectomy"], names["central hepatectomy"]
    ((5, 6, 7, 8), (4, 5, 6, 7, 8), (4, 5, 8))
    """
    table = resections if resections is not None else default_section("resections")
    out: dict[str, tuple[int, ...]] = {}
    for key, entry in table.items():
        segs = tuple(sorted(int(s) for s in entry["segments"]))
        label = str(entry.get("label", ""))
        names = [_norm(key), _norm(label)]
        outer, _, inner = label.partition("(")
        if inner:  # "Extended right hemihepatectomy (right trisectionectomy)": either name
            names += [_norm(outer), _norm(inner)]
        for name in names:
            if name:
                out.setdefault(name, segs)
                if "hemihepatectomy" in name:  # "right hemihepatectomy" = "right hepatectomy" (Brisbane 2000)
                    out.setdefault(name.replace("hemihepatectomy", "hepatectomy"), segs)
    for name, key in _SYNONYMS.items():
        if key in table:
            out.setdefault(name, tuple(sorted(int(s) for s in table[key]["segments"])))
    for name, segs in _NAMED_SEGMENTS.items():
        out.setdefault(name, segs)
    return out


def _has_words(text: str) -> bool:
    """Whether ``text`` holds a word that is neither a segment word nor a Roman numeral ("right", "wedge")."""
    words = re.findall(r"[a-z]{3,}", _norm(text))
    return any(w not in ("seg", "segment", "segments", "iii", "vii", "viii", "and") for w in words)


def _part(part: str, names: Mapping[str, tuple[int, ...]], whole: str) -> tuple[int, ...]:
    written = re.match(r"^(.*?[a-z].*?)\s*\(\s*(?:segment\(s\)|segments?|segs?|s)?\s*([\divx,+\s-]+)\)\s*$", part, re.I)
    if written and _norm(written.group(1)) in names:  # "right hemihepatectomy (segment(s) 5,6,7,8)": both must agree
        named, listed = names[_norm(written.group(1))], parse_segments(written.group(2))
        if named != listed:
            raise ValueError(
                f"{whole!r}: {written.group(1).strip()!r} removes segments {','.join(map(str, named))}, "
                f"not {','.join(map(str, listed))}; write the name or the segments"
            )
        return named
    key = _norm(part)
    if _APPROACH.sub("", key).strip() in names and not any(w in key for w in _NON_ANATOMICAL):
        return names[_APPROACH.sub("", key).strip()]
    if key in names:
        return names[key]
    for word in _NON_ANATOMICAL:
        if word in key:
            raise ValueError(
                f"{part!r} is no set of Couinaud segments: wedge resections, enucleations and ablations are "
                "planned by the tool itself (the report's resection_plan); give only the anatomical resection"
            )
    for word, why in _AMBIGUOUS.items():
        if word in key:
            raise ValueError(f"{why}; write the Brisbane 2000 name (e.g. right hemihepatectomy) or the segments")
    rest = _SEGMENT_WORDS.sub(" ", _APPROACH.sub("", part.strip().lower())).strip()
    try:
        return parse_segments(rest)
    except ValueError as exc:
        if _has_words(rest):
            raise ValueError(
                f"{whole!r}: {part!r} is neither a Couinaud segment nor a resection name this tool knows "
                "(e.g. right hepatectomy, left lateral sectionectomy, right trisectionectomy, central "
                "hepatectomy, segmentectomy 6, or the segments 5-8)"
            ) from None
        raise exc


def parse_resection(text: str, resections: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[int, ...]:
    """The removed Couinaud segments of a resection given by its segments or its name, sorted.

    Parameters
    ----------
    text : str
        "5-8", "S6+S7", "right hepatectomy", "Right hemihepatectomy with segment 1", "left lateral
        sectionectomy + segmentectomy 6", "central hepatectomy", ...
    resections : Mapping, optional
        ``rules["resections"]``; the shipped table by default.

    Raises
    ------
    ValueError
        An unknown or ambiguous name, or a segment text :func:`parse_segments` refuses; the message says
        what to write.

    Examples
    --------
    >>> parse_resection("right hepatectomy + 1"), parse_resection("Left lateral sectionectomy + segmentectomy 6")
    ((1, 5, 6, 7, 8), (2, 3, 6))
    >>> parse_resection("left hepatectomy extended to segments 5 and 8"), parse_resection("VI-VII")
    ((2, 3, 4, 5, 8), (6, 7))
    """
    try:
        return parse_segments(text)
    except ValueError as first:
        if not _has_words(text):
            raise first  # a segment list with a bad item ("5,x", "4b"): its own message
    names = resection_names(resections)
    whole = _norm(text)
    if whole in names:
        return names[whole]
    text = re.sub(r"segment\(s\)", "segments", text, flags=re.IGNORECASE)
    protected = re.sub(r"\([^()]*\)", lambda m: re.sub(r"[,+;&]", " ", m.group(0)), text.strip())
    parts = [p for p in _JOIN.split(protected) if p.strip()]
    if not parts:
        raise ValueError("no segment or resection named (e.g. right hepatectomy, or the segments 5-8)")
    segs: set[int] = set()
    for part in parts:
        segs.update(_part(part, names, text))
    return tuple(sorted(segs))
