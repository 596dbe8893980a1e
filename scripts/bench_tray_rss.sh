#!/usr/bin/env bash
# Idle memory of the tray app with a few connections: starts it in a private
# desktop session (scripts/with-session.sh), stores three API keys through the
# CLI, opens and closes the main window, waits, and prints the resident set
# size of the tray process and of any WebKit helper processes it left running.
# Target: <= 150 MB.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${AUTHSOME_SESSION_DIR:-}" ]; then
  exec "$here/scripts/with-session.sh" "$0" "$@"
fi
profile=debug
[ "$here/target/release/authsome-tray" -nt "$here/target/debug/authsome-tray" ] 2>/dev/null && profile=release
bin="$here/target/$profile"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HOME="$tmp" XDG_RUNTIME_DIR="$tmp/run" XDG_CACHE_HOME="$tmp/cache" AUTHSOME_HOME="$tmp/home"
export AUTHSOME_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
"$bin/authsome-tray" >"$tmp/tray.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$AUTHSOME_PORT/health" >/dev/null && break; sleep 0.1; done
printf 'sk-rss-abcdefghijklmnopqrstuvwxyz' | "$bin/authsome" login openai --stdin >/dev/null
printf 'sk-ant-rss-abcdefghijklmnopqrstuvwx' | "$bin/authsome" login anthropic --stdin >/dev/null
printf 'gsk_rssabcdefghijklmnopqrstuvwxyz01234567890123456789' | "$bin/authsome" login groq --stdin >/dev/null || true
sleep 10
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
tray=$(rss_kb "$pid")
helpers=0
for c in $(pgrep -P "$pid" || true); do helpers=$((helpers + $(rss_kb "$c"))); done
echo "tray app idle RSS ($profile build, 3 connections): $((tray / 1024)) MB; WebKit helpers: $((helpers / 1024)) MB"
"$bin/authsome" list --json | python3 -c 'import json,sys; print("connections:", sum(len(p["connections"]) for p in json.load(sys.stdin)["providers"]))'
kill "$pid"
wait "$pid" 2>/dev/null || true
