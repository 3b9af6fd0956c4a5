"""The C-STORE SCP side of DIMSE: a pynetdicom ``EVT_C_STORE`` handler writing each instance to disk as it
arrives (used by the C-GET / C-MOVE retrieval, :mod:`.dimse_retrieve`, and by :mod:`.listener`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes
from ..errors import UsageError
from .common import check_uid

__all__ = ["storage_handler"]

logger = logging.getLogger(__name__)


def _safe_name(uid: str) -> str | None:
    try:
        return check_uid(uid, "SOP Instance UID")
    except UsageError:
        return None


def storage_handler(
    folder_for: Callable[[Any], Path | None], on_stored: Callable[[Path, Any, Any], None] | None = None
) -> Callable[[Any], int]:
    """A pynetdicom ``EVT_C_STORE`` handler writing each instance to disk as it arrives.

    Parameters
    ----------
    folder_for : callable
        ``folder_for(dataset) -> Path`` (None: accept and drop the instance,
        e.g. the tool's own SR / SEG coming back).
    on_stored : callable, optional
        Called with the written path, the dataset and the association that brought it.

    Returns
    -------
    callable
        The handler; it answers 0x0000 (success), 0xA700 when the instance
        cannot be written, 0xC000 when its UIDs are not UIDs.
    """

    def handle(event: Any) -> int:
        try:
            ds = event.dataset
            ds.file_meta = event.file_meta
        except Exception:  # undecodable: refuse the instance, keep serving
            logger.warning("C-STORE from %s: undecodable dataset refused", event.assoc.requestor.ae_title)
            return 0xC000
        sop = _safe_name(str(getattr(ds, "SOPInstanceUID", "")))
        if sop is None:
            logger.warning("C-STORE refused: the SOP Instance UID is not a UID")
            return 0xC000
        folder = folder_for(ds)
        if folder is None:
            return 0x0000
        path = folder / f"{sop}.dcm"
        try:
            atomic_write_bytes(path, bytes(event.encoded_dataset(include_meta=True)))
        except OSError as exc:
            logger.warning("cannot write %s (%s)", path, exc)
            return 0xA700
        if on_stored is not None:
            on_stored(path, ds, event.assoc)
        return 0x0000

    return handle
