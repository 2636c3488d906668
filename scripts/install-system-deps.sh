#!/usr/bin/env bash
# Install the Debian packages later stages need, only those missing. Without root or sudo it
# says what to install and carries on: the stages that need a package report it themselves.
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "hannah-hw setup: please install these Debian packages: ${missing[*]}" >&2
  exit 0
fi
echo "hannah-hw setup: installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
