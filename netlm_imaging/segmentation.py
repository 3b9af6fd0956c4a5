"""Masks with roles: what every segmentation loader returns.

A segmentation file (label map, DICOM SEG, RTSTRUCT, binary mask) becomes a
list of :class:`MaskLayer` objects, each a boolean (or fractional) mask
:class:`~netlm_imaging.volume.Volume` with a role. Roles are the fixed
vocabulary in :data:`ROLES`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .volume import Volume

__all__ = [
    "LIVER_VESSELS",
    "MAJOR_VESSELS",
    "ROLES",
    "SEGMENT_ROLES",
    "MaskLayer",
    "role_union",
    "segment_number",
    "vessel_name",
]

SEGMENT_ROLES: tuple[str, ...] = tuple(f"segment{i}" for i in range(1, 9))
#: The roles a mask can take. ``vessel``: a hepatic vessel (portal vein, hepatic vein, IVC, hepatic artery,
#: TotalSegmentator's liver_vessels), measured against the lesions only (measure/vessels.py), never liver.
ROLES: tuple[str, ...] = ("liver", "lesion", "spleen", "kidney", *SEGMENT_ROLES, "vessel", "ignore")


_B0, _B1 = r"(?<![a-z0-9])", r"(?![a-z0-9])"
#: The named hepatic vessels (a name's first match wins), by the names TotalSegmentator (portal_vein_and_splenic_vein,
#: inferior_vena_cava), Slicer and RTSTRUCT exports give them, the AAPM TG-263 prefixes (V_Hepatic, A_Hepatic) and
#: the usual abbreviations (PV, RHV / MHV / LHV, IVC, HA), and in German, French, Spanish, Italian, Portuguese,
#: Dutch, Russian, Japanese, Chinese and Korean (Pfortader, veine porte, vena porta, veia porta, poortader,
#: воротная вена, 門脈 ...). The superior vena cava (Vena cava superior, obere Hohlvene) is none of them.
MAJOR_VESSELS: tuple[tuple[str, str], ...] = (
    (
        "portal vein",
        rf"portal|{_B0}[lmr]?pv{_B1}|門脈|门静脉|воротн|문맥|pfortader|poortader|"
        rf"{_B0}v(ena|eine|eia|\.)?[\s_-]*port(a|ae|e){_B1}",
    ),
    (
        "inferior vena cava",
        rf"(?<!superior[\s_-])(vena|veine|veia|{_B0}v\.)[\s_-]*cav[ae](?![\s_-]*sup)|{_B0}ivc{_B1}|"
        rf"untere[\s_-]*hohlvene|onderste[\s_-]*holle[\s_-]*ader|下大静脈|下腔静脉|нижн\w*\s*пол|하대정맥",
    ),
    (
        "hepatic vein",
        rf"(hepatic|liver)[\s_-]*veins?|leberven|leverader|^v_hepatic|{_B0}[lmr]?hv{_B1}|"
        rf"(vena|venas|vene|veine|veines|veia|veias)[\s_-]*(sus[\s_-]*|sovra)?(h[eé]patiq|hep[aá]tic|ep[aá]tic)|"
        rf"肝静脈|肝静脉|간정맥|печ[её]ночн\w*\s*вен",
    ),
    (
        "hepatic artery",
        rf"(hepatic|liver)[\s_-]*arter|^a_hepatic|{_B0}c?ha{_B1}|leberarterie|leverslagader|"
        rf"(arteria|art[eè]re|art[eé]ria)[\s_-]*(h[eé]patique|hep[aá]tica|ep[aá]tica)|"
        rf"肝動脈|肝动脉|간동맥|печ[её]ночн\w*\s*артер",
    ),
)
#: Vessels of the liver without a name of which (TotalSegmentator's liver_vessels, MSD Task08's Vessel).
LIVER_VESSELS = rf"(liver|hepatic)[\s_-]*vessels?|^vessels?$|^hepatic[\s_-]*vasculature$|{_B0}vasculature{_B1}"


def vessel_name(name: str | None) -> str | None:
    """The hepatic vessel a segment / ROI / file name names (a :data:`MAJOR_VESSELS` name, ``liver vessels``), or None.

    Examples
    --------
    >>> [vessel_name(n) for n in ("Portal Vein", "portal_vein_and_splenic_vein", "IVC", "RHV", "liver_vessels")]
    ['portal vein', 'portal vein', 'inferior vena cava', 'hepatic vein', 'liver vessels']
    >>> [vessel_name(n) for n in ("Hepatic artery", "Liver", "splenic vein", "superior_vena_cava", None)]
    ['hepatic artery', None, None, None, None]
    """
    import re
    import unicodedata

    text = unicodedata.normalize("NFC", (name or "").strip())  # an accent stored as its own code point
    for vessel, pattern in MAJOR_VESSELS:
        if re.search(pattern, text, flags=re.IGNORECASE):
            return vessel
    if re.search(LIVER_VESSELS, text, flags=re.IGNORECASE):
        return "liver vessels"
    return None


def segment_number(role: str) -> int | None:
    """Couinaud segment number of a ``segmentN`` role, else ``None``."""
    if role in SEGMENT_ROLES:
        return int(role[len("segment") :])
    return None


@dataclass(frozen=True, eq=False)
class MaskLayer:
    """One mask with a role.

    Parameters
    ----------
    role : str
        One of :data:`ROLES`.
    mask : Volume
        Boolean array (binary) or float array in [0, 1] (fractional occupancy).
    label : str or None
        Segment / ROI name or label value as text, for the report.
    source : str
        File it came from.
    fractional : bool
        True if ``mask.array`` holds fractions (DICOM SEG FRACTIONAL).
    """

    role: str
    mask: Volume
    label: str | None = None
    source: str = "<array>"
    fractional: bool = False

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; expected one of {', '.join(ROLES)}")

    def binary(self, threshold: float = 0.5) -> np.ndarray:
        """Boolean mask (fractional masks thresholded at ``>= threshold``)."""
        arr = self.mask.array
        if self.fractional:
            return np.asarray(arr >= threshold)
        return np.asarray(arr, dtype=bool)

    def with_mask(self, mask: Volume) -> MaskLayer:
        """Same layer on another grid (after resampling)."""
        return MaskLayer(self.role, mask, self.label, self.source, self.fractional)


def role_union(layers: Sequence[MaskLayer], role: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The union of the binary masks of one role's layers (all on one grid of ``shape``); None when none has it.

    Examples
    --------
    >>> v = Volume(np.array([[[1, 0]]], dtype=bool), np.eye(4))
    >>> w = Volume(np.array([[[0, 1]]], dtype=bool), np.eye(4))
    >>> role_union([MaskLayer("liver", v), MaskLayer("liver", w)], "liver", (1, 1, 2)).tolist()
    [[[True, True]]]
    >>> role_union([MaskLayer("liver", v)], "spleen", (1, 1, 2)) is None
    True
    """
    chosen = [la for la in layers if la.role == role]
    if not chosen:
        return None
    out = np.zeros(shape, dtype=bool)
    for la in chosen:
        out |= la.binary()
    return out
