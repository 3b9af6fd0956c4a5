#!/usr/bin/env python3
"""PACS export hook: analyse one exported study and write (and optionally push) the results.

A PACS export (or Orthanc's OnStableStudy Lua callback, see
orthanc_on_stable_study.lua) calls it with either

* a study folder it exported:
  ``pacs_export_hook.py --folder /exports/STUDY --out /results``
* a Study Instance UID:
  ``pacs_export_hook.py --study-uid 1.2.3 --url http://pacs/dicom-web --out /results [--push]``

Outputs go to ``OUT/<study key>/``: ``report.json`` and ``report_sr.dcm``
(``derived_seg.dcm`` with ``--seg-out``). With a UID, ``--push`` stores the SR
(and SEG) back in the PACS over STOW-RS. Credentials come only from
NETLM_PACS_USER / NETLM_PACS_PASSWORD, NETLM_PACS_TOKEN or a private
``--pacs-config`` file (see netlm_imaging.pacs.dicomweb). Only the package's
public API is used.

Exit codes: 0 success, 3 input or environment error (one line on stderr), 2 usage error,
130 / 143 / 129 stopped by Ctrl-C / SIGTERM / SIGHUP (nothing half-written is left), 70 an internal error (a bug:
one line too; rerun by hand to report it).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from netlm_imaging.api import AnalyzeOptions, analyze_with_context
from netlm_imaging.batch.interrupt import exit_stopped, run_until_stopped
from netlm_imaging.errors import NetlmError, UsageError, only_accepted_flags
from netlm_imaging.pacs.dicomweb import analyze_pacs_study, load_credentials
from netlm_imaging.report.dicom_outputs import has_dicom_source
from netlm_imaging.report.outputs import OutputSet, write_outputs

logger = logging.getLogger("netlm.pacs_export_hook")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--folder", type=Path, help="exported study folder (DICOM files)")
    src.add_argument("--study-uid", help="Study Instance UID to retrieve over DICOMweb (needs --url)")
    p.add_argument("--url", help="DICOMweb root, e.g. http://127.0.0.1:8042/dicom-web")
    p.add_argument("--out", type=Path, required=True, help="results folder (one sub-folder per study)")
    p.add_argument("--push", action="store_true", help="store the SR (and SEG) back in the PACS (with --study-uid)")
    p.add_argument("--seg-out", action="store_true", help="also write the derived masks as a DICOM SEG")
    p.add_argument("--pacs-config", help="private TOML file with user/password or token")
    p.add_argument("--labels", help="segment name/value to role mapping, e.g. liver=Liver,lesion=Lesion*")
    p.add_argument("--rules", help="rules file overriding the default clinical rules")
    p.add_argument("--seg-choice", help="which segmentation when the study holds several (index or UID)")
    p.add_argument("--image-series", help="SeriesInstanceUID of the image when the study holds several")
    return p


def run(argv: list[str] | None = None) -> int:
    """Run the hook; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="netlm-hook: %(levelname)s: %(message)s", stream=sys.stderr)
    written: list[Path] = []

    def body() -> int:
        written.extend(_run(args))
        return 0

    try:
        code, stopped = run_until_stopped(body)  # SIGTERM (e.g. Orthanc stopping) cleans up like Ctrl-C
        if stopped:
            print(stopped.replace("netlm:", "netlm-hook:", 1), file=sys.stderr)
            exit_stopped(code)
    except NetlmError as exc:
        # suggest only options this hook accepts (a library message may name netlm analyze's or netlm pacs's)
        text = str(exc).replace("--study ", "--study-uid ")
        print(f"netlm-hook: error: {only_accepted_flags(text, parser._option_string_actions, 'hook')}", file=sys.stderr)
        return exc.exit_code
    except MemoryError:
        print("netlm-hook: error: out of memory analysing the study; free memory and rerun", file=sys.stderr)
        return 3
    except Exception as exc:  # never a traceback in the PACS's log, but say it is a bug
        logger.debug("internal error", exc_info=True)
        print(f"netlm-hook: internal error: {type(exc).__name__}: {exc} (a bug: please report it)", file=sys.stderr)
        return 70
    for w in written:
        print(f"wrote {w}")
    return 0


def _run(args: argparse.Namespace) -> list[Path]:
    options = AnalyzeOptions(seg_choice=args.seg_choice, image_series=args.image_series)
    if args.study_uid:
        if not args.url:
            raise UsageError("--study-uid needs --url (the DICOMweb root)")
        result = analyze_pacs_study(
            args.url,
            args.study_uid,
            out_dir=args.out / args.study_uid,
            push=args.push,
            seg_out=args.seg_out,
            credentials=load_credentials(args.pacs_config),
            labels=args.labels,
            rules=args.rules,
            options=options,
        )
        logger.info("study %s: %d object(s) stored in the PACS", args.study_uid, len(result.pushed_sop_instance_uids))
        return list(result.written)
    if args.push:
        raise UsageError("--push needs --study-uid and --url (a folder export has no PACS to push to)")
    out = args.out / args.folder.resolve().name  # "--folder ." names the current folder
    report, ctx = analyze_with_context(args.folder, labels=args.labels, rules=args.rules, options=options)
    if not has_dicom_source(ctx):  # e.g. a NIfTI folder: the JSON report stands alone
        logger.warning("no DICOM SR/SEG: the image is not a DICOM series (an SR references the DICOM images)")
        return write_outputs(report, ctx, out, OutputSet.study())
    return write_outputs(report, ctx, out, OutputSet.study(sr=True))  # the SR and the derived SEG it references


if __name__ == "__main__":
    sys.exit(run())
