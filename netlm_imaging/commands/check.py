"""``netlm check``: recompute reported burdens (CSV, or a DICOM SR or report.json with --study) and list discrepancies.

Exit codes: 0 every checked cell agrees; 1 at least one DISCREPANT cell;
3 unreadable input (the CSV/SR, or a study that cannot be recomputed: its
cells are listed with the verdict ``error``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_selection_arguments

__all__ = ["add_arguments", "parse_tolerances", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the check options to ``p``."""
    p.add_argument(
        "reported",
        help="CSV (columns: study + any of liver_volume_ml, tumor_volume_ml, "
        "involvement_percent, lesion_count, remnant_volume_ml; any case; volumes may be _cm3, _cc, "
        "_mm3 or _l instead of _ml), a DICOM SR TID 1500 file, or a report.json of netlm analyze",
    )
    p.add_argument("--study", help="study folder the DICOM SR or report.json describes (SR / report input only)")
    p.add_argument(
        "--studies",
        metavar="DIR",
        help="folder the CSV's study paths are relative to (default: the CSV's folder), e.g. the COHORT_DIR "
        "of the netlm batch run whose cohort.csv is checked",
    )
    p.add_argument(
        "--abs-tol",
        metavar="Q=V,...",
        help="absolute tolerances, e.g. tumor_volume_ml=0.5,lesion_count=0 "
        "(defaults: volumes 1 mL, involvement 0.5 points, lesion count 0)",
    )
    p.add_argument(
        "--rel-tol",
        metavar="Q=V,...",
        help="relative tolerances as fractions, e.g. liver_volume_ml=0.01 "
        "(defaults 0.02; a cell agrees within the absolute OR the relative tolerance)",
    )
    p.add_argument("--out", metavar="DISCREPANCIES.csv", help="write the table of all checked cells as CSV")
    p.add_argument(
        "--rules",
        help="rules file (TOML/JSON) of the recomputation; its [check.abs_tolerance] and "
        "[check.rel_tolerance] tables replace the default tolerances",
    )
    p.add_argument("--labels", help="role mapping for the recomputation, e.g. liver=1,lesion=2 (default LiTS)")
    add_selection_arguments(p, per_study=True)


def parse_tolerances(text: str | None, option: str) -> dict[str, float]:
    """Parse ``q=v,q=v`` into a dict; :class:`UsageError` on malformed items or unknown quantities."""
    from ..errors import UsageError
    from ..verify.check import QUANTITIES

    out: dict[str, float] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        q, sep, v = item.partition("=")
        q = q.strip()
        if not sep or q not in QUANTITIES:
            raise UsageError(f"{option} {item!r}: write QUANTITY=VALUE with QUANTITY one of {', '.join(QUANTITIES)}")
        try:
            val = float(v)
        except ValueError:
            raise UsageError(f"{option} {item!r}: {v!r} is not a number") from None
        if not val >= 0 or val == float("inf"):
            raise UsageError(f"{option} {item!r}: the tolerance must be a finite number >= 0")
        out[q] = val
    return out


def _is_dicom(p: Path) -> bool:
    if p.suffix.lower() == ".dcm":
        return True
    try:
        with p.open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _is_json(p: Path) -> bool:
    if p.suffix.lower() == ".json":
        return True
    try:
        with p.open("rb") as fh:
            return fh.read(64).removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"{")
    except OSError:
        return False


def run(args: argparse.Namespace) -> int:
    """Run ``netlm check``; returns the exit code."""
    from ..errors import UsageError
    from ..verify.check import check_reported, check_sr
    from ..verify.check_report import check_report_json
    from .analyze import options_from_args

    abs_tol = parse_tolerances(args.abs_tol, "--abs-tol")
    rel_tol = parse_tolerances(args.rel_tol, "--rel-tol")
    if args.max_voxels is not None and args.max_voxels <= 0:
        raise UsageError("--max-voxels must be positive")
    # the study-folder choices of analyze (--seg-choice, --image-series, --segment-pattern, ...)
    kwargs = {"labels": args.labels, "options": options_from_args(args)}
    if args.rules is not None:
        if not Path(args.rules).is_file():
            raise UsageError(f"--rules {args.rules}: file not found")
        kwargs["rules"] = args.rules
    reported = Path(args.reported)
    kind = "DICOM SR" if _is_dicom(reported) else "report.json" if _is_json(reported) else None
    if kind is not None:
        if not args.study:
            raise UsageError(f"{reported}: a {kind} needs --study STUDY_DIR (the study it describes)")
        if args.studies is not None:
            raise UsageError(f"--studies is for CSV input; a {kind}'s study is given with --study")
        if kind == "DICOM SR":
            result = check_sr(reported, args.study, abs_tol=abs_tol, rel_tol=rel_tol, **kwargs)
        else:
            result = check_report_json(reported, args.study, abs_tol=abs_tol, rel_tol=rel_tol, **kwargs)
    else:
        if args.study:
            raise UsageError(
                "--study is for DICOM SR or report.json input; a CSV names its studies in the 'study' column"
            )
        if args.studies is not None and not Path(args.studies).is_dir():
            raise UsageError(f"--studies {args.studies}: not a folder")
        result = check_reported(reported, abs_tol=abs_tol, rel_tol=rel_tol, studies_dir=args.studies, **kwargs)
    print(result.format_table())
    if args.out:
        path = result.write_csv(args.out)
        print(f"wrote {path}")
    return result.exit_code
