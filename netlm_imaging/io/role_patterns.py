"""What a segment's name, code or RT type says of its role: the tables and the name rules.

The SNOMED CT codes that give a role (:data:`DEFAULT_CODE_ROLES`), the regular expressions
tried on segment / ROI names (:data:`DEFAULT_NAME_PATTERNS`), the whole names TotalSegmentator
gives its masks (:data:`ROLE_MASK_PATTERNS`), the RT types, generic codes and words that keep a
name from being guessed (planning volumes, compound, negated and other structures), and
:func:`role_by_name`, the role a name alone gives. The precedence between them is
:func:`netlm_imaging.io.role_precedence.decide_role` (docs/roles.md).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from ..segmentation import LIVER_VESSELS, MAJOR_VESSELS, vessel_name

__all__ = [
    "BOOLEAN_MINUS",
    "COMPOUND_WORDS",
    "DEFAULT_CODE_ROLES",
    "DEFAULT_NAME_PATTERNS",
    "GENERIC_CODES",
    "IGNORED_INTERPRETED_TYPES",
    "NEGATED",
    "NOT_THE_ORGAN",
    "NOT_TUMOUR",
    "PLANNING_NAME",
    "ROLE_MASK_PATTERNS",
    "TOTALSEGMENTATOR_LESION_NAMES",
    "names_another_structure",
    "pattern_roles",
    "role_by_name",
    "role_of_mask_name",
]


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
    # the vessels in German, Dutch, French, Italian, Portuguese (Pfortader, Lebervene, Hohlvene, leverader,
    # veine, artère, vene, veia)
    rf"pfortader|leberven|hohlvene|(lever|poort|slag|holle[\s_-]*)ader|veines?|art[eè]re|{_W0}vene{_W1}|veias?|"
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


def pattern_roles(name: str, patterns: Iterable[tuple[str, str]]) -> list[str]:
    """The roles whose ``(regex, role)`` patterns match ``name`` (case-insensitive, NFC), each once, in order."""
    name = unicodedata.normalize("NFC", name)  # an accent stored as its own code point (e + U+0301) is é
    found: list[str] = []
    for pattern, role in patterns:
        if re.search(pattern, name, flags=re.IGNORECASE) and role not in found:
            found.append(role)
    return found


#: TotalSegmentator's names of the liver tumour (``liver_vessels`` task) and lesions (``liver_lesions``): its
#: RTSTRUCT output (rt_utils) names the ROIs so, without codes; both the liver and the lesion pattern match them.
TOTALSEGMENTATOR_LESION_NAMES = frozenset({"liver_tumor", "liver_lesions"})


def names_another_structure(text: str, role: str) -> bool:
    """Whether a name matching ``role``'s pattern names something else: not tumour (oedema, bed), or another
    structure than the organ (a vessel, a duct); a lesion's name may mention the vessel it lies by."""
    return bool(NOT_TUMOUR.search(text) or (role != "lesion" and NOT_THE_ORGAN.search(text)))


def _vessel_by_name(text: str, roles: Sequence[str], patterns: Sequence[tuple[str, str]]) -> str | None:
    """The hepatic vessel a name names (:func:`~netlm_imaging.segmentation.vessel_name`), unless it also names a
    lesion (``Tumor near portal vein``) or is a derived structure (``Liver-IVC``, ``IVC_ring``, ``non-PV``)."""
    text = unicodedata.normalize("NFC", text)
    vessel = vessel_name(text)
    if vessel is None or "lesion" in roles or NEGATED.search(text):
        return None
    if COMPOUND_WORDS.search(re.sub(r"(?<![a-z0-9])and(?![a-z0-9])", " ", text, flags=re.IGNORECASE)):
        return None  # portal_vein_and_splenic_vein is one structure (TotalSegmentator), Liver_minus_PV is not
    if roles and BOOLEAN_MINUS.search(re.sub(r"(?i)(?<![a-z])sus-(?=h)", "sus", text)):  # veines sus-hépatiques
        return None
    if (
        roles
    ):  # the organ's word must be the vessel's own (Hepatic vein, V_Hepatic), not beside it (Liver_IVC, Liver_PV)
        rest = text
        for pattern in [p for _, p in MAJOR_VESSELS] + [LIVER_VESSELS]:
            rest = re.sub(pattern, " ", rest, flags=re.IGNORECASE)
        if pattern_roles(rest, patterns):
            return None
    return vessel


def role_by_name(text: str, patterns: Sequence[tuple[str, str]]) -> tuple[str | None, str, str]:
    """(role, reason, note) of a segment name by the built-in patterns alone (the last step of
    :func:`~netlm_imaging.io.role_precedence.decide_role`)."""
    roles = pattern_roles(text, patterns)
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
    if names_another_structure(text, roles[0]):
        return None, "unmatched-ignored", f"names another structure than the {roles[0]} (vessel, oedema, bed ...)"
    return roles[0], "pattern", f"name matches the {roles[0]} pattern"
