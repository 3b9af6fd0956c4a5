"""The voxel budget of the readers: how many voxels one file or series may declare before it is read.

A header can declare any size; every reader checks the declared size against the budget
before it allocates (:func:`check_voxel_budget`), and bounded decompression stops at it
(:mod:`netlm_imaging.io._inflate`). One analysis sets its ``--max-voxels`` for every reader it
calls with :func:`voxel_budget`.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from ..errors import ResourceLimitError

__all__ = ["DEFAULT_MAX_VOXELS", "check_voxel_budget", "effective_max_voxels", "voxel_budget"]

#: Default limit on voxels a single array may declare (about 2 GB as float32).
DEFAULT_MAX_VOXELS = 512 * 512 * 2000

_BUDGET: contextvars.ContextVar[int | None] = contextvars.ContextVar("netlm_max_voxels", default=None)


def effective_max_voxels(max_voxels: int | None = None) -> int:
    """The voxel budget in force: ``max_voxels``, else the one of :func:`voxel_budget`, else the default."""
    if max_voxels is not None:
        return int(max_voxels)
    scoped = _BUDGET.get()
    return DEFAULT_MAX_VOXELS if scoped is None else int(scoped)


@contextlib.contextmanager
def voxel_budget(max_voxels: int | None) -> Iterator[None]:
    """Make ``max_voxels`` the budget of every reader called inside (``--max-voxels`` of one analysis).

    Readers that are not handed a budget (file discovery, bounded decompression) use it.
    """
    token = _BUDGET.set(max_voxels)
    try:
        yield
    finally:
        _BUDGET.reset(token)


def check_voxel_budget(shape: tuple[int, ...], max_voxels: int | None, source: str) -> None:
    """Refuse declared array sizes above the voxel budget before allocating.

    Parameters
    ----------
    shape : tuple of int
        Declared shape.
    max_voxels : int or None
        Limit; ``None`` uses :data:`DEFAULT_MAX_VOXELS`.
    source : str
        File named in the error message.

    Raises
    ------
    ResourceLimitError
        If the product of ``shape`` exceeds the limit or a dimension is negative.
    """
    limit = effective_max_voxels(max_voxels)
    if any(int(s) < 0 for s in shape):
        raise ResourceLimitError(f"{source}: declared dimensions {tuple(shape)} are negative; the header is corrupt.")
    n = 1
    for s in shape:
        n *= int(s)
    if n > limit:
        raise ResourceLimitError(
            f"{source}: declares {n:,} voxels {tuple(int(s) for s in shape)}, above the limit of {limit:,}; "
            "check the file or raise --max-voxels."
        )
