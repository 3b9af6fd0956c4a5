#!/usr/bin/env bash
# Install the Debian chromium package (headless rendering test of the HTML QA page) when missing.
# Idempotent: does nothing when /usr/bin/chromium exists. Needs root (CI container).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    echo "chromium already installed: /usr/bin/chromium"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y --no-install-recommends chromium
/usr/bin/chromium --version
