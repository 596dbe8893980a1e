//! Installation checks for `authsome doctor` (and the tray): home and file
//! permissions, the key backend, the stores, the provider definitions.

use serde::{Deserialize, Serialize};

use crate::home::{mode_of, Home, KeyBackendKind};
use crate::providers::Catalogue;
use crate::vault::keys::{probe_keychain, MasterKeyLoader};
use crate::vault::Store;

/// Result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// Fine.
    Ok,
    /// Works, but worth knowing.
    Warn,
    /// Broken.
    Fail,
}

/// One line of the doctor's report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Outcome.
    pub status: CheckStatus,
    /// Details.
    pub detail: String,
}

fn check(name: &str, status: CheckStatus, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        status,
        detail: detail.into(),
    }
}

/// Checks that need no daemon: home, permissions, key backend, stores, providers.
pub async fn local_checks(home: &Home) -> Vec<Check> {
    let mut out = Vec::new();
    let root = home.root();
    match mode_of(root) {
        None => {
            out.push(check(
                "home",
                CheckStatus::Fail,
                format!("{} does not exist; run `authsome init`", root.display()),
            ));
            return out;
        }
        Some(m) if m & 0o077 != 0 => out.push(check(
            "home",
            CheckStatus::Warn,
            format!("{} is mode {m:o}; expected 700", root.display()),
        )),
        Some(_) => out.push(check("home", CheckStatus::Ok, root.display().to_string())),
    }
    for (label, path) in [
        ("daemon.token", home.token_path()),
        ("master.key", home.master_key_path()),
        ("config.toml", home.config_path()),
        ("audit.log", home.audit_log()),
    ] {
        if let Some(m) = mode_of(&path) {
            if m & 0o077 != 0 {
                out.push(check(
                    label,
                    CheckStatus::Fail,
                    format!(
                        "{} is mode {m:o}; run `chmod 600 {}`",
                        path.display(),
                        path.display()
                    ),
                ));
            }
        }
    }

    let loader = MasterKeyLoader::new(home.clone());
    let backend = loader.recorded_backend().ok().flatten();
    let env_key = crate::vault::keys::given_key().is_some();
    let probe = tokio::task::spawn_blocking(probe_keychain)
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    let keychain_detail = match &probe {
        Ok(()) => "keychain available and persists (probe entry written and read back)".to_string(),
        Err(reason) => format!("keychain unavailable: {reason}"),
    };
    let key = {
        let l = loader.clone();
        tokio::task::spawn_blocking(move || l.load())
            .await
            .map_err(|e| crate::Error::Internal(e.to_string()))
            .and_then(|r| r)
    };
    match (&key, backend) {
        (Ok((_, source)), _) => {
            let mut detail = format!("master key from {}", source.as_str());
            match home.load_config().ok().and_then(|c| c.vault.key_rotated_at) {
                Some(at) => detail.push_str(&format!(", last rotated {at}")),
                None => detail.push_str(", never rotated (`authsome rekey`)"),
            }
            if loader.staged().ok().flatten().is_some() {
                out.push(check(
                    "key rotation",
                    CheckStatus::Warn,
                    "a key rotation was interrupted; the next daemon start (or `authsome rekey`) finishes it",
                ));
            }
            if backend == Some(KeyBackendKind::File) && !env_key {
                detail.push_str(&format!(
                    " ({}); {keychain_detail}",
                    home.master_key_path().display()
                ));
                out.push(check("key backend", CheckStatus::Warn, detail));
            } else {
                detail.push_str(&format!("; {keychain_detail}"));
                out.push(check("key backend", CheckStatus::Ok, detail));
            }
        }
        (Err(e), _) => out.push(check("key backend", CheckStatus::Fail, e.to_string())),
    }

    match home.list_profiles() {
        Ok(profiles) => {
            for p in profiles {
                let path = home.store_path(&p);
                if !path.exists() {
                    continue;
                }
                let name = format!("store {p}");
                if let Some(m) = mode_of(&path).filter(|m| m & 0o077 != 0) {
                    out.push(check(
                        &name,
                        CheckStatus::Fail,
                        format!("{} is mode {m:o}; expected 600", path.display()),
                    ));
                    continue;
                }
                match &key {
                    Ok((k, _)) => {
                        match Store::open(&path, std::sync::Arc::new(k.clone()), p.clone()).await {
                            Ok(store) => {
                                let result = store.integrity_check().await;
                                store.close().await;
                                match result {
                                    Ok(r) if r == "ok" => out.push(check(
                                        &name,
                                        CheckStatus::Ok,
                                        "integrity ok, master key opens it",
                                    )),
                                    Ok(r) => out.push(check(
                                        &name,
                                        CheckStatus::Fail,
                                        format!("integrity check: {r}"),
                                    )),
                                    Err(e) => {
                                        out.push(check(&name, CheckStatus::Fail, e.to_string()))
                                    }
                                }
                            }
                            Err(e) => out.push(check(&name, CheckStatus::Fail, e.to_string())),
                        }
                    }
                    Err(_) => {
                        out.push(check(&name, CheckStatus::Warn, "not opened: no master key"))
                    }
                }
            }
        }
        Err(e) => out.push(check("profiles", CheckStatus::Fail, e.to_string())),
    }

    let ca = home.ca_dir().join("ca.pem");
    match crate::proxy::ca::fingerprint_file(&ca) {
        Some(fp) => out.push(check(
            "proxy CA",
            CheckStatus::Ok,
            format!("{} SHA-256 {fp}", ca.display()),
        )),
        None => out.push(check(
            "proxy CA",
            CheckStatus::Ok,
            "not created yet (the daemon creates it on start)",
        )),
    }
    match Catalogue::bundled() {
        Ok(defs) => out.push(check(
            "providers",
            CheckStatus::Ok,
            format!("{} bundled definitions valid", defs.len()),
        )),
        Err(e) => out.push(check("providers", CheckStatus::Fail, e.to_string())),
    }
    let (custom, problems) = Catalogue::read_custom(home);
    if !custom.is_empty() {
        out.push(check(
            "custom providers",
            CheckStatus::Ok,
            format!("{} valid", custom.len()),
        ));
    }
    let bundled: Vec<String> = Catalogue::bundled()
        .map(|defs| defs.into_iter().map(|d| d.name).collect())
        .unwrap_or_default();
    for def in custom.iter().filter(|d| bundled.contains(&d.name)) {
        out.push(check(
            "provider override",
            CheckStatus::Warn,
            format!(
                "{} in {} replaces the bundled definition; its URLs decide where tokens and keys go",
                def.name,
                home.providers_dir().display()
            ),
        ));
    }
    for p in problems {
        out.push(check(
            "custom providers",
            CheckStatus::Fail,
            format!("{}: {}", p.file, p.problem),
        ));
    }
    out.push(containment_check(home));
    out
}

/// The kernel's Landlock and what `authsome run` gets from it.
fn containment_check(home: &Home) -> Check {
    let support = crate::contain::Support::detect();
    let egress = home.load_config().map(|c| c.run).unwrap_or_default();
    let mut detail = format!("Landlock {}", support.describe());
    if support.files() {
        match crate::contain::user_namespaces_allowed() {
            Ok(()) => detail.push_str("; the home is hidden behind a private mount"),
            Err(why) => detail.push_str(&format!(
                "; the home is kept out by path rules ({why}), so `/` and the directories above the home cannot be listed"
            )),
        }
    }
    if !egress.contain {
        detail.push_str("; off by default here ([run] contain = false)");
    } else if egress.egress == crate::contain::Egress::Proxy {
        detail.push_str("; egress limited to the proxy by default");
    }
    let status = if support.tcp() && egress.contain {
        CheckStatus::Ok
    } else {
        CheckStatus::Warn
    };
    check("run containment", status, detail)
}
