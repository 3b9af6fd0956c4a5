"""The options every study of a cohort is analysed with (:class:`BatchOptions`), sent to the workers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["BatchOptions"]


@dataclass(frozen=True)
class BatchOptions:
    """What every study of a cohort is analysed with (picklable, sent to workers).

    Attributes
    ----------
    labels : str, optional
        ``--labels`` mapping (e.g. ``"liver=1,lesion=2"``).
    rules : str, optional
        ``--rules`` file (absolute path).
    sr : bool
        Also write ``reports/<id>.sr.dcm`` (DICOM studies only).
    html : bool
        Also write ``reports/<id>.html`` (QA page), when the HTML writer is available.
    html_budget_mb : float
        Size budget of the image data embedded in each QA page.
    include_identifiers : bool
        Copy patient identifiers into the SR (off by default).
    analyze_options : dict
        Keyword arguments of ``netlm_imaging.api.AnalyzeOptions``.
    resume : bool
        Skip studies with an unchanged fingerprint (not part of the fingerprint).
    accepted_flags : tuple of str
        Options of the running command: error messages naming other options
        are rewritten to name ``netlm analyze`` (not part of the fingerprint).
    out_dir : str
        The batch output folder (set by the run; not part of the fingerprint): when it lies
        inside a study folder, its files are not that study's inputs.
    """

    labels: str | None = None
    rules: str | None = None
    sr: bool = False
    html: bool = False
    html_budget_mb: float = 25.0
    include_identifiers: bool = False
    analyze_options: dict[str, Any] = field(default_factory=dict)
    resume: bool = False
    accepted_flags: tuple[str, ...] = ()
    out_dir: str = ""

    def fingerprint_options(self) -> dict[str, Any]:
        """The options that change a study's outputs (hashed into its fingerprint)."""
        from ..api import AnalyzeOptions

        d = asdict(self)
        d.pop("resume")
        d.pop("accepted_flags")
        d.pop("out_dir")
        d.pop("rules")  # the rules file is hashed by content instead
        # defaults filled in, so the API's BatchOptions() and the CLI's explicit defaults hash alike
        d["analyze_options"] = asdict(AnalyzeOptions(**self.analyze_options))
        return d
