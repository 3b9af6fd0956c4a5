#!/usr/bin/env bash
# Install the browsers the HTML QA page tests drive, when missing (idempotent; needs root in CI):
# Debian chromium + chromium-driver (selenium) and firefox-esr (driven over Marionette, no geckodriver).
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
[ -x /usr/bin/firefox-esr ] || missing+=(firefox-esr)
if [ ${#missing[@]} -eq 0 ]; then
    echo "chromium, chromium-driver and firefox-esr already installed"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}"
/usr/bin/chromium --version || true
/usr/bin/firefox-esr --version || true
