"""Map label values, segment names and codes to roles.

Why one module (~1000 lines): label values, segment names and codes are one role decision
with one precedence (user mapping, codes, name patterns) and one log of it.

Label maps default to the LiTS convention (1 liver, 2 lesion). A user mapping
(``--labels liver=5,lesion=2+3,segment1=11,ignore=7``) replaces the default
entirely. Named segments (DICOM SEG, RTSTRUCT) get a role from their coded
SegmentedPropertyType or from their name, with configurable regular
expressions.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import LabelError, UsageError
from ..segmentation import LIVER_VESSELS, MAJOR_VESSELS, ROLES, MaskLayer, vessel_name
from ..volume import Volume

logger = logging.getLogger(__name__)

#: Float label values this close to an integer are rounded to it (with a warning); farther ones are refused.
LABEL_ROUNDING_TOLERANCE = 1e-3

__all__ = [
    "DEFAULT_CODE_ROLES",
    "DEFAULT_NAME_PATTERNS",
    "IGNORED_INTERPRETED_TYPES",
    "LITS_LABELS",
    "REASONS",
    "ROLE_MASK_PATTERNS",
    "LabelSpec",
    "RoleDecision",
    "assign_roles",
    "check_decisions",
    "decide_label_name",
    "decide_role",
    "flag_for",
    "layers_from_label_map",
    "parse_label_spec",
    "present_label_values",
    "role_for_segment",
    "role_of_mask_name",
    "summarize_decisions",
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
    ("SCT", "59820001"): "vessel",  # Blood vessel: TotalSegmentator's liver_vessels in its DICOM SEG
    ("SCT", "64131007"): "vessel",  # Inferior vena cava (TotalSegmentator's DICOM SEG, tests/data codes table)
    ("SCT", "32764006"): "vessel",  # Portal vein
    ("SCT", "110765007"): "vessel",  # Portal vein and splenic vein (TotalSegmentator)
    ("SCT", "8993003"): "vessel",  # Hepatic vein
    ("SCT", "76015000"): "vessel",  # Common hepatic artery
}

#: Ordered (regex, role) pairs tried on segment / ROI names (case-insensitive).
DEFAULT_NAME_PATTERNS: list[tuple[str, str]] = [
    (r"^((couinaud|liver|hepatic)[\s_-]*)?seg(ment)?[\s_-]*(1|i)$", "segment1"),
    (r"^((couinaud|liver|hepatic)[\s_-]*)?seg(ment)?[\s_-]*(2|ii)$", "segment2"),
    (r"^((couinaud|liver|hepatic)[\s_-]*)?seg(ment)?[\s_-]*(3|iii)$", "segment3"),
    (r"^((couinaud|liver|hepatic)[\s_-]*)?seg(ment)?[\s_-]*(4|4a|4b|iv|iva|ivb)$", "segment4"),
    (r"^((couinaud|liver|hepatic)[\s_-]*)?seg(ment)?[\s_-]*(5|v)$", "segment5"),
    (r"^((couinaud|liver|hepatic)[\s_-]*)?seg(ment)?[\s_-]*(6|vi)$", "segment6"),
    (r"^((couinaud|liver|hepatic)[\s_-]*)?seg(ment)?[\s_-]*(7|vii)$", "segment7"),
    (r"^((couinaud|liver|hepatic)[\s_-]*)?seg(ment)?[\s_-]*(8|viii)$", "segment8"),
    # short words count between non-letters (Liver_mets, Met1, NET-2, NETs), not inside words (magnet, comet),
    # but where a capital starts them (LiverMets, LiverNET) or right after the organ (LIVERMETS): those names
    # then match the liver too and are compound, never the liver itself; NELM: neuroendocrine liver metastases;
    # French, Spanish, Portuguese, Italian, German and Dutch words too (tumeur, lésion, metástasis, nódulo)
    # and Turkish / Polish ones (tümör, lezyon, przerzut); Japanese / Chinese (転移 转移 轉移 metastasis, 腫瘍 肿瘤
    # 腫瘤 tumour, 病変 病灶 lesion, 結節 nodule, 癌 cancer), Russian (метастаз, опухоль, очаг) and Korean (종양
    # tumour, 전이 metastasis, 병변 lesion, 결절 nodule, 종괴 mass, 암 cancer closing a word: 간암)
    (
        r"(tum(ou?|eu)r|t[uü]m[oö]r|l[eéä]sion|lezyon|m[eé]t[aá]st|przerzut|n[oó]dul|mass(?!eter)|gtv|neoplas|"
        r"cancer|carcinom|carcinoid|netlm|"
        r"(?:(?<![a-z])|(?-i:(?<=[a-z])(?=[A-Z]))|(?<=liver)|(?<=hepatic))(nets?|mets?|nelm)(?![a-z])|"
        r"転移|转移|轉移|腫瘍|肿瘤|腫瘤|肿块|腫塊|病変|病灶|病变|病變|結節|结节|癌|"
        r"метастаз|опухол|очаг|종양|전이|병변|결절|종괴|암(?![가-힣]))",
        "lesion",
    ),
    (r"(spleen|splenic|milz|mjälte|(?<![a-z])milt(?![a-z])|śledzion|dalak|脾|селез[её]нк|비장)", "spleen"),
    # ... and the liver: 肝 (Japanese / Chinese), печень / печёночный (Russian), 간 as a word or 간장 / 간실질 (Korean),
    # karaciğer (Turkish), wątroba (Polish)
    (
        r"(liver|hepar|h?[eé]p[aá]ti[cq]|leber|foie|h[ií]gado|f[ií]gado|fegato|(?<![a-z])lever(?![a-z])|"
        r"karaci[gğ]er|w[aą]trob|肝|печ[её]н|(?<![가-힣])간(?:장|실질)?(?![가-힣]))",
        "liver",
    ),
]

#: Whole names (lower case, spaces as ``_``) that TotalSegmentator gives its structures, as files
#: (``liver_tumor.nii.gz``) and as label names (``--ml``): the names a study folder's masks get their
#: roles by, and the last resort for a label name the patterns above leave without a role.
ROLE_MASK_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"^liver$", "liver"),
    # TotalSegmentator's liver_vessels task writes liver_tumor.nii.gz beside liver_vessels.nii.gz
    (r"^((liver|hepatic)[_-])?(lesion|lesions|tumou?r|tumou?rs|metastas[ie]s|mets?)([_-]?\d+)?$", "lesion"),
    (r"^spleen$", "spleen"),
    # the PET grade-4 reference after splenectomy (docs/pet.md); TotalSegmentator: kidney_left, kidney_right
    (r"^kidneys?([_-](left|right|l|r))?$", "kidney"),
    # TotalSegmentator's liver_segments / liver_segments_mr tasks write liver_segment_1.nii.gz .. liver_segment_8
    (r"^(?:liver[_-])?segment[_-]?([1-8])$", "segment"),
    # the hepatic vessels (liver_vessels task; total task: portal_vein_and_splenic_vein, inferior_vena_cava):
    # measured against the lesions (vascular contact, measure/vessels.py), never part of the liver
    (
        r"^(liver[_-]vessels?|portal[_-]vein([_-]and[_-]splenic[_-]vein)?|inferior[_-]vena[_-]cava|"
        r"hepatic[_-]veins?|hepatic[_-]arter(y|ies))$",
        "vessel",
    ),
)


def role_of_mask_name(base: str) -> str | None:
    """The role a mask file's name gives (:data:`ROLE_MASK_PATTERNS`), ``segmentN`` for a segment; None without one.

    Parameters
    ----------
    base : str
        The file name without its extension (``liver_tumor`` of ``liver_tumor.nii.gz``), any case.

    Examples
    --------
    >>> [role_of_mask_name(n) for n in ("liver_tumor", "Spleen", "liver_segment_4", "liver_vessels")]
    ['lesion', 'spleen', 'segment4', 'vessel']
    """
    for pattern, role in ROLE_MASK_PATTERNS:
        m = re.match(pattern, base.lower())
        if m:
            return f"segment{m.group(1)}" if role == "segment" else role
    return None


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


#: RTROIInterpretedType values that are never a liver, lesion or spleen: the ROI is ignored with a note.
#: GTV and ORGAN (and no type) go on to codes and names.
IGNORED_INTERPRETED_TYPES: frozenset[str] = frozenset(
    {
        "EXTERNAL",
        "SUPPORT",
        "BOLUS",
        "FIXATION",
        "CONTROL",
        "AVOIDANCE",
        "CAVITY",
        "MARKER",
        "REGISTRATION",
        "ISOCENTER",
        "CONTRAST_AGENT",
        "DOSE_REGION",
        "BRACHY_CHANNEL",
        "BRACHY_ACCESSORY",
        "BRACHY_SRC_APP",
        "BRACHY_CHNL_SHLD",
        "PTV",
        "CTV",
        "ITV",
        "PRV",
    }
)
#: Segmentation property *category* codes (and catch-all types) that say nothing about the structure:
#: a segment coded with one of them is judged by its name.
GENERIC_CODES: frozenset[tuple[str, str]] = frozenset(
    {
        ("SCT", "85756007"),  # Tissue (3D Slicer's default)
        ("SRT", "T-D0050"),
        ("SCT", "91723000"),  # Anatomical structure
        ("SCT", "123037004"),  # Body structure
        ("SRT", "T-D000A"),
        ("SCT", "49755003"),  # Morphologically abnormal structure
        ("SRT", "M-01000"),
        ("SCT", "260787004"),  # Physical object
    }
)
#: A planning volume by name (PTV_Liver, CTV 50, ITV, PRV_cord): ignored like the typed ones.
PLANNING_NAME = re.compile(r"(^|[^a-z])(ptv|ctv|itv|prv)([^a-z]|$)", re.IGNORECASE)
#: Words that make a name a derived / Boolean / other structure: never guessed into a role.
#: Short words count between non-alphanumerics: ``_`` separates words in planning names (Liver_ring, Tumor_bed),
#: where ``\b`` would not. Planning-system helper structures (TG-263: a ``z`` or ``_`` prefix; optimisation,
#: evaluation, avoidance, hollow and sparing structures) are derived structures too.
_W0, _W1 = r"(?<![a-z0-9])", r"(?![a-z0-9])"
COMPOUND_WORDS = re.compile(
    r"(minus|plus|without|w/o|excl|except|subtract|union|shell|wall|margin|expan|crop|free|remnant|resect|"
    rf"{_W0}(ring|and|or|not|flr|opti?|optim\w*|eval|dose|hollow|avoid\w*|spar(e|ing)|inner|outer|sub|exp|"
    rf"help(er)?|dummy|te?mp){_W1}|dose|dosis|^z|^_|[+&]|\d+(?:[.,]\d+)?\s*(?:mm|cm)(?![a-z]))",
    re.IGNORECASE,
)
#: Structures whose names mention an organ without being it (hepatic vein, splenic artery, bile duct, the
#: hepatic lymph nodes ...), also by the AAPM TG-263 prefixes of arteries, veins and lymph nodes (``A_Hepatic``,
#: ``V_Hepatic``, ``LN_Hepatic``).
NOT_THE_ORGAN = re.compile(
    rf"(vessel|vein|vena|cava|{_W0}(ivc|art|pv|hv|[lmr]hv|ha){_W1}|arter|portal|duct|bile|biliar|flexure|ligament|"
    rf"lymph|{_W0}nodes?{_W1}|^(a|v|ln)_|"
    # Japanese / Chinese (静脈 动脉 門脈: 脈 / 脉, 胆 / 膽 bile, 血管 vessel), Russian (вена, артерия, воротная,
    # желчный, проток, сосуд), Korean (정맥 동맥 문맥: 맥, 담관 bile duct, 혈관 vessel)
    r"脈|脉|胆|膽|血管|вен|артер|ворот|желч|проток|сосуд|맥|담관|혈관)",
    re.IGNORECASE,
)
#: A tumour named after its organ (``Liver tumor``, ``LiverMets``, ``GTV_Liver``, ``Hepatic metastasis``,
#: ``Lebermetastase``, ``肝転移``, ``간전이``) is a lesion, unless the name subtracts one from the other: a hyphen
#: between words is AAPM TG-263's Boolean minus (``Liver-GTV``, ``Liver - Tumor``) ...
BOOLEAN_MINUS = re.compile(r"(?<=\w)\s*[-\u2212]\s*(?=[^\W\d_])")
#: ... or names what is not tumour (``non-tumorous liver``, ``Liver_NoTumor``, ``normal liver``, ``非腫瘍肝``).
NEGATED = re.compile(
    r"((?<![a-z])(non|no|normal|healthy|parenchym\w*|background|ohne|sans|sin|sem|senza|kein\w*)(?![a-z])|"
    r"(?-i:No(?=[A-Z]))|非|正常|以外|除外|без|кроме|정상|제외)",
    re.IGNORECASE,
)
#: Lesion-like words that are not tumour (oedema, tumour bed, scar, a boost block).
NOT_TUMOUR = re.compile(rf"(o?edema|{_W0}bed{_W1}|cavity|scar|boost|block|浮腫|水肿|отёк|отек|부종)", re.IGNORECASE)

#: Why a segment / ROI got its role (``segment_roles[].reason`` in the report).
REASONS = ("user", "code", "pattern", "type-ignored", "unmatched-ignored")


@dataclass(frozen=True)
class RoleDecision:
    """The role one named segment / ROI got, and why.

    Parameters
    ----------
    source : str
        File the segment came from.
    number : int
        SegmentNumber / ROINumber.
    name : str
        SegmentLabel / ROIName.
    code : (str, str) or None
        (CodingSchemeDesignator, CodeValue) of the property type / identification code.
    code_meaning : str
        CodeMeaning, for messages.
    interpreted_type : str or None
        RTROIInterpretedType (RTSTRUCT only).
    role : str or None
        The role, ``"ignore"`` when the user ignored it, ``None`` when ignored by the rules.
    reason : str
        One of :data:`REASONS`.
    note : str
        What decided it, in words.
    name_role : str or None
        When a code decided: the different role the name alone would give (``"Tumor"`` coded
        SCT Liver), else None. The code wins (docs/roles.md); the summary warns of the conflict.
    """

    source: str
    number: int
    name: str
    code: tuple[str, str] | None
    code_meaning: str
    interpreted_type: str | None
    role: str | None
    reason: str
    note: str
    name_role: str | None = None

    def describe(self) -> str:
        """``3 'BODY' [EXTERNAL] (SCT 123 Meaning)`` for messages."""
        typ = f" [{self.interpreted_type}]" if self.interpreted_type else ""
        code = f" ({self.code[0]} {self.code[1]} {self.code_meaning})".rstrip(" ") if self.code else ""
        return f"{self.number} {self.name!r}{typ}{code.replace(' )', ')')}"

    def to_report(self) -> dict[str, Any]:
        """The ``study.segment_roles[]`` item of report.json."""
        return {
            "source": self.source,
            "number": self.number,
            "name": self.name,
            "code": None
            if self.code is None
            else {"scheme": self.code[0], "value": self.code[1], "meaning": self.code_meaning or None},
            "interpreted_type": self.interpreted_type,
            "role": None if self.role == "ignore" else self.role,
            "reason": self.reason,
            "note": self.note,
        }


def _pattern_roles(name: str, patterns: Iterable[tuple[str, str]]) -> list[str]:
    name = unicodedata.normalize("NFC", name)  # an accent stored as its own code point (e + U+0301) is é
    found: list[str] = []
    for pattern, role in patterns:
        if re.search(pattern, name, flags=re.IGNORECASE) and role not in found:
            found.append(role)
    return found


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
        Code -> role table (default :data:`DEFAULT_CODE_ROLES`).

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
    couinaud = [r for r in _pattern_roles(text, builtin) if r.startswith("segment")] if text else []
    table = DEFAULT_CODE_ROLES if code_roles is None else code_roles
    liver_or_generic = key is None or key in GENERIC_CODES or table.get(key) == "liver"
    if len(couinaud) == 1 and liver_or_generic:  # Couinaud names win over the liver code (segment maps are coded Liver)
        return out(couinaud[0], "pattern", f"name matches the Couinaud segment pattern of {couinaud[0]}")
    if key is not None and key not in GENERIC_CODES and key[1]:
        coded = table.get(key)
        if coded:
            note = f"code {key[0]} {key[1]} {code_meaning}".rstrip() + f" is {coded}"
            named = _by_name(text, builtin)[0] if text else None
            if named is not None and named != coded:
                return out(coded, "code", f"{note}; its name matches the {named} pattern (the code decides)", named)
            return out(coded, "code", note)
        return out(None, "unmatched-ignored", f"code {key[0]} {key[1]} {code_meaning}".rstrip() + " has no role")
    if not text:
        return out(None, "unmatched-ignored", "no name and no informative code")
    return out(*_by_name(text, builtin))


#: TotalSegmentator's names of the liver tumour (``liver_vessels`` task) and lesions (``liver_lesions``): its
#: RTSTRUCT output (rt_utils) names the ROIs so, without codes; both the liver and the lesion pattern match them.
TOTALSEGMENTATOR_LESION_NAMES = frozenset({"liver_tumor", "liver_lesions"})


def _names_another_structure(text: str, role: str) -> bool:
    """Whether a name matching ``role``'s pattern names something else: not tumour (oedema, bed), or another
    structure than the organ (a vessel, a duct); a lesion's name may mention the vessel it lies by."""
    return bool(NOT_TUMOUR.search(text) or (role != "lesion" and NOT_THE_ORGAN.search(text)))


def _vessel_by_name(text: str, roles: Sequence[str], patterns: Sequence[tuple[str, str]]) -> str | None:
    """The hepatic vessel a name names (:func:`~netlm_imaging.segmentation.vessel_name`), unless it also names a
    lesion (``Tumor near portal vein``) or is a derived structure (``Liver-IVC``, ``IVC_ring``, ``non-PV``)."""
    vessel = vessel_name(text)
    if vessel is None or "lesion" in roles or NEGATED.search(text):
        return None
    if COMPOUND_WORDS.search(re.sub(r"(?<![a-z0-9])and(?![a-z0-9])", " ", text, flags=re.IGNORECASE)):
        return None  # portal_vein_and_splenic_vein is one structure (TotalSegmentator), Liver_minus_PV is not
    if roles and BOOLEAN_MINUS.search(text):
        return None
    if (
        roles
    ):  # the organ's word must be the vessel's own (Hepatic vein, V_Hepatic), not beside it (Liver_IVC, Liver_PV)
        rest = text
        for pattern in [p for _, p in MAJOR_VESSELS] + [LIVER_VESSELS]:
            rest = re.sub(pattern, " ", rest, flags=re.IGNORECASE)
        if _pattern_roles(rest, patterns):
            return None
    return vessel


def _by_name(text: str, patterns: Sequence[tuple[str, str]]) -> tuple[str | None, str, str]:
    """(role, reason, note) of a segment name by the built-in patterns alone (the last step of :func:`decide_role`)."""
    roles = _pattern_roles(text, patterns)
    vessel = _vessel_by_name(text, roles, patterns)
    if vessel is not None:
        return "vessel", "pattern", f"names the {vessel} (its distance to each lesion is measured; never liver)"
    if not roles:
        return None, "unmatched-ignored", "name matches no role pattern (an organ or structure not measured)"
    if text.strip().lower() in TOTALSEGMENTATOR_LESION_NAMES:
        return "lesion", "pattern", "TotalSegmentator's name of the liver tumour / lesions"
    if (
        len(roles) == 2
        and "lesion" in roles
        and set(roles) & {"liver", "spleen"}
        and not (COMPOUND_WORDS.search(text) or BOOLEAN_MINUS.search(text) or NEGATED.search(text))
        and not NOT_TUMOUR.search(text)
    ):
        organ = next(r for r in roles if r != "lesion")
        return "lesion", "pattern", f"name matches the lesion pattern, qualified by the {organ} it lies in"
    if len(roles) > 1 or COMPOUND_WORDS.search(text):
        return None, "unmatched-ignored", "a compound name (derived or Boolean structure): never guessed"
    if _names_another_structure(text, roles[0]):
        return None, "unmatched-ignored", f"names another structure than the {roles[0]} (vessel, oedema, bed ...)"
    return roles[0], "pattern", f"name matches the {roles[0]} pattern"


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
        Code -> role table (default :data:`DEFAULT_CODE_ROLES`).
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
    user mapping) is then compared whole with :data:`ROLE_MASK_PATTERNS`, the names TotalSegmentator
    gives its structures (``liver_tumor``, ``kidney_left``), spaces read as ``_`` (Slicer color tables
    store ``liver_tumor`` and read it back as ``liver tumor``).

    Examples
    --------
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


def present_label_values(arr: np.ndarray) -> list[int]:
    """Sorted non-zero values of an integer label array (:func:`_present_values`)."""
    return _present_values(arr)


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
        :func:`check_decisions`). Without it the items of this file alone must
        give a liver or a lesion, else :class:`LabelError`.

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
    named = _pattern_roles(ignored.name, DEFAULT_NAME_PATTERNS) if ignored.name else []
    # a name of another structure that mentions the organ (TotalSegmentator's liver_vessels, a hepatic vein)
    # suggests no role: offered as the liver the study lacks, the vessels were its liver volume
    other = bool(named) and _names_another_structure(ignored.name, named[0])
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


def _shown_values(values: Sequence[int], shown: int = 20) -> str:
    """The values of a label map for a message: the first ``shown``, and how many more.

    Examples
    --------
    >>> _shown_values([1, 5]), _shown_values(list(range(1, 118)), 3)
    ('[1, 5]', '[1, 2, 3] and 114 more')
    """
    more = f" and {len(values) - shown} more" if len(values) > shown else ""
    return f"{list(values[:shown])}{more}"


def layers_from_label_map(label_map: Volume, spec: LabelSpec, *, notes: Sequence[str] = ()) -> list[MaskLayer]:
    """Split an integer label map into role layers.

    Every non-zero value must be mapped (or mapped to ``ignore``); values
    mapped to the same role are merged into one layer.

    Parameters
    ----------
    label_map : Volume
        Integer-valued label image.
    spec : LabelSpec
        Value -> role mapping.
    notes : sequence of str
        Notes of the reading the layers carry (``meta["notes"]``), before this function's own.

    Returns
    -------
    list of MaskLayer

    Raises
    ------
    LabelError
        If the map holds non-integer values or values without a role.
    """
    arr = np.asarray(label_map.array)
    notes = list(notes)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise LabelError(f"{label_map.source}: label map contains NaN or inf; a label map must hold integers.")
        rounded = np.round(arr)
        off = float(np.max(np.abs(arr - rounded))) if arr.size else 0.0
        scaling = label_map.meta.get("scaling")
        if off > LABEL_ROUNDING_TOLERANCE and scaling:
            raise LabelError(
                f"{label_map.source}: label map's header scales its stored values (scl_slope {scaling[0]:g}, "
                f"scl_inter {scaling[1]:g}) to non-integers (up to {off:.3g} from an integer); re-save it with "
                "scl_slope 1 and scl_inter 0 (nibabel: img.header.set_slope_inter(1, 0))."
            )
        if off > LABEL_ROUNDING_TOLERANCE:
            raise LabelError(
                f"{label_map.source}: label map holds non-integer values (up to {off:.3g} from an integer, more than "
                f"the rounding tolerance {LABEL_ROUNDING_TOLERANCE}); pass a label map, not an intensity image."
            )
        if off > 0.0:
            notes.append(
                f"{label_map.source}: float label values up to {off:.3g} from an integer (e.g. 1.0000001 from a "
                f"resampling or a float export) were rounded to the nearest integer (tolerance "
                f"{LABEL_ROUNDING_TOLERANCE})"
            )
            logger.warning(notes[-1])
        arr = rounded.astype(np.int64)
    elif arr.dtype.kind == "b":
        arr = arr.astype(np.uint8)
    elif arr.dtype.kind not in "iu":
        raise LabelError(f"{label_map.source}: label map has unsupported type {arr.dtype}.")
    from ..volume import nonzero_bbox, sparse_zeros

    # label maps are mostly background: values and masks are taken inside the box of the labelled voxels,
    # and the masks (calloc'ed) are written only there
    box = nonzero_bbox(arr)
    sub = arr[box] if box is not None else arr[:0, :0, :0]
    values = _present_values(sub)
    unmapped = [v for v in values if not spec.roles_of_value(v)]
    if unmapped and not spec.user_given:
        # a TotalSegmentator `total` map saved without its label table (v1, or re-saved) numbers the spleen 1 and
        # the kidney 2: read with the LiTS numbering they would be the liver and a lesion, so the example is its own
        hint = (
            "map each value's role with --labels (values you do not map are then ignored), e.g. --labels "
            "liver=5,spleen=1 for a TotalSegmentator 'total' map saved without its label table, liver=1,lesion=2+3 "
            "for a model with two tumour classes"
        )
        raise LabelError(
            f"{label_map.source}: label values {unmapped[:20]} have no role in the default LiTS mapping "
            f"(1 liver, 2 lesion; values present: {_shown_values(values)}); {hint}."
        )
    if unmapped:
        notes.append(f"{label_map.source}: label values {unmapped[:20]} are not in {spec.origin} and were ignored")
        logger.info(notes[-1])
    by_role: dict[str, list[int]] = {}
    for v in values:
        for role in spec.roles_of_value(v):  # a value of two roles (liver=1+2,lesion=2) is in both layers
            by_role.setdefault(role, []).append(v)
    layers: list[MaskLayer] = []
    for role, vals in by_role.items():
        if role == "ignore":
            continue
        mask = sparse_zeros(arr.shape, bool, "F" if arr.flags.f_contiguous and not arr.flags.c_contiguous else "C")
        if box is not None:
            inside = sub == vals[0]
            for v in vals[1:]:
                inside |= sub == v
            mask[box] = inside
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
    if spec.user_given and spec.origin.startswith("--labels") and mapped and not layers:
        if not values:  # nothing labelled at all: no label number would help
            raise LabelError(
                f"{label_map.source}: the map is empty (every voxel is 0), so none of the labels given in "
                f"{spec.origin} ({sorted(set(mapped))}) occur; pass the segmentation that holds the liver and lesions."
            )
        raise LabelError(
            f"{label_map.source}: none of the labels given in {spec.origin} ({sorted(set(mapped))}) occur in the map "
            f"(values present: {values[:20]}); check the label numbers."
        )
    return layers
