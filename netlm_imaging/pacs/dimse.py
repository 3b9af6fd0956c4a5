"""Classic DICOM networking (DIMSE) with pynetdicom: C-FIND, C-GET / C-MOVE, C-STORE.

Why one module (~670 lines): the pull, the analysis and the push are one association's life, and
its failures (an abort, a timeout, a refused or warning status) are named in one place. The association
itself is :mod:`.dimse_assoc`, the status categories and retries :mod:`.dimse_status`, the series asked
again after an incomplete retrieval :mod:`.dimse_series`.

``netlm pacs --dimse HOST:PORT --called-ae AE --study UID [--push]``:

1. C-FIND (Study Root, STUDY level) checks that the study exists;
2. the instances are retrieved to a temporary folder, one file per instance as
   it arrives (never the whole study in memory): C-GET on the same association
   (default), or C-MOVE to a C-STORE SCP started here on ``--port`` (the PACS
   must know our AE title, or the one given with ``--move-ae``, with this
   host and port as a destination);
3. the study is analysed (the tool's own SR / SEG in the study are ignored);
4. with ``--push``, the SR and the derived SEG it references are C-STOREd to
   the PACS with the source Patient and Study modules. Their UIDs derive from
   the measured content, so pushing again stores nothing new.

Every message names ``HOST:PORT`` and the AE titles only.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes
from ..errors import InputError, UsageError
from .common import (
    PacsResult,
    check_uid,
    modalities_are,
    not_held_error,
    push_state,
    retrieve_analyze_push,
)
from .contexts import (
    accept_any_storage_class,
    add_storage_scp_contexts,
    get_contexts,
    release_any_storage_class,
    storage_classes,
)
from .dimse_assoc import (
    DEFAULT_CALLING_AE,
    DEFAULT_TIMEOUT_S,
    FIND,
    GET,
    MOVE,
    DimseEndpoint,
    parse_address,
    with_rules,
)
from .dimse_assoc import associate as _associate
from .dimse_assoc import new_ae as _ae
from .dimse_assoc import query as _query
from .dimse_assoc import silent as _silent
from .dimse_assoc import syntax_names as _syntax_names
from .dimse_assoc import timeout_error as _timeout_error
from .dimse_series import retrieve_missing_series
from .dimse_status import Transient, category, describe, out_of_resources, with_retries

__all__ = [
    "DEFAULT_CALLING_AE",
    "DEFAULT_TIMEOUT_S",
    "DimseEndpoint",
    "analyze_dimse_study",
    "find_study",
    "parse_address",
    "retrieve_study",
    "storage_handler",
    "store_files",
]

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


def _count(status: Any, keyword: str) -> int:
    value = getattr(status, keyword, None)
    return int(value) if value is not None else 0


def _move_destination_help(ep: DimseEndpoint, move_port: int | None) -> str:
    port = move_port if move_port is not None else "P"
    dest = ep.move_destination
    return (
        f"register AE title {dest!r} with this computer's address and port {port} (--port) in the PACS "
        f'(Orthanc: DicomModalities, e.g. "{dest}": ["{dest}", "<this host>", {port}]), '
        "or give the AE title it has for this computer with --move-ae (or --calling-ae)"
    )


class _Incomplete(InputError):
    """A C-GET / C-MOVE whose sub-operations failed (some instances did not arrive)."""


class _Refused(InputError):
    """The PACS refused the C-GET / C-MOVE itself, before sending anything: no presentation context for it, an
    answer ending it without an instance, a refusal status, an unknown move destination. The other retrieval
    may work."""


def _check_retrieve_status(
    statuses: Iterable[tuple[Any, Any]],
    ep: DimseEndpoint,
    study_uid: str,
    method: str,
    move_port: int | None = None,
    received: Callable[[], tuple[int, float]] | None = None,
    called_back: Callable[[], bool] | None = None,
) -> None:
    """Raise unless the C-GET / C-MOVE ended in success with every sub-operation done.

    A warning (0xB000: some sub-operations failed) is an error too: the study would be measured without the
    instances that did not arrive. ``received()`` gives the instances received so far and the
    ``time.monotonic()`` of the last one (each is an answer of the PACS: a C-GET's C-STOREs reset the timeout).
    ``called_back()`` tells whether the PACS opened an association to our C-MOVE SCP (then it knows the
    destination, whatever it failed at).
    """
    what = f"C-{method.upper()} of study {study_uid}"
    final = None
    since = time.monotonic()
    for status, _ in statuses:
        if status is None or "Status" not in status:  # no answer, an abort, or a DIMSE timeout
            final = None
            count, last = received() if received is not None else (0, since)
            if _silent(ep, max(since, last)):
                raise _timeout_error(ep, what, f" ({count} instance(s) received)")
            break
        final = status
        since = time.monotonic()
        if int(status.Status) not in (0xFF00, 0xFF01):
            break
    if final is None:
        nothing = received is None or received()[0] == 0
        error = _Refused if nothing else InputError
        if method == "get":
            raise error(
                f"{ep.name}: the PACS gave no answer to the {what} (it ended or aborted it): it does not allow "
                f"C-GET for AE {ep.calling_ae!r} (many PACS allow only C-MOVE); retry with --retrieve move --port P, "
                f"the PACS knowing AE {ep.calling_ae!r} at this computer's address and port P"
            )
        raise error(
            f"{ep.name}: the PACS gave no answer to the {what} (it ended or aborted it): check that it allows "
            f"C-MOVE for AE {ep.calling_ae!r} and the PACS log"
        )
    code = int(final.Status)
    done, failed = _count(final, "NumberOfCompletedSuboperations"), _count(final, "NumberOfFailedSuboperations")
    if code == 0x0000 and failed == 0:
        return
    counts = f"status 0x{code:04X}, {done} instance(s) sent, {failed} failed"
    nothing_sent = 0xC000 <= code <= 0xCFFF and done == 0 and failed == 0
    if method == "move" and nothing_sent and called_back is not None and called_back():
        raise InputError(
            f"{ep.name}: the PACS connected to our C-STORE SCP (--port {move_port}) for the {what} and sent nothing "
            f"({counts}): it could not send the study on the presentation contexts we accept, or failed reading "
            "it; check the PACS log"
        )
    if method == "move" and (code == 0xA801 or nothing_sent):
        raise _Refused(
            f"{ep.name}: the PACS refused to send study {study_uid} to AE {ep.move_destination!r} ({what}: {counts}): "
            f"{ep.move_destination!r} is not registered in the PACS as a move destination (or not at this host and "
            f"port); {_move_destination_help(ep, move_port)}"
        )
    if out_of_resources(code) and done == 0 and (received is None or received()[0] == 0):
        raise Transient(
            f"{ep.name}: the PACS refused the {what} for want of resources ({counts}): it is busy; retry later"
        )
    if failed or 0xA700 <= code <= 0xA7FF or code in (0xB000, 0xA702):
        hint = (
            "a SOP class or transfer syntax we did not offer? retry with --retrieve move --port P"
            if method == "get"
            else "check the PACS log"
        )
        raise _Incomplete(
            f"{ep.name}: {what} incomplete ({counts}): the study would be measured without the missing instances; "
            f"{hint}"
        )
    if done:  # it did send: not a refusal of the service, a failure on the way (an archive file it cannot read)
        raise InputError(
            f"{ep.name}: the PACS ended the {what} with a failure after sending {done} instance(s) ({counts}): it "
            "failed reading or sending the next one; the study would be measured without the rest; check the "
            "PACS log"
        )
    raise _Refused(
        f"{ep.name}: {what} refused ({counts}); check that the PACS allows C-{method.upper()} for AE "
        f"{ep.calling_ae!r} and the PACS log"
    )


def _require_context(
    assoc: Any, sop: str, ep: DimseEndpoint, what: str, fix: str, error: type[InputError] = InputError
) -> None:
    if not any(str(cx.abstract_syntax) == sop for cx in assoc.accepted_contexts):
        assoc.release()
        raise error(f"{ep.name}: the PACS does not accept {what} from AE {ep.calling_ae!r}; {fix}")


def retrieve_study(
    ep: DimseEndpoint,
    study_uid: str,
    folder: str | os.PathLike[str],
    *,
    method: str = "get",
    move_port: int | None = None,
    bind: str = "0.0.0.0",
) -> list[Path]:
    """Retrieve a study's instances into ``folder`` (C-GET, or C-MOVE to a local C-STORE SCP).

    Parameters
    ----------
    ep : DimseEndpoint
        The PACS.
    study_uid : str
        Study Instance UID.
    folder : path-like
        Destination (one ``<SOPInstanceUID>.dcm`` per instance, written as it arrives).
    method : {"get", "move"}
        C-GET on the query association, or C-MOVE with our AE title as destination. When the PACS refuses
        one before sending anything (no presentation context for it, a refusal, an unknown move destination),
        the other is tried, logged: C-MOVE only when ``move_port`` says where to receive it. A C-GET / C-MOVE whose
        sub-operations failed asks again series by series (SERIES level) for what did not arrive; instances
        still missing are accepted (with a warning) only when none is of a measured class (images, SEG,
        RTSTRUCT).
    move_port : int, optional
        Port of the local C-STORE SCP for C-MOVE (required with ``"move"``).
    bind : str
        Address the C-MOVE SCP listens on.

    Returns
    -------
    list of Path
        The written files.

    Raises
    ------
    InputError
        No association, a refused or failed retrieval, or no instance received.
    """
    check_uid(study_uid)
    if method not in ("get", "move"):
        raise UsageError(f"--retrieve {method}: use get or move")
    if method == "move" and move_port is None:
        raise UsageError("--retrieve move needs --port (where our C-STORE SCP listens for the PACS)")
    try:
        return _retrieve(ep, study_uid, Path(folder), method, move_port, bind)
    except _Refused as refused:
        other = "move" if method == "get" else "get"
        if other == "move" and move_port is None:  # nowhere to receive a C-MOVE: the user says where (--port)
            raise
        logger.warning("%s; retrieving the study with C-%s instead", refused, other.upper())
        try:
            return _retrieve(ep, study_uid, Path(folder), other, move_port, bind)
        except InputError as exc:
            raise InputError(f"{refused}; C-{other.upper()} instead: {str(exc).removeprefix(ep.name + ': ')}") from None


def _retrieve(ep: DimseEndpoint, study_uid: str, out: Path, method: str, port: int | None, bind: str) -> list[Path]:
    """One C-GET or C-MOVE of the study into ``out`` (see :func:`retrieve_study`)."""
    from pynetdicom import build_role, evt

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    lock = threading.Lock()
    last_stored = [0.0]

    def stored(path: Path, ds: Any, assoc: Any) -> None:
        with lock:
            written.append(path)
            last_stored[0] = time.monotonic()

    def received() -> tuple[int, float]:
        with lock:
            return len(written), last_stored[0]

    def arrived() -> set[str]:
        with lock:
            return {p.stem for p in written}

    handler = storage_handler(lambda ds: out, stored)
    ae = _ae(ep)
    if method == "get":
        ae.add_requested_context(GET)
        for sop, syntaxes in get_contexts():
            ae.add_requested_context(sop, syntaxes)
        roles = [build_role(sop, scp_role=True) for sop in storage_classes()]
        ae.add_requested_context(FIND)  # to list what a C-GET with failed sub-operations did not bring
        assoc = _associate(ae, ep, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, handler)])
        _require_context(assoc, GET, ep, "C-GET", "retry with --retrieve move --port P", _Refused)
        try:
            try:
                with_retries(
                    lambda: _check_retrieve_status(
                        assoc.send_c_get(_query(study_uid), GET), ep, study_uid, "get", None, received
                    ),
                    ep.retry_pauses_s,
                )
            except _Incomplete as exc:  # ask again for the series that did not come, one by one
                retrieve_missing_series(
                    ep.name,
                    study_uid,
                    "get",
                    exc,
                    arrived,
                    _finder(assoc),
                    lambda series: assoc.send_c_get(_series_query(study_uid, series), GET),
                )
        finally:
            assoc.release()
    else:
        assert port is not None  # checked by retrieve_study
        add_storage_scp_contexts(ae)  # our SCP takes whatever the study holds, as stored
        ae.add_requested_context(MOVE)
        ae.add_requested_context(FIND)  # to list what a C-MOVE with failed sub-operations did not bring
        called_back = threading.Event()  # the PACS opened an association to our SCP: it knows where we are
        scp_handlers = [(evt.EVT_C_STORE, handler), (evt.EVT_REQUESTED, lambda event: called_back.set())]
        accept_any_storage_class()  # private classes too (Siemens CSA Non-Image): Orthanc fails the move else
        try:
            try:
                server = ae.start_server((bind, port), block=False, evt_handlers=scp_handlers)
            except OSError as exc:
                raise InputError(f"--port {port}: cannot listen for the C-MOVE ({exc}); choose a free port") from None
            try:
                assoc = _associate(ae, ep)
                _require_context(assoc, MOVE, ep, "C-MOVE", "retry with --retrieve get", _Refused)
                try:
                    with_retries(
                        lambda: _check_retrieve_status(
                            assoc.send_c_move(_query(study_uid), ep.move_destination, MOVE),
                            ep,
                            study_uid,
                            "move",
                            port,
                            received,
                            called_back.is_set,
                        ),
                        ep.retry_pauses_s,
                    )
                except _Incomplete as exc:  # ask again for the series that did not come, not the whole study
                    retrieve_missing_series(
                        ep.name,
                        study_uid,
                        "move",
                        exc,
                        arrived,
                        _finder(assoc),
                        lambda series: assoc.send_c_move(_series_query(study_uid, series), ep.move_destination, MOVE),
                    )
                finally:
                    assoc.release()
            finally:
                server.shutdown()
        finally:
            release_any_storage_class()
    if not written:
        raise InputError(f"{ep.name}: study {study_uid} sent no instance; check the Study Instance UID")
    logger.info("retrieved %d instances of study %s from %s (C-%s)", len(written), study_uid, ep.name, method.upper())
    return sorted(set(written))  # a series asked again may bring an instance twice


def _finder(assoc: Any) -> Callable[[Any], Iterable[tuple[Any, Any]]] | None:
    """``find(identifier)``: a Study Root C-FIND on ``assoc``; None when the PACS accepted no C-FIND context."""
    if not any(str(cx.abstract_syntax) == FIND for cx in assoc.accepted_contexts):
        return None
    return lambda q: assoc.send_c_find(q, FIND)


def _series_query(study_uid: str, series_uid: str) -> Any:
    q = _query(study_uid, "SERIES")
    q.SeriesInstanceUID = series_uid
    return q


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


def analyze_dimse_study(
    ep: DimseEndpoint,
    study_uid: str,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    push: bool = False,
    method: str = "get",
    move_port: int | None = None,
    bind: str = "0.0.0.0",
    labels: str | None = None,
    rules: str | None = None,
    options: Any = None,
    overwrite: bool = False,
) -> PacsResult:
    """C-FIND, retrieve (C-GET / C-MOVE), analyse, write outputs, optionally C-STORE SR + SEG back.

    Parameters
    ----------
    ep : DimseEndpoint
        The PACS.
    study_uid : str
        Study Instance UID.
    out_dir : path-like, optional
        ``report.json``, ``report_sr.dcm`` and ``derived_seg.dcm`` (de-identified
        unless ``options.include_identifiers``).
    push : bool
        C-STORE the SR and SEG (with the source Patient / Study modules) back.
    method, move_port, bind
        As for :func:`retrieve_study`.
    labels, rules, options
        As for :func:`netlm_imaging.api.analyze_with_context`.
    overwrite : bool
        Replace another study's outputs found in ``out_dir`` (off: refused, exit 3).

    Returns
    -------
    PacsResult

    Raises
    ------
    InputError
        Unknown study, network or analysis failure (one line naming the PACS).
    """
    check_uid(study_uid)
    ep = with_rules(ep, rules)  # how long to wait for a PACS refusing transiently, or indexing
    if not find_study(ep, study_uid):
        raise InputError(f"{ep.name}: study {study_uid} not found (C-FIND); check the Study Instance UID")
    return retrieve_analyze_push(
        lambda folder: retrieve_study(ep, study_uid, folder, method=method, move_port=move_port, bind=bind),
        lambda paths: store_files(ep, paths),
        f"dicom://{ep.name}/studies/{study_uid}",
        out_dir=out_dir,
        push=push,
        labels=labels,
        rules=rules,
        options=options,
        overwrite=overwrite,
    )
