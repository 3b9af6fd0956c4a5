"""Clinical inputs the images cannot give (``--clinical FILE`` or a batch CSV row).

A sidecar file (JSON or TOML) or one CSV row holds any of the fields of
:class:`ClinicalInputs`; every field is optional (a missing field becomes a
``missing_inputs`` entry in the classification, never a guess). Values are
validated strictly: a wrong type, a value outside the allowed set or an
impossible value (height 20 cm, weight 700 kg, Ki-67 150 %) raises
:class:`~netlm_imaging.errors.InputError` naming the file, the field, the bad
value and what is allowed.

Height and weight fall back to the DICOM header facts (PatientSize (0010,1020) in metres, PatientWeight
(0010,1030) in kg; clinical_rules.md section 6); :func:`resolve_body_size` says which source was used.
"""

from __future__ import annotations

import json
import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import InputError, UsageError
from ..rules_data import default_section
from .cells import (
    DIFFERENTIATION,
    LIVER_CONDITIONS,
    NEC_WORDS,
    SEXES,
    as_bool,
    as_choice,
    as_int,
    as_number,
    bad,
    condition_cell,
    in_range,
    ki67_cell,
    symptoms_cell,
)
from .text import (
    CONDITION_COLUMNS,
    ECOG_PREFIXES,
    GRADE_PREFIXES,
    canonical_field,
    is_missing_text,
)

__all__ = [
    "ClinicalInputs",
    "ClinicalRow",
    "as_clinical_inputs",
    "clinical_from_row",
    "clinical_inputs_used",
    "load_clinical",
    "resolve_body_size",
    "source_label",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClinicalInputs:
    """Clinical facts per study; ``None`` means not given.

    Attributes
    ----------
    symptoms : {"none", "hormonal", "bulk", "symptomatic"} or None
        Hormonal (functional syndrome) or bulk symptoms, symptoms of unstated kind
        ("yes"), or none.
    grade : int or None
        WHO tumour grade 1-3 as reported.
    ki67_percent : float or None
        Ki-67 index, 0-100 (gives the WHO 2019 grade when ``grade`` is absent,
        and is checked against it when both are given).
    extrahepatic_disease : bool or None
        Known extrahepatic disease.
    primary_resected : bool or None
        Primary tumour resected.
    height_cm, weight_kg : float or None
        Body size for BSA/TELV.
    sex : {"male", "female"} or None
        For the PET SUL (lean body mass, Janmahasatian formula).
    liver_condition : {"normal", "chemotherapy", "steatosis", "fibrosis", "cirrhosis"} or None
        Selects the FLR threshold (``None`` uses ``normal`` and says so). Also given by the
        flag columns ``chemotherapy`` / ``steatosis`` / ``fibrosis`` / ``cirrhosis``: the most
        demanding true flag (a ``chemotherapy_cycles`` count above 0 is ``chemotherapy`` true).
        When the flags and ``liver_condition`` disagree the most demanding condition is used and
        ``condition_conflict`` names both inputs.
    performance_status : int or None
        ECOG 0-4.
    differentiation : {"well", "poor"} or None
        Histological differentiation: "poor" is a neuroendocrine carcinoma
        (NEC), never a NET.
    primary_site : str or None
        Site of the primary tumour as written (e.g. "small bowel", "pancreas"); echoed in the
        report, no rule reads it.
    ki67_range : str or None
        A Ki-67 given only within bounds, as pathology reports write it ("<2", ">20",
        "1-2", percent); ``ki67_percent`` is then None. It decides the grade when every
        value in it gives the same one (e.g. "<2" is G1, "<5" is G1 or G2: undetermined).
    chemotherapy_cycles : int or None
        Cycles of systemic chemotherapy before the operation (0-100); above 0 it is the
        ``chemotherapy`` flag (the cycles' duration is not judged: it depends on the regimen).
    pet_half_life_s : float or None
        Radionuclide half-life (s, positive; a cell may say ``67.83 min``) of the study's PET, used for the
        SUV instead of Radionuclide Half Life (0018,1075), as ``--pet-half-life`` (which must not say
        another value): the per-study remedy for a header with the wrong nuclide's half-life.
    source : str
        File (and row) the values came from, for messages.
    condition_conflict : str or None
        The inputs that disagreed on the liver condition as written, e.g.
        ``"liver_condition 'normal' but chemotherapy 'yes'"`` (None when they agree); not a field.
    """

    symptoms: str | None = None
    grade: int | None = None
    ki67_percent: float | None = None
    extrahepatic_disease: bool | None = None
    primary_resected: bool | None = None
    height_cm: float | None = None
    weight_kg: float | None = None
    liver_condition: str | None = None
    performance_status: int | None = None
    differentiation: str | None = None
    sex: str | None = None
    primary_site: str | None = None
    ki67_range: str | None = None
    chemotherapy_cycles: int | None = None
    pet_half_life_s: float | None = None
    source: str = ""
    condition_conflict: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The given values (``source`` and ``condition_conflict`` excluded)."""
        d = asdict(self)
        d.pop("source")
        d.pop("condition_conflict")
        return d


_FIELDS = tuple(f.name for f in fields(ClinicalInputs) if f.name not in ("source", "condition_conflict"))
#: Fields echoed in ``clinical_inputs_used`` only when given (no rule reads them, or, for the cycles,
#: the ``liver_condition`` they gave is echoed; the PET half-life is in the report's SUV facts too).
_ECHOED_WHEN_GIVEN = ("primary_site", "ki67_range", "chemotherapy_cycles", "pet_half_life_s")


def _ranges(body: Mapping[str, Any] | None) -> tuple[tuple[float, float], tuple[float, float]]:
    """The plausible height (cm) and weight (kg) ranges of ``rules["body"]`` (the shipped ones when None)."""
    b = default_section("body") if body is None else body
    (h0, h1), (w0, w1) = b["height_cm_range"], b["weight_kg_range"]
    return (float(h0), float(h1)), (float(w0), float(w1))


def _canonical(data: Mapping[str, Any], source: str) -> dict[str, tuple[Any, str | None, str]]:
    """Field -> (value, unit of its bare numbers, the column / key it came from); empty values dropped.

    Raises
    ------
    InputError
        An unknown column, or two columns for one field with different values.
    """
    out: dict[str, tuple[Any, str | None, str]] = {}
    unknown = []
    for key, raw in data.items():
        name, unit = canonical_field(str(key), _FIELDS)
        if name not in _FIELDS and name not in CONDITION_COLUMNS:
            unknown.append(str(key))
            continue
        if raw is None or is_missing_text(raw):
            continue
        if name in out and out[name][0] != raw:
            raise InputError(
                f"{source}: clinical columns {out[name][2]!r} and {key!r} both give {name!r} "
                f"({out[name][0]!r} vs {raw!r}); keep one"
            )
        out[name] = (raw, unit, str(key))
    if unknown:
        raise InputError(
            f"{source}: unknown clinical field(s) {', '.join(map(repr, sorted(unknown)))}; known fields: "
            f"{', '.join(_FIELDS)} (and the liver-condition flags {', '.join(CONDITION_COLUMNS)})"
        )
    return out


def _liver_condition(source: str, given: str | None, flags: Mapping[str, bool]) -> str | None:
    """The most demanding liver condition of the ``liver_condition`` value and the true flags.

    All four flags false (and no value) is a normal liver; some false and none true says nothing.
    """
    found = [c for c, on in flags.items() if on] + ([given] if given else [])
    if found:
        return max(found, key=LIVER_CONDITIONS.index)
    if flags and set(flags) == set(CONDITION_COLUMNS):
        return "normal"
    if flags:
        logger.info(
            "%s: liver-condition flags %s are false but %s not given: liver condition unknown",
            source,
            ", ".join(sorted(flags)),
            ", ".join(c for c in CONDITION_COLUMNS if c not in flags),
        )
    return None


def _chemotherapy_flag(source: str, flags: dict[str, bool], cycles: int | None, written: dict[str, str]) -> None:
    """Fold a ``chemotherapy_cycles`` count into the ``chemotherapy`` flag; a count and a flag that disagree
    (``chemotherapy: no`` with 6 cycles, ``yes`` with 0) are refused: which one holds is not knowable."""
    if cycles is None:
        return
    given = cycles > 0
    if "chemotherapy" in flags and flags["chemotherapy"] != given:
        raise InputError(
            f"{source}: clinical fields {written['chemotherapy']} and chemotherapy_cycles {cycles} disagree; "
            "correct one of the two"
        )
    if "chemotherapy" not in flags:
        flags["chemotherapy"] = given
        written["chemotherapy"] = f"chemotherapy_cycles {cycles}"
    else:
        written["chemotherapy"] += f" ({cycles} cycles)"


def _condition_conflict(given: str | None, flags: Mapping[str, bool], written: Mapping[str, str]) -> str | None:
    """The inputs that disagree on the liver condition, as written: a true flag more demanding than the given
    ``liver_condition`` ("liver_condition 'normal' but chemotherapy 'yes'"), or the given condition's own flag
    false ("liver_condition 'chemotherapy' but chemotherapy 'no'")."""
    if given is None:
        return None
    rank = LIVER_CONDITIONS.index
    against = [c for c, on in flags.items() if (on and rank(c) > rank(given)) or (not on and c == given)]
    if not against:
        return None
    return f"liver_condition {given!r} but " + ", ".join(written[c] for c in against)


def _half_life(source: str, raw: Any, unit: str | None) -> float:
    """A ``pet_half_life_s`` cell: a positive, finite number of seconds (or minutes / hours it names)."""
    value = as_number(source, "pet_half_life_s", raw, unit)
    if not value > 0:
        raise bad(source, "pet_half_life_s", raw, "the radionuclide half-life in seconds, above 0 (Ga-68: 4069.8)")
    return value


def _validate(data: Mapping[str, Any], source: str, body: Mapping[str, Any] | None = None) -> ClinicalInputs:
    """Validate the fields of a sidecar, a mapping given from Python or a CSV row (text cells alike)."""
    (h0, h1), (w0, w1) = _ranges(body)
    values: dict[str, Any] = {}
    flags: dict[str, bool] = {}
    written: dict[str, str] = {}  # flag -> the input as written ("chemotherapy 'yes'"), for the conflict message
    nec_cell: Any = None  # the grade cell that named a NEC
    for name, (raw, unit, _col) in _canonical(data, source).items():
        if name in CONDITION_COLUMNS:
            flags[name], written[name] = as_bool(source, name, raw), f"{name} {raw!r}"
        elif name == "chemotherapy_cycles":
            values[name] = as_int(source, name, raw, 0, 100, ())
        elif name == "symptoms":
            values[name] = symptoms_cell(source, raw)
        elif name == "liver_condition":
            values[name] = condition_cell(source, raw)
        elif name == "differentiation":
            values[name] = as_choice(source, name, raw, DIFFERENTIATION)
        elif name == "sex":
            values[name] = as_choice(source, name, raw, SEXES)
        elif name == "grade" and isinstance(raw, str) and raw.strip().lower() in NEC_WORDS:
            # "NEC" in the grade column: a neuroendocrine carcinoma, poorly differentiated and high grade (WHO 2019)
            values[name], values["differentiation_from_grade"], nec_cell = 3, "poor", raw
        elif name == "grade":
            values[name] = as_int(source, name, raw, 1, 3, GRADE_PREFIXES)
        elif name == "performance_status":
            values[name] = as_int(source, name, raw, 0, 4, ECOG_PREFIXES)
        elif name == "primary_site":
            if not isinstance(raw, str):
                raise bad(source, name, raw, "text naming the site, e.g. 'small bowel'")
            values[name] = " ".join(raw.split())
        elif name in ("extrahepatic_disease", "primary_resected"):
            values[name] = as_bool(source, name, raw)
        elif name in ("ki67_percent", "ki67_range"):
            key, ki67 = ki67_cell(source, name, raw)
            values[key] = ki67
        elif name == "height_cm":
            values[name] = in_range(
                source, name, as_number(source, name, raw, unit), h0, h1, "cm", "body.height_cm_range"
            )
        elif name == "weight_kg":
            values[name] = in_range(
                source, name, as_number(source, name, raw, unit), w0, w1, "kg", "body.weight_kg_range"
            )
        elif name == "pet_half_life_s":
            values[name] = _half_life(source, raw, unit)
    implied = values.pop("differentiation_from_grade", None)
    if implied is not None:
        if values.get("differentiation", implied) != implied:
            raise InputError(
                f"{source}: clinical grade {nec_cell!r} is a neuroendocrine carcinoma (poorly differentiated) but "
                f"differentiation is {values['differentiation']!r}; correct one of the two"
            )
        values["differentiation"] = implied
    _chemotherapy_flag(source, flags, values.get("chemotherapy_cycles"), written)
    given = values.pop("liver_condition", None)
    values["condition_conflict"] = _condition_conflict(given, flags, written)
    condition = _liver_condition(source, given, flags)
    if condition is not None:
        values["liver_condition"] = condition
    return ClinicalInputs(**values, source=source)


def load_clinical(path: str | Path, *, body: Mapping[str, Any] | None = None) -> ClinicalInputs:
    """Read and validate a clinical sidecar file (``.json`` or ``.toml``).

    Parameters
    ----------
    path : str or pathlib.Path
        The file; a JSON object or TOML table with any of the fields of
        :class:`ClinicalInputs`.
    body : mapping, optional
        ``rules["body"]``: its ``height_cm_range`` and ``weight_kg_range`` bound the
        height and weight (default: the shipped rules).

    Returns
    -------
    ClinicalInputs

    Raises
    ------
    InputError
        Missing or unparsable file, unknown field (the known ones are listed),
        wrong type or impossible value (file, field, value and allowed values
        named).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: clinical file not found; give an existing .json or .toml file to --clinical")
    suffix = p.suffix.lower()
    try:
        text = p.read_text(encoding="utf-8")
        if suffix == ".json":
            data = json.loads(text)
        elif suffix == ".toml":
            data = tomllib.loads(text)
        else:
            raise InputError(f"{p}: clinical file must end in .json or .toml (got {suffix or 'no suffix'!r})")
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: clinical file is not valid {suffix[1:].upper()}: {exc}; fix the syntax") from exc
    if not isinstance(data, dict):
        raise InputError(f"{p}: clinical file must hold an object/table of fields, got {type(data).__name__}")
    return _validate(data, str(p), body=body)


@dataclass(frozen=True)
class ClinicalRow:
    """The clinical columns of one cohort CSV row, read by the load stage (:func:`as_clinical_inputs`).

    Parameters
    ----------
    values : Mapping[str, str]
        Column name -> text, as :func:`clinical_from_row` takes it.
    source : str
        Names the row in messages, e.g. ``"cohort row of study p01"``.
    """

    values: Mapping[str, str]
    source: str


def as_clinical_inputs(
    clinical: str | Path | Mapping[str, Any] | ClinicalInputs | ClinicalRow | None,
    *,
    body: Mapping[str, Any] | None = None,
) -> ClinicalInputs | None:
    """The clinical inputs of an analysis: a loaded :class:`ClinicalInputs` as it is, a path read
    with :func:`load_clinical`, a cohort row validated with :func:`clinical_from_row`, a mapping
    of fields given from Python validated as a sidecar's (all within the ``body`` ranges of the
    rules), None for none."""
    if clinical is None or isinstance(clinical, ClinicalInputs):
        return clinical
    if isinstance(clinical, ClinicalRow):
        return clinical_from_row(clinical.values, clinical.source, body=body)
    if isinstance(clinical, Mapping):
        return _validate(clinical, "clinical (the mapping given to analyze)", body=body)
    if not isinstance(clinical, (str, os.PathLike)):
        raise UsageError(
            f"clinical: a file path, a mapping of clinical fields or ClinicalInputs was expected, not "
            f"{type(clinical).__name__}; e.g. clinical={{'weight_kg': 72, 'height_cm': 175}}."
        )
    return load_clinical(clinical, body=body)


def clinical_from_row(row: Mapping[str, str], source: str, *, body: Mapping[str, Any] | None = None) -> ClinicalInputs:
    """Validate the clinical columns of one batch CSV row.

    Parameters
    ----------
    row : Mapping[str, str]
        Column name -> text; only the clinical field columns are read (other
        columns, e.g. the study path, are ignored by the caller passing them
        or not); empty cells mean "not given". Booleans accept
        true/false/yes/no/1/0.
    source : str
        Names the row in messages, e.g. ``"cohort.csv row 12"``.
    body : mapping, optional
        ``rules["body"]`` (the height and weight ranges), as :func:`load_clinical`.

    Returns
    -------
    ClinicalInputs

    Raises
    ------
    InputError
        As :func:`load_clinical`.
    """
    return _validate(dict(row), source, body=body)


def resolve_body_size(
    clinical: ClinicalInputs | None, header: Mapping[str, Any], body: Mapping[str, Any] | None = None
) -> tuple[float | None, float | None, list[str]]:
    """Height (cm) and weight (kg): the clinical file first, then the DICOM header.

    Parameters
    ----------
    clinical : ClinicalInputs or None
    header : Mapping
        Non-identifying header facts; ``patient_size_m`` (or
        ``patient_height_m``) and ``patient_weight_kg`` are used.
    body : mapping, optional
        ``rules["body"]``: header values outside ``height_cm_range`` / ``weight_kg_range``
        are ignored (default: the shipped rules).

    Returns
    -------
    height_cm, weight_kg : float or None
    notes : list of str
        Which source gave each value; header values outside the plausible
        range are ignored with a note.
    """
    (h0, h1), (w0, w1) = _ranges(body)
    notes: list[str] = []
    height = clinical.height_cm if clinical else None
    weight = clinical.weight_kg if clinical else None
    if height is not None:
        notes.append(f"height {height:g} cm from the clinical file")
    else:
        size_m = header.get("patient_size_m", header.get("patient_height_m"))
        if isinstance(size_m, (int, float)) and not isinstance(size_m, bool) and size_m > 0:
            h = float(size_m) * 100.0
            if h0 <= h <= h1:
                height = h
                notes.append(f"height {h:g} cm from DICOM PatientSize (0010,1020)")
            else:
                notes.append(f"DICOM PatientSize {size_m!r} m ignored (outside {h0:g}-{h1:g} cm, body.height_cm_range)")
    if weight is not None:
        notes.append(f"weight {weight:g} kg from the clinical file")
    else:
        w = header.get("patient_weight_kg")
        if isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0:
            if w0 <= float(w) <= w1:
                weight = float(w)
                notes.append(f"weight {weight:g} kg from DICOM PatientWeight (0010,1030)")
            else:
                notes.append(f"DICOM PatientWeight {w!r} kg ignored (outside {w0:g}-{w1:g} kg, body.weight_kg_range)")
    for note in notes:
        logger.info("body size: %s", note)
    return height, weight, notes


def source_label(clinical: ClinicalInputs) -> str:
    """Where clinical inputs came from, for the report: the clinical file's name (no directory), the cohort row.

    Examples
    --------
    >>> source_label(ClinicalInputs(source="/x/clinical.json")), source_label(ClinicalInputs())
    ('clinical file clinical.json', 'clinical input')
    """
    if not clinical.source:
        return "clinical input"
    if Path(clinical.source).suffix.lower() in (".json", ".toml"):
        return f"clinical file {Path(clinical.source).name}"
    return clinical.source  # a cohort CSV row ("cohort row of study p01")


def clinical_inputs_used(
    clinical: ClinicalInputs | None,
    header: Mapping[str, Any],
    height_cm: float | None,
    weight_kg: float | None,
) -> dict[str, dict[str, Any]]:
    """Every clinical input with the value used and where it came from (for the report).

    Parameters
    ----------
    clinical : ClinicalInputs or None
    header : Mapping
        Header facts (for the DICOM body-size sources).
    height_cm, weight_kg : float or None
        The values :func:`resolve_body_size` chose.

    Returns
    -------
    dict
        Field -> ``{"value": ..., "source": ...}``; the source is the clinical
        file's name (no directory), a DICOM attribute, or ``"not given"``
        (``primary_site`` and ``ki67_range`` only when given).

    Examples
    --------
    >>> used = clinical_inputs_used(ClinicalInputs(grade=2, source="/x/clinical.json"), {}, None, None)
    >>> used["grade"], used["symptoms"]["source"]
    ({'value': 2, 'source': 'clinical file clinical.json'}, 'not given')
    """
    c = clinical or ClinicalInputs()
    src = source_label(c)
    out: dict[str, dict[str, Any]] = {}
    for name in _FIELDS:
        value = getattr(c, name)
        if name in _ECHOED_WHEN_GIVEN and value is None:
            continue
        out[name] = {"value": value, "source": src if value is not None else "not given"}
    if c.height_cm is None and height_cm is not None:
        out["height_cm"] = {"value": height_cm, "source": "DICOM PatientSize (0010,1020)"}
    if c.weight_kg is None and weight_kg is not None:
        out["weight_kg"] = {"value": weight_kg, "source": "DICOM PatientWeight (0010,1030)"}
    if c.liver_condition is None:
        out["liver_condition"]["source"] = "not given (normal-liver threshold where every condition decides alike)"
    return out
