"""``netlm batch``: analyse every study of a cohort into DIR/cohort.csv and DIR/reports/.

Exit code 0 when every study has a report, 4 when any study failed (each
failure is recorded in cohort.csv with its one-line error; nothing else is lost).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._common import add_selection_arguments

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the batch options to ``p``."""
    p.add_argument(
        "cohort",
        metavar="COHORT_DIR|COHORT.csv",
        help="folder whose sub-folders are studies, or a CSV with a 'path' column (relative to the CSV) "
        "and optional study_id and clinical columns",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder: cohort.csv and reports/<study>.json")
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N", help="local worker processes (default 1)")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a Dask distributed cluster (e.g. tcp://host:8786); DIR and the studies must be on a "
        "file system the workers share",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="skip studies whose stored result has unchanged inputs, options, tool and rules versions",
    )
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="stop a study still running after this long (a read that hangs on a network folder) and record it "
        "as failed; the others go on (local processes only)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output and no summary")
    p.add_argument("--sr", action="store_true", help="also write reports/<study>.sr.dcm (DICOM SR TID 1500)")
    p.add_argument(
        "--html", action="store_true", help="also write reports/<study>.html (QA pages) and index.html (review queue)"
    )
    p.add_argument(
        "--html-budget-mb",
        type=float,
        default=25.0,
        metavar="MB",
        help="size budget of the image data embedded in each QA page (default 25)",
    )
    p.add_argument(
        "--discrepancies",
        metavar="DISCREPANCIES.csv",
        help="with --html: a 'netlm check --out' table; its discrepant studies are flagged in index.html",
    )
    p.add_argument("--rules", help="rules file (TOML/JSON) overriding the default clinical rules")
    p.add_argument("--labels", help="role mapping, e.g. liver=5,lesion=2 (default LiTS: 1 liver, 2 lesion)")
    p.add_argument("--max-voxels", type=int, help="refuse images declaring more voxels than this")
    p.add_argument(
        "--pet-half-life",
        type=float,
        metavar="SECONDS",
        help="radionuclide half-life in s for the SUV of every study (overrides DICOM RadionuclideHalfLife; Ga-68: "
        "4069.8); for one study give its pet_half_life_s (cohort CSV column or clinical.json key) instead; a study "
        "whose pet_half_life_s says another value fails (exit 4)",
    )
    p.add_argument(
        "--allow-resample",
        action="store_true",
        help="resample DICOM series with a missing slice or irregular steps onto a regular grid",
    )
    p.add_argument(
        "--pseudonymize",
        action="store_true",
        help="replace study folder names (often patient names) by stable pseudonyms S-xxxxxxxxxxxx in "
        "cohort.csv, reports/ and index.html; the key (pseudonym -> folder) goes to --pseudonym-key",
    )
    p.add_argument(
        "--pseudonym-key",
        metavar="FILE",
        help="pseudonym key file (default: DIR.pseudonym-key.json beside the output folder; reused when present)",
    )
    p.add_argument(
        "--include-identifiers", action="store_true", help="put patient identifiers in reports and SR (off by default)"
    )
    add_selection_arguments(p, per_study=True)


def run(args: argparse.Namespace) -> int:
    """Run ``netlm batch``; returns the exit code (0, or 4 when any study failed).

    Ctrl-C, SIGTERM or SIGHUP stop the run: the workers are stopped, the studies that finished
    are kept in cohort.csv (the others ``pending``), one line says so; exit ``128 + signal``
    (130, 143, 129).
    """
    from ..batch.interrupt import exit_stopped, run_until_stopped

    code, stopped = run_until_stopped(lambda: _run(args))
    if stopped:
        print(stopped, file=sys.stderr)
        exit_stopped(code)
    return code


def _check_inputs_up_front(args: argparse.Namespace) -> None:
    """A broken --rules file or a --discrepancies table without its columns is one error (exit 3)
    before any study starts, not a failure recorded for every study of the cohort."""
    if args.rules is not None:
        from ..classify.rules import load_rules

        load_rules(args.rules)
    if args.discrepancies is not None:
        from ..errors import InputError
        from ..spreadsheet import read_table

        table = read_table(args.discrepancies, ("study", "verdict"), what="discrepancies CSV")
        if table.column("study") is None or table.column("verdict") is None:
            raise InputError(
                f"--discrepancies {args.discrepancies}: no 'study' and 'verdict' columns (found {table.header}); "
                "give the table netlm check --out writes"
            )


def _run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ..batch import BatchOptions, discover_cohort, run_cohort
    from ..errors import UsageError
    from .analyze import options_from_args

    if args.jobs < 1:
        raise UsageError(f"-j {args.jobs}: give at least 1 process")
    if args.scheduler is not None and args.jobs != 1:
        raise UsageError("-j and --scheduler exclude each other: the Dask cluster decides the parallelism")
    if args.timeout is not None and not args.timeout > 0:
        raise UsageError(f"--timeout {args.timeout}: give a positive number of seconds")
    if args.timeout is not None and args.scheduler is not None:
        raise UsageError("--timeout stops local worker processes; drop it with --scheduler (Dask has its own limits)")
    if args.rules is not None and not Path(args.rules).is_file():
        raise UsageError(f"--rules {args.rules}: file not found")
    if args.discrepancies is not None and not args.html:
        raise UsageError("--discrepancies flags studies in index.html: add --html")
    if args.discrepancies is not None and not Path(args.discrepancies).is_file():
        raise UsageError(f"--discrepancies {args.discrepancies}: file not found (write it with netlm check --out)")
    from ..io.label_spec import parse_label_spec

    parse_label_spec(args.labels)  # a bad --labels is a usage error before any study starts
    _check_inputs_up_front(args)
    aopts = asdict(options_from_args(args))
    out = Path(args.out)
    studies = discover_cohort(args.cohort, out_dir=out, rules=args.rules)
    key_path = None
    if args.pseudonym_key and not args.pseudonymize:
        raise UsageError("--pseudonym-key needs --pseudonymize")
    if args.pseudonymize:
        from ..batch.pseudonym import default_key_path, pseudonymize_studies
        from ..outdir import prepare_output_dir

        prepare_output_dir(out)
        key_path = Path(args.pseudonym_key) if args.pseudonym_key else default_key_path(out)
        if key_path.resolve().parent == out.resolve() or out.resolve() in key_path.resolve().parents:
            raise UsageError(
                f"--pseudonym-key {key_path}: keep the key outside --out {out}, which is meant to be shared"
            )
        studies = pseudonymize_studies(studies, key_path)
    options = BatchOptions(
        labels=args.labels,
        rules=str(Path(args.rules).resolve()) if args.rules else None,
        sr=args.sr,
        html=args.html,
        html_budget_mb=args.html_budget_mb,
        include_identifiers=args.include_identifiers,
        analyze_options=aopts,
        accepted_flags=tuple(getattr(args, "_options", ())),
    )
    result = run_cohort(
        studies,
        out,
        jobs=args.jobs,
        scheduler=args.scheduler,
        resume=args.resume,
        options=options,
        progress=not args.quiet,
        timeout_s=args.timeout,
    )
    index = None
    if args.html:
        from ..report.html import write_cohort_index

        index = write_cohort_index(out, result.rows, discrepancies=args.discrepancies)
    if not args.quiet:
        if index is not None:
            print(f"wrote {index}")
        print(
            f"{len(result.rows)} studies: {result.ok} ok, {result.failed} failed; "
            f"{result.analysed} analysed, {result.resumed} resumed (unchanged inputs) in {result.elapsed_s:.1f} s"
        )
        print(f"wrote {result.csv_path}")
        if key_path is not None:
            print(f"pseudonym key (keep it apart from {out}): {key_path}")
        for row in result.rows:
            if row["status"] != "ok":
                print(f"failed: {row['study_id']}: {row['error']}", file=sys.stderr)
    return result.exit_code
