"""Shared pieces of the sub-commands: option checks and the JSON-or-summary output.

Imports nothing heavy at module level (``netlm --help`` stays fast).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["add_selection_arguments", "check_json_and_voxels", "emit"]


def check_json_and_voxels(args: argparse.Namespace, filename: str) -> None:
    """Refuse ``--json`` values other than ``-`` and a non-positive ``--max-voxels`` (exit 2)."""
    from ..errors import UsageError

    if getattr(args, "json_out", None) not in (None, "-"):
        raise UsageError(f"--json takes only '-' (stdout); use --out DIR to write {filename}")
    if getattr(args, "max_voxels", None) is not None and args.max_voxels <= 0:
        raise UsageError("--max-voxels must be positive")


def emit(data: dict[str, Any], args: argparse.Namespace, filename: str, summary: Callable[[dict], str]) -> int:
    """Print ``data`` as JSON (``--json -``), or print its summary and write ``--out/filename`` atomically."""
    from ..atomic import atomic_write_text

    text = json.dumps(data, indent=2) + "\n"
    if args.json_out == "-":
        sys.stdout.write(text)
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
