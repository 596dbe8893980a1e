//! Replays every saved fuzz input (the seed corpora and the inputs that once
//! broke a property) through the same checks the fuzz targets run.

use std::path::Path;

use authsome_daemon::invariants;

fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut count = 0;
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let result = std::panic::catch_unwind(|| check(&data));
            assert!(result.is_ok(), "{} breaks a property", path.display());
            count += 1;
        }
    }
    assert!(count > 0, "no saved inputs for {target}");
}

#[test]
fn provider_definition() {
    replay("provider_definition", invariants::provider_definition);
}

#[test]
fn host_match() {
    replay("host_match", invariants::host_match);
}

#[test]
fn callback_query() {
    replay("callback_query", invariants::callback_query);
}

#[test]
fn bridge_form() {
    replay("bridge_form", invariants::bridge_form);
}
