"""Map label values, segment names and codes to roles.

Label maps default to the LiTS convention (1 liver, 2 lesion). A user mapping
(``--labels liver=5,lesion=2+3,segment1=11,ignore=7``) replaces the default
entirely. Named segments (DICOM SEG, RTSTRUCT) get a role from their coded
SegmentedPropertyType or from their name, with configurable regular
expressions.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import LabelError, UsageError
from ..segmentation import ROLES, MaskLayer
from ..volume import Volume

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_CODE_ROLES",
    "DEFAULT_NAME_PATTERNS",
    "LITS_LABELS",
    "LabelSpec",
    "assign_roles",
    "layers_from_label_map",
    "parse_label_spec",
    "role_for_segment",
]

#: LiTS convention: 1 liver, 2 lesion.
LITS_LABELS: dict[str, list[int | str]] = {"liver": [1], "lesion": [2]}

#: (coding scheme, code value) -> role. SNOMED CT codes used by segmentation tools.
DEFAULT_CODE_ROLES: dict[tuple[str, str], str] = {
    ("SCT", "10200004"): "liver",
    ("SRT", "T-62000"): "liver",
    ("SCT", "78961009"): "spleen",
    ("SRT", "T-C3000"): "spleen",
    ("SCT", "108369006"): "lesion",  # Neoplasm
    ("SRT", "M-80003"): "lesion",  # Neoplasm, metastatic (SRT)
    ("SCT", "14799000"): "lesion",  # Neoplasm, metastatic
    ("SCT", "94381002"): "lesion",  # Secondary malignant neoplasm of liver
    ("SCT", "93870000"): "lesion",  # Malignant neoplasm of liver
    ("SCT", "52988006"): "lesion",  # Lesion
    ("SCT", "4147007"): "lesion",  # Mass
    ("SCT", "126851005"): "lesion",  # Neoplasm of liver
    ("SCT", "300331000"): "lesion",  # Lesion of liver
}

#: Ordered (regex, role) pairs tried on segment / ROI names (case-insensitive).
DEFAULT_NAME_PATTERNS: list[tuple[str, str]] = [
    (r"^(couinaud[\s_-]*)?seg(ment)?[\s_-]*(1|i)$", "segment1"),
    (r"^(couinaud[\s_-]*)?seg(ment)?[\s_-]*(2|ii)$", "segment2"),
    (r"^(couinaud[\s_-]*)?seg(ment)?[\s_-]*(3|iii)$", "segment3"),
    (r"^(couinaud[\s_-]*)?seg(ment)?[\s_-]*(4|4a|4b|iv|iva|ivb)$", "segment4"),
    (r"^(couinaud[\s_-]*)?seg(ment)?[\s_-]*(5|v)$", "segment5"),
    (r"^(couinaud[\s_-]*)?seg(ment)?[\s_-]*(6|vi)$", "segment6"),
    (r"^(couinaud[\s_-]*)?seg(ment)?[\s_-]*(7|vii)$", "segment7"),
    (r"^(couinaud[\s_-]*)?seg(ment)?[\s_-]*(8|viii)$", "segment8"),
    (r"(tumou?r|lesion|metast|nodule|mass|gtv|neoplasm|\bnet\b|netlm|\bmet\b|\bmets\b)", "lesion"),
    (r"(spleen|splenic|milz)", "spleen"),
    (r"(liver|hepar|hepatic|leber)", "liver"),
]


@dataclass(frozen=True)
class LabelSpec:
    """A mapping from roles to label values (ints) or segment names (strings).

    Parameters
    ----------
    mapping : dict
        ``role -> list of values or names``.
    user_given : bool
        Whether the user supplied it (then unmapped values are an error).
    name_patterns : list of (str, str)
        Regex -> role for named segments.
    """

    mapping: dict[str, list[int | str]] = field(default_factory=lambda: dict(LITS_LABELS))
    user_given: bool = False
    name_patterns: list[tuple[str, str]] = field(default_factory=lambda: list(DEFAULT_NAME_PATTERNS))
    user_pattern_count: int = 0

    def role_of_value(self, value: int) -> str | None:
        """Role for a label-map value, or ``None`` if unmapped."""
        for role, vals in self.mapping.items():
            if any(isinstance(v, int) and v == value for v in vals):
                return role
        return None

    def role_of_name(self, name: str) -> str | None:
        """Role given explicitly for a segment name (exact, case-insensitive)."""
        low = name.strip().lower()
        for role, vals in self.mapping.items():
            if any(isinstance(v, str) and v.strip().lower() == low for v in vals):
                return role
        return None


def parse_label_spec(text: str | None, *, name_patterns: Iterable[tuple[str, str]] | None = None) -> LabelSpec:
    """Parse ``--labels`` text such as ``liver=5,lesion=2+3`` or ``liver=Liver``.

    Values separated by ``+`` (or ``|``) map several labels to one role;
    integers are label values, anything else is a segment name.

    Parameters
    ----------
    text : str or None
        The option's value; ``None`` gives the LiTS default.
    name_patterns : iterable of (str, str), optional
        Extra regex -> role pairs tried before the defaults.

    Returns
    -------
    LabelSpec

    Raises
    ------
    UsageError
        On an unknown role or malformed item.

    Examples
    --------
    >>> parse_label_spec("liver=5,lesion=2+3").mapping
    {'liver': [5], 'lesion': [2, 3]}
    """
    user_patterns = list(name_patterns or [])
    patterns = [*user_patterns, *DEFAULT_NAME_PATTERNS]
    if text is None or not str(text).strip():
        return LabelSpec(dict(LITS_LABELS), False, patterns, len(user_patterns))
    mapping: dict[str, list[int | str]] = {}
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise UsageError(f"--labels: item {item!r} is not ROLE=VALUE; write e.g. liver=5,lesion=2.")
        role, _, vals = item.partition("=")
        role = role.strip().lower()
        if role not in ROLES:
            raise UsageError(f"--labels: unknown role {role!r}; use one of {', '.join(ROLES)}.")
        out = mapping.setdefault(role, [])
        for v in re.split(r"[+|]", vals):
            v = v.strip()
            if not v:
                raise UsageError(f"--labels: role {role!r} has an empty value; write e.g. {role}=5.")
            out.append(int(v) if re.fullmatch(r"-?\d+", v) else v)
    return LabelSpec(mapping, True, patterns, len(user_patterns))


def role_for_segment(
    name: str | None,
    code: tuple[str, str] | None,
    spec: LabelSpec,
    *,
    code_roles: Mapping[tuple[str, str], str] | None = None,
) -> str | None:
    """Role of a named segment: explicit user mapping, user patterns, code, then built-in name patterns.

    Parameters
    ----------
    name : str or None
        Segment label / ROI name.
    code : (str, str) or None
        (CodingSchemeDesignator, CodeValue) of SegmentedPropertyType.
    spec : LabelSpec
        User mapping and name patterns.
    code_roles : mapping, optional
        Code -> role table (default :data:`DEFAULT_CODE_ROLES`).

    Returns
    -------
    str or None
        The role, or ``None`` when nothing matches.
    """
    if name:
        explicit = spec.role_of_name(name)
        if explicit:
            return explicit
    if name:  # user-given patterns win over codes and built-in patterns
        for pattern, role in spec.name_patterns[: spec.user_pattern_count]:
            if re.search(pattern, name.strip(), flags=re.IGNORECASE):
                return role
    table = DEFAULT_CODE_ROLES if code_roles is None else code_roles
    # Name patterns for Couinaud segments win over the generic liver code,
    # because segment maps are often coded as "Liver" with a segment name.
    if name:
        for pattern, role in spec.name_patterns:
            if role.startswith("segment") and re.search(pattern, name.strip(), flags=re.IGNORECASE):
                return role
    if code is not None:
        coded = table.get((str(code[0]).upper(), str(code[1])))
        if coded:
            return coded
    if name:
        for pattern, role in spec.name_patterns:
            if re.search(pattern, name.strip(), flags=re.IGNORECASE):
                return role
    return None


def _present_values(arr: np.ndarray) -> list[int]:
    """Sorted non-zero values of an integer array, without copying it to C order.

    ``np.unique`` sorts a C-ordered copy of the whole map; integer label maps
    are scanned in their own memory order instead (one comparison pass per
    value for small ranges, one scatter into a presence table otherwise).
    """
    flat = arr.ravel(order="K")
    if flat.size == 0:
        return []
    lo, hi = int(flat.min()), int(flat.max())
    if arr.dtype.kind in "iub" and lo >= 0 and hi - lo <= 16:
        return [v for v in range(max(lo, 1), hi + 1) if (flat == v).any()]
    if arr.dtype.kind in "iu" and lo >= 0 and hi < 1 << 16:
        present = np.zeros(hi + 1, dtype=bool)
        present[flat] = True
        return [int(v) for v in np.flatnonzero(present) if v != 0]
    return [int(v) for v in np.unique(flat) if v != 0]


def assign_roles(items: Iterable[Any], spec: LabelSpec, source: str, *, noun: str = "segments") -> dict[int, str]:
    """Roles of numbered, named items (DICOM SEG segments, RTSTRUCT ROIs).

    Parameters
    ----------
    items : iterable
        Objects with ``number``, ``label`` or ``name``, ``code`` and ``describe()``.
    spec : LabelSpec
        User mapping and patterns.
    source : str
        File named in the error.
    noun : str
        What the items are called in the message.

    Returns
    -------
    dict
        item number -> role.

    Raises
    ------
    LabelError
        Listing every item without a role and how to map it.
    """
    roles: dict[int, str] = {}
    missing: list[Any] = []
    for item in items:
        name = getattr(item, "label", None) or getattr(item, "name", None)
        role = role_for_segment(name, item.code, spec)
        if role is None:
            missing.append(item)
        else:
            roles[item.number] = role
    if missing:
        listed = "; ".join(m.describe() for m in missing)
        ex = getattr(missing[0], "label", None) or getattr(missing[0], "name", None)
        raise LabelError(
            f"{source}: {noun} without a role: {listed}. Map them with --labels, e.g. "
            f'--labels liver="{ex}" or lesion="{ex}", or ignore="{ex}", or with --segment-pattern REGEX=ROLE.'
        )
    return roles


def layers_from_label_map(label_map: Volume, spec: LabelSpec) -> list[MaskLayer]:
    """Split an integer label map into role layers.

    Every non-zero value must be mapped (or mapped to ``ignore``); values
    mapped to the same role are merged into one layer.

    Parameters
    ----------
    label_map : Volume
        Integer-valued label image.
    spec : LabelSpec
        Value -> role mapping.

    Returns
    -------
    list of MaskLayer

    Raises
    ------
    LabelError
        If the map holds non-integer values or values without a role.
    """
    arr = np.asarray(label_map.array)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise LabelError(f"{label_map.source}: label map contains NaN or inf; a label map must hold integers.")
        if not np.all(arr == np.round(arr)):
            raise LabelError(
                f"{label_map.source}: label map holds non-integer values; pass a label map, not an intensity image."
            )
        arr = arr.astype(np.int64)
    elif arr.dtype.kind == "b":
        arr = arr.astype(np.uint8)
    elif arr.dtype.kind not in "iu":
        raise LabelError(f"{label_map.source}: label map has unsupported type {arr.dtype}.")
    values = _present_values(arr)
    unmapped = [v for v in values if spec.role_of_value(v) is None]
    notes: list[str] = []
    if unmapped and not spec.user_given:
        hint = "map them with --labels (e.g. liver=5,lesion=2; values you do not map are then ignored)"
        raise LabelError(
            f"{label_map.source}: label values {unmapped[:20]} have no role in the default LiTS mapping "
            f"(1 liver, 2 lesion); {hint}."
        )
    if unmapped:
        notes.append(f"{label_map.source}: label values {unmapped[:20]} are not in --labels and were ignored")
        logger.info(notes[-1])
    by_role: dict[str, list[int]] = {}
    for v in values:
        role = spec.role_of_value(v)
        if role is None:
            continue
        by_role.setdefault(role, []).append(v)
    layers: list[MaskLayer] = []
    for role, vals in by_role.items():
        if role == "ignore":
            continue
        mask = arr == vals[0]
        for v in vals[1:]:
            mask |= arr == v
        meta = {**label_map.meta, "notes": notes}
        layers.append(
            MaskLayer(
                role,
                label_map.with_array(mask, meta=meta),
                label="+".join(str(v) for v in vals),
                source=label_map.source,
            )
        )
    mapped = [x for vs in spec.mapping.values() for x in vs if isinstance(x, int)]
    if spec.user_given and mapped and not layers:
        raise LabelError(
            f"{label_map.source}: none of the labels given in --labels ({sorted(set(mapped))}) occur in the map "
            f"(values present: {values[:20]}); check the label numbers."
        )
    return layers
