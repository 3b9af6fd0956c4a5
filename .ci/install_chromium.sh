#!/usr/bin/env bash
# Install the browsers the HTML QA page tests drive, when missing (idempotent):
# Debian chromium + chromium-driver (selenium) and firefox-esr (driven over Marionette; Debian has
# no geckodriver). Does nothing when all three are installed.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
[ -x /usr/bin/firefox-esr ] || missing+=(firefox-esr)
if [ ${#missing[@]} -eq 0 ]; then
    echo "chromium, chromium-driver and firefox-esr already installed"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
for exe in /usr/bin/chromium /usr/bin/chromedriver /usr/bin/firefox-esr; do
    [ -x "$exe" ] || { echo "install_chromium: $exe still missing after installing ${missing[*]}" >&2; exit 1; }
done
echo "install_chromium: installed ${missing[*]}"
