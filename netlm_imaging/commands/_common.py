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

__all__ = ["check_json_and_voxels", "emit"]


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
