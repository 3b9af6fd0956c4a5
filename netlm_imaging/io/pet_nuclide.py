"""Which radionuclide a PET series was made with, from its Radiopharmaceutical Information Sequence.

The CID 4020 code of Radionuclide Code Sequence (0054,0300) first, then the names (code meanings,
Radiopharmaceutical (0018,0031)); a somatostatin ligand named without its nuclide ("DOTATATE") is
taken as Ga-68 only when no text names a nuclide. The half-life check
(:mod:`~netlm_imaging.io.pet_half_life`) and the plausibility limits read the result.
"""

from __future__ import annotations

import re
from typing import Any

from .pet_tags import radiopharm

__all__ = ["identify_nuclide"]


_NUCLIDE_CODES = {
    "C-131A3": "Ga-68",
    "35337001": "Ga-68",
    "C-111A1": "F-18",
    "77004003": "F-18",
    "C-127A2": "Cu-64",
    "3932008": "Cu-64",
    "C-105A1": "C-11",
    "40565003": "C-11",
}
_NUCLIDE_PATTERNS = (  # the nuclide named; the somatostatin ligands only after (_LIGAND_PATTERNS)
    ("Lu-177", re.compile(r"(?<![0-9])177\W*lu|lu(tetium)?\W*177", re.IGNORECASE)),
    ("Ga-68", re.compile(r"(?<![0-9])68\W*ga(?!\w*germ)|ga(llium)?\W*68", re.IGNORECASE)),
    ("F-18", re.compile(r"(?<![0-9])18\W*f|f(luorine)?\W*18|fdg|fluoro", re.IGNORECASE)),
    ("Cu-64", re.compile(r"(?<![0-9])64\W*cu|cu(pper)?\W*64", re.IGNORECASE)),
    ("C-11", re.compile(r"(?<![0-9])11\W*c(?!u)|carbon\W*11|\bc\W*11\b", re.IGNORECASE)),
)
#: A ligand name without its nuclide ("DOTATATE") is taken as Ga-68, the PET nuclide it is usually labelled
#: with, only when no text names a nuclide: "64Cu-DOTATATE" (Detectnet) is Cu-64, "177Lu-DOTATATE" Lu-177.
_LIGAND_PATTERNS = (("Ga-68", re.compile(r"dotata|dotatoc|dotanoc", re.IGNORECASE)),)


def identify_nuclide(ds: Any) -> str | None:
    """Radionuclide of a PET dataset, from codes first, then names.

    Parameters
    ----------
    ds : pydicom.Dataset
        A PET image dataset.

    Returns
    -------
    str or None
        ``"Ga-68"``, ``"F-18"``, ``"Cu-64"``, ``"C-11"`` or None if unknown.

    Examples
    --------
    >>> from pydicom import Dataset
    >>> info, code = Dataset(), Dataset()
    >>> code.CodeValue, code.CodeMeaning = "C-131A3", "^68^Gallium"
    >>> info.RadionuclideCodeSequence = [code]
    >>> ds = Dataset(); ds.RadiopharmaceuticalInformationSequence = [info]
    >>> identify_nuclide(ds)
    'Ga-68'
    """
    info = radiopharm(ds)
    texts: list[str] = []
    if info is not None:
        for code in info.get("RadionuclideCodeSequence", []) or []:
            cv = str(code.get("CodeValue", "") or "").strip()
            if cv in _NUCLIDE_CODES:
                return _NUCLIDE_CODES[cv]
            texts.append(str(code.get("CodeMeaning", "") or ""))
        texts.append(str(info.get("Radiopharmaceutical", "") or ""))
        for code in info.get("RadiopharmaceuticalCodeSequence", []) or []:
            texts.append(str(code.get("CodeMeaning", "") or ""))
    for patterns in (_NUCLIDE_PATTERNS, _LIGAND_PATTERNS):
        for text in texts:
            for name, pattern in patterns:
                if text and pattern.search(text):
                    return name
    return None
