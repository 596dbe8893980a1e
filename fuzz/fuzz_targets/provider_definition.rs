#![no_main]
//! Fuzz target: see `authsome_daemon::invariants::provider_definition` for the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    authsome_daemon::invariants::provider_definition(data);
});
