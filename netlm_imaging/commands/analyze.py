"""``netlm analyze``: one study -> report.json + console summary."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from ._common import check_json_and_voxels, check_output, print_warnings, write_stdout

__all__ = ["add_arguments", "options_from_args", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the analyze options to ``p``."""
    p.add_argument("study_dir", nargs="?", help="study folder (DICOM export or NIfTI/NRRD folder convention)")
    p.add_argument("--image", help="image file (NIfTI/NRRD/MHA) or DICOM series folder")
    p.add_argument(
        "--seg",
        action="append",
        default=[],
        metavar="[ROLE=]PATH",
        help="segmentation: label map, DICOM SEG, RTSTRUCT, or ROLE=PATH binary mask (repeatable)",
    )
    p.add_argument("--labels", help="role mapping, e.g. liver=5,lesion=2+3,spleen=1 (default LiTS: liver=1,lesion=2)")
    p.add_argument(
        "--segment-pattern",
        action="append",
        default=[],
        metavar="REGEX=ROLE",
        help="role for segment/ROI names matching REGEX (case-insensitive; repeatable; tried first), "
        "e.g. 'hcc|nodule=lesion'",
    )
    p.add_argument("--out", default=".", help="output folder for report.json (default: current folder)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the outputs of another study found in --out (a re-run of the same study always replaces its own)",
    )
    p.add_argument("--json", dest="json_out", metavar="-", help="'-' prints the report JSON to stdout instead")
    p.add_argument("--clinical", help="clinical sidecar (JSON or TOML): symptoms, grade, height, weight, ...")
    p.add_argument("--rules", help="rules file (TOML/JSON) overriding the default clinical rules")
    p.add_argument("--pet", help="PET series folder in the same frame of reference as the image")
    p.add_argument("--weight", type=float, help="patient weight in kg for SUV (overrides DICOM PatientWeight)")
    p.add_argument(
        "--pet-half-life",
        type=float,
        metavar="SECONDS",
        help="radionuclide half-life in s for SUV (overrides DICOM RadionuclideHalfLife; Ga-68: 4069.8); the "
        "clinical file may give it as pet_half_life_s, and a different value there is refused (exit 3)",
    )
    p.add_argument("--delineation", help="PET lesion delineation: rel:0.45 (default), liver:K, abs:T")
    p.add_argument("--modality", help="modality of a NIfTI/NRRD image: CT, MR, PT, NM, OT")
    p.add_argument(
        "--mr-phase",
        help="MR: state the contrast phase (hepatobiliary|hbp, pre-contrast|pre, arterial, "
        "portal_venous, transitional) when the headers do not tell it",
    )
    p.add_argument("--pre-contrast", metavar="PATH", help="MR: pre-contrast image (relative enhancement)")
    p.add_argument("--n4", action="store_true", help="MR: N4 bias-field correction before the signal ratios")
    p.add_argument("--seg-choice", help="which segmentation when the study folder holds several (index or UID)")
    p.add_argument("--image-series", help="SeriesInstanceUID of the image when the folder holds several")
    p.add_argument("--manifest", help="manifest file overriding study-folder discovery")
    p.add_argument(
        "--allow-resample",
        action="store_true",
        help="resample DICOM series with a missing slice or irregular steps onto a regular grid",
    )
    p.add_argument(
        "--fractional-threshold", type=float, default=0.5, help="binary view of FRACTIONAL SEG masks (default 0.5)"
    )
    p.add_argument(
        "--connectivity",
        type=int,
        default=26,
        help="lesion instances from one mask: 26 (default) or 6-connected components",
    )
    p.add_argument(
        "--resection",
        action="append",
        default=[],
        metavar="SEGMENTS",
        help="evaluate a user resection: the removed Couinaud segments (5,6,7,8, 5-8, S6+S7, VI-VII) or its "
        "name ('right hepatectomy + 1', 'left lateral sectionectomy', 'central hepatectomy') (repeatable)",
    )
    p.add_argument("--max-voxels", type=int, help="refuse images declaring more voxels than this")
    p.add_argument(
        "--include-identifiers",
        action="store_true",
        help="put patient name, ID and birth date in the report (off by default)",
    )
    p.add_argument("--html", action="store_true", help="also write report.html (interactive QA page)")
    p.add_argument(
        "--html-budget-mb",
        type=float,
        default=25.0,
        metavar="MB",
        help="size budget of the image data embedded in report.html (default 25; the image is downsampled to fit)",
    )
    p.add_argument(
        "--sr",
        action="store_true",
        help="also write report_sr.dcm (DICOM SR TID 1500) and the derived_seg.dcm its measurement groups reference",
    )
    p.add_argument("--seg-out", action="store_true", help="also write derived masks as a DICOM SEG (derived_seg.dcm)")
    p.add_argument("--quiet", action="store_true", help="no console summary")
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="give up (exit 3) when the study is still being analysed after this long (a read that hangs "
        "on an unreachable network folder or a FIFO)",
    )


def options_from_args(args: argparse.Namespace):
    """Build :class:`~netlm_imaging.api.AnalyzeOptions` from parsed arguments."""
    from ..api import AnalyzeOptions
    from ..classify.resection_names import parse_resection
    from ..errors import UsageError

    resections = []
    for r in getattr(args, "resection", []) or []:
        try:  # 5,6,7,8 / 5-8 / S6+S7 / VI-VII / 4a,4b / "right hepatectomy + 1"
            segs = parse_resection(str(r))
        except ValueError as exc:
            raise UsageError(f"--resection {r}: {exc}; e.g. 5,6,7,8, 5-8 or 'right hepatectomy'") from exc
        resections.append(segs)  # the range is AnalyzeOptions' to check
    patterns = []
    for item in getattr(args, "segment_pattern", []) or []:
        regex, sep, role = str(item).rpartition("=")
        if not sep or not regex:
            raise UsageError(f"--segment-pattern {item}: write REGEX=ROLE, e.g. 'tumou?r=lesion'")
        from ..segmentation import ROLES

        if role.strip().lower() not in ROLES:
            raise UsageError(f"--segment-pattern {item}: unknown role {role!r}; use one of {', '.join(ROLES)}")
        try:
            re.compile(regex)
        except re.error as exc:
            raise UsageError(f"--segment-pattern {item}: invalid regular expression ({exc})") from exc
        patterns.append((regex, role.strip().lower()))
    if getattr(args, "html_budget_mb", 1.0) <= 0:
        raise UsageError(f"--html-budget-mb {args.html_budget_mb}: give a positive size in MB, e.g. 25")
    # AnalyzeOptions checks the values (the API and the CLI refuse them with the same message)
    return AnalyzeOptions(
        max_voxels=getattr(args, "max_voxels", None),
        allow_resample=bool(getattr(args, "allow_resample", False)),
        include_identifiers=bool(getattr(args, "include_identifiers", False)),
        modality=getattr(args, "modality", None),
        weight_kg=getattr(args, "weight", None),
        pet_half_life_s=getattr(args, "pet_half_life", None),
        delineation=getattr(args, "delineation", None),
        seg_choice=getattr(args, "seg_choice", None),
        image_series=getattr(args, "image_series", None),
        manifest=getattr(args, "manifest", None),
        fractional_threshold=float(getattr(args, "fractional_threshold", 0.5)),
        connectivity=int(getattr(args, "connectivity", 26)),
        resections=tuple(resections),
        name_patterns=tuple(patterns),
        mr_phase=_mr_phase(getattr(args, "mr_phase", None)),
        pre_contrast=getattr(args, "pre_contrast", None),
        n4=bool(getattr(args, "n4", False)),
    )


def _mr_phase(value: str | None) -> str | None:
    if value is None:
        return None
    from ..io.mr_phase import check_phase_name

    return check_phase_name(value)


def run(args: argparse.Namespace) -> int:
    """Run ``netlm analyze``; returns the exit code.

    ``--out DIR`` is locked for the run (:class:`~netlm_imaging.outdir.OutputLock`): a second run
    into the same folder stops at once (exit 3), instead of mixing its report.json with the first
    run's SR and SEG. Ctrl-C, SIGTERM and SIGHUP leave no half-written file (exit 128 + signal).
    """
    from ..batch.interrupt import TimeLimitExceeded, exit_stopped, run_until_stopped

    try:
        code, stopped = run_until_stopped(lambda: _run(args))
    except TimeLimitExceeded as exc:  # a reading thread may still hang: end now, not at its join
        print(f"netlm: error: {exc}", file=sys.stderr)
        exit_stopped(exc.exit_code)
    if stopped:
        print(stopped, file=sys.stderr)
        exit_stopped(code)
    return code


def _run(args: argparse.Namespace) -> int:
    if args.study_dir is not None:
        from ..batch.cohort import archive_error, archive_kind

        if kind := archive_kind(args.study_dir):  # a PACS export as one file: say how to unpack it
            from ..errors import InputError

            raise InputError(archive_error(args.study_dir, kind, in_cohort=False))
    check_json_and_voxels(args, "report.json")
    opts = options_from_args(args)
    check_output(args)
    if args.timeout is not None and not args.timeout > 0:
        from ..errors import UsageError

        raise UsageError(f"--timeout {args.timeout:g}: give a positive number of seconds")
    from ..batch.interrupt import time_limit

    source = args.study_dir or args.image
    expired = (
        f"{source}: still being analysed after {args.timeout or 0:g} s (--timeout): a read that hangs (an "
        "unreachable network folder, a FIFO or device file among the inputs) or a study too large for the "
        "limit; check the files or raise --timeout"
    )
    if args.json_out == "-":
        with time_limit(args.timeout, expired):
            return _analyze(args, opts)
    from ..outdir import OutputLock

    # clean=False: --out may be any folder (the current one by default); nothing of others is removed
    with OutputLock(Path(args.out), command="netlm analyze", clean=False), time_limit(args.timeout, expired):
        return _analyze(args, opts)


def _analyze(args: argparse.Namespace, opts: Any) -> int:
    from ..api import analyze_with_context

    report, ctx = analyze_with_context(
        args.study_dir,
        image=args.image,
        segs=args.seg,
        labels=args.labels,
        clinical=args.clinical,
        rules=args.rules,
        pet=args.pet,
        options=opts,
    )
    if (args.sr or args.seg_out) and ctx.image.meta.get("format") != "dicom":
        from ..errors import InputError

        raise InputError(
            f"{ctx.image.source}: --sr/--seg-out reference the source DICOM series, but the image is not DICOM; "
            "analyse the DICOM series (or drop --sr/--seg-out)."
        )
    if not args.quiet:  # diagnostics on stderr, so stdout holds only the summary or the JSON
        print_warnings(list(report.warnings))
    if args.json_out == "-":
        write_stdout(report.to_json())
        return 0
    from ..report.outputs import OutputSet, write_outputs

    outputs = OutputSet.study(html=args.html, sr=args.sr, seg=args.seg_out, html_budget_mb=args.html_budget_mb)
    written = write_outputs(
        report, ctx, Path(args.out), outputs, include_identifiers=opts.include_identifiers, overwrite=args.overwrite
    )
    if not args.quiet:
        print(report.summary(include_warnings=False))
        print("")
        for w in written:
            print(f"wrote {w}")
    return 0
