#!/usr/bin/env bash
# `make package`: the release binaries in one .deb (cargo-deb), printed path.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo deb --version >/dev/null 2>&1; then
  echo "Installing cargo-deb (once)" >&2
  cargo install cargo-deb --locked </dev/null
fi
cargo build --release --bins
cargo deb -p authsome-tray --no-build --strip
