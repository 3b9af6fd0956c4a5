"""C-FIND (Study Root, STUDY level) of one study: does the PACS hold it?"""

from __future__ import annotations

import logging
import time

from ..errors import InputError
from .common import check_uid
from .dimse_assoc import FIND, DimseEndpoint
from .dimse_assoc import associate as _associate
from .dimse_assoc import new_ae as _ae
from .dimse_assoc import query as _query
from .dimse_assoc import require_context as _require_context
from .dimse_assoc import silent as _silent
from .dimse_assoc import timeout_error as _timeout_error
from .dimse_status import Transient, category, describe, out_of_resources, with_retries

__all__ = ["find_study"]

logger = logging.getLogger(__name__)


def find_study(ep: DimseEndpoint, study_uid: str) -> bool:
    """C-FIND (Study Root, STUDY level): does the PACS hold the study?

    Raises
    ------
    InputError
        No association, or the PACS refuses the query.
    """
    check_uid(study_uid)
    return with_retries(lambda: _find_study_once(ep, study_uid), ep.retry_pauses_s)


def _find_study_once(ep: DimseEndpoint, study_uid: str) -> bool:
    ae = _ae(ep)
    ae.add_requested_context(FIND)
    assoc = _associate(ae, ep)
    _require_context(assoc, FIND, ep, "C-FIND (Study Root)", "check the PACS's settings for our AE title")
    found = False
    try:
        since = time.monotonic()
        for status, ident in assoc.send_c_find(_query(study_uid), FIND):
            if not status or "Status" not in status:  # a DIMSE timeout (pynetdicom aborted) or the PACS aborted
                if _silent(ep, since):
                    raise _timeout_error(ep, f"C-FIND of study {study_uid}")
                raise InputError(
                    f"{ep.name}: the PACS aborted the C-FIND of study {study_uid} without an answer; check that it "
                    f"allows queries from AE {ep.calling_ae!r} and the PACS log"
                )
            since = time.monotonic()
            code = int(status.Status)
            if code in (0xFF00, 0xFF01) and ident is not None:
                found = found or str(getattr(ident, "StudyInstanceUID", "")) == study_uid
            elif category(code) == "Warning":  # the answers came, with a remark of the PACS: not a refusal
                logger.warning(
                    "%s: the C-FIND of study %s ended with a warning, status %s; its answers are used",
                    ep.name,
                    study_uid,
                    describe(code, "find"),
                )
            elif code != 0x0000:
                error = Transient if out_of_resources(code) else InputError
                raise error(
                    f"{ep.name}: C-FIND of study {study_uid} refused (status {describe(code, 'find')}); check that "
                    f"the PACS allows queries from AE {ep.calling_ae!r}"
                )
    finally:
        assoc.release()
    return found
