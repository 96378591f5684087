#!/usr/bin/env bash
# Installs the Debian packages coreloss needs (GPAW builds against them). Idempotent; skips what is present.
set -euo pipefail
pkgs=(libxc-dev libopenblas-dev libopenmpi-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "coreloss: missing system packages ${missing[*]} and no apt-get; install them by hand" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "coreloss: installing system packages: ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
