"""Retrieval of a study's instances: C-GET on the query association, or C-MOVE to a C-STORE SCP started
here; the final status read into one error naming what failed (a refusal, an incomplete retrieval, a
timeout), the other retrieval tried when the PACS refused one before sending anything, and the series that
did not arrive asked again (:mod:`.dimse_series`)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..errors import InputError, UsageError
from .common import check_uid
from .contexts import (
    accept_any_storage_class,
    add_storage_scp_contexts,
    get_contexts,
    release_any_storage_class,
    storage_classes,
)
from .dimse_assoc import FIND, GET, MOVE, DimseEndpoint
from .dimse_assoc import associate as _associate
from .dimse_assoc import new_ae as _ae
from .dimse_assoc import query as _query
from .dimse_assoc import require_context as _require_context
from .dimse_assoc import silent as _silent
from .dimse_assoc import timeout_error as _timeout_error
from .dimse_scp import storage_handler
from .dimse_series import retrieve_missing_series
from .dimse_status import Transient, out_of_resources, with_retries

__all__ = ["retrieve_study"]

logger = logging.getLogger(__name__)


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
