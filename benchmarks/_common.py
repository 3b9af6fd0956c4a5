"""Small helpers shared by the benchmark scripts: timing, child-process peak memory, tables."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ChildRun", "Row", "best_time", "format_table", "netlm_script", "python", "run_child", "warm_page_cache"]

ROOT = Path(__file__).resolve().parents[1]


def best_time(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall time (s) of ``repeat`` calls of ``fn`` and the last result."""
    best = float("inf")
    result: Any = None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


@dataclass(frozen=True)
class ChildRun:
    """One child process: wall time, peak resident memory and outputs."""

    wall_s: float
    max_rss_bytes: int
    returncode: int
    stdout: str
    stderr: str


def run_child(argv: Sequence[str], *, env: dict[str, str] | None = None) -> ChildRun:
    """Run ``argv``; return its wall time, its own peak RSS (``os.wait4``; Linux KiB -> bytes) and outputs."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"netlm_bench_{os.getpid()}_{time.monotonic_ns()}"
    with open(f"{out_path}.out", "w+") as fo, open(f"{out_path}.err", "w+") as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=fo, stderr=fe, env=full_env, cwd=str(ROOT))
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read()
    for suffix in (".out", ".err"):
        Path(f"{out_path}{suffix}").unlink(missing_ok=True)
    return ChildRun(wall, int(usage.ru_maxrss) * 1024, proc.returncode, out, err)


def warm_page_cache(paths: Sequence[Path]) -> int:
    """Read every file once so that timings compare decoding, not the first disk read."""
    total = 0
    for p in paths:
        if p.is_dir():
            total += warm_page_cache(sorted(p.rglob("*")))
        elif p.is_file():
            total += len(p.read_bytes())
    return total


@dataclass(frozen=True)
class Row:
    """One line of the result table."""

    what: str
    ours: str
    reference: str
    ratio: float | None
    target: str
    ok: bool | None


def format_table(rows: Sequence[Row]) -> str:
    """Plain-text table of the rows."""
    head = ("measurement", "netlm", "reference", "ratio", "target", "")
    cells = [
        (
            r.what,
            r.ours,
            r.reference,
            "" if r.ratio is None else f"{r.ratio:.2f}",
            r.target,
            "" if r.ok is None else ("PASS" if r.ok else "MISS"),
        )
        for r in rows
    ]
    widths = [max(len(str(c[i])) for c in [head, *cells]) for i in range(len(head))]
    lines = ["  ".join(str(c[i]).ljust(widths[i]) for i in range(len(head))).rstrip() for c in [head, *cells]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def python() -> str:
    """The running interpreter (children use the same environment)."""
    return sys.executable


def netlm_script() -> str:
    """The ``netlm`` console script of this interpreter (not a pyenv/venv shim, whose RSS would be measured)."""
    script = Path(sys.executable).parent / "netlm"
    return str(script) if script.exists() else "netlm"
