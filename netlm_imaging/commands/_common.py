"""Shared pieces of the sub-commands: option checks and the JSON-or-summary output.

Imports nothing heavy at module level (``netlm --help`` stays fast).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

__all__ = [
    "WarningLog",
    "add_pacs_analysis_arguments",
    "add_selection_arguments",
    "check_json_and_voxels",
    "check_output",
    "emit",
    "print_warnings",
    "write_stdout",
]


class WarningLog(logging.Filter):
    """Remembers the warnings already logged to stderr, so :func:`print_warnings` does not repeat them."""

    seen: ClassVar[list[str]] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            WarningLog.seen.append(record.getMessage())
        return True


def print_warnings(warnings: list[str]) -> None:
    """Print a report's warnings on stderr (``netlm: warning: ...``), skipping those already logged."""

    def tail(text: str) -> str:  # the text after the location prefix (report paths are relative, logs absolute)
        _head, sep, rest = text.partition(": ")
        return rest if sep and len(rest) > 20 else text

    for w in warnings:
        if not any(w in s or s in w or tail(w) == tail(s) for s in WarningLog.seen):
            print(f"netlm: warning: {w}", file=sys.stderr)


def check_json_and_voxels(args: argparse.Namespace, filename: str) -> None:
    """Refuse ``--json`` values other than ``-`` and a non-positive ``--max-voxels`` (exit 2)."""
    from ..errors import UsageError

    if getattr(args, "json_out", None) not in (None, "-"):
        raise UsageError(f"--json takes only '-' (stdout); use --out DIR to write {filename}")
    if getattr(args, "max_voxels", None) is not None and args.max_voxels <= 0:
        raise UsageError(f"--max-voxels {args.max_voxels}: must be positive")


_CLOSED = "--json -: standard output is closed; redirect it to a file (> report.json) or use --out DIR"


def check_output(args: argparse.Namespace) -> None:
    """Before any work: ``--json -`` needs an open stdout, ``--out DIR`` a writable folder (else exit 3)."""
    from ..errors import OutputError

    if getattr(args, "json_out", None) == "-":
        if sys.stdout is None or sys.stdout.closed:
            raise OutputError(
                "--json -: standard output is closed; redirect it to a file (> report.json) or use --out DIR"
            )
        return
    if getattr(args, "out", None):
        from ..outdir import prepare_output_dir

        prepare_output_dir(args.out)


def write_stdout(text: str) -> None:
    """Write ``text`` to stdout; a closed stdout or broken pipe becomes an OutputError (exit 3)."""
    from ..errors import OutputError

    if sys.stdout is None:
        raise OutputError(_CLOSED)
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except (BrokenPipeError, ValueError, OSError) as exc:
        with contextlib.suppress(OSError, ValueError):  # no second error at interpreter exit
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise OutputError(
            f"--json -: cannot write the report to standard output ({reason}); "
            "redirect it to a file (> report.json) or use --out DIR"
        ) from None


def emit(data: dict[str, Any], args: argparse.Namespace, filename: str, summary: Callable[[dict], str]) -> int:
    """Print ``data`` as JSON (``--json -``), or print its summary and write ``--out/filename`` atomically."""
    from ..atomic import atomic_write_text

    text = json.dumps(data, indent=2) + "\n"
    if args.json_out == "-":
        write_stdout(text)
        return 0
    print(summary(data))
    if args.out:
        path = Path(args.out) / filename
        atomic_write_text(path, text)
        print(f"wrote {path}")
    return 0


def add_selection_arguments(p: argparse.ArgumentParser, *, per_study: bool = False) -> None:
    """The options that choose what a study folder's analysis reads (as in ``netlm analyze``).

    Added to ``batch``, ``pacs`` and ``listen`` so that every message naming
    one of them suggests an option the running command accepts.
    """
    each = " (applied to every study)" if per_study else ""
    p.add_argument(
        "--segment-pattern",
        action="append",
        default=[],
        metavar="REGEX=ROLE",
        help="role for segment/ROI names matching REGEX (case-insensitive; repeatable)" + each,
    )
    p.add_argument("--seg-choice", help="which segmentation when a study holds several (index or UID)" + each)
    p.add_argument("--image-series", help="SeriesInstanceUID of the image when a study holds several" + each)
    if not any(a.dest == "allow_resample" for a in p._actions):
        p.add_argument(
            "--allow-resample",
            action="store_true",
            help="resample DICOM series with a missing slice or irregular steps onto a regular grid",
        )
    if not any(a.dest == "max_voxels" for a in p._actions):
        p.add_argument("--max-voxels", type=int, help="refuse images declaring more voxels than this")


def add_pacs_analysis_arguments(p: argparse.ArgumentParser, *, listen: bool = False) -> None:
    """Analysis options of the commands that get studies from a PACS (``pacs``, ``listen``: ``listen=True``)."""
    p.add_argument("--labels", help="role mapping for segment names/values, e.g. liver=Liver,lesion=Lesion*")
    p.add_argument("--rules", help="rules file (TOML/JSON) overriding the default clinical rules")
    p.add_argument(
        "--include-identifiers",
        action="store_true",
        help="keep patient identifiers in the local report/SR/SEG copies (off by default)",
    )
    p.add_argument(
        "--pet-half-life",
        type=float,
        metavar="SECONDS",
        help="radionuclide half-life in s for the SUV of a PET study (overrides DICOM RadionuclideHalfLife; "
        "Ga-68: 4069.8)" + (" of every study received" if listen else ""),
    )
    add_selection_arguments(p)
