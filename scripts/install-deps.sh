#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian 12 machine with Rust and Python 3:
# Debian packages (MPI, cmake, pkg-config, headless Chromium and a font for the SVG check) and
# Python packages (numpy, the published npm-weibull-py for the cross-check). Idempotent:
# anything already present is left alone, so running it again costs about a second.
# Needs root (or sudo) only when something is missing.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore
# A Debian-managed python3 refuses plain pip installs (PEP 668); test machines are throwaway.
export PIP_BREAK_SYSTEM_PACKAGES=1

sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_wanted=(mpich libmpich-dev cmake pkg-config chromium fonts-dejavu-core binutils)
apt_missing=()
for p in "${apt_wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || apt_missing+=("$p")
done
if [ ${#apt_missing[@]} -gt 0 ]; then
    echo "install-deps: apt-get install ${apt_missing[*]}"
    sudo_if_needed apt-get update -qq
    sudo_if_needed apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 \
        "${apt_missing[@]}" >/dev/null
fi

if ! python3 -c 'import numpy, npm_weibull' 2>/dev/null; then
    echo "install-deps: pip install numpy npm-weibull-py==0.4.0"
    python3 -m pip install -q numpy npm-weibull-py==0.4.0
fi
