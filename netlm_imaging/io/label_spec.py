"""The ``--labels`` mapping: :class:`LabelSpec` and its parser :func:`parse_label_spec`.

Label maps default to the LiTS convention (:data:`LITS_LABELS`: 1 liver, 2 lesion). A user mapping
(``--labels liver=5,lesion=2+3,segment1=11,ignore=7``, or the same as a mapping from Python)
replaces the default entirely; its names (``lesion="Tumor"``) and ``--segment-pattern`` regular
expressions decide the roles of named segments (DICOM SEG, RTSTRUCT) instead of the rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import UsageError
from ..segmentation import ROLES
from .role_patterns import DEFAULT_NAME_PATTERNS

__all__ = ["LITS_LABELS", "LabelSpec", "parse_label_spec"]


#: LiTS convention: 1 liver, 2 lesion.
LITS_LABELS: dict[str, list[int | str]] = {"liver": [1], "lesion": [2]}


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
    user_pattern_count : int
        How many of ``name_patterns`` are the user's (``--segment-pattern``), first.
    origin : str
        Where the mapping came from, for messages: ``--labels``, or the label table of a label map
        (:func:`netlm_imaging.io.label_tables.layers_from_label_table`).
    """

    mapping: dict[str, list[int | str]] = field(default_factory=lambda: dict(LITS_LABELS))
    user_given: bool = False
    name_patterns: list[tuple[str, str]] = field(default_factory=lambda: list(DEFAULT_NAME_PATTERNS))
    user_pattern_count: int = 0
    origin: str = "--labels"

    @property
    def exclusive(self) -> bool:
        """Whether the user named segments (``--labels`` with names, or ``--segment-pattern``): then only they count."""
        named = self.user_given and any(isinstance(v, str) for vals in self.mapping.values() for v in vals)
        return named or self.user_pattern_count > 0

    def role_of_value(self, value: int) -> str | None:
        """The first role of a label-map value, or ``None`` if unmapped."""
        roles = self.roles_of_value(value)
        return roles[0] if roles else None

    def roles_of_value(self, value: int) -> list[str]:
        """Every role a label-map value has, in the mapping's order.

        A value may have several: ``liver=1+2,lesion=2`` (an nnU-Net region-based model's liver region
        holds its tumour value) makes the voxels of 2 both liver and lesion.

        Examples
        --------
        >>> parse_label_spec("liver=1+2,lesion=2").roles_of_value(2)
        ['liver', 'lesion']
        """
        return [role for role, vals in self.mapping.items() if any(isinstance(v, int) and v == value for v in vals)]

    def role_of_name(self, name: str) -> str | None:
        """Role given explicitly for a segment name (exact, case-insensitive).

        A segment has one role. A name given both the liver and the lesion role
        (``liver=Liver+Tumor,lesion=Tumor``) is the lesion, whatever the order: the total liver is
        the union of the liver and its lesions (DESIGN.md), so the tumour still counts as liver.
        (:func:`parse_label_spec` refuses any other name given two roles.)

        Examples
        --------
        >>> parse_label_spec("liver=Liver+Tumor,lesion=Tumor").role_of_name("tumor")
        'lesion'
        """
        low = name.strip().lower()
        roles = [
            r for r, vals in self.mapping.items() if any(isinstance(v, str) and v.strip().lower() == low for v in vals)
        ]
        if not roles:
            return None
        return "lesion" if "lesion" in roles else roles[0]


#: What a label mapping passed from Python holds: role -> a label value or segment name, or several.
LabelMapping = Mapping[str, "int | str | Sequence[int | str]"]


def parse_label_spec(
    text: str | LabelMapping | None,
    *,
    name_patterns: Iterable[tuple[str, str]] | None = None,
    option: str = "--labels",
) -> LabelSpec:
    """Parse ``--labels`` text such as ``liver=5,lesion=2+3`` or ``liver=Liver``, or the same as a mapping.

    Values separated by ``+`` (or ``|``) map several labels to one role;
    integers are label values, anything else is a segment name. A value in
    quotes (``lesion="Tumor"`` as a script passes it without a shell) is the
    name inside them. A mapping from Python (``{"liver": 5, "lesion": [2, 3]}``,
    or a class map ``{5: "liver", 2: "lesion"}``) says the same without the text: its
    ints are label values and its strings segment names.

    Parameters
    ----------
    text : str, mapping or None
        The option's value; ``None`` gives the LiTS default.
    name_patterns : iterable of (str, str), optional
        Extra regex -> role pairs tried before the defaults.
    option : str
        The option the text came from, named in messages and kept as :attr:`LabelSpec.origin`
        (``--labels-b`` of ``compare-seg``).

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
    >>> parse_label_spec('liver="Liver",lesion="5"').mapping
    {'liver': ['Liver'], 'lesion': ['5']}
    >>> parse_label_spec({"liver": 5, "lesion": [2, 3]}).mapping
    {'liver': [5], 'lesion': [2, 3]}
    >>> parse_label_spec({5: "liver", 2: "lesion", 3: "lesion"}).mapping
    {'liver': [5], 'lesion': [2, 3]}
    """
    user_patterns = list(name_patterns or [])
    patterns = [*user_patterns, *DEFAULT_NAME_PATTERNS]
    named = option
    if isinstance(text, Mapping) and text:
        named = option.lstrip("-")  # given from Python: messages name the argument "labels", not a flag
        items = _mapping_items(text, named)
    elif text is None or isinstance(text, Mapping) or not str(text).strip():
        return LabelSpec(dict(LITS_LABELS), False, patterns, len(user_patterns))
    else:
        items = _text_items(str(text), option)
    mapping: dict[str, list[int | str]] = {}
    for role, values in items:
        role = role.strip().lower()
        if role not in ROLES:
            raise UsageError(f"{named}: unknown role {role!r}; use one of {', '.join(ROLES)}.")
        mapping.setdefault(role, []).extend(values)
    _check_named_twice(mapping, named)
    return LabelSpec(mapping, True, patterns, len(user_patterns), origin=option)


def _text_items(text: str, option: str) -> list[tuple[str, list[int | str]]]:
    """The ``(role, values)`` items of ``--labels`` text (:func:`parse_label_spec`)."""
    items: list[tuple[str, list[int | str]]] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise UsageError(f"{option}: item {item!r} is not ROLE=VALUE; write e.g. liver=5,lesion=2.")
        role, _, vals = item.partition("=")
        out: list[int | str] = []
        for v in re.split(r"[+|]", vals):
            v = v.strip()
            if not v:
                raise UsageError(f"{option}: role {role.strip().lower()!r} has an empty value; write e.g. {role}=5.")
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":  # lesion="Tumor" passed without a shell
                out.append(v[1:-1])  # a quoted value is always a name, even "5"
                continue
            out.append(int(v) if re.fullmatch(r"-?\d+", v) else v)
        items.append((role, out))
    return items


def _mapping_items(mapping: LabelMapping, option: str) -> list[tuple[str, list[int | str]]]:
    """The ``(role, values)`` items of a label mapping given from Python (:func:`parse_label_spec`).

    Role -> value(s), or value -> role (a class map: every key a label value and every value a role).
    """

    def one(role: Any, v: Any) -> int | str:
        if isinstance(v, (float, np.floating)) and float(v).is_integer():  # 5.0 from a JSON or a DataFrame
            return int(v)
        if isinstance(v, bool) or not isinstance(v, (int, str, np.integer)):
            raise UsageError(
                f"{option}: role {role!r} maps to {v!r}; give a label value (int) or a segment name (str), or a "
                "list of them, e.g. {'liver': 5, 'lesion': [2, 3]}."
            )
        if isinstance(v, str) and not v.strip():
            raise UsageError(f"{option}: role {role!r} has an empty value; write e.g. {{{role!r}: 5}}.")
        return int(v) if isinstance(v, (int, np.integer)) else v

    keys_are_values = all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in mapping)
    if mapping and keys_are_values and all(isinstance(r, str) for r in mapping.values()):
        return [(str(r), [one(r, k)]) for k, r in mapping.items()]
    items: list[tuple[str, list[int | str]]] = []
    vals: Any
    for role, vals in mapping.items():
        if not isinstance(role, str):
            raise UsageError(
                f"{option}: key {role!r} is no role; give role -> value(s), e.g. {{'liver': 5, 'lesion': [2, 3]}}, "
                "or a class map value -> role, e.g. {5: 'liver', 2: 'lesion'}."
            )
        many = isinstance(vals, (list, tuple, set, frozenset))
        values = (
            [one(role, v) for v in (sorted(vals, key=str) if isinstance(vals, (set, frozenset)) else vals)]
            if many
            else [one(role, vals)]
        )
        if not values:
            raise UsageError(f"{option}: role {role!r} has no value; write e.g. {{{role!r}: 5}}.")
        items.append((role, values))
    return items


def _check_named_twice(mapping: Mapping[str, Sequence[int | str]], option: str = "--labels") -> None:
    """Refuse a segment name given two roles, except liver and lesion (the lesion, the liver holding it)."""
    by_name: dict[str, list[str]] = {}
    for role, vals in mapping.items():
        for v in vals:
            if isinstance(v, str) and role not in by_name.setdefault(v.strip().lower(), []):
                by_name[v.strip().lower()].append(role)
    for name, roles in by_name.items():
        if len(roles) > 1 and set(roles) != {"liver", "lesion"}:
            raise UsageError(
                f"{option}: the segment name {name!r} has two roles ({', '.join(roles)}); a segment has one role, "
                "so give it one (label values, unlike names, may have several: liver=1+2,lesion=2)."
            )
