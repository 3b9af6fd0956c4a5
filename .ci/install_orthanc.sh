#!/usr/bin/env bash
# Install Debian's Orthanc and its DICOMweb plugin when missing (idempotent).
# Used by .ci/run before the tests; tests/orthanc_server.py starts the server itself.
set -euo pipefail

have_orthanc() {
    command -v Orthanc >/dev/null 2>&1 || [ -x /usr/sbin/Orthanc ]
}
have_plugin() {
    [ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || ls /usr/lib/orthanc/libOrthancDicomWeb.so* >/dev/null 2>&1
}

if have_orthanc && have_plugin; then
    echo "install_orthanc: orthanc and orthanc-dicomweb already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends orthanc orthanc-dicomweb
# The package starts a system-wide service where systemd runs; the tests start their own server.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl stop orthanc >/dev/null 2>&1 || true
    $SUDO systemctl disable orthanc >/dev/null 2>&1 || true
fi
have_orthanc && have_plugin || { echo "install_orthanc: installation failed" >&2; exit 1; }
echo "install_orthanc: installed $(dpkg-query -W -f='${Version}' orthanc) and orthanc-dicomweb"
