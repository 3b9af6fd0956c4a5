"""The label numbering of an nnU-Net prediction, from the ``dataset.json`` beside it.

nnU-Net (v1 and v2) writes integer label maps whose numbering is only in the
dataset's ``dataset.json``, and ``nnUNetv2_predict`` copies that file into the
output folder. When the user gives no ``--labels``, a label map with a
``dataset.json`` in its folder, else in the folder above it (a dataset's
``imagesTs_pred/`` or ``labelsTr/``, a study folder inside the dataset's folder), is read
with that numbering instead of the LiTS default: a model trained with
``{"tumour": 1, "liver": 2}`` would otherwise have its liver taken as tumour. The file
used is logged and named in the report's note. The label names get their roles as every exporter's
label names do, by :func:`netlm_imaging.io.role_precedence.decide_label_name` (the
conservative name patterns: ``liver``, ``tumour`` / ``cancer`` / ``lesion``,
``spleen``, Couinaud segments; then TotalSegmentator's whole names such as
``liver_tumor``, ``kidney_left``); a name without a role is ignored, named in the note.

Both layouts of ``labels`` are read: v2 ``{"background": 0, "liver": 1, "tumor": 2}``
(a value may be a one-element list, ``"tumor": [2]``, or text, ``"tumor": "2"``, as nnU-Net allows) and v1 / Medical
Segmentation Decathlon ``{"0": "background", "1": "liver", "2": "cancer"}``. Files that
cannot be read, or whose plain numbering names one value twice, are not guessed: the LiTS
default stays, with a note saying to pass ``--labels``.

Region-based labels (v2 ``{"background": 0, "liver": [1, 2], "tumour": 2}`` with
``"regions_class_order": [1, 2]``) are read as ``nnUNetv2_predict`` writes them: it places the
i-th value of ``regions_class_order`` wherever the i-th region (the i-th non-background entry
of ``labels``) is on, later regions overwriting earlier ones, so a voxel's value is a label of
every region whose list names it. A region's role therefore spans the values its list names:
the liver region ``[1, 2]`` is ``liver=1+2`` and holds the tumour region ``2`` (the lesions
counted as liver, as with LiTS). Without ``regions_class_order`` (nnU-Net cannot predict without
it) the order is derived when every region has one value of its own. What cannot be decided is
exit 3 (:class:`~netlm_imaging.errors.LabelError`) naming the file and ``--labels``: regions with
roles that overlap without one holding the other, a region holding one of another role other
than a liver holding its lesions or segments, a ``regions_class_order`` that does not fit the
regions (one value per region, a value of the region's own when it has one), or one that writes
a region over an earlier one it overlaps with a value of another role (a liver written over its
tumour: the map then shows no tumour voxel inside the liver).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import LabelError
from .formats import file_format

__all__ = ["NnunetLabels", "labels_from_dataset_json", "labels_or_dataset_json"]

logger = logging.getLogger(__name__)

#: The file nnU-Net keeps the label numbering in.
DATASET_JSON = "dataset.json"


@dataclass(frozen=True)
class NnunetLabels:
    """What the ``dataset.json`` beside the label maps says.

    Attributes
    ----------
    labels : str or None
        A ``--labels`` string (``liver=1,lesion=2``), None when the numbering cannot be used.
    note : str
        For the report's notes: the file, the mapping and the names ignored (or why it was not used).
    """

    labels: str | None
    note: str


def _label_items(raw: object) -> list[tuple[str, int]] | None:
    """(name, value) pairs of a ``labels`` table in either layout; None when not a plain numbering."""
    if not isinstance(raw, dict) or not raw:
        return None
    items: list[tuple[str, int]] = []
    for key, val in raw.items():
        if isinstance(val, list) and len(val) == 1:  # nnU-Net reads "tumor": [3] as "tumor": 3
            val = val[0]
        if isinstance(val, bool):
            return None
        key_is_value = _is_integer_text(key)
        if isinstance(val, int):  # v2: name -> value
            items.append((str(key), val))
        elif isinstance(val, str) and key_is_value and not _is_integer_text(val):  # v1: "value" -> name
            items.append((val, int(str(key).strip())))
        elif isinstance(val, str) and not key_is_value and _is_integer_text(val):  # v2 as text: nnU-Net int()s it
            items.append((str(key), int(val.strip())))
        else:  # region-based (a list of values), "1": "2", or anything else
            return None
    values = [v for _, v in items]
    return items if len(set(values)) == len(values) else None


def _is_integer_text(text: object) -> bool:
    return isinstance(text, str) and text.strip().lstrip("-").isdigit()


def _role_of(name: str) -> str | None:
    """The role a label name gets by the rules of exporters' label names (None: no role)."""
    from .label_spec import parse_label_spec
    from .role_precedence import decide_label_name

    return decide_label_name(name, parse_label_spec(None)).role


def _has_own_names(path: Path) -> bool:
    """Whether a label map carries its exporter's names (:mod:`.label_tables`): they win over the folder's file."""
    from ..errors import LabelError
    from .label_tables import label_table_for

    try:
        return label_table_for(path) is not None
    except LabelError:  # a table that cannot be decided: the reader says so
        return True


#: Where a label map's ``dataset.json`` is looked for, in this order: its folder (``nnUNetv2_predict`` copies
#: the file into its output folder), then the folder above it (a raw dataset or Decathlon task keeps it beside
#: ``labelsTr/``; predictions saved to ``<dataset>/imagesTs_pred/``; a study folder inside the dataset's folder).
SEARCH_ORDER = ("the label map's folder", "the folder above the label map's")


def _dataset_json_of(path: Path) -> tuple[Path, str] | None:
    """The ``dataset.json`` of a label map and where it was found (:data:`SEARCH_ORDER`), None when neither has one."""
    for folder, where in zip((path.parent, path.parent.parent), SEARCH_ORDER, strict=True):
        candidate = folder / DATASET_JSON
        if candidate.is_file():
            return candidate, where
    return None


def labels_from_dataset_json(segs: Sequence[str]) -> NnunetLabels | None:
    """The ``--labels`` of the label maps among ``segs`` from the ``dataset.json`` of their folder.

    The file is the one beside the label map (``nnUNetv2_predict`` copies it into its output folder),
    else the one in the folder above it (:data:`SEARCH_ORDER`: a raw nnU-Net dataset's or a Medical
    Segmentation Decathlon task's ``labelsTr`` / ``labelsTs``, predictions in ``<dataset>/imagesTs_pred``).

    Parameters
    ----------
    segs : sequence of str
        The ``--seg`` arguments (``ROLE=PATH`` masks, DICOM and ``.seg.nrrd`` files, and label maps
        with their own label table (:mod:`.label_tables`) are skipped: they carry their own roles).

    Returns
    -------
    NnunetLabels or None
        None when no label map has a ``dataset.json`` in its folder or the folder above.

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "tumour": 1, "liver": 2}}))
    >>> labels_from_dataset_json([str(d / "case_001.nii.gz")]).labels
    'lesion=1,liver=2'
    """
    from .loader import parse_seg_argument

    files: dict[Path, str] = {}
    for s in segs:
        role, path = parse_seg_argument(s)
        if role is not None or file_format(path) is None or path.name.lower().endswith(".seg.nrrd"):
            continue
        candidate = _dataset_json_of(path)
        if candidate is not None and not _has_own_names(path):
            files.setdefault(*candidate)
    if not files:
        return None
    if len(files) == 1:
        ((source, where),) = files.items()
        found_one = _read_dataset_json(source, where)
        logger.info("%s", found_one.note)
        return found_one
    found = {f: _read_dataset_json(f, files[f]) for f in sorted(files)}
    names = ", ".join(str(f) for f in found)
    texts = {r.labels for r in found.values()}
    if texts == {None}:
        return NnunetLabels(None, f"several nnU-Net {DATASET_JSON} files ({names}): none used; pass --labels")
    if len(texts) == 1:  # copies of one dataset's file (a prediction folder and the dataset's labelsTr)
        return NnunetLabels(next(iter(found.values())).labels, f"{names}: one numbering; " + found[min(found)].note)
    given = "; ".join(f"{f}: {r.labels or 'none'}" for f, r in found.items())
    raise LabelError(
        f"the label maps' nnU-Net {DATASET_JSON} files give different numberings ({given}) and one numbering "
        "applies to every label map of a study; analyze the maps in separate runs, or pass --labels ROLE=VALUE "
        "for all of them"
    )


def labels_or_dataset_json(
    labels: str | Mapping[str, Any] | None, segs: Sequence[str], notes: list[str]
) -> str | Mapping[str, Any] | None:
    """The user's ``--labels``, else the numbering of a ``dataset.json`` beside the label maps (its note added).

    The one rule of every command that reads label maps (``analyze``, ``batch``, ``compare-seg``):
    ``--labels`` always wins; None leaves the default (LiTS) numbering.
    """
    if labels is not None:
        return labels
    found = labels_from_dataset_json(segs)
    if found is None:
        return None
    notes.append(found.note)
    return found.labels


def _read_dataset_json(source: Path, where: str = SEARCH_ORDER[0]) -> NnunetLabels:
    """The numbering one ``dataset.json`` gives (module docstring); LabelError for undecidable regions."""
    try:
        data = json.loads(source.read_text(encoding="utf-8-sig"))  # a BOM from a Windows editor
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return NnunetLabels(
            None, f"{source}: not read ({type(exc).__name__}); the LiTS numbering applies unless --labels"
        )
    raw = data.get("labels") if isinstance(data, dict) else None
    if isinstance(raw, dict) and _is_region_based(raw):
        return _region_labels(source, raw, data.get("regions_class_order"), where)
    items = _label_items(raw)
    if items is None:
        return NnunetLabels(
            None,
            f"{source}: its labels are not a numbering (a value named twice, or missing); the LiTS numbering "
            "applies unless --labels gives the values",
        )
    by_role: dict[str, list[int]] = {}
    ignored = []
    for name, value in sorted(items, key=lambda it: it[1]):
        if value == 0:
            continue  # background
        role = _role_of(name)
        if role is None:
            ignored.append(f"{name!r}={value}")
            role = "ignore"
        by_role.setdefault(role, []).append(value)
    text = ",".join(f"{role}={'+'.join(str(v) for v in vals)}" for role, vals in by_role.items())
    if not text:
        return NnunetLabels(None, f"{source}: no foreground label; the LiTS numbering applies unless --labels")
    skipped = f"; ignored (no role by name): {', '.join(ignored)}" if ignored else ""
    return NnunetLabels(text, f"label numbering from the nnU-Net {source.name} of {where} ({source}): {text}{skipped}")


def _is_region_based(raw: dict[str, object]) -> bool:
    """nnU-Net's test (``LabelManager``): some label is a list of more than one value."""
    return any(isinstance(v, (list, tuple)) and len(v) > 1 for v in raw.values())


@dataclass(frozen=True)
class _Region:
    """One region of a region-based ``labels`` table."""

    name: str
    values: frozenset[int]
    role: str | None
    written: int = 0  # the value nnU-Net places where the region is on (its regions_class_order entry)


def _plus(values: frozenset[int] | set[int]) -> str:
    return "+".join(str(v) for v in sorted(values))


def _undecidable(source: Path, why: str) -> LabelError:
    return LabelError(
        f"{source}: its region-based labels cannot be read as a numbering: {why}; pass the values of the "
        "label map yourself, e.g. --labels liver=1+2,lesion=2 (a value may have two roles)"
    )


def _regions(source: Path, raw: dict[str, object]) -> list[_Region]:
    """The regions in nnU-Net's order: every entry but the background (all values 0) and ``ignore``."""
    regions = []
    for name, val in raw.items():
        if name == "ignore":  # nnU-Net's ignore label is never predicted
            continue
        listed = list(val) if isinstance(val, (list, tuple)) else [val]
        vals = [v for v in listed if isinstance(v, int) and not isinstance(v, bool)]
        if not vals or len(vals) != len(listed):
            raise _undecidable(source, f"label {name!r} is {val!r}, not an integer or a list of integers")
        if set(vals) == {0}:
            continue
        if 0 in vals:
            raise _undecidable(source, f"region {name!r} {list(vals)} holds the background value 0")
        regions.append(_Region(str(name), frozenset(vals), _role_of(str(name))))
    return regions


def _class_order(source: Path, regions: Sequence[_Region], order: object) -> list[int]:
    """The value written for each region: ``regions_class_order``, or derived from values of their own."""
    if order is None:
        derived = []
        for r in regions:
            own = _own_values(r, regions)
            if len(own) != 1:
                raise _undecidable(
                    source,
                    f"it has no regions_class_order and region {r.name!r} {_plus(r.values)} has "
                    f"{'no value' if not own else 'several values'} of its own, so the value nnU-Net wrote for it "
                    "is unknown",
                )
            derived.append(next(iter(own)))
        return derived
    if (
        not isinstance(order, list)
        or len(order) != len(regions)
        or any(isinstance(v, bool) or not isinstance(v, int) for v in order)
    ):
        raise _undecidable(
            source, f"regions_class_order {order!r} is not one integer per region ({len(regions)} regions)"
        )
    for r, value in zip(regions, order, strict=True):
        own = _own_values(r, regions)
        if value not in r.values or (own and value not in own):
            whose = (
                f"whose values are {_plus(r.values)}" if value not in r.values else f"whose own value is {_plus(own)}"
            )
            raise _undecidable(
                source,
                f"regions_class_order writes {value} for region {r.name!r}, {whose}, so its voxels outside the "
                "regions inside it would read as another region's",
            )
    return list(order)


def _own_values(region: _Region, regions: Sequence[_Region]) -> set[int]:
    """The values of a region that no region inside it names (``liver [1, 2]`` holding ``tumour 2``: 1)."""
    return set(region.values - set().union(*(o.values for o in regions if o.values < region.values)))


#: An inner region of another role that may nest in an outer one: a liver region holds its lesions and segments.
_NESTS_IN_LIVER = frozenset({"lesion", "vessel", *(f"segment{i}" for i in range(1, 9))})


def _check_roles(source: Path, regions: Sequence[_Region]) -> None:
    """Refuse regions whose roles cannot be told apart, and an order that overwrites a role's voxels.

    Where regions ``a`` and a later ``b`` overlap (their lists share a value), nnU-Net wrote ``b``'s value
    over ``a``'s; ``a``'s role survives when ``b``'s value is one of that role's (a Couinaud segment written
    over its liver), and is lost otherwise (a liver written over its tumour).
    """
    for i, a in enumerate(regions):
        for b in regions[i + 1 :]:
            if a.role is not None and b.role is not None and a.role != b.role and a.values & b.values:
                _check_nesting(source, a, b)
            kept = set().union(*(r.values for r in regions if r.role == a.role))
            if a.role is not None and a.values & b.values and b.written not in kept:
                raise _undecidable(
                    source,
                    f"regions_class_order writes region {b.name!r} ({b.written}) after region {a.name!r} "
                    f"({a.written}), which overlaps it, so nnU-Net overwrote the {a.role} voxels of {a.name!r} "
                    f"with {b.written} and the map cannot show them (the encompassing region must come first; "
                    "predict again with that order)",
                )


def _check_nesting(source: Path, a: _Region, b: _Region) -> None:
    """Refuse two overlapping regions of different roles unless a liver region holds a lesion / segment region."""
    outer, inner = (a, b) if b.values < a.values else (b, a) if a.values < b.values else (None, None)
    if outer is None or inner is None:
        how = "name the same values" if a.values == b.values else "overlap without one holding the other"
        raise _undecidable(
            source,
            f"regions {a.name!r} ({a.role}, {_plus(a.values)}) and {b.name!r} ({b.role}, {_plus(b.values)}) {how}",
        )
    if outer.role != "liver" or inner.role not in _NESTS_IN_LIVER:
        raise _undecidable(
            source,
            f"region {outer.name!r} ({outer.role}, {_plus(outer.values)}) holds region {inner.name!r} "
            f"({inner.role}, {_plus(inner.values)}); only a liver region holding its lesions or segments "
            "is read",
        )


def _region_labels(source: Path, raw: dict[str, object], order: object, where: str) -> NnunetLabels:
    """The ``--labels`` of a region-based ``labels`` table (module docstring); LabelError when undecidable."""
    regions = _regions(source, raw)
    written = _class_order(source, regions, order)
    regions = [_Region(r.name, r.values, r.role, w) for r, w in zip(regions, written, strict=True)]
    _check_roles(source, regions)
    by_role: dict[str, set[int]] = {}
    for r in regions:
        if r.role is not None:
            by_role.setdefault(r.role, set()).update(r.values)
    with_role = set().union(*by_role.values()) if by_role else set()
    unused = set().union(*(r.values for r in regions if r.role is None)) - with_role
    if not by_role:
        raise _undecidable(source, "no region has a role by its name")
    text = ",".join(f"{role}={_plus(vals)}" for role, vals in by_role.items())
    if unused:
        text += f",ignore={_plus(unused)}"
    ignored = [f"{r.name!r}={_plus(r.values)}" for r in regions if r.role is None]
    skipped = f"; ignored (no role by name): {', '.join(ignored)}" if ignored else ""
    how = "regions_class_order" if order is not None else "the order derived from the regions' own values"
    return NnunetLabels(
        text,
        f"label numbering from the region-based nnU-Net {source.name} of {where} ({source}): {text} "
        f"(a voxel holds the value of the last region of {how} {written} that is on, so a region spans the "
        f"values its list names){skipped}",
    )
