#!/usr/bin/env bash
# Starts Authsome in the foreground: the tray app when a display is present,
# the headless daemon on 127.0.0.1:7998 otherwise (AUTHSOME_PORT overrides).
# Ctrl-C (or Quit in the tray menu) stops it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/target/debug"
echo "Authsome CLI: $bin/authsome (add $bin to PATH to use 'authsome' in another shell)" >&2
if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
  exec "$bin/authsome-tray"
fi
exec "$bin/authsome" daemon serve
