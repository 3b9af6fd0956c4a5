"""Progress of a batch: a tqdm bar with ETA on a terminal, one plain line per study otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["Progress"]


class Progress:
    """tqdm bar with ETA on a terminal, one plain line per study otherwise, nothing when disabled."""

    def __init__(self, total: int, enabled: bool, stream: Any = None) -> None:
        self.total, self.done, self.enabled = total, 0, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.t0 = time.perf_counter()
        self.bar = None
        if enabled and hasattr(self.stream, "isatty") and self.stream.isatty():
            from tqdm import tqdm

            tqdm.monitor_interval = 0  # no monitor thread: the local pool forks workers
            self.bar = tqdm(total=total, unit="study", file=self.stream, dynamic_ncols=True)

    def update(self, row: dict[str, Any]) -> None:
        self.done += 1
        if not self.enabled:
            return
        state = "resumed" if row.get("resumed") else row["status"]
        if self.bar is not None:
            self.bar.set_postfix_str(f"{row['study_id']} {state}", refresh=False)
            self.bar.update(1)
            return
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / self.done * (self.total - self.done)
        msg = f"netlm batch: {self.done}/{self.total} {row['study_id']} {state}"
        if row["status"] == "failed":
            msg += f": {row['error']}"
        self.stream.write(f"{msg} (elapsed {elapsed:.0f} s, ETA {eta:.0f} s)\n")
        self.stream.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
