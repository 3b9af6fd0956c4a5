"""What an MR image's pixel values are, from vendor image types; and the vendors' private scales.

Private helper of :mod:`netlm_imaging.io.mr_headers`: ImageType / FrameType values, the
ComplexImageComponent, GE's private image type (0043,102F) and Philips' (2005,1011) name a Dixon
water / fat / in- / opposed-phase image, a subtraction, a phase map ...; Philips' private scale slope
(2005,100E) and the RealWorldValueMappingSequence say how values of two series compare. Facts only:
what follows from them is decided in :mod:`netlm_imaging.io.mr_phase`.
"""

from __future__ import annotations

import struct
from typing import Any

from ..dicom_values import parse_float

__all__ = ["ge_image_type", "image_component", "philips_image_type", "philips_scale_slope", "real_world_mapping"]

#: ImageType / FrameType values (from the third on) and what they say the pixels are, checked in
#: this order (a Siemens "DERIVED\\PRIMARY\\SUBTRACTION" is a subtraction whatever else it says).
_COMPONENT_TOKENS: tuple[tuple[str, frozenset[str]], ...] = (
    ("subtraction", frozenset({"SUBTRACTION", "SUB", "SUBTRACTED"})),
    ("projection", frozenset({"PROJECTION IMAGE", "PROJECTION", "MIP", "MINIP", "MIN IP", "MAX IP"})),
    ("fat_fraction", frozenset({"FF", "FAT_FRACTION", "FATFRACTION", "FAT FRACTION", "PDFF"})),
    (
        "parametric_map",
        frozenset({"ADC", "T1MAP", "T1_MAP", "T1 MAP", "T2MAP", "T2_MAP", "T2 MAP", "R2STAR", "T2STAR", "T2_STAR"}),
    ),
    ("diffusion", frozenset({"DIFFUSION", "TRACEW", "TRACE", "DWI", "EADC"})),
    ("phase", frozenset({"P", "PHASE", "PHASE MAP", "PHASE_MAP"})),
    ("real", frozenset({"R", "REAL"})),
    ("imaginary", frozenset({"I", "IMAGINARY"})),
    ("fat", frozenset({"FAT", "F"})),
    ("water", frozenset({"WATER", "W"})),
    ("in_phase", frozenset({"IN_PHASE", "IN PHASE", "INPHASE", "IP"})),
    (
        "opposed_phase",
        frozenset({"OPP_PHASE", "OPP PHASE", "OPPOSED_PHASE", "OUT_PHASE", "OUT PHASE", "OUTPHASE", "OP"}),
    ),
)
_COMPLEX = {"PHASE": "phase", "REAL": "real", "IMAGINARY": "imaginary"}
#: Words of an ImageType value naming a maximum / minimum intensity projection (GE "PROJECTION IMAGE",
#: Siemens "MIP_SAG", "MIP_TRA").
_PROJECTION_WORDS = frozenset({"PROJECTION", "MIP", "MINIP"})


_PHILIPS = (0x2005, "Philips MR Imaging DD 001")
_GE = (0x0043, "GEMS_PARM_01")


def _private_value(ds: Any, block: tuple[int, str], element: int) -> Any:
    """The value of a vendor's private element (``block``: group and private creator), ``None`` when absent."""
    if isinstance(ds, dict):
        return None
    try:
        elem = ds.get_private_item(block[0], element, block[1])
    except (KeyError, ValueError, AttributeError):
        return None
    return elem.value if elem is not None else None


def philips_image_type(ds: Any) -> str | None:
    """Philips' private image type (2005,1011) (W, F, IP, OP, M, P, ...), when the file has it."""
    value = _private_value(ds, _PHILIPS, 0x11)
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value).strip() or None if value is not None else None


#: GE's private image type (0043,102F), as dcm2niix reads it: 0 magnitude, 1 phase, 2 real, 3 imaginary.
_GE_IMAGE_TYPES = {1: "PHASE", 2: "REAL", 3: "IMAGINARY"}


def ge_image_type(ds: Any) -> str | None:
    """GE's private image type (0043,102F) as a complex component (PHASE / REAL / IMAGINARY), else ``None``."""
    value = _private_value(ds, _GE, 0x2F)
    if isinstance(value, bytes) and len(value) == 2:
        value = int.from_bytes(value, "little", signed=True)
    try:
        return _GE_IMAGE_TYPES.get(int(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def philips_scale_slope(ds: Any) -> float | None:
    """Philips' private MR scale slope (2005,100E) (bytes as little-endian FL when the VR is unknown).

    For a dcm2niix sidecar, ``PhilipsScaleSlope`` (or 1 when ``UsePhilipsFloatNotDisplayScaling``
    says the NIfTI already holds Philips' floating-point values).
    """
    if isinstance(ds, dict):
        if ds.get("PhilipsScaleSlope") is None:
            return None
        return 1.0 if ds.get("UsePhilipsFloatNotDisplayScaling") == 1 else parse_float(ds.get("PhilipsScaleSlope"))
    value = _private_value(ds, _PHILIPS, 0x0E)
    if value is None:
        return None
    if isinstance(value, bytes) and len(value) == 4:
        value = struct.unpack("<f", value)[0]
    return parse_float(value)


def real_world_mapping(ds: Any) -> tuple[float | None, float | None]:
    """(slope, intercept) of the first RealWorldValueMappingSequence item, root or functional groups."""
    holders = [ds]
    if not isinstance(ds, dict):
        for groups_kw in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
            groups = ds.get(groups_kw)
            if groups:
                holders.append(groups[0])
    for holder in holders:
        seq = holder.get("RealWorldValueMappingSequence")
        if seq and not isinstance(seq, (str, dict)):
            try:
                item = seq[0]
            except (IndexError, TypeError):
                continue
            return parse_float(item.get("RealWorldValueSlope")), parse_float(item.get("RealWorldValueIntercept"))
    return None, None


def image_component(
    image_type: str | None, complex_component: str | None, private_type: str | None = None
) -> str | None:
    r"""What an MR image's pixel values are, from its ImageType, ComplexImageComponent and private type.

    Examples
    --------
    >>> image_component("DERIVED\\PRIMARY\\SUBTRACTION", None)
    'subtraction'
    >>> image_component("DERIVED\\PRIMARY\\DIXON\\FAT", None)
    'fat'
    >>> image_component("ORIGINAL\\PRIMARY\\M\\ND\\NORM", None) is None
    True
    >>> image_component("DERIVED\\SECONDARY\\MIP_SAG", None)
    'projection'
    """
    tokens = {t.strip().upper() for t in (image_type or "").split("\\")[2:] if t.strip()}
    if private_type:
        tokens.add(private_type.strip().upper())
    for name, values in _COMPONENT_TOKENS:
        if tokens & values:
            return name
    if any("WATER" in t.replace("_", " ").split() for t in tokens):  # GE "IDEAL WATER", "WATER_IMAGE"
        return "water"
    if any(_PROJECTION_WORDS & set(t.replace("_", " ").split()) for t in tokens):  # Siemens "MIP_SAG"
        return "projection"
    return _COMPLEX.get((complex_component or "").strip().upper())
