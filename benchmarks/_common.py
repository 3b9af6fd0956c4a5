"""Small helpers shared by the benchmark scripts: timing, child-process peak memory, tables."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ChildRun",
    "Row",
    "Timings",
    "best_time",
    "byte_compile_package",
    "format_table",
    "interleaved",
    "netlm_script",
    "python",
    "run_child",
    "warm_page_cache",
]

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


@dataclass
class Timings:
    """Repeated wall times (s) of one side of a comparison, warm-up runs already discarded."""

    runs: list[float]

    @property
    def min(self) -> float:
        """Fastest run."""
        return min(self.runs)

    @property
    def median(self) -> float:
        """Median run."""
        s = sorted(self.runs)
        n = len(s)
        return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])

    def show(self) -> str:
        """``min / median s``."""
        return f"{self.min:.3f} / {self.median:.3f} s"


def interleaved(sides: dict[str, Callable[[], float]], rounds: int, warmup: int = 1) -> dict[str, Timings]:
    """Time every side once per round, interleaved, alternating the order; the first ``warmup`` rounds are dropped.

    Each callable returns its own wall time (so that child processes can report theirs). Interleaving and
    alternating keep a changing machine load from favouring one side.
    """
    names = list(sides)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + max(1, rounds)):
        for name in names if r % 2 == 0 else names[::-1]:
            t = sides[name]()
            if r >= warmup:
                out[name].append(t)
    return {n: Timings(v) for n, v in out.items()}


@dataclass(frozen=True)
class ChildRun:
    """One child process: wall time, peak resident memory and outputs."""

    wall_s: float
    max_rss_bytes: int
    returncode: int
    stdout: str
    stderr: str


#: A small launcher: Linux children inherit the parent's peak RSS at fork, so the measured command is
#: started from this fresh, small interpreter, which reports the command's own wall time and peak RSS.
_LAUNCHER = (
    "import os, sys, time\n"
    "t0 = time.perf_counter()\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execvp(sys.argv[2], sys.argv[2:])\n"
    "_, status, ru = os.wait4(pid, 0)\n"
    "open(sys.argv[1], 'w').write(f'{time.perf_counter() - t0} {ru.ru_maxrss}')\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def run_child(argv: Sequence[str], *, env: dict[str, str] | None = None) -> ChildRun:
    """Run ``argv``; return its wall time, its own peak RSS (Linux ``ru_maxrss`` KiB -> bytes) and outputs."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    with tempfile.NamedTemporaryFile("r", suffix=".rusage") as res:
        proc = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, res.name, *argv],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=str(ROOT),
            check=False,
        )
        wall, rss_kib = res.read().split()
    return ChildRun(float(wall), int(rss_kib) * 1024, proc.returncode, proc.stdout, proc.stderr)


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
    ratio_min: float | None = None


def format_table(rows: Sequence[Row]) -> str:
    """Plain-text table of the rows."""
    head = ("measurement", "netlm (min / median)", "reference (min / median)", "ratio (median; min)", "target", "")
    cells = [
        (
            r.what,
            r.ours,
            r.reference,
            ("" if r.ratio is None else f"{r.ratio:.2f}") + ("" if r.ratio_min is None else f"; {r.ratio_min:.2f}"),
            r.target,
            "" if r.ok is None else ("PASS" if r.ok else "MISS"),
        )
        for r in rows
    ]
    widths = [max(len(str(c[i])) for c in [head, *cells]) for i in range(len(head))]
    lines = ["  ".join(str(c[i]).ljust(widths[i]) for i in range(len(head))).rstrip() for c in [head, *cells]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def byte_compile_package() -> str:
    """Byte-compile the netlm_imaging that the children import, as ``pip install`` does, and say so.

    Without bytecode every fresh process compiles the package's sources again (~0.1 s of a fresh
    ``netlm analyze``): that is the case when ``PYTHONDONTWRITEBYTECODE`` is set, as on the
    development VM, where a normal install (or a first run) would have written ``__pycache__``.
    The peers' packages come byte-compiled from their wheels.
    """
    import compileall

    import netlm_imaging

    package = Path(netlm_imaging.__file__).parent
    compileall.compile_dir(str(package), quiet=1)
    flag = os.environ.get("PYTHONDONTWRITEBYTECODE")
    return f"{package.name} byte-compiled before the fresh processes (PYTHONDONTWRITEBYTECODE={flag or 'unset'})"


def python() -> str:
    """The running interpreter (children use the same environment)."""
    return sys.executable


def netlm_script() -> str:
    """The ``netlm`` console script of this interpreter (not a pyenv/venv shim, whose RSS would be measured)."""
    script = Path(sys.executable).parent / "netlm"
    return str(script) if script.exists() else "netlm"
