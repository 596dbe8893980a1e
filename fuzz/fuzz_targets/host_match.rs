#![no_main]
//! Fuzz target: see `authsome_daemon::invariants::host_match` for the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    authsome_daemon::invariants::host_match(data);
});
