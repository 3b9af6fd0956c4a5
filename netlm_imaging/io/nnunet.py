"""The label numbering of an nnU-Net prediction, from the ``dataset.json`` beside it.

nnU-Net (v1 and v2) writes integer label maps whose numbering is only in the
dataset's ``dataset.json``, and ``nnUNetv2_predict`` copies that file into the
output folder. When the user gives no ``--labels``, a label map with a
``dataset.json`` in its folder is read with that numbering instead of the LiTS
default: a model trained with ``{"tumour": 1, "liver": 2}`` would otherwise have
its liver taken as tumour. The label names get their roles as every exporter's
label names do, by :func:`netlm_imaging.io.labels.decide_label_name` (the
conservative name patterns: ``liver``, ``tumour`` / ``cancer`` / ``lesion``,
``spleen``, Couinaud segments; then TotalSegmentator's whole names such as
``liver_tumor``, ``kidney_left``); a name without a role is ignored, named in the note.

Both layouts of ``labels`` are read: v2 ``{"background": 0, "liver": 1, "tumor": 2}``
and v1 / Medical Segmentation Decathlon ``{"0": "background", "1": "liver", "2": "cancer"}``.
Region-based labels (v2 ``"liver": [1, 2]``) and files that cannot be read are not
guessed: the LiTS default stays, with a note saying to pass ``--labels``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .formats import file_format

__all__ = ["NnunetLabels", "labels_from_dataset_json"]

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
        if isinstance(val, bool):
            return None
        if isinstance(val, int):  # v2: name -> value
            items.append((str(key), val))
        elif isinstance(val, str) and str(key).strip().lstrip("-").isdigit():  # v1: "value" -> name
            items.append((val, int(str(key).strip())))
        else:  # region-based (a list of values) or anything else
            return None
    values = [v for _, v in items]
    return items if len(set(values)) == len(values) else None


def _role_of(name: str) -> str | None:
    """The role a label name gets by the rules of exporters' label names (None: no role)."""
    from .labels import decide_label_name, parse_label_spec

    return decide_label_name(name, parse_label_spec(None)).role


def _has_own_names(path: Path) -> bool:
    """Whether a label map carries its exporter's names (:mod:`.label_tables`): they win over the folder's file."""
    from ..errors import LabelError
    from .label_tables import label_table_for

    try:
        return label_table_for(path) is not None
    except LabelError:  # a table that cannot be decided: the reader says so
        return True


def labels_from_dataset_json(segs: Sequence[str]) -> NnunetLabels | None:
    """The ``--labels`` of the label maps among ``segs`` from the ``dataset.json`` in their folder.

    Parameters
    ----------
    segs : sequence of str
        The ``--seg`` arguments (``ROLE=PATH`` masks, DICOM and ``.seg.nrrd`` files, and label maps
        with their own label table (:mod:`.label_tables`) are skipped: they carry their own roles).

    Returns
    -------
    NnunetLabels or None
        None when no label map has a ``dataset.json`` beside it.

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "tumour": 1, "liver": 2}}))
    >>> labels_from_dataset_json([str(d / "case_001.nii.gz")]).labels
    'lesion=1,liver=2'
    """
    from .loader import parse_seg_argument

    files: set[Path] = set()
    for s in segs:
        role, path = parse_seg_argument(s)
        if role is not None or file_format(path) is None or path.name.lower().endswith(".seg.nrrd"):
            continue
        candidate = path.parent / DATASET_JSON
        if candidate.is_file() and not _has_own_names(path):
            files.add(candidate)
    if not files:
        return None
    if len(files) > 1:
        names = ", ".join(sorted(str(f) for f in files))
        return NnunetLabels(None, f"several nnU-Net {DATASET_JSON} files ({names}): none used; pass --labels")
    source = files.pop()
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return NnunetLabels(
            None, f"{source}: not read ({type(exc).__name__}); the LiTS numbering applies unless --labels"
        )
    items = _label_items(data.get("labels") if isinstance(data, dict) else None)
    if items is None:
        return NnunetLabels(
            None,
            f"{source}: its labels are not a plain numbering (region-based, or missing); the LiTS numbering "
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
    return NnunetLabels(
        text, f"label numbering from the nnU-Net {source.name} beside the label map ({source}): {text}{skipped}"
    )
