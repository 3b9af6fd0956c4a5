#!/usr/bin/env bash
# Install dcmtk (storescu, used to send studies to `netlm listen`) and dicom3tools (dciodvfy,
# which validates every SR / SEG the tests write) when missing (idempotent).
set -euo pipefail
exec bash "$(dirname "$0")/apt_missing.sh" install_dicom_tools /usr/bin/storescu=dcmtk /usr/bin/dciodvfy=dicom3tools
