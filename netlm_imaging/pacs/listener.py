"""``netlm listen``: a C-STORE SCP that analyses every study it receives.

Instances are written to ``OUT/incoming/<StudyInstanceUID>/<SOPInstanceUID>.dcm``
as they arrive. When every association that brought instances of a study
has ended and ``quiet_s`` seconds have passed with no new instance, the study
is analysed (a sender pausing inside its association does not get a study
analysed half-received; an association left open holds it back for at most
``OPEN_ASSOCIATION_QUIET_PERIODS`` quiet periods after its last instance),
one study at a time, in a worker thread, so the SCP keeps accepting
instances, and its outputs are written to
``OUT/<StudyInstanceUID>/``: ``report.json``, ``report_sr.dcm`` and
``derived_seg.dcm`` (de-identified unless ``include_identifiers``). With a
destination, the SR and SEG (with the source Patient and Study modules) are
C-STOREd to it, e.g. back to the PACS that sent the study.

A study received before a restart and not analysed since (the listener was
stopped or killed between its last instance and its analysis) is queued when
the listener starts again, and analysed after ``quiet_s`` like a new arrival.

A bad study (no segmentation, corrupt files, a failing destination) is logged
and recorded in ``OUT/<uid>/failed.json``; the listener keeps serving. Every
study gives exactly one line in the log and in ``OUT/listen.log``. The
tool's own SR / SEG (Manufacturer ``netlm-imaging``) are accepted and dropped,
so a destination that forwards them back triggers nothing. A study received
again (e.g. re-sent) is analysed again; its outputs have the same UIDs, so a
PACS that already holds them stores nothing new.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text
from ..errors import InputError, NetlmError, UsageError, for_command, only_accepted_flags
from .common import analyze_retrieved, check_uid
from .contexts import accept_any_storage_class, add_storage_scp_contexts, release_any_storage_class
from .dimse import DimseEndpoint, storage_handler, store_files
from .dimse_assoc import VERIFICATION, with_rules

__all__ = ["ListenerConfig", "StudyListener"]

logger = logging.getLogger(__name__)


@dataclass
class ListenerConfig:
    """What ``netlm listen`` was started with.

    Attributes
    ----------
    port : int
        TCP port of the C-STORE SCP.
    ae_title : str
        Our AE title.
    out_dir : Path
        Incoming instances and outputs.
    bind : str
        Listening address.
    quiet_s : float
        A study is analysed after this many seconds without a new instance.
    destination : DimseEndpoint, optional
        Where the SR and SEG are C-STOREd.
    max_studies : int, optional
        Stop after this many analysed studies (scripts and tests).
    labels, rules, options
        As for :func:`netlm_imaging.api.analyze_with_context`.
    accepted_flags : tuple of str
        Options of ``netlm listen``: failure lines naming other options say
        ``netlm analyze --x`` instead.
    """

    port: int
    ae_title: str
    out_dir: Path
    bind: str = "0.0.0.0"
    quiet_s: float = 10.0
    destination: DimseEndpoint | None = None
    max_studies: int | None = None
    labels: str | None = None
    rules: str | None = None
    options: Any = None
    accepted_flags: tuple[str, ...] = ()


#: An association still open that brought instances of a study holds its analysis back until it ends, or
#: until this many quiet periods have passed since its last instance (a sender that never releases).
OPEN_ASSOCIATION_QUIET_PERIODS = 30


@dataclass
class _Pending:
    last_arrival: float
    instances: int = 0
    #: associations that brought instances of the study and have not ended
    open_associations: set[int] = field(default_factory=set)
    #: the last instance, or the end of the last association that brought one
    last_activity: float = 0.0


@dataclass
class StudyListener:
    """The SCP and its analysis worker; :meth:`start`, then :meth:`wait` or :meth:`stop`."""

    config: ListenerConfig
    on_line: Callable[[str], None] = print
    _pending: dict[str, _Pending] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _server: Any = None
    _worker: threading.Thread | None = None
    analysed: int = 0

    # ------------------------------------------------------------------ receiving
    def _folder_for(self, ds: Any) -> Path | None:
        from ..creator import is_own_output

        if is_own_output(ds):
            logger.info("dropped our own %s %s", getattr(ds, "Modality", "object"), getattr(ds, "SOPInstanceUID", ""))
            return None
        try:
            study = check_uid(str(getattr(ds, "StudyInstanceUID", "")), "StudyInstanceUID")
        except UsageError:
            logger.warning("instance without a valid Study Instance UID dropped")
            return None
        folder = self.config.out_dir / "incoming" / study
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _stored(self, path: Path, ds: Any, assoc: Any) -> None:
        study = str(ds.StudyInstanceUID)
        now = time.monotonic()
        with self._lock:
            p = self._pending.setdefault(study, _Pending(now))
            p.last_arrival = p.last_activity = now
            p.instances += 1
            if assoc is not None and not self._ended(assoc):
                p.open_associations.add(id(assoc))

    @staticmethod
    def _ended(assoc: Any) -> bool:
        return bool(getattr(assoc, "is_released", False) or getattr(assoc, "is_aborted", False))

    def _association_ended(self, event: Any) -> None:
        """EVT_RELEASED / EVT_ABORTED / EVT_CONN_CLOSE: the studies it brought may settle now."""
        key, now = id(event.assoc), time.monotonic()
        with self._lock:
            for p in self._pending.values():
                if key in p.open_associations:
                    p.open_associations.discard(key)
                    p.last_activity = now

    # ------------------------------------------------------------------ analysing
    def _due(self) -> list[str]:
        """Studies whose every association has ended ``quiet_s`` ago with no instance since (an association
        left open holds a study back for at most ``OPEN_ASSOCIATION_QUIET_PERIODS`` quiet periods)."""
        now, quiet = time.monotonic(), self.config.quiet_s
        stale = max(quiet, 1.0) * OPEN_ASSOCIATION_QUIET_PERIODS
        with self._lock:
            due = [
                s
                for s, p in self._pending.items()
                if (not p.open_associations and now - p.last_activity >= quiet) or now - p.last_arrival >= stale
            ]
            for s in due:
                self._pending.pop(s)
        return sorted(due)

    def _log(self, line: str) -> None:
        logger.info("%s", line)
        self.on_line(line)
        with open(self.config.out_dir / "listen.log", "a", encoding="utf-8") as f:
            f.write(time.strftime("%Y-%m-%dT%H:%M:%S ") + line + "\n")

    def analyse(self, study: str) -> None:
        """Analyse one received study and write (and send) its outputs; never raises."""
        import tempfile

        folder = self.config.out_dir / "incoming" / study
        out = self.config.out_dir / study
        n = sum(1 for _ in folder.glob("*.dcm"))
        dest = self.config.destination
        try:
            with tempfile.TemporaryDirectory(prefix="netlm-listen-") as tmp:
                result = analyze_retrieved(
                    folder,
                    f"dicom://{self.config.ae_title}/studies/{study}",
                    out_dir=out,
                    push_dir=Path(tmp) if dest is not None else None,
                    labels=self.config.labels,
                    rules=self.config.rules,
                    options=self.config.options,
                    when_incomplete="it is analysed again when the missing instances arrive",
                )
                (out / "failed.json").unlink(missing_ok=True)
                r = result.report
                liver = r.liver.get("volume_ml")
                line = (
                    f"study {study}: {n} instances: ok: liver {'n/a' if liver is None else f'{liver:.1f}'} mL, "
                    f"{r.lesion_count} lesion(s), involvement "
                    f"{'n/a' if r.involvement_percent is None else f'{r.involvement_percent:.1f}'} %"
                )
                if dest is not None:
                    try:
                        dest = with_rules(dest, self.config.rules)  # its pauses (transient refusal, indexing)
                        sent = store_files(dest, result.push_files)
                        line += f"; sent {len(sent)} object(s) to {dest.name}"
                    except NetlmError as exc:  # the outputs are written: say so, and record what was not sent
                        reason = self._as_destination(str(exc))
                        line += f"; not sent: {reason}; the outputs are kept in {out}"
                        self._record_failure(out, study, f"analysed, not sent: {reason}")
        except NetlmError as exc:
            said = self._as_destination(for_command(exc, None, "listen"))  # with its advice for listen
            message = only_accepted_flags(said, self.config.accepted_flags, "listen")
            line = f"study {study}: {n} instances: failed: {message}"
            self._record_failure(out, study, str(exc))
        except Exception as exc:  # one study's bug never stops the listener
            logger.debug("internal error on study %s", study, exc_info=True)
            line = f"study {study}: {n} instances: failed: internal error {type(exc).__name__}: {exc} (please report)"
            self._record_failure(out, study, line)
        self.analysed += 1
        self._log(line)

    @staticmethod
    def _as_destination(message: str) -> str:
        """A DIMSE error names `netlm pacs` options; for the destination they are listen's own."""
        for pacs_flag, listen_flag in (
            ("--dimse HOST:PORT", "--dest HOST:PORT"),
            ("--called-ae", "--dest-ae"),
            ("--calling-ae", "--ae-title"),
        ):
            message = message.replace(pacs_flag, listen_flag)
        return message

    @staticmethod
    def _record_failure(out: Path, study: str, error: str) -> None:
        record = {"study_instance_uid": study, "error": " ".join(error.split())}
        atomic_write_text(out / "failed.json", json.dumps(record, indent=2) + "\n")

    def _run_worker(self) -> None:
        while not self._stop.is_set():
            for study in self._due():
                self.analyse(study)
                if self.config.max_studies is not None and self.analysed >= self.config.max_studies:
                    self._stop.set()
                    return
            self._stop.wait(min(0.2, max(self.config.quiet_s / 4, 0.05)))

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the SCP (non-blocking) and the analysis worker.

        Raises
        ------
        InputError
            The port cannot be bound.
        """
        from pynetdicom import AE, evt

        self.config.out_dir.mkdir(parents=True, exist_ok=True)
        ae = AE(ae_title=self.config.ae_title)
        add_storage_scp_contexts(ae)
        ae.add_supported_context(VERIFICATION)
        handler = storage_handler(self._folder_for, self._stored)
        accept_any_storage_class()  # a sender's private classes (Siemens CSA Non-Image) are taken, kept, not read
        try:
            self._server = ae.start_server(
                (self.config.bind, self.config.port),
                block=False,
                evt_handlers=[
                    (evt.EVT_C_STORE, handler),
                    (evt.EVT_RELEASED, self._association_ended),
                    (evt.EVT_ABORTED, self._association_ended),
                    (evt.EVT_CONN_CLOSE, self._association_ended),
                ],
            )
        except OSError as exc:
            release_any_storage_class()
            raise InputError(f"--port {self.config.port}: cannot listen ({exc}); choose a free port") from None
        self._resume_received()
        self._worker = threading.Thread(target=self._run_worker, name="netlm-listen-worker", daemon=True)
        self._worker.start()
        logger.info(
            "listening as %s on %s:%d, analysing after %.0f s without new instances",
            self.config.ae_title,
            self.config.bind,
            self.config.port,
            self.config.quiet_s,
        )

    def _resume_received(self) -> list[str]:
        """Queue the studies received before a restart and not analysed since (no outputs, or instances
        newer than them): a listener stopped or killed between the last instance and the analysis would
        otherwise never analyse them. Returns their UIDs."""
        incoming = self.config.out_dir / "incoming"
        resumed = []
        for folder in sorted(incoming.iterdir()) if incoming.is_dir() else []:
            try:
                study = check_uid(folder.name, "StudyInstanceUID")
            except UsageError:
                continue
            received = [p.stat().st_mtime for p in folder.glob("*.dcm")]
            if not received:
                continue
            outputs = self.config.out_dir / study
            done = [p.stat().st_mtime for p in (outputs / "report.json", outputs / "failed.json") if p.exists()]
            if done and max(done) >= max(received):
                continue
            now = time.monotonic()
            with self._lock:
                self._pending.setdefault(study, _Pending(now, len(received), last_activity=now))
            resumed.append(study)
        if resumed:
            logger.info("%d study(ies) received before the restart and not analysed since: queued", len(resumed))
        return resumed

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until stopped (``max_studies`` reached or :meth:`stop`); True when stopped."""
        return self._stop.wait(timeout_s)

    def request_stop(self) -> None:
        """Ask the worker to stop after the analysis it is running (safe in a signal handler: it only
        sets a flag; :meth:`wait` then returns and :meth:`stop` shuts the SCP down)."""
        self._stop.set()

    def stop(self) -> None:
        """Stop accepting associations and stop the worker (a running analysis finishes first)."""
        self._stop.set()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout=600)
        if self._server is not None:
            self._server.shutdown()
            self._server = None
            release_any_storage_class()


def parse_destination(
    address: str | None, ae: str | None, calling_ae: str, timeout_s: float | None = None
) -> DimseEndpoint | None:
    """``--dest HOST:PORT --dest-ae AE [--timeout S]`` -> endpoint (None without ``--dest``)."""
    from .dimse import DEFAULT_TIMEOUT_S, parse_address

    if address is None:
        for flag, given in (("--dest-ae", ae), ("--timeout", timeout_s)):
            if given is not None:
                raise UsageError(f"{flag} needs --dest HOST:PORT")
        return None
    if not ae:
        raise UsageError("--dest needs --dest-ae AE (the destination's AE title)")
    host, port = parse_address(address, "--dest")
    return DimseEndpoint(host, port, ae, calling_ae, timeout_s=DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s)


def default_quiet_seconds() -> float:
    """``NETLM_LISTEN_QUIET_S`` or 10 s."""
    try:
        return float(os.environ.get("NETLM_LISTEN_QUIET_S", "10"))
    except ValueError:
        return 10.0
