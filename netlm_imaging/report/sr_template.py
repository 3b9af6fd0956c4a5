"""The TID 1500 template's table: the codes, tracking identifiers and units of netlm's DICOM SR.

One concept: what the document says and in which words. The group builder
(:mod:`.sr_groups`), the writers (:mod:`.sr_write`, :mod:`.sr_highdicom`) and
the reader (:mod:`.sr_read`) all take their codes, concept names, tracking
identifiers and units from here, so what is written is what is read.

Codes are ``(value, scheme, meaning)`` tuples as pydicom's ``codes`` spell
them (``tests/test_sr_writer.py`` checks each against pydicom); importing this
module imports neither pydicom nor highdicom.
"""

from __future__ import annotations

import re

__all__ = [
    "ARB",
    "GRAM",
    "INVOLVEMENT_CODE",
    "LENGTH_UNITS",
    "LESION_RE",
    "LIVER_ID",
    "ML",
    "MR_SIGNAL",
    "PERCENT",
    "PET_ID",
    "PET_WB_ID",
    "PROCEDURES",
    "REMNANT_ID",
    "SCT",
    "SERIES_DESCRIPTION",
    "SRETV_CODE",
    "SUVBW_CODE",
    "SUV_KEYS",
    "SUV_UNIT",
    "TLSRE_CODE",
    "TUMOUR_ID",
    "VOLUME_UNITS",
    "coding_scheme",
    "sct",
]

#: Private code of the hepatic tumour involvement percent (no standard code exists).
INVOLVEMENT_CODE = ("INVOLVEMENT", "99NETLM", "Hepatic tumour involvement")
#: Private code of the somatostatin receptor-expressing tumour volume (PET).
SRETV_CODE = ("SRETV", "99NETLM", "Somatostatin receptor-expressing tumour volume")
#: Private code of the total lesion somatostatin receptor expression (SRETV x SUVmean).
TLSRE_CODE = ("TLSRE", "99NETLM", "Total lesion somatostatin receptor expression")
#: Tracking identifiers of the groups netlm writes (and recognises when reading).
LIVER_ID = "Total liver"
TUMOUR_ID = "Intrahepatic tumour"
REMNANT_ID = "Non-tumorous liver"
PET_ID = "Hepatic somatostatin receptor-expressing tumour"
PET_WB_ID = "Whole-body somatostatin receptor-expressing tumour"
#: Tracking identifier of a lesion group, ``Lesion <id> (<location>)`` (also the derived SEG's segment labels).
LESION_RE = re.compile(r"^Lesion (\d+)(?: \((intrahepatic|extrahepatic)\))?$")
#: Procedure reported, by modality.
PROCEDURES: dict[str, tuple[str, str, str]] = {
    "CT": ("25045-6", "LN", "CT unspecified body region"),
    "MR": ("25056-3", "LN", "MRI unspecified body region"),
    "PT": ("44136-0", "LN", "PET unspecified body region"),
}
#: DCM 126401 SUVbw, the concept of the per-lesion SUV measurements.
SUVBW_CODE = ("126401", "DCM", "SUVbw")
#: (report key, derivation code) of the per-lesion SUV measurements.
SUV_KEYS = (
    ("suv_max", ("56851009", "SCT", "Maximum")),
    ("suv_mean", ("373098007", "SCT", "Mean")),
    ("suv_peak", ("126031", "DCM", "Peak Value Within ROI")),
)

# codes of the document as (value, scheme, meaning), as pydicom's ``codes`` spell them
# (tests/test_sr_writer.py checks each against pydicom); no pydicom.sr import on the write path
SCT = {
    "Volume": ("118565006", "SCT", "Volume"),
    "Liver": ("10200004", "SCT", "Liver"),
    "Neoplasm": ("108369006", "SCT", "Neoplasm"),
    "LongAxis": ("103339001", "SCT", "Long axis"),
    "ShortAxis": ("103340004", "SCT", "Short axis"),
    "Diameter": ("81827009", "SCT", "Diameter"),
    "Maximum": ("56851009", "SCT", "Maximum"),
    "Mean": ("373098007", "SCT", "Mean"),
    "StandardDeviation": ("386136009", "SCT", "Standard Deviation"),
}
MR_SIGNAL = ("110852", "DCM", "MR signal intensity")
ML = ("ml", "UCUM", "milliliter")
PERCENT = ("%", "UCUM", "percent")
GRAM = ("g", "UCUM", "gram")
SUV_UNIT = ("{SUVbw}g/ml", "UCUM", "Standardized Uptake Value body weight")
ARB = ("[arb'U]", "UCUM", "arbitrary unit")

#: UCUM units a read volume may have, and their factor to mL.
VOLUME_UNITS = {"ml": 1.0, "mL": 1.0, "cm3": 1.0, "cm^3": 1.0, "mm3": 1e-3, "mm^3": 1e-3, "l": 1e3, "L": 1e3}
#: UCUM units a read diameter may have, and their factor to mm.
LENGTH_UNITS = {"mm": 1.0, "cm": 10.0, "m": 1e3}

SERIES_DESCRIPTION = "netlm tumour burden (TID 1500)"


def sct(name: str) -> tuple[str, str, str]:
    """An SCT code by pydicom's attribute name (pydicom's dictionary only for a name not listed above)."""
    found = SCT.get(name)
    if found is not None:
        return found
    from pydicom.sr.codedict import codes

    c = getattr(codes.SCT, name)
    return (str(c.value), str(c.scheme_designator), str(c.meaning))


def coding_scheme() -> tuple[str, str, str]:
    """Designator, name and responsible organization of the private ``99NETLM`` coding scheme."""
    from ..creator import CREATOR

    return (INVOLVEMENT_CODE[1], "netlm-imaging local codes", CREATOR)
