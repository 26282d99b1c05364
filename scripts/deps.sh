#!/usr/bin/env bash
# Installs the Debian packages takumi builds with (idempotent; needs root or sudo).
set -euo pipefail
PKGS="build-essential pkg-config libopenblas-openmp-dev libpcre2-dev libcjson-dev libopenmpi-dev openmpi-bin libmicrohttpd-dev libsqlite3-dev libcurl4-openssl-dev clang libclang-rt-14-dev python3-pip unzip chromium poppler-utils time"
missing=()
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "installing: ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
