//! Properties of the parsers that face untrusted input, stated as functions
//! that panic when a property breaks. The fuzz targets in `fuzz/` call them
//! with generated inputs; `daemon/tests/fuzz_regressions.rs` calls them with
//! every saved input under `fuzz/regressions/` and `fuzz/seeds/`.
//!
//! Each function takes raw bytes, so a saved input replays exactly.

use crate::flows::forms::{
    BridgeForm, Callback, CallbackOutcome, MAX_CALLBACK_VALUE, MAX_FORM_FIELDS,
};
use crate::names::ConnectionName;
use crate::providers::{parse_definition, validate, HostPattern, MAX_DEFINITION_BYTES};
use crate::proxy::matcher::{decide, intercepts, Candidate, Decision};
use crate::secret::Secret;

/// A provider definition: parsing and validation never panic; a definition
/// that validates survives a JSON round trip unchanged and still validates,
/// and every `host_url` entry of it compiles.
pub fn provider_definition(data: &[u8]) {
    let Ok(def) = parse_definition(data) else {
        return;
    };
    assert!(data.len() <= MAX_DEFINITION_BYTES);
    if validate(&def).is_err() {
        return;
    }
    let again = serde_json::to_vec(&def).expect("a parsed definition serializes");
    let reparsed = parse_definition(&again).expect("a serialized definition parses");
    assert_eq!(reparsed, def, "round trip changed the definition");
    validate(&reparsed).expect("a round-tripped definition validates");
    for entry in def.host_url.patterns() {
        HostPattern::parse(entry).expect("a validated host_url entry compiles");
    }
}

/// The `host_url` matcher. The input is text: line 1 the request host,
/// line 2 its port, line 3 its path, then the candidates' patterns one per
/// line, a blank line between candidates; a line starting with `!` is an
/// excluded `host/path` of the candidate.
///
/// Properties: never panics; a request that gets a credential is on a host
/// that is intercepted; host case does not change the decision; the order of
/// the candidates does not change the decision.
pub fn host_match(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let host = lines.next().unwrap_or_default();
    let port: u16 = lines
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(443);
    let path = lines.next().unwrap_or("/");
    let mut candidates = Vec::new();
    let mut current: Option<Candidate> = None;
    for line in lines {
        if line.is_empty() {
            candidates.extend(current.take());
            continue;
        }
        let c = current.get_or_insert_with(|| Candidate {
            provider: format!("p{}", candidates.len()),
            connection: ConnectionName::parse("default").expect("valid name"),
            patterns: Vec::new(),
            excluded: Vec::new(),
        });
        if let Some(excluded) = line.strip_prefix('!') {
            let (h, p) = excluded.split_once('/').unwrap_or((excluded, ""));
            c.excluded.push((h.to_string(), format!("/{p}")));
        } else if let Ok(pattern) = HostPattern::parse(line) {
            c.patterns.push(pattern);
        }
    }
    candidates.extend(current);

    let decision = decide(&candidates, host, port, path);
    if let Decision::Inject { .. } = decision {
        assert!(
            intercepts(&candidates, host, port),
            "a credential for a host that is not intercepted"
        );
    }
    if host.is_ascii() {
        let upper = decide(&candidates, &host.to_ascii_uppercase(), port, path);
        assert_eq!(
            normalized(&upper),
            normalized(&decision),
            "host case changed the decision"
        );
    }
    let mut reversed = candidates.clone();
    reversed.reverse();
    let other = decide(&reversed, host, port, path);
    assert_eq!(
        normalized(&other),
        normalized(&decision),
        "candidate order changed the decision"
    );
}

fn normalized(d: &Decision) -> Decision {
    match d {
        Decision::Ambiguous(v) => {
            let mut v = v.clone();
            v.sort();
            Decision::Ambiguous(v)
        }
        other => other.clone(),
    }
}

/// The OAuth callback query: never panics; what it reports is bounded and
/// printable; a code is never empty.
pub fn callback_query(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(callback) = Callback::parse(raw) else {
        return;
    };
    assert!(callback.state.len() <= MAX_CALLBACK_VALUE);
    match &callback.outcome {
        CallbackOutcome::Code(code) => {
            assert!(!code.is_empty() && code.expose().len() <= MAX_CALLBACK_VALUE)
        }
        CallbackOutcome::Denied { code, description } => {
            assert!(code.chars().count() <= 100 && !code.chars().any(char::is_control));
            if let Some(d) = description {
                assert!(d.chars().count() <= 200 && !d.chars().any(char::is_control));
            }
        }
        CallbackOutcome::Missing => {}
    }
    if let CallbackOutcome::Code(_) = &callback.outcome {
        let masked = Callback {
            state: String::new(),
            iss: callback.iss.clone(),
            outcome: CallbackOutcome::Code(Secret::new("x".into())),
        };
        assert_eq!(
            format!("{callback:?}"),
            format!("{masked:?}"),
            "Debug shows the state or the code"
        );
    }
}

/// A bridge form body: never panics; the CSRF field is never among the
/// values; the number of fields is bounded; `Debug` shows no value.
pub fn bridge_form(data: &[u8]) {
    let Ok(form) = BridgeForm::parse(data) else {
        return;
    };
    assert!(!form.values.contains_key("csrf"));
    assert!(form.values.len() <= MAX_FORM_FIELDS);
    let masked = BridgeForm {
        csrf: String::new(),
        values: form
            .values
            .keys()
            .map(|k| (k.clone(), Secret::new("x".into())))
            .collect(),
    };
    assert_eq!(
        format!("{form:?}"),
        format!("{masked:?}"),
        "Debug shows the CSRF token or a value"
    );
}
