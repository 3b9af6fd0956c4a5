"""What every PACS path shares: UID validation, secret-free URLs, and analyse-then-write of a retrieved study.

Used by the DICOMweb client (:mod:`.dicomweb`), the DIMSE client
(:mod:`.dimse`) and the C-STORE listener (:mod:`.listener`).

Identity (README "Identity of outputs"): the local copies (``report.json``,
SR, SEG in ``out_dir``) are de-identified unless ``include_identifiers``; the
SR + SEG handed back for the PACS keep the source Patient and Study modules.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import InputError, NetlmError, UsageError

__all__ = [
    "PacsResult",
    "analyze_retrieved",
    "check_timeout",
    "check_uid",
    "held_pauses",
    "modalities_are",
    "not_held_error",
    "push_state",
    "redact_url",
    "retrieve_analyze_push",
    "rules_pauses",
]

logger = logging.getLogger(__name__)

#: PS3.5 9.1: digits and dots, no empty or zero-led component, at most 64 characters.
_UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$")


def check_timeout(seconds: float, option: str = "--timeout") -> float:
    """Validate a PACS timeout: a finite number of seconds above 0.

    Raises
    ------
    UsageError
        Not a finite positive number.

    Examples
    --------
    >>> check_timeout(300)
    300.0
    """
    import math

    try:
        value = float(seconds)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{option} {seconds!r}: give the seconds to wait for each PACS answer, a number above 0")
    return value


def check_uid(uid: str, option: str = "--study") -> str:
    """Validate a DICOM UID given on the command line.

    Parameters
    ----------
    uid : str
        The value.
    option : str
        The option it came from (named in the message).

    Returns
    -------
    str
        ``uid`` unchanged.

    Raises
    ------
    UsageError
        Not a UID (e.g. ``../../system``: it would be sent as a URL path).
    """
    text = str(uid)
    if len(text) > 64 or not _UID_RE.match(text):
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise UsageError(
            f"{option} {shown!r} is not a DICOM UID (digits and dots, e.g. 1.2.840.113619.2.55.3.1234); "
            "give the Study Instance UID"
        )
    return text


def rules_pauses(key: str, rules: Any = None) -> tuple[float, ...]:
    """The pauses (s) of the rules key ``pacs.<key>`` (validated by the rules loader).

    Parameters
    ----------
    key : str
        ``transient_retry_pauses_s`` or ``held_retry_pauses_s``.
    rules : path, mapping or None
        A user rules file (``--rules``), as :func:`netlm_imaging.classify.rules.load_rules` takes it;
        None: the shipped rules.

    Returns
    -------
    tuple of float
        One pause per new try (empty: no new try).

    Examples
    --------
    >>> rules_pauses("held_retry_pauses_s")
    (0.5, 1.5)
    """
    if rules is None:
        from ..rules_data import default_section

        return tuple(float(p) for p in default_section("pacs")[key])
    from ..classify.rules import load_rules

    return tuple(float(p) for p in load_rules(rules)["pacs"][key])


def held_pauses(rules: Any = None) -> tuple[float, ...]:
    """After a store, the pauses (s) before asking the PACS again whether it holds each object.

    Rules key ``pacs.held_retry_pauses_s``: the PACS is asked at once, then after each pause while it
    does not hold the object, so that one indexing a little after its success answer is not taken for
    one that discarded the object.
    """
    return rules_pauses("held_retry_pauses_s", rules)


def not_held_error(
    where: str, how: str, modality: str, sop_instance_uid: str, pauses: tuple[float, ...] | None = None
) -> InputError:
    """The PACS answered success to ``how`` (C-STORE, STOW-RS) but does not hold the object ``pauses`` later."""
    waited = sum(held_pauses() if pauses is None else pauses)
    return InputError(
        f"{where}: the PACS answered success to the {how} of the {modality} result ({sop_instance_uid}) but does "
        f"not hold it {waited:g} s later: a rule of the PACS discards it (Orthanc: a ReceivedInstanceFilter), or "
        "it is still indexing (wait longer: rules key pacs.held_retry_pauses_s); check the PACS log"
    )


def modalities_are(datasets: list[Any]) -> str:
    """The results' modalities with ``is`` / ``are``, for a message.

    Parameters
    ----------
    datasets : list of Dataset
        The results (each with a ``Modality``).

    Returns
    -------
    str
        E.g. ``SR is`` or ``SEG and SR are``.
    """
    mods = [str(ds.Modality) for ds in datasets]
    return (" and ".join(mods)) + (" is" if len(mods) == 1 else " are")


def push_state(stored: list[Any], failed: tuple[Any, str] | list[tuple[Any, str]] | None, rest: list[Any]) -> str:
    """What a push left in the PACS, for the message of a push that failed half-way.

    Parameters
    ----------
    stored : list of Dataset
        The results the PACS stored.
    failed : (Dataset, str), list of them, or None
        The result(s) that failed and how (``refused with 0xA700 (...)``, ``not answered``); a STOW-RS
        answer may refuse several.
    rest : list of Dataset
        The results not sent.

    Returns
    -------
    str
        E.g. ``SEG stored (UID), SR refused with 0xA700 (...): only the SR is missing in the PACS``.
    """
    failures = [] if failed is None else [failed] if isinstance(failed, tuple) else list(failed)
    parts = [f"{ds.Modality} stored ({ds.SOPInstanceUID})" for ds in stored]
    parts += [f"{ds.Modality} {how}" for ds, how in failures]
    parts += [f"{ds.Modality} not sent" for ds in rest]
    missing = [ds for ds, _ in failures] + rest
    if not missing:
        return ", ".join(parts)
    said = "nothing is stored in the PACS" if not stored else f"only the {modalities_are(missing)} missing in the PACS"
    return f"{', '.join(parts)}: {said}"


def redact_url(url: str) -> str:
    """``scheme://host[:port]/path`` of a URL: no user, password, query or fragment (they may hold secrets)."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    redacted = f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else parts.path
    return redacted + ("?..." if parts.query else "")


@dataclass
class PacsResult:
    """What a PACS analysis produced.

    Attributes
    ----------
    report : StudyReport
        The report.
    written : list of Path
        Local files (``report.json``, SR, SEG).
    push_files : list of Path
        SR and SEG with the source Patient / Study modules (for the PACS); they
        live in a temporary folder that is removed after the push.
    pushed_sop_instance_uids : list of str
        What the PACS accepted.
    """

    report: Any
    written: list[Path] = field(default_factory=list)
    push_files: list[Path] = field(default_factory=list)
    pushed_sop_instance_uids: list[str] = field(default_factory=list)


def analyze_retrieved(
    study_dir: str | os.PathLike[str],
    source: str,
    *,
    out_dir: str | os.PathLike[str] | None,
    push_dir: str | os.PathLike[str] | None,
    dicom_outputs: bool = True,
    labels: str | None = None,
    rules: str | None = None,
    options: Any = None,
    overwrite: bool = False,
    when_incomplete: str = "retrieve the study again once the PACS holds all of it",
) -> PacsResult:
    """Analyse a retrieved study folder and write its outputs.

    Parameters
    ----------
    study_dir : path-like
        The instances on disk (the tool's own SR / SEG in it are ignored by discovery).
    source : str
        How the study is named in the report (``image_source``), without secrets.
    out_dir : path-like, optional
        Local outputs: ``report.json``, ``report_sr.dcm`` and ``derived_seg.dcm``.
    push_dir : path-like, optional
        Where the SR + SEG for the PACS are written (with identifiers).
    dicom_outputs : bool
        Write the SR / SEG in ``out_dir`` (they are always built for ``push_dir``).
    labels, rules, options
        As for :func:`netlm_imaging.api.analyze_with_context`.
    overwrite : bool
        Replace another study's outputs found in ``out_dir`` (off: refused, exit 3).
    when_incomplete : str
        What to do when the analysis fails and a segmentation names images the
        folder does not hold (added to the error, which then says so first).

    Returns
    -------
    PacsResult

    Raises
    ------
    NetlmError
        The analysis failed; when the study is incomplete the message starts by saying so.
    """
    from ..api import analyze_with_context
    from ..report.outputs import OutputSet, write_outputs
    from .completeness import missing_images

    study = Path(study_dir)
    try:
        report, ctx = analyze_with_context(study, labels=labels, rules=rules, options=options)
    except NetlmError as exc:
        gaps = missing_images(study)
        if gaps and exc.args:
            said = "; ".join(g.describe() for g in gaps)
            exc.args = (f"{said}; {when_incomplete} (the reader said: {exc.args[0]})", *exc.args[1:])
        raise
    sources = [s.replace(str(study), source) for s in report.study.get("segmentation_sources", [])]
    report = replace(report, study={**report.study, "image_source": source, "segmentation_sources": sources})
    result = PacsResult(report=report)
    include_ids = bool(getattr(options, "include_identifiers", False))
    if out_dir is not None:
        local = OutputSet.study(sr=dicom_outputs)
        result.written.extend(
            write_outputs(report, ctx, Path(out_dir), local, include_identifiers=include_ids, overwrite=overwrite)
        )
    if push_dir is not None:
        push = OutputSet(json=None, seg="push_seg.dcm", sr="push_sr.dcm")
        # with identifiers: the PACS files them with the study they came from
        result.push_files = write_outputs(report, ctx, Path(push_dir), push, include_identifiers=True)
    return result


def retrieve_analyze_push(
    retrieve: Callable[[Path], object],
    store: Callable[[list[Path]], list[str]],
    source: str,
    *,
    out_dir: str | os.PathLike[str] | None,
    push: bool,
    labels: str | None = None,
    rules: str | None = None,
    options: Any = None,
    overwrite: bool = False,
) -> PacsResult:
    """Retrieve a study into a temporary folder, analyse it, write outputs, and store SR + SEG back.

    Parameters
    ----------
    retrieve : callable
        ``retrieve(folder)`` writes the study's instances into ``folder``.
    store : callable
        ``store(paths)`` sends the SR and SEG to the PACS; returns the stored SOP Instance UIDs.
    source : str
        The study's name in the report (no secrets).
    out_dir, labels, rules, options, overwrite
        As for :func:`analyze_retrieved`.
    push : bool
        Call ``store`` with the SR and SEG carrying the source Patient / Study modules.

    Returns
    -------
    PacsResult
        The temporary folder (instances, objects for the PACS) is removed.
    """
    with tempfile.TemporaryDirectory(prefix="netlm-pacs-") as tmp:
        study_dir = Path(tmp) / "study"
        retrieve(study_dir)
        try:
            result = analyze_retrieved(
                study_dir,
                source,
                out_dir=out_dir,
                push_dir=Path(tmp) if push else None,
                labels=labels,
                rules=rules,
                options=options,
                overwrite=overwrite,
            )
        except NetlmError as exc:  # name the PACS study, not the temporary folder that is about to be removed
            exc.args = tuple(str(a).replace(str(study_dir), source) for a in exc.args)
            raise
        if push:
            try:
                result.pushed_sop_instance_uids = store(result.push_files)
            except NetlmError as exc:  # the analysis is done: say where its outputs are (or how to keep them)
                kept = (
                    f"the local outputs are kept in {out_dir}"
                    if out_dir is not None
                    else "nothing was kept locally (add --out DIR to keep the report, SR and SEG)"
                )
                exc.args = (f"{exc}; {kept}",)
                raise
        result.push_files = []
    return result
