#!/usr/bin/env bash
# Install Debian packages whose executable is missing (idempotent), then check every one is there.
# Usage: bash .ci/apt_missing.sh NAME /path/to/executable=package [...]
set -euo pipefail
name=$1
shift
missing=()
for pair in "$@"; do
    [ -x "${pair%%=*}" ] || missing+=("${pair#*=}")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "$name: already installed"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
for pair in "$@"; do
    [ -x "${pair%%=*}" ] || { echo "$name: ${pair%%=*} still missing after installing ${missing[*]}" >&2; exit 1; }
done
echo "$name: installed ${missing[*]}"
