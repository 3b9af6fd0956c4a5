#!/usr/bin/env bash
# Install dcmtk (storescu, used to send studies to `netlm listen`) and dicom3tools (dciodvfy,
# which validates every SR / SEG the tests write) when missing (idempotent).
set -euo pipefail

missing=()
[ -x /usr/bin/storescu ] || missing+=(dcmtk)
[ -x /usr/bin/dciodvfy ] || missing+=(dicom3tools)
if [ ${#missing[@]} -eq 0 ]; then
    echo "install_dicom_tools: dcmtk and dicom3tools already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
[ -x /usr/bin/storescu ] && [ -x /usr/bin/dciodvfy ] || { echo "install_dicom_tools: installation failed" >&2; exit 1; }
echo "install_dicom_tools: installed ${missing[*]}"
