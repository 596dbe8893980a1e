#!/usr/bin/env bash
# Installs the Debian packages Authsome builds and tests with, only those missing.
set -euo pipefail

packages=(
  build-essential pkg-config curl file ca-certificates procps
  libdbus-1-dev dbus gnome-keyring libsecret-tools
  libwebkit2gtk-4.1-dev libayatana-appindicator3-dev libsoup-3.0-dev libgtk-3-dev
  xvfb xauth dunst libnotify-bin imagemagick xdotool
  python3 python3-pip nodejs age bsdutils
)

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done

# Node may come from outside Debian; accept any working `node`.
if command -v node >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs}")
fi
if command -v python3 >/dev/null 2>&1; then
  missing=("${missing[@]/python3}")
fi
read -r -a missing <<< "${missing[*]}"

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "Installing missing packages: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq </dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
