"""Report model and writers (JSON, CSV, HTML, DICOM SR)."""
