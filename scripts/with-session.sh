#!/usr/bin/env bash
# Runs a command inside a private desktop session: an X server (Xvfb), a
# D-Bus session bus, an unlocked gnome-keyring (Secret Service) and a
# notification daemon (dunst). Every piece of state lives in a temp dir
# removed afterwards: the user's own display, keychain and bus are never
# touched.
#   scripts/with-session.sh CMD ARGS...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d -t authsome-session.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/run" "$tmp/data" "$tmp/config" "$tmp/cache"
chmod 700 "$tmp/run"
export AUTHSOME_SESSION_DIR="$tmp"
unset DBUS_SESSION_BUS_ADDRESS DISPLAY WAYLAND_DISPLAY
# GUI processes must start inside dbus-run-session, or GTK autolaunches a bus that outlives the run.
xvfb-run -a -s "-screen 0 1280x800x24 -nolisten tcp" dbus-run-session -- "$here/session-inner.sh" "$@"
