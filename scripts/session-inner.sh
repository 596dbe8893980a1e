#!/usr/bin/env bash
# Inside with-session.sh: start the keyring and the notification daemon, then run the command.
set -euo pipefail
tmp="$AUTHSOME_SESSION_DIR"
# The unlock password must be at least one byte, or no keyring is created.
printf 'authsome-test-keyring' | HOME="$tmp" XDG_DATA_HOME="$tmp/data" XDG_CONFIG_HOME="$tmp/config" \
  XDG_RUNTIME_DIR="$tmp/run" gnome-keyring-daemon --unlock --components=secrets >/dev/null
HOME="$tmp" XDG_CONFIG_HOME="$tmp/config" XDG_RUNTIME_DIR="$tmp/run" dunst >/dev/null 2>&1 &
dunst_pid=$!
status=0
"$@" || status=$?
kill "$dunst_pid" 2>/dev/null || true
exit "$status"
