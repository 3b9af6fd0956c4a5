"""Which rules keys an outcome test changes (and sees the outcome change), and how tests change them.

An outcome test writes a user rules file that changes one key of the shipped
``netlm_imaging/default_rules.toml``, loads it as users do (``--rules FILE``,
deep-merged over the defaults and validated) and checks that the code's result
changes to what the rule says, the expectation coming from a phantom the test
computes or from clinical_rules.md, never from the code. It is registered with
``@covers("table.key")``; ``tests/test_rules_keys.py`` enumerates every key of the
shipped file and fails when one has no registered outcome test.

Entries of the open tables (``resections``, ``anatomy.vessels``,
``anatomy.couinaud.segments``, ``pet_plausibility.nuclides``) are registered by
field with ``*`` for the entry name, e.g. ``"resections.*.segments"``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from netlm_imaging.classify.rules import Rules, load_rules

__all__ = ["COVERED", "OPEN_TABLES", "covers", "generic_key", "user_rules"]

#: Dotted key (``*`` for entries of open tables) -> outcome tests that change it.
COVERED: dict[str, list[str]] = {}

#: Tables whose entries are named by the user; keys are registered per field with ``*``.
OPEN_TABLES = ("resections", "anatomy.vessels", "anatomy.couinaud.segments", "pet_plausibility.nuclides")

F = TypeVar("F", bound=Callable[..., Any])


def covers(*keys: str) -> Callable[[F], F]:
    """Register the decorated test as the outcome test of ``keys``."""

    def mark(fn: F) -> F:
        for key in keys:
            COVERED.setdefault(key, []).append(f"{fn.__module__}::{fn.__name__}")
        return fn

    return mark


def generic_key(dotted: str) -> str:
    """``resections.left_hepatectomy.segments`` -> ``resections.*.segments`` (other keys unchanged)."""
    for table in OPEN_TABLES:
        if dotted.startswith(table + "."):
            rest = dotted[len(table) + 1 :].split(".", 1)
            return f"{table}.*." + rest[1] if len(rest) == 2 else dotted
    return dotted


def _nest(changes: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for dotted, value in changes.items():
        node = tree
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def user_rules(tmp_path: Path, changes: Mapping[str, Any] | None = None, name: str = "user_rules.json") -> Rules:
    """Write a user rules file setting the dotted keys of ``changes`` and load it as ``--rules`` does.

    ``changes=None`` (or empty) loads the shipped defaults through the same path.
    """
    path = Path(tmp_path) / name
    path.write_text(json.dumps(_nest(changes or {})))
    return load_rules(path)
