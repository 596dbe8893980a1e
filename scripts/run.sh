#!/usr/bin/env bash
# Starts Authsome in the foreground: the headless daemon on 127.0.0.1:7998
# (AUTHSOME_PORT overrides). Ctrl-C stops it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/target/debug/authsome"
echo "Authsome CLI: $bin (add $(dirname "$bin") to PATH to use 'authsome' in another shell)" >&2
exec "$bin" daemon serve
