"""The shipped rules data file (``default_rules.toml``), readable from every layer.

Every threshold the tool uses is a key of ``default_rules.toml``, which ships
beside this module. This module only reads it: io (PET plausibility), measure
(PET, MRI, remnant) and classify all take their defaults from here, so no
value has a second copy in code. Merging a user file over the defaults and
validating it is :mod:`netlm_imaging.classify.rules`, on top of this module.

Examples
--------
>>> default_section("krenning")["liver_band_fraction"]
0.1
>>> default_rules_tree()["rules_version"]
'netlm-rules-2026.1'
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

__all__ = ["RULES_FILE_NAME", "default_rules_text", "default_rules_tree", "default_section", "section_or_default"]

#: File name of the shipped rules, a package resource of :mod:`netlm_imaging`.
RULES_FILE_NAME = "default_rules.toml"


@lru_cache(maxsize=1)
def default_rules_text() -> str:
    """The shipped rules file, verbatim (with its source comments), to copy and edit.

    Returns
    -------
    str
        TOML text of ``default_rules.toml``.
    """
    return resources.files("netlm_imaging").joinpath(RULES_FILE_NAME).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _parsed() -> dict[str, Any]:
    return tomllib.loads(default_rules_text())


def default_rules_tree() -> dict[str, Any]:
    """The shipped rules as a new dict tree (a deep copy: callers may change it).

    Returns
    -------
    dict
        The parsed ``default_rules.toml``.
    """
    return copy.deepcopy(_parsed())


def default_section(name: str) -> dict[str, Any]:
    """One table of the shipped rules (a deep copy), by dotted name, e.g. ``"pet"`` or ``"anatomy.couinaud"``.

    Parameters
    ----------
    name : str
        Table name.

    Returns
    -------
    dict

    Raises
    ------
    KeyError
        The shipped file has no such table.
    """
    node: Any = _parsed()
    for part in name.split("."):
        node = node[part]
    if not isinstance(node, dict):
        raise KeyError(f"{name!r} is not a table of {RULES_FILE_NAME}")
    return copy.deepcopy(node)


def section_or_default(rules: Mapping[str, Any] | None, name: str) -> Mapping[str, Any]:
    """``rules[name]`` when the given rules have that table, else the shipped table.

    For API callers that pass no rules: the value then comes from the shipped
    file, never from a copy in code.

    Parameters
    ----------
    rules : mapping or None
        Loaded rules (:func:`netlm_imaging.classify.rules.load_rules`) or None.
    name : str
        Top-level table name, e.g. ``"mri"``.

    Returns
    -------
    Mapping

    Examples
    --------
    >>> section_or_default(None, "mri")["reference_erosion_mm"]
    3.0
    """
    if rules is not None and name in rules and isinstance(rules[name], Mapping):
        return rules[name]
    return default_section(name)
