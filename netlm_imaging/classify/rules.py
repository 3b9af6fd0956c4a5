"""The versioned rules data file: defaults, user overrides, validation.

Every threshold of the surgical classification, the remnant calculation, the
debulking planner and the PET Krenning/SRETV settings is data in
``default_rules.toml`` (shipped with the package, read by
:mod:`netlm_imaging.rules_data`, which every layer may import). A user file (TOML or JSON,
``netlm analyze --rules FILE``) is deep-merged over the defaults: it gives only
the keys it changes. Keys the defaults do not have are refused (a typo must not
silently fall back to a default), as are values of the wrong type or outside
their allowed set.

Examples
--------
>>> rules = load_rules()
>>> rules.version
'netlm-rules-2026.1'
>>> rules["debulking"]["threshold_percent"]
70.0
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import InputError, UsageError
from ..rules_data import default_rules_text, default_rules_tree
from .anatomy import validate_anatomy

__all__ = ["Rules", "default_rules_text", "load_rules", "meets"]

logger = logging.getLogger(__name__)

#: Tables whose entries a user may add (each new entry must look like the first default entry).
_OPEN_TABLES = ("resections", "pet_plausibility.nuclides", "anatomy.vessels")
#: Tables of FLR thresholds by liver condition that ship without some conditions (no sourced value,
#: clinical_rules.md section 6): a user file may add a threshold for any liver condition the tool knows.
_CONDITION_TABLES = ("flr.non_tumorous_threshold_percent",)
_LIVER_CONDITIONS = ("normal", "chemotherapy", "steatosis", "fibrosis", "cirrhosis")  # clinical.inputs'

#: Allowed values of string settings (dotted key -> allowed values).
_CHOICES: dict[str, tuple[str, ...]] = {
    "debulking.comparator": (">=", ">"),
    "debulking.primary_measure": ("volume", "count"),
    "cloyd.comparator": (">=", ">"),
    "flr.denominator": ("telv", "non_tumorous"),
    "flr.fallback_denominator": ("telv", "non_tumorous", "none"),
    "flr.comparator": (">=", ">"),
    "body.bsa_formula": ("mosteller", "dubois"),
    "body.telv_formula": ("vauthey",),
    "anatomy.caudate_side": ("separate", "left"),
    "recist.diameter_method": ("edge", "centre"),
}

#: Numeric settings that must be >= 0 (all percentages, sizes and margins).
_NON_NEGATIVE_SUFFIXES = ("_percent", "_mm", "_ml", "_fraction", "_lesions", "_ratio", "max_ecog", "max_targets")


#: Relative tolerance of a diameter against a size limit (RECIST, ablation, enucleation). A lesion exactly
#: at a limit on an oblique grid reads up to ~1e-7 below or above it: NIfTI stores the affine in float32
#: (relative precision 6e-8) and DICOM direction cosines are decimal strings. 1e-5 is 0.1 um at 10 mm.
DIAMETER_REL_TOL = 1e-5


def meets(value: float, threshold: float, comparator: str, rel_tol: float = 1e-9) -> bool:
    """``value >= threshold`` or ``value > threshold`` as the rules' comparator says.

    A relative tolerance (``rel_tol``, 1e-9 by default) absorbs floating-point noise, so 70.0
    computed as 0.7 * 100 still meets ``>= 70``; diameters pass :data:`DIAMETER_REL_TOL`.

    Examples
    --------
    >>> meets(70.0, 70.0, ">="), meets(70.0, 70.0, ">")
    (True, False)
    >>> meets(9.9999997, 10.0, ">="), meets(9.9999997, 10.0, ">=", DIAMETER_REL_TOL)
    (False, True)
    """
    tol = rel_tol * max(1.0, abs(threshold))
    if comparator == ">=":
        return value >= threshold - tol
    if comparator == ">":
        return value > threshold + tol
    raise ValueError(f"unknown comparator {comparator!r}")


class Rules(Mapping[str, Any]):
    """Validated rules: read-only, dict-like access plus the version string.

    Parameters
    ----------
    data : dict
        The merged rules tree.
    version : str
        Version for the report, e.g. ``"netlm-rules-2026.1"`` or
        ``"netlm-rules-2026.1+user:my_rules.toml"``.
    source : str
        Where the rules came from (for messages).
    """

    def __init__(self, data: dict[str, Any], version: str, source: str = "default") -> None:
        self._data = data
        self.version = version
        self.source = source

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the rules tree."""
        return copy.deepcopy(self._data)

    def flr_threshold_percent(self, liver_condition: str | None, denominator: str = "telv") -> float:
        """FLR threshold for a liver condition (``None`` means ``normal``) on a denominator.

        ``denominator="telv"`` reads ``flr.threshold_percent`` (standardized
        FLR); ``"non_tumorous"`` reads ``flr.non_tumorous_threshold_percent``
        (thresholds published on the CT non-tumorous liver).

        Raises
        ------
        InputError
            If the rules have no threshold for the condition on that denominator.
        """
        key = "threshold_percent" if denominator == "telv" else "non_tumorous_threshold_percent"
        table = self._data["flr"][key]
        cond = liver_condition or "normal"
        if cond not in table:
            raise InputError(
                f"{self.source}: no FLR threshold for liver condition {cond!r} in 'flr.{key}'; "
                f"known conditions: {', '.join(sorted(table))}"
            )
        return float(table[cond])

    def __repr__(self) -> str:
        return f"Rules(version={self.version!r})"


def _read_user_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"{path}: rules file not found; give an existing TOML or JSON file to --rules")
    raw = path.read_bytes()
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(raw.decode("utf-8"))
        elif suffix == ".toml":
            data = tomllib.loads(raw.decode("utf-8"))
        else:
            raise InputError(f"{path}: rules file must end in .toml or .json (got {suffix or 'no suffix'!r})")
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: rules file is not valid {suffix[1:].upper()}: {exc}; fix the syntax") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: rules file must hold a table/object at top level, got {type(data).__name__}")
    return data


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "table"
    return type(value).__name__


def _coerce(default: Any, value: Any, key: str, source: str) -> Any:
    """Check ``value`` has the type of ``default``; ints are accepted for floats."""
    want = _type_name(default)
    got = _type_name(value)
    if want != got:
        raise InputError(
            f"{source}: rules key {key!r} must be a {want}, got {got} {value!r}; see the default rules file"
        )
    if want == "number":
        if isinstance(default, int) and not isinstance(value, int):
            if float(value).is_integer():
                return int(value)
            raise InputError(f"{source}: rules key {key!r} must be a whole number, got {value!r}")
        if not math.isfinite(float(value)):
            raise InputError(f"{source}: rules key {key!r} must be a finite number, got {value!r}")
        return float(value) if isinstance(default, float) else value
    if want == "list" and default:
        elem = default[0]
        return [_coerce(elem, v, f"{key}[{i}]", source) for i, v in enumerate(value)]
    return value


def _merge(default: dict[str, Any], user: dict[str, Any], prefix: str, source: str) -> dict[str, Any]:
    out = copy.deepcopy(default)
    for key, value in user.items():
        dotted = f"{prefix}{key}"
        if key not in default:
            if prefix.rstrip(".") in _CONDITION_TABLES and key in _LIVER_CONDITIONS:
                out[key] = _coerce(0.0, value, dotted, source)  # a percentage, as the table's others
                continue
            if prefix.rstrip(".") in _OPEN_TABLES and isinstance(value, dict):
                template = next(iter(default.values()))
                missing = sorted(set(template) - set(value))
                if missing:
                    raise InputError(f"{source}: new entry {dotted!r} lacks {', '.join(missing)}; give all of them")
                out[key] = _merge(template, value, dotted + ".", source)
                continue
            known = ", ".join(sorted(default))
            raise InputError(f"{source}: unknown rules key {dotted!r}; known keys here: {known}")
        if isinstance(default[key], dict):
            if not isinstance(value, dict):
                raise InputError(f"{source}: rules key {dotted!r} must be a table, got {_type_name(value)} {value!r}")
            out[key] = _merge(default[key], value, dotted + ".", source)
        else:
            out[key] = _coerce(default[key], value, dotted, source)
    return out


def _walk(tree: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _walk(value, dotted + ".")
        else:
            yield dotted, value


def _check_values(data: dict[str, Any], source: str) -> None:
    """Semantic checks: allowed strings, non-negative numbers, segment numbers, ordered bins."""
    for dotted, value in _walk(data):
        if dotted in _CHOICES and value not in _CHOICES[dotted]:
            raise InputError(
                f"{source}: rules key {dotted!r} = {value!r} is not allowed; use one of {', '.join(_CHOICES[dotted])}"
            )
        leaf = dotted.rsplit(".", 1)[-1]
        if "threshold_percent." in dotted:  # a liver condition's FLR threshold (flr.*threshold_percent.<condition>)
            leaf += "_percent"
        if isinstance(value, (int, float)) and not isinstance(value, bool) and leaf.endswith(_NON_NEGATIVE_SUFFIXES):
            if value < 0 and leaf != "telv_intercept_ml":
                raise InputError(f"{source}: rules key {dotted!r} must be >= 0, got {value!r}")
    segs_keys = [("anatomy", "right_hemiliver"), ("anatomy", "left_hemiliver")]
    segs_keys += [("resections", name) for name in data["resections"]]
    for table, key in segs_keys:
        segs = data[table][key]["segments"] if table == "resections" else data[table][key]
        if any(s < 1 or s > 8 for s in segs) or len(set(segs)) != len(segs):
            raise InputError(
                f"{source}: rules key '{table}.{key}' must list distinct Couinaud segments 1-8, got {segs}"
            )
    burden = data["burden"]
    edges = burden["bin_upper_edges_percent"]
    if sorted(edges) != edges or len(burden["bin_labels"]) != len(edges) + 1:
        raise InputError(
            f"{source}: 'burden.bin_upper_edges_percent' must be increasing and 'burden.bin_labels' must have "
            f"one more entry ({len(edges) + 1}), got {edges} and {len(burden['bin_labels'])} labels"
        )
    for key in ("ablation_vessel_contact_mm", "resection_vessel_contact_mm"):
        if not data["planner"][key] >= 0:
            raise InputError(f"{source}: 'planner.{key}' is a distance in mm, >= 0 (got {data['planner'][key]!r})")
    if data["planner"]["cost_resolution_ml"] <= 0:
        raise InputError(f"{source}: 'planner.cost_resolution_ml' must be > 0")
    if data["planner"]["segment_involvement_min_fraction"] > 1:
        raise InputError(
            f"{source}: 'planner.segment_involvement_min_fraction' is a fraction of the lesion, 0-1 "
            f"(got {data['planner']['segment_involvement_min_fraction']!r}; 0.05 is 5 %)"
        )
    if not data["flr"]["threshold_percent"]:
        raise InputError(f"{source}: 'flr.threshold_percent' needs at least one liver condition")
    validate_anatomy(data["anatomy"], source)
    if data["anatomy"]["couinaud"]["min_remnant_segments"] < 1:
        raise InputError(f"{source}: 'anatomy.couinaud.min_remnant_segments' must be >= 1")
    grade = data["grade"]
    if not 0 < grade["ki67_g2_min_percent"] <= grade["ki67_g3_above_percent"] <= 100:
        raise InputError(
            f"{source}: 'grade.ki67_g2_min_percent' and 'grade.ki67_g3_above_percent' must satisfy "
            f"0 < g2_min <= g3_above <= 100, got {grade['ki67_g2_min_percent']} and {grade['ki67_g3_above_percent']}"
        )
    for kind in ("abs_tolerance", "rel_tolerance"):
        for q, v in data["check"][kind].items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise InputError(f"{source}: rules key 'check.{kind}.{q}' must be a finite number >= 0, got {v!r}")
    iou = data["compare_seg"]["detection_iou"]
    if isinstance(iou, bool) or not isinstance(iou, (int, float)) or not 0.5 <= iou < 1.0:
        raise InputError(
            f"{source}: rules key 'compare_seg.detection_iou' must be a number with 0.5 <= value < 1 (below 0.5 "
            f"a lesion could match several), got {iou!r}"
        )
    for table, key in (("body", "height_cm_range"), ("body", "weight_kg_range"), ("pet", "sul_height_m_range")):
        _check_range(data[table][key], f"{table}.{key}", source)
    hu = data["ct_plausibility"]["liver_mean_hu_range"]
    if not (_numbers(hu) and len(hu) == 2 and hu[0] < hu[1]):
        raise InputError(
            f"{source}: rules key 'ct_plausibility.liver_mean_hu_range' must be [low, high] in HU with low < high, "
            f"got {hu!r}"
        )
    for key in ("transient_retry_pauses_s", "held_retry_pauses_s"):
        pauses = data["pacs"][key]
        if not (_numbers(pauses) and all(p >= 0 for p in pauses)):
            raise InputError(
                f"{source}: rules key 'pacs.{key}' must list pauses in seconds >= 0 (one per new try, [] for "
                f"none), got {pauses!r}"
            )
    _check_mri(data["mri"], source)
    _check_pet(data, source)


def _numbers(value: Any) -> bool:
    """A list of finite numbers (not booleans)."""
    return isinstance(value, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
    )


def _check_range(value: Any, dotted: str, source: str) -> None:
    """A plausibility range: two numbers, 0 < low < high."""
    if not (_numbers(value) and len(value) == 2 and 0 < value[0] < value[1]):
        raise InputError(f"{source}: rules key {dotted!r} must be [low, high] with 0 < low < high, got {value!r}")


def _check_pet(data: dict[str, Any], source: str) -> None:
    """The PET settings, checked when the rules are loaded (not only when a PET is measured)."""
    from ..errors import UsageError
    from ..measure.pet import check_pet_rules

    try:
        check_pet_rules(data)
    except (InputError, UsageError) as exc:
        raise InputError(f"{source}: {str(exc).removeprefix('rules file: ')}") from exc


def _check_mri(mri: dict[str, Any], source: str) -> None:
    """Phase windows: one [start, end) per phase, increasing and not overlapping; N4 settings >= 1."""
    order, starts, ends = mri["phase_order"], mri["phase_window_start_s"], mri["phase_window_end_s"]
    known = ("arterial", "portal_venous", "transitional", "hepatobiliary")
    if len(order) != len(starts) or len(order) != len(ends) or any(p not in known for p in order):
        raise InputError(
            f"{source}: 'mri.phase_order', 'mri.phase_window_start_s' and 'mri.phase_window_end_s' must have one "
            f"entry per phase ({', '.join(known)}), got {order}, {starts}, {ends}"
        )
    for i, (lo, hi) in enumerate(zip(starts, ends, strict=True)):
        if lo < 0 or hi <= lo or (i and lo < ends[i - 1]):
            raise InputError(
                f"{source}: MR phase window {order[i]!r} [{lo}, {hi}) s must start >= 0, end after it starts and "
                "not overlap the previous window; fix 'mri.phase_window_start_s' / 'mri.phase_window_end_s'"
            )
    for key in ("n4_shrink_factor", "n4_iterations", "n4_fitting_levels"):
        if mri[key] < 1:
            raise InputError(f"{source}: rules key 'mri.{key}' must be >= 1, got {mri[key]!r}")


def load_rules(path: str | Path | Mapping[str, Any] | None = None) -> Rules:
    """Load the default rules, optionally deep-merged with a user file.

    Parameters
    ----------
    path : str, pathlib.Path, mapping or None
        User rules file (``.toml`` or ``.json``) giving only the keys it
        changes, or the same keys as a mapping (``{"flr": {"threshold_percent":
        {"normal": 25.0}}}``). ``None`` returns the shipped defaults.

    Returns
    -------
    Rules
        Validated rules. ``version`` is the default version, or
        ``"<default>+user:<file name>"`` (``+user:mapping`` for a mapping;
        ``"...@<user version>"`` when the user file sets ``rules_version``).

    Raises
    ------
    InputError
        Missing/unparsable file, unknown key (named), wrong type, or a value
        outside its allowed set.
    UsageError
        ``path`` is neither a path nor a mapping.

    Examples
    --------
    >>> load_rules().flr_threshold_percent("cirrhosis")
    40.0
    """
    default = default_rules_tree()
    base_version = default["rules_version"]
    if path is None:
        _check_values(default, "default rules")
        return Rules(default, base_version, "default rules")
    if isinstance(path, Mapping):  # the keys it changes, given from Python as a file would give them
        source, name, user = "rules (the mapping given to analyze)", "mapping", copy.deepcopy(dict(path))
    elif isinstance(path, (str, os.PathLike)):
        p = Path(path)
        source, name, user = str(p), p.name, _read_user_file(p)
    else:
        raise UsageError(
            f"rules: a rules file path or a mapping of the keys it changes was expected, not {type(path).__name__}; "
            "e.g. rules={'flr': {'threshold_percent': {'normal': 25.0}}}."
        )
    user_version = user.pop("rules_version", None)
    if user_version is not None and not isinstance(user_version, str):
        raise InputError(f"{source}: rules key 'rules_version' must be a string, got {user_version!r}")
    merged = _merge(default, user, "", source)
    _check_values(merged, source)
    version = f"{base_version}+user:{name}"
    if user_version:
        version += f"@{user_version}"
    merged["rules_version"] = version
    logger.info("rules %s loaded from %s", version, source)
    return Rules(merged, version, source)
