"""Wall time per stage of an in-process ``netlm analyze``, to see each part of issue 17 apart from the others.

:class:`StageClock` wraps a few library functions (every module-level reference to them in the loaded
``netlm_imaging`` modules, so that ``from .x import f`` callers are timed too) and adds up their wall
time per run. Only the outermost call of a stage counts (a stage calling itself is not counted twice), and
a stage called inside another counts for the inner one only (the debulking plan's zone union is zones time).
The wrappers cost a few microseconds per call; the timed analysis is otherwise the unmodified one.
"""

from __future__ import annotations

import functools
import importlib
import sys
import time
from collections.abc import Callable
from typing import Any

#: (stage, module, function names); "*" = every public function defined in the module.
STAGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("discover", "netlm_imaging.io.discover", ("discover_study",)),
    ("CT read", "netlm_imaging.io.dicom_series", ("read_series_from_index",)),
    ("SEG read", "netlm_imaging.io.loader", ("load_segmentation",)),
    ("measure", "netlm_imaging.measure.burden", ("measure_burden",)),
    ("zones (issue 13)", "netlm_imaging.classify.zones", ("*",)),
    ("plan (issue 13)", "netlm_imaging.classify.planner", ("plan_debulking",)),
    ("write outputs", "netlm_imaging.report.outputs", ("write_outputs",)),
)


class StageClock:
    """Adds up the wall time of each stage of :data:`STAGES` per run (``start()`` begins a run)."""

    def __init__(self) -> None:
        self.runs: list[dict[str, float]] = []
        self._depth: dict[str, int] = {}
        self._stack: list[str] = []
        self._installed = False

    def start(self) -> None:
        """Begin a new run (installs the wrappers on first use)."""
        if not self._installed:
            self._install()
        self.runs.append(dict.fromkeys((s for s, _m, _f in STAGES), 0.0))

    def _wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            depth = self._depth.get(stage, 0)
            self._depth[stage] = depth + 1
            outer = self._stack[-1] if self._stack else None
            self._stack.append(stage)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                self._stack.pop()
                self._depth[stage] = depth
                if depth == 0 and self.runs:
                    self.runs[-1][stage] += dt
                    if outer is not None and outer != stage:
                        self.runs[-1][outer] -= dt  # inside another stage: counted once, for this one

        return timed

    def _install(self) -> None:
        import netlm_imaging.api
        import netlm_imaging.classify.surgical  # noqa: F401

        for stage, module_name, names in STAGES:
            module = importlib.import_module(module_name)
            if names == ("*",):
                names = tuple(
                    n
                    for n, v in vars(module).items()
                    if callable(v) and not n.startswith("_") and getattr(v, "__module__", "") == module_name
                )
            for name in names:
                fn = getattr(module, name)
                wrapped = self._wrap(stage, fn)
                for mod in [m for n, m in sys.modules.items() if n.startswith("netlm_imaging") and m is not None]:
                    for attr, value in list(vars(mod).items()):
                        if value is fn:
                            setattr(mod, attr, wrapped)
        self._installed = True

    def medians(self) -> dict[str, float]:
        """Median wall time of each stage over the runs."""
        out = {}
        for stage, _m, _f in STAGES:
            values = sorted(r[stage] for r in self.runs)
            n = len(values)
            out[stage] = values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])
        return out
