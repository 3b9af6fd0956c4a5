"""The names an exporter gives the values of a label map, and the roles they give.

A label map is only integers; the tools that write one keep the names of its values
elsewhere, and this module reads them so the map is read with its own numbering instead of
the LiTS default (1 liver, 2 lesion):

* **TotalSegmentator** (v2, ``--ml``): a CaretExtension XML ``LabelTable`` in a NIfTI header
  extension (``<Label Key="5" ...><![CDATA[liver]]></Label>``);
* **3D Slicer** color tables saved beside a label map volume: ``.ctbl`` / ``.txt`` lines
  ``index name R G B A`` (``#`` comments; spaces in names stored as ``_``), or the CSV table of
  Slicer 5 (``LabelValue,Name,Color_R,...,Type_CodingScheme,Type_CodeValue,Type_CodeMeaning,...``),
  named after the label map (``Segmentation-label.nrrd`` beside ``Segmentation_ColorTable.csv``);
* **ITK-SNAP** label descriptions (``*.label`` / ``*.txt``: ``IDX R G B A VIS MSH "LABEL"``),
  named after the label map.

The names get their roles by :func:`netlm_imaging.io.role_precedence.decide_label_name` (the rules of
named segments, docs/roles.md), one :class:`~netlm_imaging.io.role_decision.RoleDecision` per value
in ``study.segment_roles``. A table that is not well formed, gives one value two names, or
two tables beside one map that disagree: nothing can be decided, exit 3 naming the file and
``--labels``. A table beside the map that pairs with no label map by name is noted, not used.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import LabelError
from ..segmentation import MaskLayer
from ..volume import Volume
from .formats import VOLUME_EXTENSIONS
from .label_spec import LabelSpec
from .label_values import layers_from_label_map
from .role_checks import check_decisions
from .role_decision import RoleDecision
from .role_precedence import decide_label_name

__all__ = [
    "LabelEntry",
    "LabelTable",
    "label_table_for",
    "layers_from_label_table",
    "nifti_label_table",
    "parse_itksnap_labels",
    "parse_slicer_color_table",
    "sidecar_label_table",
]

logger = logging.getLogger(__name__)

#: Table files larger than this are not read (a color table of the 1e6 values Slicer allows is ~40 MB;
#: label maps of a study hold hundreds).
MAX_TABLE_BYTES = 4 << 20
#: Suffixes of label tables beside a label map, longest first.
TABLE_SUFFIXES = (".labels.csv", ".ctbl", ".label", ".csv", ".txt")
#: Endings of label map names Slicer and users add (``Segmentation-label.nrrd``): compared without them too.
_MAP_TAILS = ("-label", "_label", "-labelmap", "_labelmap", "-labels", "_labels")
#: Endings of table names (``Segmentation_ColorTable.csv``, ``case1_labels.txt``): compared without them too.
_TABLE_TAILS = ("_colortable", "-colortable", "_colors", "-colors", "_labels", "-labels", "_label", "-label")
_ITKSNAP_LINE = re.compile(r"^\s*(-?\d+)\s+\d+\s+\d+\s+\d+\s+[-+\d.eE]+\s+\d+\s+\d+\s+\"(.*)\"\s*$")
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_FIX = "map the values yourself with --labels ROLE=VALUE (e.g. --labels liver=5,lesion=2)"


@dataclass(frozen=True)
class LabelEntry:
    """One value of a label map and the name (and code) its exporter gave it."""

    value: int
    name: str
    code: tuple[str, str] | None = None
    meaning: str = ""


@dataclass(frozen=True)
class LabelTable:
    """The names of a label map's values, and where they were read.

    Attributes
    ----------
    source : str
        The file the names were read from (the label map itself for a NIfTI extension).
    kind : str
        What the table is, for notes (``TotalSegmentator label table in the NIfTI header extension``).
    entries : tuple of LabelEntry
        One per named value, background (0) left out.
    """

    source: str
    kind: str
    entries: tuple[LabelEntry, ...]

    def mapping(self) -> dict[int, tuple[str, tuple[str, str] | None]]:
        """value -> (name, code), for comparing two tables."""
        return {e.value: (e.name, e.code) for e in self.entries}


def _entries(pairs: Sequence[LabelEntry], where: str, kind: str) -> tuple[LabelEntry, ...]:
    """The non-background entries; a value named twice differently cannot be decided (exit 3)."""
    seen: dict[int, LabelEntry] = {}
    for e in pairs:
        if e.value == 0:
            continue
        if e.value < 0:
            raise LabelError(f"{where}: its {kind} names the negative label value {e.value}; {_FIX}.")
        prior = seen.get(e.value)
        if prior is not None and (prior.name, prior.code) != (e.name, e.code):
            raise LabelError(
                f"{where}: its {kind} gives label value {e.value} two names ({prior.name!r}, {e.name!r}), so its "
                f"numbering cannot be trusted; {_FIX}."
            )
        seen[e.value] = e
    return tuple(seen[v] for v in sorted(seen))


# --- TotalSegmentator: CaretExtension XML in a NIfTI header extension -------------------------


def _caret_labels(content: bytes, where: str) -> list[LabelEntry] | None:
    """The ``LabelTable`` of a CaretExtension XML, None when the content is not one."""
    if b"CaretExtension" not in content[:4096] or b"LabelTable" not in content:
        return None
    kind = "NIfTI label table (CaretExtension XML)"
    try:
        root = ET.fromstring(content.decode("utf-8").strip().strip("\x00").strip())
    except (ET.ParseError, UnicodeDecodeError, ValueError) as exc:
        raise LabelError(f"{where}: its {kind} is not well-formed XML ({exc}); {_FIX}.") from None
    out: list[LabelEntry] = []
    for label in root.iter("Label"):
        key = (label.get("Key") or "").strip()
        if not re.fullmatch(r"-?\d+", key):
            raise LabelError(f"{where}: its {kind} has a Label Key {key!r} that is not an integer; {_FIX}.")
        out.append(LabelEntry(int(key), (label.text or "").strip()))
    return out


def nifti_label_table(header: Any, where: str) -> LabelTable | None:
    """The label table TotalSegmentator writes into a NIfTI header extension, None without one.

    TotalSegmentator (``add_label_map_to_nifti``) appends an extension (code 0) holding a
    CaretExtension XML document whose ``LabelTable`` has one ``<Label Key="N">name</Label>``
    per value; the Caret code (30) is read the same way. A header copied from the input may
    carry other extensions: every one is looked at, and two different tables cannot be decided.

    Parameters
    ----------
    header : nibabel.nifti1.Nifti1Header
        The file's header (``img.header``).
    where : str
        The file, for messages.

    Returns
    -------
    LabelTable or None

    Raises
    ------
    LabelError
        A table that is not well formed, names a value twice differently, or two different tables.
    """
    tables: list[tuple[LabelEntry, ...]] = []
    kind = "TotalSegmentator label table (NIfTI header extension)"
    for ext in getattr(header, "extensions", None) or ():
        try:
            content = ext.get_content()
        except Exception:  # an extension nibabel cannot hand back: not a label table
            continue
        if not isinstance(content, bytes) or len(content) > MAX_TABLE_BYTES:
            continue
        found = _caret_labels(content, where)
        if found is not None:
            entries = _entries(found, where, kind)
            if entries not in tables:
                tables.append(entries)
    if not tables:
        return None
    if len(tables) > 1:
        raise LabelError(f"{where}: its header holds {len(tables)} different label tables; {_FIX}.")
    return LabelTable(where, kind, tables[0])


# --- Slicer color tables and ITK-SNAP label descriptions beside the map -------------------------


def parse_slicer_color_table(text: str, where: str = "") -> list[LabelEntry] | None:
    """Entries of a Slicer color table (``.ctbl``/``.txt`` lines, or the Slicer 5 CSV); None when not one.

    Examples
    --------
    >>> rows = parse_slicer_color_table("# Color table file x.ctbl\\n0 Background 0 0 0 0\\n5 liver_tumor 1 2 3 255")
    >>> [(e.value, e.name) for e in rows]
    [(0, 'Background'), (5, 'liver tumor')]
    """
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if lines and lines[0].lstrip("\ufeff").startswith("LabelValue"):
        return _slicer_csv(text.lstrip("\ufeff"))
    out: list[LabelEntry] = []
    for line in lines:
        if line.startswith("#"):
            if line.startswith("# Color procedural file"):
                return None
            continue
        tokens = line.split()
        if len(tokens) not in (5, 6) or not re.fullmatch(r"-?\d+", tokens[0]):
            return None
        if not all(_NUMBER.match(t) for t in tokens[2:]):
            return None
        name = "" if tokens[1] == "_" else tokens[1].replace("_", " ").strip("'")  # as Slicer reads it back
        out.append(LabelEntry(int(tokens[0]), name))
    return out or None


def _slicer_csv(text: str) -> list[LabelEntry] | None:
    """Slicer 5's CSV color table: LabelValue, Name, and the Type_* terminology columns."""
    out: list[LabelEntry] = []
    for row in csv.DictReader(io.StringIO(text)):
        value = (row.get("LabelValue") or "").strip()
        if not value:
            continue
        if not re.fullmatch(r"-?\d+", value):
            return None
        scheme = (row.get("Type_CodingScheme") or "").strip()
        code_value = (row.get("Type_CodeValue") or "").strip()
        code = (scheme, code_value) if scheme and code_value else None
        out.append(LabelEntry(int(value), (row.get("Name") or "").strip(), code, (row.get("Type_CodeMeaning") or "")))
    return out or None


def parse_itksnap_labels(text: str) -> list[LabelEntry] | None:
    """Entries of an ITK-SNAP label description file (``IDX R G B A VIS MSH "LABEL"``); None when not one.

    Examples
    --------
    >>> rows = parse_itksnap_labels('# ITK-SnAP Label Description File\\n    0 0 0 0 0 0 0 "Clear Label"\\n'
    ...                             '    1 255 0 0 1 1 1 "Liver"\\n')
    >>> [(e.value, e.name) for e in rows]
    [(0, 'Clear Label'), (1, 'Liver')]
    """
    out: list[LabelEntry] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _ITKSNAP_LINE.match(line)
        if m is None:
            return None
        out.append(LabelEntry(int(m.group(1)), m.group(2).strip()))
    return out or None


def _read_table_file(path: Path) -> LabelTable | None:
    """The table a file beside a label map holds (Slicer or ITK-SNAP, by content), None when it holds none."""
    try:
        if path.stat().st_size > MAX_TABLE_BYTES:
            return None
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError:
        return None
    if "ITK-SnAP Label Description" in text[:2000] or "ITK-SNAP Label Description" in text[:2000]:
        entries, kind = parse_itksnap_labels(text), "ITK-SNAP label description file"
    else:
        entries, kind = parse_slicer_color_table(text), "3D Slicer color table"
        if entries is None:
            entries, kind = parse_itksnap_labels(text), "ITK-SNAP label description file"
    if entries is None:
        return None
    return LabelTable(str(path), kind, _entries(entries, str(path), kind))


def _is_table(path: Path) -> bool:
    """Whether a file holds a label table (also one that would be refused: it is not used either way)."""
    try:
        return _read_table_file(path) is not None
    except LabelError:
        return True


def _stem(name: str, suffixes: Sequence[str]) -> str | None:
    low = name.lower()
    return next((low[: -len(s)] for s in suffixes if low.endswith(s) and len(low) > len(s)), None)


def _keys(stem: str, tails: Sequence[str]) -> set[str]:
    return {stem} | {stem[: -len(t)] for t in tails if stem.endswith(t) and len(stem) > len(t)}


def _pairs(table: Path, label_map: Path) -> bool:
    """Whether a table file is named after a label map (``seg.ctbl``, ``seg_ColorTable.csv`` for ``seg-label.nrrd``)."""
    t = _stem(table.name, TABLE_SUFFIXES)
    m = _stem(label_map.name, VOLUME_EXTENSIONS)
    return t is not None and m is not None and bool(_keys(t, _TABLE_TAILS) & _keys(m, _MAP_TAILS))


def sidecar_label_table(label_map: str | Path, notes: list[str] | None = None) -> LabelTable | None:
    """The Slicer color table or ITK-SNAP label description file named after ``label_map``, None without one.

    Parameters
    ----------
    label_map : str or Path
        The label map file.
    notes : list of str, optional
        Gets a note for each table in the folder that pairs with no label map by name (not used).

    Returns
    -------
    LabelTable or None

    Raises
    ------
    LabelError
        A table that names a value twice differently, or two tables named after the map that disagree.
    """
    p = Path(label_map)
    try:
        siblings = sorted(f for f in p.parent.iterdir() if f.is_file() and _stem(f.name, TABLE_SUFFIXES) is not None)
    except OSError:
        return None
    paired = [f for f in siblings if _pairs(f, p)]
    tables = []
    for f in paired:
        table = _read_table_file(f)
        if table is not None:
            tables.append(table)
        elif f.name.lower().endswith((".ctbl", ".label")):  # meant as a table, but not one this reads
            raise LabelError(
                f"{f}: named after the label map {p.name} but not a color table / label description file "
                f"(lines 'index name R G B A', or ITK-SNAP's 'IDX R G B A VIS MSH \"LABEL\"'); fix the table, "
                f"or {_FIX}."
            )
    if notes is not None and not tables:
        volumes = [f for f in p.parent.iterdir() if _stem(f.name, VOLUME_EXTENSIONS) is not None]
        for f in siblings:
            if f in paired or any(_pairs(f, v) for v in volumes) or not _is_table(f):
                continue
            notes.append(
                f"{f}: a label table in the folder of {p.name} that is named after no label map: not used "
                f"(name it {_stem(p.name, VOLUME_EXTENSIONS)}.ctbl / .txt / .label to pair it, or pass --labels)"
            )
    if not tables:
        return None
    if any(t.mapping() != tables[0].mapping() for t in tables[1:]):
        names = ", ".join(t.source for t in tables)
        raise LabelError(
            f"{p}: the label tables named after it disagree ({names}); keep the one that belongs to it, or {_FIX}."
        )
    return tables[0]


def label_table_for(path: str | Path, *, header: Any = None, notes: list[str] | None = None) -> LabelTable | None:
    """The exporter's names of a label map's values: its NIfTI header extension, else a table named after it.

    Parameters
    ----------
    path : str or Path
        The label map.
    header : nibabel header, optional
        A NIfTI file's header (read here when the file is NIfTI and it is not given).
    notes : list of str, optional
        Gets the notes of tables beside the map that were not used.
    """
    p = Path(path)
    if header is None and p.name.lower().endswith((".nii", ".nii.gz")):
        from ._nibabel import import_nibabel

        try:
            header = import_nibabel().load(str(p)).header
        except Exception:  # the reader has already said what is wrong with the file
            header = None
    if header is not None:
        embedded = nifti_label_table(header, str(p))
        if embedded is not None:
            return embedded
    return sidecar_label_table(p, notes)


def layers_from_label_table(
    label_map: Volume,
    table: LabelTable,
    spec: LabelSpec,
    *,
    log: list[RoleDecision] | None = None,
    notes: Sequence[str] = (),
    source_notes: list[str] | None = None,
) -> list[MaskLayer]:
    """Split a label map into role layers by the names of its table.

    Each named value gets a role like a named segment (docs/roles.md): a user mapping with names
    (``--labels liver="liver"``, ``--segment-pattern``) decides alone, else the name rules. Values
    without a role are ignored; values present in the map but not in the table are ignored with
    a note.

    Parameters
    ----------
    label_map : Volume
        Integer label image.
    table : LabelTable
        Its names.
    spec : LabelSpec
        The study's mapping (no ``--labels`` values: those win over any table, and the caller uses them).
    log : list of RoleDecision, optional
        Collects one decision per named value (the caller checks the whole study); without it the
        table must give a liver or a lesion, else :class:`LabelError`.
    notes : sequence of str
        Notes the layers carry before this function's own.
    source_notes : list of str, optional
        Gets the note of where the names came from and the mapping they gave; without it the
        layers carry it.

    Returns
    -------
    list of MaskLayer
    """
    source = label_map.source
    decisions = [
        decide_label_name(e.name, spec, value=e.value, code=e.code, code_meaning=e.meaning, source=source)
        for e in table.entries
    ]
    described = "its " + table.kind if table.source == source else f"the {table.kind} {Path(table.source).name}"
    decisions = [replace(d, note=f"label {d.number} of {described}: {d.note}") for d in decisions]
    if log is not None:
        log.extend(decisions)
    else:
        check_decisions(decisions, spec, noun="label names", require_role=True)
    mapping: dict[str, list[int | str]] = {}
    for d in decisions:
        mapping.setdefault(d.role or "ignore", []).append(d.number)
    roles = ",".join(f"{r}={'+'.join(str(v) for v in vs)}" for r, vs in mapping.items() if r != "ignore")
    ignored = len(mapping.get("ignore", []))
    note = f"{source}: label names from {described}: {roles or 'no value with a role'}" + (
        f"; {ignored} named value(s) without a role ignored (study.segment_roles)" if ignored else ""
    )
    logger.info("%s", note)
    file_spec = LabelSpec(mapping, True, spec.name_patterns, spec.user_pattern_count, origin=f"{described}")
    if source_notes is not None:
        source_notes.append(note)
    layers = layers_from_label_map(label_map, file_spec, notes=notes if source_notes is not None else [*notes, note])
    names = {str(d.number): d.name for d in decisions}
    # a vessel layer is named by its table's names (the distances name the vessel), not by its values
    return [
        replace(la, label="+".join(names.get(v, v) for v in la.label.split("+")))
        if la.role == "vessel" and la.label
        else la
        for la in layers
    ]
