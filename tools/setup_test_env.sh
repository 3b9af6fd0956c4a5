#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine (idempotent):
# the package with its test extras, Debian's orthanc + orthanc-dicomweb (PACS round trip)
# chromium, chromium-driver and firefox-esr (browser tests of the HTML QA page), dcmtk and dicom3tools
# (DIMSE tests and DICOM validation).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --upgrade pip
python3 -m pip install --quiet -e ".[test]"
bash .ci/install_orthanc.sh
bash .ci/install_chromium.sh
bash .ci/install_dicom_tools.sh
