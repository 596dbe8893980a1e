#!/usr/bin/env bash
# Runs a command inside a private D-Bus session bus with an unlocked
# gnome-keyring (Secret Service). Every piece of state lives in a temp dir
# removed afterwards: the user's own keychain and bus are never touched.
#   scripts/with-session.sh CMD ARGS...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d -t authsome-session.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/run" "$tmp/data" "$tmp/config" "$tmp/cache"
chmod 700 "$tmp/run"
export AUTHSOME_SESSION_DIR="$tmp"
unset DBUS_SESSION_BUS_ADDRESS
dbus-run-session -- "$here/session-inner.sh" "$@"
