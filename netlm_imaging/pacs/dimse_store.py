"""C-STORE push of the results (the SR and the SEG it references) to the PACS, each stored object then
looked up (C-FIND, IMAGE level) to check that the PACS holds it."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from ..errors import InputError
from .common import modalities_are, not_held_error, push_state
from .dimse_assoc import FIND, DimseEndpoint
from .dimse_assoc import associate as _associate
from .dimse_assoc import new_ae as _ae
from .dimse_assoc import query as _query
from .dimse_assoc import silent as _silent
from .dimse_assoc import syntax_names as _syntax_names
from .dimse_assoc import timeout_error as _timeout_error
from .dimse_status import category, describe, out_of_resources

__all__ = ["store_files"]

logger = logging.getLogger(__name__)


def _held(assoc: Any, ds: Any, pauses: tuple[float, ...]) -> bool | None:
    """C-FIND (IMAGE level) whether the PACS now holds ``ds``, at once and after each of ``pauses`` (s) while
    it does not; None when it cannot be asked."""
    import time

    if not any(str(cx.abstract_syntax) == FIND for cx in assoc.accepted_contexts):
        return None
    q = _query(str(ds.StudyInstanceUID), "IMAGE")
    q.SeriesInstanceUID = str(ds.SeriesInstanceUID)
    q.SOPInstanceUID = str(ds.SOPInstanceUID)
    for pause in (0.0, *pauses):
        time.sleep(pause)
        found, answered = False, False
        for status, ident in assoc.send_c_find(q, FIND):
            code = int(getattr(status, "Status", -1)) if status else -1
            if code in (0xFF00, 0xFF01):
                found = found or str(getattr(ident, "SOPInstanceUID", "")) == str(ds.SOPInstanceUID)
            answered = code == 0x0000 or category(code) == "Warning"
        if not answered:
            return None
        if found:
            return True
    return False


#: C-STORE warning statuses (PS3.4 B.2.3, PS3.7 C.4): the instance is stored, perhaps not as sent.
_STORE_WARNINGS = {
    0x0001: "optional attributes not supported",
    0x0107: "attribute list error",
    0x0116: "attribute value out of range",
    0xB000: "coercion of data elements",
    0xB006: "elements discarded",
    0xB007: "data set does not match SOP class",
}


def store_files(ep: DimseEndpoint, paths: list[Path]) -> list[str]:
    """C-STORE files (the SR and SEG) to ``ep``; returns the stored SOP Instance UIDs.

    After the C-STOREs, a C-FIND (IMAGE level) on the same association checks that the PACS holds each
    object: some answer success and discard what a rule filters out (Orthanc's ``ReceivedInstanceFilter``).

    Raises
    ------
    InputError
        No association, a SOP class or transfer syntax the PACS does not accept, a refused instance, or
        an instance answered as stored that the PACS does not hold.
    """
    import pydicom
    from pydicom.uid import UID

    datasets = [pydicom.dcmread(p) for p in paths]
    ae = _ae(ep)
    offered: dict[str, list[str]] = {}
    for ds in datasets:
        syntaxes = offered.setdefault(str(ds.SOPClassUID), [])
        for ts in (
            str(ds.file_meta.TransferSyntaxUID),
            pydicom.uid.ExplicitVRLittleEndian,
            pydicom.uid.ImplicitVRLittleEndian,
        ):
            if ts not in syntaxes:
                syntaxes.append(ts)
    for sop, syntaxes in offered.items():
        ae.add_requested_context(sop, syntaxes)
    ae.add_requested_context(FIND)
    assoc = _associate(ae, ep, what="storage of the results")
    stored: list[Any] = []
    try:
        for ds in datasets:
            sop = str(ds.SOPClassUID)
            if not any(str(cx.abstract_syntax) == sop for cx in assoc.accepted_contexts):
                raise InputError(
                    f"{ep.name}: the PACS does not accept the {ds.Modality} result ({UID(sop).name}) in any transfer "
                    f"syntax offered ({_syntax_names(offered[sop])}); ask its administrator to accept this SOP class "
                    f"in one of these transfer syntaxes from AE {ep.calling_ae!r}"
                )
        for n, ds in enumerate(datasets):
            status = None
            for pause in [*ep.retry_pauses_s, None]:
                since = time.monotonic()
                status = assoc.send_c_store(ds)
                code = int(status.Status) if status and "Status" in status else None
                if code is None or not out_of_resources(code) or pause is None:
                    break
                logger.warning(
                    "%s: the PACS refused the %s result for now (status %s); trying again in %g s",
                    ep.name,
                    ds.Modality,
                    describe(code, "store"),
                    pause,
                )
                time.sleep(pause)
            rest = datasets[n + 1 :]
            if not status or "Status" not in status:  # a DIMSE timeout (pynetdicom aborted) or the PACS aborted
                state = push_state(stored, (ds, "not answered"), rest)
                if _silent(ep, since):
                    raise _timeout_error(ep, f"C-STORE of the {ds.Modality} result", f" ({state})")
                raise InputError(
                    f"{ep.name}: the PACS aborted the association during the C-STORE of the {ds.Modality} result "
                    f"({state}); check the PACS log and that it accepts storage from AE {ep.calling_ae!r}"
                )
            code = int(status.Status)
            if code in _STORE_WARNINGS or 0xB000 <= code <= 0xBFFF:  # stored, perhaps not as sent: say so
                logger.warning(
                    "%s: the PACS stored the %s result with a warning (status 0x%04X: %s); check how it shows there",
                    ep.name,
                    ds.Modality,
                    code,
                    _STORE_WARNINGS.get(code, "a warning of the PACS"),
                )
            elif code != 0x0000:
                state = push_state(stored, (ds, "refused with " + describe(code, "store")), rest)
                raise InputError(
                    f"{ep.name}: C-STORE of the results: {state}; check the PACS log and that it accepts storage "
                    f"from AE {ep.calling_ae!r}"
                )
            stored.append(ds)
        gone = [ds for ds in datasets if _held(assoc, ds, ep.held_pauses_s) is False]
        if gone:
            err = not_held_error(
                ep.name, "C-STORE", str(gone[0].Modality), str(gone[0].SOPInstanceUID), ep.held_pauses_s
            )
            kept = [ds for ds in datasets if all(ds is not g for g in gone)]
            if kept:
                err.args = (f"{err}; {push_state(kept, None, [])} and held: only the {modalities_are(gone)} missing",)
            raise err
    finally:
        assoc.release()
    uids = [str(ds.SOPInstanceUID) for ds in stored]
    logger.info("stored %d result objects at %s (C-STORE)", len(uids), ep.name)
    return uids
