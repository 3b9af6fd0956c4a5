"""What two reports of the same study share when one came from a PACS and one from a local folder."""

from __future__ import annotations

#: Keys naming where the inputs were (temporary SOP-UID file names vs local ones), not what was measured.
SOURCE_KEYS = frozenset({"image_source", "segmentation_sources", "source", "notes"})


def measured(report: object) -> object:
    """``report`` (report.json decoded) without the keys in :data:`SOURCE_KEYS`, at every depth."""
    if isinstance(report, dict):
        return {k: measured(v) for k, v in report.items() if k not in SOURCE_KEYS}
    if isinstance(report, list):
        return [measured(v) for v in report]
    return report
