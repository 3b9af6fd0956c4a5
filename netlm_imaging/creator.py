"""How netlm-imaging identifies the DICOM objects it creates (its own SR and SEG).

Every SR / SEG written by :mod:`netlm_imaging.report` carries
``Manufacturer = "netlm-imaging"``. Study discovery, the PACS commands and the
listener use :func:`is_own_output` so that a re-run never takes the tool's own
outputs as input (running twice on a study that already holds the derived SEG
gives the same result as the first run).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

__all__ = ["CREATOR", "is_own_output"]

logger = logging.getLogger(__name__)

#: Manufacturer (and model name) of every DICOM object the tool writes.
CREATOR = "netlm-imaging"


def is_own_output(obj: Any) -> bool:
    """True when a DICOM dataset (or file) was created by netlm-imaging.

    Parameters
    ----------
    obj : pydicom.Dataset or path-like
        A dataset, or a file whose header is read (``Manufacturer`` only).

    Returns
    -------
    bool
        ``Manufacturer`` is :data:`CREATOR`. An unreadable file is not ours.
    """
    if isinstance(obj, (str, Path)):
        import pydicom

        try:
            obj = pydicom.dcmread(str(obj), stop_before_pixels=True, specific_tags=["Manufacturer"])
        except Exception:  # unreadable: the readers report it; it is not one of our outputs
            logger.debug("cannot read %s for its creator", obj, exc_info=True)
            return False
    return str(getattr(obj, "Manufacturer", "") or "") == CREATOR
