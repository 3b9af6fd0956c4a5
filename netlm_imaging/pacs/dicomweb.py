"""Pull a study from a PACS over DICOMweb, analyse it, push the DICOM SR (and SEG) back.

Retrieval uses WADO-RS and storage STOW-RS through ``dicomweb-client``.

Credentials (never on the command line, never logged)
-----------------------------------------------------
First found wins:

1. environment: ``NETLM_PACS_TOKEN`` (HTTP bearer token), or
   ``NETLM_PACS_USER`` + ``NETLM_PACS_PASSWORD`` (HTTP basic);
2. a TOML config file: ``--pacs-config FILE``, else
   ``~/.config/netlm/pacs.toml`` when it exists, with keys ``user`` +
   ``password`` or ``token``. The file must not be readable by group or
   others (``chmod 600``), or it is refused.

A URL with embedded credentials (``https://user:pw@host``) or a query string
(``?access_token=``) is refused. Error messages and logs name the URL (without
user, password or query) and the study UID only; ``--study`` must be a UID.

Retrieval streams (``iter_study``): one instance in memory at a time.
Identifiers: the local SR/SEG copies are de-identified unless asked; the
objects pushed to the PACS keep the source images' Patient and Study modules,
so the PACS files them under the same patient and study they came from.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import InputError, UsageError
from .common import (
    PacsResult,
    check_timeout,
    check_uid,
    held_pauses,
    modalities_are,
    not_held_error,
    push_state,
    redact_url,
    retrieve_analyze_push,
)
from .stow_answer import answer_body, read_stow_answer, refusal

__all__ = [
    "DEFAULT_CONFIG",
    "PacsCredentials",
    "PacsResult",
    "analyze_pacs_study",
    "load_credentials",
    "make_client",
    "retrieve_study",
    "store_files",
]

logger = logging.getLogger(__name__)

#: Default credentials file.
DEFAULT_CONFIG = Path("~/.config/netlm/pacs.toml")


@dataclass(frozen=True)
class PacsCredentials:
    """HTTP credentials; ``repr`` never shows the secrets."""

    user: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    source: str = "none"

    @property
    def kind(self) -> str:
        """``"bearer"``, ``"basic"`` or ``"none"``."""
        return "bearer" if self.token else "basic" if self.user else "none"


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(
            f"{path}: the PACS credentials file is accessible by other users (mode {stat.S_IMODE(mode):o}); "
            f"run 'chmod 600 {path}'"
        )


def load_credentials(
    config: str | os.PathLike[str] | None = None, env: dict[str, str] | os._Environ[str] | None = None
) -> PacsCredentials:
    """Credentials from the environment, else from a private TOML file.

    Parameters
    ----------
    config : path-like, optional
        Config file (``--pacs-config``); default ``~/.config/netlm/pacs.toml`` if present.
    env : mapping, optional
        Environment (default ``os.environ``).

    Returns
    -------
    PacsCredentials
        ``kind == "none"`` when nothing is configured (anonymous access).

    Raises
    ------
    InputError
        Incomplete environment variables, a missing, unreadable, malformed or
        group/other-accessible config file.
    """
    env = os.environ if env is None else env
    if env.get("NETLM_PACS_TOKEN"):
        return PacsCredentials(token=env["NETLM_PACS_TOKEN"], source="environment")
    user, password = env.get("NETLM_PACS_USER"), env.get("NETLM_PACS_PASSWORD")
    if user or password:
        if not (user and password):
            raise InputError("NETLM_PACS_USER and NETLM_PACS_PASSWORD must be set together (or set NETLM_PACS_TOKEN)")
        return PacsCredentials(user=user, password=password, source="environment")
    path = Path(config).expanduser() if config is not None else DEFAULT_CONFIG.expanduser()
    if config is None and not path.exists():
        return PacsCredentials()
    if not path.is_file():
        raise InputError(f"{path}: PACS config file not found; check --pacs-config")
    _check_private(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(
            f"{path}: cannot read the PACS config ({type(exc).__name__}); write TOML with keys "
            "user and password, or token"
        ) from None
    if data.get("token"):
        return PacsCredentials(token=str(data["token"]), source=str(path))
    if data.get("user") and data.get("password"):
        return PacsCredentials(user=str(data["user"]), password=str(data["password"]), source=str(path))
    raise InputError(f"{path}: the PACS config needs 'user' and 'password', or 'token'")


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--url {redact_url(url)}: give the DICOMweb root as http(s)://host/path")
    if parts.username or parts.password:
        raise UsageError(
            "--url must not contain credentials; set NETLM_PACS_USER / NETLM_PACS_PASSWORD "
            "(or NETLM_PACS_TOKEN) or use a private --pacs-config file"
        )
    if parts.query:
        raise UsageError(
            f"--url {redact_url(url)}: a query string (e.g. ?access_token=) is not accepted, tokens would end up in "
            "logs; set NETLM_PACS_TOKEN or use a private --pacs-config file"
        )
    return url.rstrip("/")


def make_client(url: str, credentials: PacsCredentials, *, timeout_s: float = 60.0) -> Any:
    """A ``dicomweb_client.DICOMwebClient`` with the credentials on its HTTP session."""
    import requests
    from dicomweb_client import DICOMwebClient
    from requests.adapters import HTTPAdapter, Retry

    url = _check_url(url)
    session = requests.Session()
    if credentials.kind == "bearer":
        session.headers["Authorization"] = f"Bearer {credentials.token}"
    elif credentials.kind == "basic":
        session.auth = (credentials.user or "", credentials.password or "")
    session.hooks["response"].append(_skip_multipart_preamble)
    # a busy server's 429 / 503 / 504 is asked again (at most 3 times, after 0, 2 and 4 s), nothing else:
    # dicomweb-client's own retrying repeats every failed request, a refused connection, a TLS error or a
    # read timeout included, 5 times over 30 s (a PACS that never answers failed after 5 x --timeout + 30 s)
    busy = Retry(
        total=3,
        connect=0,
        read=0,
        other=0,
        status=3,
        status_forcelist=(429, 503, 504),
        backoff_factor=1,
        respect_retry_after_header=False,  # a Retry-After of an hour would hold the run that long
        raise_on_status=False,  # the last answer goes to the caller, who names its status
    )
    adapter = HTTPAdapter(max_retries=busy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    logger.info("DICOMweb %s (credentials: %s from %s)", redact_url(url), credentials.kind, credentials.source)
    client = DICOMwebClient(url, session=session, timeout=timeout_s)
    client.set_http_retry_params(retry=False)
    setattr(client, "netlm_credentials", credentials)  # noqa: B010 - which credentials an HTTP 401 refused
    return client


def _multipart_boundary(content_type: str) -> bytes | None:
    media, *params = (p.strip() for p in content_type.split(";"))
    if media.lower() != "multipart/related":
        return None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "boundary":
            return value.strip().strip('"').encode("utf-8")
    return None


def _skip_multipart_preamble(response: Any, *args: Any, **kwargs: Any) -> Any:
    """requests response hook: drop a multipart/related preamble (RFC 2046 5.1.1: text before the first
    boundary) that dicomweb-client takes for a part ("ValueError: subsection not found")."""
    boundary = _multipart_boundary(response.headers.get("content-type", ""))
    if boundary is None:
        return response
    marker, read = b"--" + boundary, response.iter_content

    def iter_content(chunk_size: int | None = 1, decode_unicode: bool = False) -> Any:
        buffer, started = b"", False
        for chunk in read(chunk_size, decode_unicode):
            if started:
                yield chunk
                continue
            buffer += chunk
            at = 0 if buffer.startswith(marker) else buffer.find(b"\r\n" + marker)
            if at >= 0:
                started = True
                yield buffer[at + (2 if at else 0) :] if at else buffer
            elif len(buffer) > 1 << 20:  # no boundary in the first MiB: leave the body as it is
                started = True
                yield buffer
        if not started and buffer:
            yield buffer

    response.iter_content = iter_content
    return response


def _auth_failure(status: int, url: str, what: str, credentials: PacsCredentials | None) -> InputError:
    """The one line for HTTP 401 / 403, naming which credentials were used (never their values)."""
    if status == 403:
        return InputError(
            f"{url}: {what} refused (HTTP 403): the credentials were accepted but are not allowed to do this; "
            "ask the PACS administrator for access"
        )
    kind = credentials.kind if credentials is not None else "unknown"
    source = credentials.source if credentials is not None else ""
    where = "the environment" if source == "environment" else source
    if kind == "none":
        return InputError(
            f"{url}: {what} refused (HTTP 401): the PACS requires authentication and no credentials are set; set "
            "NETLM_PACS_USER and NETLM_PACS_PASSWORD (or NETLM_PACS_TOKEN), or use a private --pacs-config file"
        )
    if kind == "bearer":
        fix = "NETLM_PACS_TOKEN" if source == "environment" else f"the token in {where}"
        return InputError(
            f"{url}: {what} refused (HTTP 401): authentication failed with the token from {where} (expired or "
            f"wrong?); check {fix}"
        )
    if kind == "basic":
        fix = "NETLM_PACS_USER / NETLM_PACS_PASSWORD" if source == "environment" else f"user / password in {where}"
        return InputError(
            f"{url}: {what} refused (HTTP 401): authentication failed with the user name and password from "
            f"{where}; check {fix}"
        )
    return InputError(
        f"{url}: {what} refused (HTTP 401): authentication failed; check NETLM_PACS_USER / "
        "NETLM_PACS_PASSWORD, NETLM_PACS_TOKEN or the --pacs-config file"
    )


def _tls_failure(text: str, url: str, what: str) -> InputError:
    """The one line for a failed TLS handshake: a certificate not trusted here, or a port without TLS."""
    verify = re.search(r"certificate verify failed: ([^(]*?)\.? \(_ssl", text)
    if verify:
        return InputError(
            f"{url}: {what}: the PACS's TLS certificate is not trusted ({verify.group(1).strip()}); give the CA "
            "certificate that signed it (PEM) with REQUESTS_CA_BUNDLE=FILE, and a --url host name the certificate names"
        )
    reason = re.search(r"\] ([^(]*?) \(_ssl", text)
    return InputError(
        f"{url}: {what}: the TLS handshake failed ({reason.group(1) if reason else 'no TLS answer'}: the port may "
        "not speak TLS); check --url (http:// for a PACS port without TLS)"
    )


def _http_error(exc: Exception, client: Any, what: str) -> InputError:
    import requests

    url = redact_url(client.base_url)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status in (401, 403):
        return _auth_failure(int(status), url, what, getattr(client, "netlm_credentials", None))
    if status == 404:
        return InputError(f"{url}: {what}: not found (HTTP 404); check the Study Instance UID and the DICOMweb root")
    if isinstance(exc, requests.exceptions.SSLError):
        return _tls_failure(str(exc), url, what)
    if isinstance(exc, requests.ConnectionError):
        return InputError(f"{url}: cannot connect for {what}; check --url and that the PACS is running")
    return InputError(f"{url}: {what} failed ({type(exc).__name__}, HTTP {status}); check the PACS log")


#: WADO-RS Accept: each instance in the transfer syntax it is stored in (the default, Explicit VR Little Endian,
#: makes the server transcode; Orthanc 1.10 cannot transcode JPEG 2000 and answers HTTP 500).
_AS_STORED = (("application/dicom", "*"),)


def _stream(datasets: Any, out: Path, paths: list[Path]) -> None:
    for ds in datasets:
        p = out / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(p, enforce_file_format=True)
        paths.append(p)


def retrieve_study(client: Any, study_uid: str, folder: str | os.PathLike[str]) -> list[Path]:
    """WADO-RS retrieve every instance of a study into ``folder``, streaming (one instance in memory at a time).

    Raises
    ------
    InputError
        Authentication failure, unknown study, or no instance.
    UsageError
        ``study_uid`` is not a UID.
    """
    import requests
    from pydicom.errors import InvalidDicomError

    check_uid(study_uid)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    try:
        try:
            _stream(client.iter_study(study_uid, media_types=_AS_STORED), out, paths)
        except requests.HTTPError as exc:
            status = getattr(exc.response, "status_code", None)
            if paths or status not in (400, 406, 415):
                raise
            # a server that does not take transfer-syntax=* (PS3.18 8.7.3.5.2): its default, Explicit VR LE
            logger.info("HTTP %s for transfer-syntax=*: retrieving in the server's default syntax", status)
            _stream(client.iter_study(study_uid), out, paths)
    except (requests.RequestException, OSError) as exc:
        raise _http_error(exc, client, f"retrieving study {study_uid}") from None
    except (ValueError, EOFError, InvalidDicomError) as exc:  # an undecodable multipart part or instance
        raise InputError(
            f"{redact_url(client.base_url)}: the WADO-RS answer for study {study_uid} could not be decoded after "
            f"{len(paths)} instance(s) ({type(exc).__name__}: {exc}); check the PACS log"
        ) from None
    if not paths:
        raise InputError(
            f"{redact_url(client.base_url)}: study {study_uid} has no instances; check the Study Instance UID"
        )
    expected = _instance_count(client, study_uid)
    if expected is not None and len(paths) < expected:
        raise InputError(
            f"{redact_url(client.base_url)}: WADO-RS sent {len(paths)} of the {expected} instances of study "
            f"{study_uid} (QIDO-RS NumberOfStudyRelatedInstances): the study would be measured without the missing "
            "ones; check the PACS log"
        )
    logger.info("retrieved %d instances of study %s", len(paths), study_uid)
    return paths


def _instance_count(client: Any, study_uid: str) -> int | None:
    """QIDO-RS NumberOfStudyRelatedInstances of a study; None when the server does not say (an optional
    attribute: servers answering with partial attribute sets leave it out) or cannot be asked."""
    import requests

    try:
        found = client.search_for_studies(search_filters={"StudyInstanceUID": study_uid}, fields=["00201208"])
    except (requests.RequestException, OSError, ValueError):
        logger.info("QIDO-RS query for study %s failed: instance count not checked", study_uid)
        return None
    counts = [
        item.get("00201208", {}).get("Value", [None])[0]
        for item in found
        if study_uid in map(str, item.get("0020000D", {}).get("Value", []))
    ]
    if len(counts) != 1 or counts[0] is None:
        logger.info("QIDO-RS gave no NumberOfStudyRelatedInstances for study %s: count not checked", study_uid)
        return None
    try:
        return int(counts[0])
    except (TypeError, ValueError):
        return None


def _held(client: Any, ds: Any, pauses: tuple[float, ...]) -> bool | None:
    """QIDO-RS whether the server now holds ``ds``; None when it cannot be asked or does not say.

    A server that indexes a little after the STOW-RS answer is asked at once and again after each of
    ``pauses`` (s; rules key ``pacs.held_retry_pauses_s``) while it does not hold it.
    """
    import time

    import requests

    uid = str(ds.SOPInstanceUID)
    for pause in (0.0, *pauses):
        time.sleep(pause)
        try:
            found = client.search_for_instances(
                study_instance_uid=str(ds.StudyInstanceUID),
                series_instance_uid=str(ds.SeriesInstanceUID),
                search_filters={"SOPInstanceUID": uid},
                fields=["00080018"],
            )
        except (requests.RequestException, OSError, ValueError):
            return None
        if any("00080018" not in item for item in found):
            return None  # a partial attribute set: it does not say which instances it holds
        if any(uid in map(str, item["00080018"].get("Value", [])) for item in found):
            return True
    return False


def store_files(client: Any, paths: list[Path], held_pauses_s: tuple[float, ...] | None = None) -> list[str]:
    """STOW-RS store DICOM files; returns the stored SOP Instance UIDs.

    The STOW-RS response (PS3.18 10.5.3) is read: when its Failed SOP Sequence refuses objects, one line
    names each refused object (modality, UID, failure reason) and each stored one
    (:mod:`.stow_answer`). Otherwise a QIDO-RS query checks that the server holds each object: some
    answer success and discard what a rule filters out (Orthanc's ``ReceivedInstanceFilter``).

    Parameters
    ----------
    client : DICOMwebClient
        The server.
    paths : list of Path
        The files.
    held_pauses_s : tuple of float, optional
        The pauses of the held check (default: the shipped rules' ``pacs.held_retry_pauses_s``).

    Raises
    ------
    InputError
        When the PACS refuses or discards an object (every refused one named, and what was stored).
    """
    import pydicom
    import requests

    pauses = held_pauses() if held_pauses_s is None else tuple(held_pauses_s)
    datasets = [pydicom.dcmread(p) for p in paths]
    url = redact_url(client.base_url)
    try:
        response = client.store_instances(datasets)
    except (requests.RequestException, OSError) as exc:
        http = getattr(exc, "response", None)
        status = getattr(http, "status_code", None)
        if status == 409:  # PS3.18 10.5.3: none stored, the answer says why for each
            said = refusal(url, read_stow_answer(answer_body(http), datasets), lambda ds: _held(client, ds, pauses))
            if said is not None:
                raise said from None
        if status in (400, 409, 415):
            raise InputError(
                f"{url}: the PACS refused the results (STOW-RS HTTP {status}): it does not accept the "
                f"{' / '.join(str(ds.Modality) for ds in datasets)} objects (SOP class or transfer syntax); "
                "check the PACS log"
            ) from None
        raise _http_error(exc, client, "storing the results (STOW-RS)") from None
    answer = read_stow_answer(response, datasets)
    refused = refusal(url, answer, lambda ds: _held(client, ds, pauses))
    if refused is not None:
        raise refused
    if answer.strangers:
        logger.warning("%s: the STOW-RS answer refuses objects not sent (%s)", url, ", ".join(answer.strangers))
    gone = [ds for ds in datasets if _held(client, ds, pauses) is False]
    if gone:
        err = not_held_error(url, "STOW-RS", str(gone[0].Modality), str(gone[0].SOPInstanceUID), pauses)
        kept = [ds for ds in datasets if all(ds is not g for g in gone)]
        if kept:
            err.args = (f"{err}; {push_state(kept, None, [])} and held: only the {modalities_are(gone)} missing",)
        raise err
    uids = [str(ds.SOPInstanceUID) for ds in datasets]
    logger.info("stored %d result objects", len(uids))
    return uids


def analyze_pacs_study(
    url: str,
    study_uid: str,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    push: bool = False,
    seg_out: bool = False,
    credentials: PacsCredentials | None = None,
    labels: str | None = None,
    rules: str | None = None,
    options: Any = None,
    timeout_s: float = 60.0,
    overwrite: bool = False,
) -> PacsResult:
    """Retrieve a study (WADO-RS), analyse it, write outputs, optionally store SR + SEG back (STOW-RS).

    Parameters
    ----------
    url : str
        DICOMweb root, e.g. ``http://pacs:8042/dicom-web``.
    study_uid : str
        Study Instance UID.
    out_dir : path-like, optional
        Writes ``report.json``, ``report_sr.dcm`` and ``derived_seg.dcm`` (the
        SEG whose segments the SR references) there.
    push : bool
        Store the SR and the derived SEG back in the PACS (with the source
        Patient and Study modules). Their UIDs derive from the measured
        content: a re-run stores nothing new.
    seg_out : bool
        Kept for compatibility: the derived SEG is always written with the SR.
    credentials : PacsCredentials, optional
        Default :func:`load_credentials`.
    labels, rules : str, optional
        As for :func:`netlm_imaging.api.analyze`.
    options : AnalyzeOptions, optional
        Analysis options (``include_identifiers`` also applies to local SR/SEG copies).
    timeout_s : float
        Seconds to wait for each answer of the server (``--timeout``).
    overwrite : bool
        Replace another study's outputs found in ``out_dir`` (off: refused, exit 3).

    Returns
    -------
    PacsResult
    """
    del seg_out  # the SR always comes with the SEG it references
    check_uid(study_uid)
    creds = credentials if credentials is not None else load_credentials()
    client = make_client(url, creds, timeout_s=check_timeout(timeout_s))
    base = redact_url(_check_url(url))
    return retrieve_analyze_push(
        lambda folder: retrieve_study(client, study_uid, folder),
        lambda paths: store_files(client, paths, held_pauses(rules)),
        f"{base}/studies/{study_uid}",
        out_dir=out_dir,
        push=push,
        labels=labels,
        rules=rules,
        options=options,
        overwrite=overwrite,
    )
