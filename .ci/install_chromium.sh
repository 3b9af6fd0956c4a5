#!/usr/bin/env bash
# Install the browsers the HTML QA page tests drive, when missing (idempotent):
# Debian chromium + chromium-driver (selenium) and firefox-esr (driven over Marionette; Debian has
# no geckodriver).
set -euo pipefail
exec bash "$(dirname "$0")/apt_missing.sh" install_chromium \
    /usr/bin/chromium=chromium /usr/bin/chromedriver=chromium-driver /usr/bin/firefox-esr=firefox-esr
