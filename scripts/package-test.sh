#!/usr/bin/env bash
# `make package-test`: installs the .deb `make package` built, checks that
# both programs work (the tray started from its desktop entry's Exec line
# under Xvfb answers /health), removes it, and checks that the binaries went
# and the user's home stayed. Needs root (or sudo); changes /usr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
deb=$(ls -t target/debian/authsome_*.deb | head -n1)
echo "package: $deb"
dpkg-deb -f "$deb" Package Version Depends
dpkg-deb -c "$deb" | awk '{print $NF}' | grep -E '^\./usr/(bin|share/applications|share/icons)/.+[^/]$' 
# An earlier install of the same package would hide what this one does.
$sudo dpkg -r authsome >/dev/null 2>&1 || true
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "./$deb" </dev/null
test -x /usr/bin/authsome && test -x /usr/bin/authsome-tray
/usr/bin/authsome --version

tmp=$(mktemp -d -t authsome-package.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export HOME="$tmp/home" AUTHSOME_HOME="$tmp/home/.authsome" XDG_CONFIG_HOME="$tmp/config" \
  XDG_DATA_HOME="$tmp/data" XDG_CACHE_HOME="$tmp/cache"
AUTHSOME_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export AUTHSOME_PORT
mkdir -p "$HOME"
/usr/bin/authsome init --key-backend file >/dev/null
exec_line=$(sed -n 's/^Exec=//p' /usr/share/applications/authsome.desktop)
echo "desktop entry Exec: $exec_line"
# Under Xvfb with a session bus, as a desktop would start it.
"$here/with-session.sh" bash -c '
  set -euo pipefail
  '"$exec_line"' >"'"$tmp"'/tray.log" 2>&1 &
  tray=$!
  for _ in $(seq 1 60); do
    if port=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"port\"])" "$AUTHSOME_HOME/daemon.json" 2>/dev/null) \
       && curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
      echo "the tray from the desktop entry answers /health on port $port"
      kill "$tray"; wait "$tray" 2>/dev/null || true
      exit 0
    fi
    sleep 0.5
  done
  echo "the tray did not answer /health:" >&2; cat "'"$tmp"'/tray.log" >&2
  kill "$tray" 2>/dev/null || true
  exit 1
'
$sudo dpkg -r authsome
if [ -e /usr/bin/authsome ] || [ -e /usr/bin/authsome-tray ]; then
  echo "dpkg -r left the binaries" >&2; exit 1
fi
test -f "$AUTHSOME_HOME/config.toml" || { echo "the user's home was touched" >&2; exit 1; }
echo "package-test: installed, ran, removed; the home is intact"
