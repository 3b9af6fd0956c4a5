"""The one output writer: every file a study produces is written here.

One function per file format (:func:`report_json` / :func:`write_json`,
:func:`write_html`, :func:`write_dicom` for the SR and the derived SEG it
references) and :func:`write_outputs`, which writes a requested
:class:`OutputSet` as a set: every file is first written beside its final name
and only when all of them succeeded are they renamed into place (the JSON
report last, so a report on disk means the whole set is there). A failure
leaves the files already there untouched. ``netlm analyze``, ``netlm batch``,
the PACS clients (:mod:`netlm_imaging.pacs.common`) and the pipelines hook all
call :func:`write_outputs`. Table rows (``cohort.csv``'s study numbers and
``lesions.csv``'s rows) are :mod:`netlm_imaging.report.tables`'.

How to add an output
--------------------
1. Add its format function here (``write_<format>(report, ctx, path, ...)``,
   writing atomically, returning the path); a table row goes to
   :mod:`netlm_imaging.report.tables`.
2. Add a field for its file name to :class:`OutputSet` (None: not written), a
   keyword to :meth:`OutputSet.study` / :meth:`OutputSet.batch`, and one line in
   :func:`write_outputs`.
3. Add its test. Per-lesion numbers are not added here but in
   :mod:`netlm_imaging.report.lesion_columns`.

Examples
--------
>>> OutputSet.study(sr=True).names()
['report.json', 'derived_seg.dcm', 'report_sr.dcm']
>>> OutputSet.batch("s01", html=True).names()
['reports/s01.json', 'reports/s01.html', 'reports/s01.thumb.png']
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text, output_error
from ..errors import NetlmError

__all__ = ["OutputSet", "report_json", "write_dicom", "write_html", "write_json", "write_outputs"]

logger = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- formats


def _data(report: Any) -> dict[str, Any]:
    return dict(report) if isinstance(report, Mapping) else report.to_dict()


def report_json(report: Any, extra: Mapping[str, Any] | None = None) -> str:
    """report.json text: the validated report dict (plus ``extra`` top-level keys), indented.

    Parameters
    ----------
    report : StudyReport or dict
        The report (a dict is taken as ``StudyReport.to_dict()``).
    extra : mapping, optional
        Top-level keys added after validation (e.g. batch's ``batch`` object).

    Returns
    -------
    str
    """
    data = _data(report)
    if extra:
        data.update(extra)
    return json.dumps(data, indent=2) + "\n"


def write_json(report: Any, path: str | os.PathLike[str], extra: Mapping[str, Any] | None = None) -> Path:
    """Write :func:`report_json` atomically; returns the path."""
    p = Path(path)
    text = report_json(report, extra)
    atomic_write_text(p, text)
    return p


def write_html(
    report: Any,
    ctx: Any,
    path: str | os.PathLike[str],
    *,
    budget_mb: float | None = None,
    thumbnail_path: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the QA page (:func:`netlm_imaging.report.html.write_study_html`) atomically.

    ``budget_mb`` (None: the page's default) bounds the embedded image data; ``thumbnail_path``
    also writes the cohort index's thumbnail.
    """
    from .html import DEFAULT_BUDGET_MB, write_study_html

    return write_study_html(
        _data(report),
        ctx,
        path,
        pet_suv=getattr(ctx, "pet_suv", None),
        budget_mb=DEFAULT_BUDGET_MB if budget_mb is None else budget_mb,
        thumbnail_path=thumbnail_path,
    )


def write_dicom(
    report: Any,
    ctx: Any,
    *,
    sr_path: str | os.PathLike[str] | None,
    seg_path: str | os.PathLike[str] | None,
    include_identifiers: bool = False,
) -> list[Path]:
    """Write the derived DICOM SEG and/or the SR referencing its segments
    (:func:`netlm_imaging.report.dicom_outputs.write_dicom_outputs`); returns the paths, SEG first."""
    from .dicom_outputs import write_dicom_outputs

    return write_dicom_outputs(
        report,
        ctx,
        sr_path=None if sr_path is None else Path(sr_path),
        seg_path=None if seg_path is None else Path(seg_path),
        include_identifiers=include_identifiers,
    ).paths


# ----------------------------------------------------------------------------- the set


@dataclass(frozen=True)
class OutputSet:
    """Which files to write, by name relative to the output folder (None: not written).

    Attributes
    ----------
    json, html, seg, sr : str, optional
        File names of the JSON report, the QA page, the derived DICOM SEG and the DICOM SR
        (an SR needs the SEG its measurement groups reference).
    thumbnail : str, optional
        File name of the QA page's thumbnail (cohort index), written with the page.
    json_extra : mapping, optional
        Top-level keys added to the JSON report (batch's ``batch`` object).
    html_budget_mb : float, optional
        Size budget of the image data embedded in the QA page (None: the page's default).
    """

    json: str | None = "report.json"
    html: str | None = None
    seg: str | None = None
    sr: str | None = None
    thumbnail: str | None = None
    json_extra: Mapping[str, Any] | None = None
    html_budget_mb: float | None = None
    #: Every file name of this set's scheme, written or not: one of them left in the folder by an
    #: earlier run, and not rewritten by this one, no longer belongs to the new report.
    family: tuple[str, ...] = ()

    @classmethod
    def study(
        cls,
        *,
        json: bool = True,
        html: bool = False,
        sr: bool = False,
        seg: bool = False,
        html_budget_mb: float | None = None,
    ) -> OutputSet:
        """The file names of ``netlm analyze``: report.json, report.html, derived_seg.dcm, report_sr.dcm
        (``sr`` implies the SEG it references)."""
        return cls(
            json="report.json" if json else None,
            html="report.html" if html else None,
            seg="derived_seg.dcm" if seg or sr else None,
            sr="report_sr.dcm" if sr else None,
            html_budget_mb=html_budget_mb,
            family=("report.json", "report.html", "derived_seg.dcm", "report_sr.dcm"),
        )

    @classmethod
    def batch(
        cls,
        study_id: str,
        *,
        html: bool = False,
        sr: bool = False,
        json_extra: Mapping[str, Any] | None = None,
        html_budget_mb: float | None = None,
    ) -> OutputSet:
        """The file names of one study of ``netlm batch``: ``reports/<id>.json``, ``.html`` + ``.thumb.png``,
        ``.seg.dcm`` + ``.sr.dcm``."""
        return cls(
            json=f"reports/{study_id}.json",
            html=f"reports/{study_id}.html" if html else None,
            seg=f"reports/{study_id}.seg.dcm" if sr else None,
            sr=f"reports/{study_id}.sr.dcm" if sr else None,
            thumbnail=f"reports/{study_id}.thumb.png" if html else None,
            json_extra=json_extra,
            html_budget_mb=html_budget_mb,
        )

    def names(self) -> list[str]:
        """The requested file names, in the order :func:`write_outputs` returns their paths."""
        return [n for n in (self.json, self.html, self.seg, self.sr, self.thumbnail) if n is not None]


def _unstage(staged: list[tuple[Path, Path]]) -> None:
    for tmp, _ in staged:
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_outputs(
    report: Any,
    ctx: Any,
    out_dir: str | os.PathLike[str],
    outputs: OutputSet,
    *,
    include_identifiers: bool = False,
    overwrite: bool = False,
) -> list[Path]:
    """Write the requested set of outputs of one study, all or none.

    Each file is written to a temporary name beside its final name; when every
    one succeeded they are renamed into place, the JSON report last. When any
    writer fails the temporary files are removed, the files already at the final
    names are left as they were, and the error is raised.

    Parameters
    ----------
    report : StudyReport or dict
        The study's report (or its ``to_dict()``, validated once by the caller).
    ctx : MeasurementContext or None
        What the report was measured from (needed for HTML, SR and SEG).
    out_dir : path-like
        Output folder (created).
    outputs : OutputSet
        Which files, under which names.
    include_identifiers : bool
        Copy patient identifiers into the SR / SEG (off by default).
    overwrite : bool
        Replace the outputs of another study found in a study's folder (``OutputSet.study``);
        off: refused (:func:`netlm_imaging.report.ownership.check_same_study`), nothing written.
        The outputs of the same study are always replaced.

    Returns
    -------
    list of pathlib.Path
        The final paths, in :meth:`OutputSet.names` order.
    """
    out = Path(out_dir)
    names = outputs.names()  # the order of the returned paths
    tag = f".{os.urandom(4).hex()}.tmp"  # atomic.TEMP_PATTERN: recognised as a temporary sibling
    staged: list[tuple[Path, Path]] = []  # (temporary, final)

    def stage(name: str) -> Path:
        final = out / name
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}{tag}")
        staged.append((tmp, final))
        return tmp

    try:
        data = _data(report)
        if outputs.html:
            thumb = stage(outputs.thumbnail) if outputs.thumbnail else None
            write_html(data, ctx, stage(outputs.html), budget_mb=outputs.html_budget_mb, thumbnail_path=thumb)
        if outputs.sr or outputs.seg:
            write_dicom(
                data,
                ctx,
                seg_path=stage(outputs.seg) if outputs.seg else None,
                sr_path=stage(outputs.sr) if outputs.sr else None,
                include_identifiers=include_identifiers,
            )
        if outputs.json:
            write_json(data, stage(outputs.json), outputs.json_extra)
    except BaseException as exc:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if isinstance(exc, NetlmError) and exc.args:  # name the file the user asked for, not its temporary
            msg = str(exc.args[0])
            for tmp, final in staged:
                msg = msg.replace(str(tmp), str(final))
            exc.args = (msg, *exc.args[1:])
        if isinstance(exc, OSError):  # e.g. creating reports/ on a full or read-only disk
            raise output_error(out, exc) from None
        raise
    if outputs.family and not overwrite:  # one study's folder: not another study's outputs
        from .ownership import check_same_study

        try:
            image = getattr(getattr(ctx, "image", None), "source", None)
            check_same_study(out, data.get("study") or {}, json_name=outputs.json or "report.json", image=image)
        except BaseException:
            _unstage(staged)
            raise
    try:
        for tmp, final in staged:  # the JSON report was staged last: it is renamed last
            os.replace(tmp, final)
    except OSError as exc:
        _unstage(staged)
        raise output_error(out, exc) from None
    left = [n for n in outputs.family if n not in names and (out / n).exists()]
    if left:  # kept (nothing written is lost), but a reader must not take it for this run's
        be, match, it = ("is", "matches", "it") if len(left) == 1 else ("are", "match", "them")
        logger.warning(
            f"{out}: {', '.join(left)} left by an earlier run {be} not rewritten and no longer {match} this "
            f"report; delete {it} or ask for {it} again"
        )
    by_name = {final.relative_to(out).as_posix(): final for _, final in staged}
    return [by_name[n] for n in names]
