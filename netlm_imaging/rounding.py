"""How the report rounds its numbers (no ``100.00000000000001`` in a report)."""

from __future__ import annotations

from typing import Any

__all__ = ["round_or_none", "rounded"]


def rounded(obj: Any, nd: int = 6) -> Any:
    """Floats rounded to ``nd`` decimals inside nested dicts/lists.

    Examples
    --------
    >>> rounded({"a": [0.1 + 0.2, 1], "b": "x"})
    {'a': [0.3, 1], 'b': 'x'}
    """
    if isinstance(obj, float):
        return round(obj, nd)
    if isinstance(obj, dict):
        return {k: rounded(v, nd) for k, v in obj.items()}
    if isinstance(obj, list):
        return [rounded(v, nd) for v in obj]
    return obj


def round_or_none(v: float | None, nd: int = 4) -> float | None:
    """``v`` as a float rounded to ``nd`` decimals; None stays None."""
    return None if v is None else round(float(v), nd)
