#!/usr/bin/env bash
# Builds the fuzz targets in fuzz/ with cargo-fuzz (libFuzzer + AddressSanitizer)
# and runs each for FUZZ_SECONDS (default 600). The corpus grows in
# target/fuzz-corpus/<target>, seeded from fuzz/seeds/<target>; an input that
# breaks a property lands in fuzz/artifacts/<target>/ and the script fails.
# Copy such an input to fuzz/regressions/<target>/ once it is fixed:
# `cargo test -p authsome-daemon --test fuzz_regressions` replays it forever.
#
#   FUZZ_SECONDS=60 FUZZ_TARGETS="host_match" make fuzz
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-600}
targets=${FUZZ_TARGETS:-provider_definition host_match callback_query bridge_form}
target_dir=$PWD/target/fuzz

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# The sanitizer flags cargo-fuzz passes are unstable rustc options; the
# toolchain's stable compiler accepts them with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
(cd fuzz && cargo fuzz build --target-dir "$target_dir")

mkdir -p artifacts
failed=0
summary=()
for t in $targets; do
    corpus=target/fuzz-corpus/$t
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    log=artifacts/fuzz-$t.log
    echo "fuzzing $t for ${seconds}s (log: $log)"
    if "$target_dir/x86_64-unknown-linux-gnu/release/$t" \
        -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$t/" -max_len=65536 -timeout=10 \
        "$corpus" "fuzz/seeds/$t" >"$log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed=1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
    crashes=$(find "fuzz/artifacts/$t" -type f | wc -l)
    summary+=("$t: $status, $runs executions ($rate/s), coverage $cov, $crashes crashing inputs")
done
printf '%s\n' "${summary[@]}" | tee artifacts/fuzz-summary.txt
exit $failed
