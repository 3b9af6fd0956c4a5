"""The study report: a typed object that serialises to the JSON contract.

``StudyReport.to_dict(validate=True)`` validates against ``report.schema.json``
(the copy shipped in this package, byte-identical to the project's shared
contract report.schema.json; tests/test_code_quality.py checks it) before
returning. By default (``validate=None``) the
check runs when the environment sets ``NETLM_VALIDATE_REPORTS=1``, as the test
suite does for every report it makes: jsonschema and its validation cost a
fresh ``netlm analyze`` about 60 ms, a fifth of the analysis, for a shape that
the code fixes and the tests pin.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text

__all__ = ["SCHEMA_VERSION", "StudyReport", "load_schema", "validate_report"]

SCHEMA_VERSION = "1.1"


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The report JSON schema shipped with the package."""
    text = resources.files("netlm_imaging.report").joinpath("report.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    schema = load_schema()
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def validate_report(data: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` if ``data`` breaks the report contract."""
    _validator().validate(data)


def _clean(obj: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None, tuples to lists."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        try:
            obj = obj.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


@dataclass(frozen=True)
class StudyReport:
    """One study's measurements, classification and provenance.

    Attributes follow ``report.schema.json``; units are in the field names. A report is
    immutable: the report stage builds it once, and a caller that adds to it (the batch
    runner's notes, the PACS source) makes a new one with :func:`dataclasses.replace`.
    """

    tool: dict[str, Any]
    study: dict[str, Any]
    liver: dict[str, Any]
    tumor: dict[str, Any]
    involvement_percent: float | None
    remnant: dict[str, Any]
    lesions: list[dict[str, Any]]
    classification: dict[str, Any]
    warnings: list[str]
    method: dict[str, Any]
    segments: list[dict[str, Any]] | None = None
    pet: dict[str, Any] | None = None
    schema_version: str = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    console_lines: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ views
    @property
    def lesion_count(self) -> int:
        """Number of intrahepatic lesion instances."""
        return int(self.tumor.get("lesion_count", 0))

    @property
    def liver_volume_ml(self) -> float | None:
        """Total liver volume (liver UNION intrahepatic lesions), mL."""
        return self.liver.get("volume_ml")

    @property
    def tumor_volume_ml(self) -> float:
        """Intrahepatic tumour volume, mL."""
        return float(self.tumor.get("intrahepatic_volume_ml", 0.0))

    def to_dict(self, *, validate: bool | None = None) -> dict[str, Any]:
        """The report as a JSON-ready dict; ``validate`` (default: ``NETLM_VALIDATE_REPORTS=1``) checks the schema."""
        data: dict[str, Any] = {
            "schema_version": self.schema_version,
            "tool": self.tool,
            "study": self.study,
            "liver": self.liver,
            "tumor": self.tumor,
            "involvement_percent": self.involvement_percent,
            "remnant": self.remnant,
            "lesions": self.lesions,
            "segments": self.segments,
            "pet": self.pet,
            "classification": self.classification,
            "warnings": self.warnings,
            "method": self.method,
        }
        data.update(self.extra)
        data = _clean(data)
        if validate or (validate is None and os.environ.get("NETLM_VALIDATE_REPORTS") == "1"):
            validate_report(data)
        return data

    def to_json(self, *, indent: int | None = 2) -> str:
        """The report as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False) + "\n"

    def write_json(self, path: str | Path) -> Path:
        """Write the report atomically; returns the path."""
        p = Path(path)
        atomic_write_text(p, self.to_json())
        return p

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyReport:
        """Rebuild a report from its JSON dict (e.g. a file written earlier)."""
        known = {
            "schema_version",
            "tool",
            "study",
            "liver",
            "tumor",
            "involvement_percent",
            "remnant",
            "lesions",
            "segments",
            "pet",
            "classification",
            "warnings",
            "method",
        }
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(
            tool=data["tool"],
            study=data["study"],
            liver=data["liver"],
            tumor=data["tumor"],
            involvement_percent=data.get("involvement_percent"),
            remnant=data["remnant"],
            lesions=data["lesions"],
            classification=data["classification"],
            warnings=data["warnings"],
            method=data["method"],
            segments=data.get("segments"),
            pet=data.get("pet"),
            schema_version=data.get("schema_version", "1.0"),
            extra=extra,
        )

    # ---------------------------------------------------------------- tables
    def lesions_frame(self) -> Any:
        """One row per lesion as a pandas DataFrame (columns ``report.tables.LESION_COLUMNS``).

        Needs the optional extra ``pandas`` (``pip install 'netlm-imaging[pandas]'``).

        Raises
        ------
        UnsupportedError
            pandas is not installed.
        """
        from .tables import LESION_COLUMNS, lesion_rows, to_frame

        return to_frame(lesion_rows(self.to_dict(validate=False)), LESION_COLUMNS)

    def to_frame(self) -> Any:
        """The study-level numbers as a one-row pandas DataFrame (the number columns of cohort.csv).

        Raises
        ------
        UnsupportedError
            pandas is not installed.
        """
        from .tables import STUDY_COLUMNS, study_numbers, to_frame

        d = self.to_dict(validate=False)
        row = {"study_instance_uid": self.study.get("study_instance_uid"), **study_numbers(d)}
        return to_frame([row], ["study_instance_uid", *STUDY_COLUMNS])

    # ---------------------------------------------------------------- summary
    def _pet_image_unit(self) -> str:
        """The unit of a PET image's values: SUV, or the stored units when no SUV could be computed."""
        pet = self.pet or {}
        if not pet.get("suv_missing_inputs"):
            return " SUV"
        units = str(pet.get("units") or "")
        return " Bq/mL" if units.upper() == "BQML" else f" {units} (no SUV)" if units else " (no SUV)"

    def summary(self, include_warnings: bool = True) -> str:
        """A short human-readable table for the console.

        Parameters
        ----------
        include_warnings : bool
            Append the warnings (the CLI prints them on stderr instead).
        """

        def num(v: Any, fmt: str = "{:.2f}") -> str:
            return "n/a" if v is None else fmt.format(v)

        rows = [
            ("Study", self.study.get("study_instance_uid") or self.study.get("image_source", "")),
            (
                "Modality / grid",
                f"{self.study.get('modality')}  {'x'.join(map(str, self.study['grid']['shape']))} @ "
                f"{', '.join(f'{s:.3g}' for s in self.study['grid']['spacing_mm'])} mm"
                f"{'  (masks resampled)' if self.study['grid'].get('resampled') else ''}",
            ),
            ("Liver volume", f"{num(self.liver.get('volume_ml'))} mL"),
            (
                "Intrahepatic tumour",
                f"{num(self.tumor['intrahepatic_volume_ml'])} mL in {self.tumor['lesion_count']} lesion(s)",
            ),
            (
                "Extrahepatic tumour",
                f"{num(self.tumor['extrahepatic_volume_ml'])} mL in "
                f"{self.tumor['extrahepatic_lesion_count']} lesion(s)",
            ),
            ("Involvement", f"{num(self.involvement_percent)} %"),
            ("Non-tumorous liver", f"{num(self.remnant.get('non_tumorous_liver_volume_ml'))} mL"),
        ]
        if self.study.get("modality") == "MR" and self.liver.get("mean_signal_au") is not None:
            sd = self.liver.get("sd_signal_au")
            rows.append(
                ("Liver mean signal", f"{self.liver['mean_signal_au']:.1f} a.u." + (f" (SD {sd:.1f})" if sd else ""))
            )
        elif self.liver.get("mean_intensity") is not None:
            unit = {"CT": " HU", "PT": self._pet_image_unit()}.get(str(self.study.get("modality")), " (units unknown)")
            rows.append(("Liver mean intensity", f"{self.liver['mean_intensity']:.1f}{unit}"))
        for n, line in enumerate(self.console_lines):
            rows.append(("Assessment" if n == 0 else "", str(line)))
        cls = self.classification
        has_type = cls.get("mahuron_type") is not None or cls.get("burden_category") is not None
        if has_type and not self.console_lines:  # the assessment lines already state the type otherwise
            rows.append(
                (
                    "Classification",
                    f"Mahuron type {cls.get('mahuron_type') or 'n/a'}; burden "
                    f"{cls.get('burden_category') or 'n/a'}; debulking achievable "
                    f"{num(cls.get('achievable_debulking_percent'), '{:.1f}')} %",
                )
            )
        if cls.get("missing_inputs"):
            rows.append(("Missing inputs", ", ".join(cls["missing_inputs"])))
        width = max(len(r[0]) for r in rows)
        lines = [f"{k:<{width}}  {v}" for k, v in rows]
        if self.lesions:
            lines.append("")
            lines.append(
                f"{'#':>3} {'location':<13} {'volume mL':>10} {'long mm':>8} {'short mm':>8} {'3D mm':>7} "
                f"{'seg':>3} {'SUVmax':>6}"
            )
            for les in self.lesions[:50]:
                lines.append(
                    f"{les['id']:>3} {les['location']:<13} {les['volume_ml']:>10.3f} "
                    f"{les['longest_axial_diameter_mm']:>8.1f} {num(les.get('short_axis_diameter_mm'), '{:.1f}'):>8} "
                    f"{les['max_3d_diameter_mm']:>7.1f} {les.get('couinaud_segment') or '-':>3} "
                    f"{num(les.get('suv_max'), '{:.1f}'):>6}"
                )
            if len(self.lesions) > 50:
                lines.append(f"... {len(self.lesions) - 50} more lesions in report.json")
        if self.warnings and include_warnings:
            lines.append("")
            lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)
