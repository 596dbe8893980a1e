//! `authsome backup` and `authsome restore`: every profile's connections and
//! client credentials, the custom providers and the settings, in one file
//! encrypted with a passphrase in the age format (so `age -d` opens it too).
//!
//! The file holds no master key: a restored home seals what it reads with
//! its own. A restore reads, decrypts and checks the whole file before it
//! changes anything.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::audit::AuditEvent;
use crate::error::{Error, Result};
use crate::names::{ConnectionName, Existing, ProfileName, ProviderName};
use crate::providers::{ProviderDef, ProviderOrigin};
use crate::secret::Secret;
use crate::services::Services;
use crate::vault::store::{ClientRecord, ConnectionMeta, ConnectionRecord, ConnectionSecrets};
use crate::wire::{BackupSummary, RegisterRequest, RestoreSummary};

/// What the payload says it is.
const FORMAT: &str = "authsome-backup";
/// The payload version this Authsome writes and reads.
const VERSION: u32 = 1;
/// Largest backup file read.
const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Serialize, Deserialize)]
struct Payload {
    format: String,
    version: u32,
    created_at: String,
    authsome_version: String,
    /// `config.toml` without its `[vault]` section (the key stays behind).
    #[serde(default)]
    config: Option<String>,
    #[serde(default)]
    rules: Option<Zeroizing<String>>,
    #[serde(default)]
    providers: Vec<serde_json::Value>,
    #[serde(default)]
    profiles: Vec<ProfileData>,
}

#[derive(Serialize, Deserialize)]
struct ProfileData {
    name: String,
    #[serde(default)]
    connections: Vec<ConnectionData>,
    #[serde(default)]
    clients: Vec<ClientData>,
}

#[derive(Serialize, Deserialize)]
struct ConnectionData {
    meta: ConnectionMeta,
    /// Field name to value.
    secrets: BTreeMap<String, Zeroizing<String>>,
}

#[derive(Serialize, Deserialize)]
struct ClientData {
    provider: String,
    client_id: String,
    client_secret: Option<Zeroizing<String>>,
    base_url: Option<String>,
    registered: bool,
}

/// Writes the backup of every profile to `path` (0600, by rename).
pub async fn backup(
    d: &Services,
    path: &Path,
    passphrase: &Secret,
    force: bool,
) -> Result<BackupSummary> {
    let path = absolute(path)?;
    if path.exists() && !force {
        return Err(Error::InvalidInput(format!(
            "{} exists; --force replaces it",
            path.display()
        )));
    }
    let home = d.home();
    let mut summary = BackupSummary {
        path: path.display().to_string(),
        ..Default::default()
    };
    let mut config = home.load_config()?;
    config.vault = Default::default();
    let config = toml::to_string(&config).map_err(|e| Error::Internal(e.to_string()))?;
    let rules = match std::fs::read_to_string(home.rules_path()) {
        Ok(t) => Some(Zeroizing::new(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(home.rules_path().display().to_string(), e)),
    };
    summary.config = true;
    let mut providers = Vec::new();
    for (def, origin) in d.catalogue().list() {
        if origin == ProviderOrigin::Custom {
            providers.push(
                serde_json::to_value(def.as_ref()).map_err(|e| Error::Internal(e.to_string()))?,
            );
        }
    }
    summary.providers = providers.len();
    let mut profiles = Vec::new();
    for profile in home.list_profiles()? {
        let store = d.stores().get(&profile).await?;
        let mut data = ProfileData {
            name: profile.to_string(),
            connections: Vec::new(),
            clients: Vec::new(),
        };
        for meta in store.list_connections().await? {
            let Some(rec) = store
                .get_connection(&meta.provider, &meta.connection)
                .await?
            else {
                continue;
            };
            let secrets = rec
                .secrets
                .fields()
                .into_iter()
                .map(|(name, value)| (name.to_string(), Zeroizing::new(value.expose().to_string())))
                .collect();
            data.connections.push(ConnectionData {
                meta: rec.meta,
                secrets,
            });
        }
        for provider in store.configured_providers().await? {
            if let Some(c) = store.get_client(&provider).await? {
                data.clients.push(ClientData {
                    provider: c.provider.to_string(),
                    client_id: c.client_id,
                    client_secret: c
                        .client_secret
                        .map(|s| Zeroizing::new(s.expose().to_string())),
                    base_url: c.base_url,
                    registered: c.registered,
                });
            }
        }
        summary.connections += data.connections.len();
        summary.clients += data.clients.len();
        profiles.push(data);
    }
    summary.profiles = profiles.len();
    let payload = Payload {
        format: FORMAT.into(),
        version: VERSION,
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        authsome_version: crate::VERSION.into(),
        config: Some(config),
        rules,
        providers,
        profiles,
    };
    let plain =
        Zeroizing::new(serde_json::to_vec(&payload).map_err(|e| Error::Internal(e.to_string()))?);
    drop(payload);
    let passphrase = passphrase.expose().to_string();
    let sealed = tokio::task::spawn_blocking(move || encrypt(&plain, passphrase))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    crate::home::write_private_file(&path, &sealed)?;
    d.audit(AuditEvent::new("backup").detail(format!(
        "{} profiles, {} connections to {}",
        summary.profiles, summary.connections, summary.path
    )));
    Ok(summary)
}

/// Reads the backup at `path` into this home: what it lacks, and with
/// `force` also what it has.
pub async fn restore(
    d: &Services,
    path: &Path,
    passphrase: &Secret,
    force: bool,
) -> Result<RestoreSummary> {
    let path = absolute(path)?;
    let sealed = read_capped(&path)?;
    let passphrase = passphrase.expose().to_string();
    let plain = tokio::task::spawn_blocking(move || decrypt(&sealed, passphrase))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    let payload = parse(&plain)?;
    drop(plain);
    let plan = check(&payload, |name| d.catalogue().get(name).is_ok())?;

    // What a connection's base URL would send: a connection naming a base
    // URL must agree with the client credentials it will be refreshed with,
    // or a backup could send this home's client secret to its own server.
    let mut fresh = true;
    for (profile, data) in &plan.profiles {
        let store = match d.stores().get(profile).await {
            Ok(s) => Some(s),
            Err(Error::ProfileNotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        for rec in &data.connections {
            let Some(base) = &rec.meta.base_url else {
                continue;
            };
            let p = &rec.meta.provider;
            let ours = match &store {
                Some(s) => s.get_client(p).await?,
                None => None,
            };
            let theirs = data.clients.iter().find(|c| c.provider == *p);
            let effective = match (theirs, &ours) {
                (Some(c), None) => Some(c.base_url.clone()),
                (Some(c), Some(_)) if force => Some(c.base_url.clone()),
                (_, Some(c)) => Some(c.base_url.clone()),
                (None, None) => None,
            };
            if let Some(client_base) = effective {
                if client_base.as_deref() != Some(base.as_str()) {
                    return Err(Error::InvalidInput(format!(
                        "the backup's {p} ({}) in profile {profile} names base URL {base}, which \
                         is not the one of the {p} client credentials it would be refreshed with; \
                         nothing was restored",
                        rec.meta.connection
                    )));
                }
            }
        }
    }
    for profile in d.home().list_profiles()? {
        if !d
            .stores()
            .get(&profile)
            .await?
            .list_connections()
            .await?
            .is_empty()
        {
            fresh = false;
        }
    }

    // Everything in the file is sound: now change the home.
    let home = d.home();
    let mut out = RestoreSummary::default();
    out.restored.path = path.display().to_string();
    for def in plan.providers {
        let name = def.name.clone();
        match d.catalogue().get(&name) {
            Ok((_, ProviderOrigin::Bundled)) => {
                out.skipped
                    .push(format!("provider {name}: a bundled provider has this name"));
                continue;
            }
            Ok((existing, ProviderOrigin::Custom)) if *existing == def => continue,
            Ok(_) if !force => {
                out.skipped
                    .push(format!("provider {name}: this home has another definition"));
                continue;
            }
            _ => {}
        }
        let definition = serde_json::to_value(&def).map_err(|e| Error::Internal(e.to_string()))?;
        d.providers()
            .register(RegisterRequest { definition, force })
            .await?;
        out.restored.providers += 1;
    }
    if let Some(mut incoming) = plan.config {
        let current = home.load_config()?;
        // The key backend is this home's own, whatever the backup says.
        incoming.vault = current.vault.clone();
        let untouched = crate::home::Config {
            vault: current.vault.clone(),
            ..Default::default()
        } == current;
        if incoming == current {
            // Nothing to change.
        } else if (untouched && fresh) || force {
            // Settings (containment, extra CAs, activity) only come into a
            // new home, or with --force: a backup must not quietly loosen
            // an existing one.
            home.save_config(&incoming)?;
            out.restored.config = true;
        } else {
            out.skipped.push(
                "settings: only restored into a new home, or with --force (config.toml)".into(),
            );
        }
    }
    if let Some(rules) = &payload.rules {
        let target = home.rules_path();
        if (!target.exists() && fresh) || force {
            crate::home::write_private_file(&target, rules.as_bytes())?;
            out.restored.config = true;
        } else if std::fs::read_to_string(&target).ok().as_deref() != Some(rules.as_str()) {
            out.skipped.push(if target.exists() {
                "rules: this home has its own rules.toml".into()
            } else {
                "rules: only restored into a new home, or with --force".into()
            });
        }
    }
    for (profile, data) in plan.profiles {
        let store = match d.stores().get(&profile).await {
            Ok(s) => s,
            Err(Error::ProfileNotFound { .. }) => {
                d.connections().create_profile(&profile).await?;
                d.stores().get(&profile).await?
            }
            Err(e) => return Err(e),
        };
        out.restored.profiles += 1;
        for rec in data.connections {
            let (p, c) = (rec.meta.provider.clone(), rec.meta.connection.clone());
            let old = store.get_connection(&p, &c).await?;
            if old.is_some() && !force {
                out.skipped
                    .push(format!("{profile}: {p} ({c}) is connected here already"));
                continue;
            }
            store
                .put_connection(&rec, Existing::replace_if(force))
                .await?;
            d.events().connection_status(
                &profile,
                p.as_str(),
                c.as_str(),
                old.map(|r| r.meta.status),
                Some(rec.meta.status),
            );
            out.restored.connections += 1;
        }
        for client in data.clients {
            if store.get_client(&client.provider).await?.is_some() && !force {
                out.skipped.push(format!(
                    "{profile}: the {} client credentials are here already",
                    client.provider
                ));
                continue;
            }
            store.put_client(&client).await?;
            out.restored.clients += 1;
        }
    }
    d.audit(AuditEvent::new("restore").detail(format!(
        "{} profiles, {} connections from {}",
        out.restored.profiles,
        out.restored.connections,
        path.display()
    )));
    Ok(out)
}

/// What a backup holds, checked and in the store's types.
struct Plan {
    providers: Vec<ProviderDef>,
    config: Option<crate::home::Config>,
    profiles: Vec<(ProfileName, PlanProfile)>,
}

struct PlanProfile {
    connections: Vec<ConnectionRecord>,
    clients: Vec<ClientRecord>,
}

/// What any version of the payload starts with.
#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    format: String,
    #[serde(default)]
    version: u64,
    #[serde(default)]
    authsome_version: Option<String>,
}

fn parse(plain: &[u8]) -> Result<Payload> {
    let head: Header = serde_json::from_slice(plain).map_err(|_| not_a_backup())?;
    if head.format != FORMAT {
        return Err(not_a_backup());
    }
    if head.version > u64::from(VERSION) {
        return Err(Error::InvalidInput(format!(
            "this backup was made by a newer Authsome ({}, backup format {}); this one \
             reads format {VERSION}: upgrade Authsome to restore it",
            head.authsome_version
                .as_deref()
                .unwrap_or("unknown version"),
            head.version
        )));
    }
    serde_json::from_slice(plain)
        .map_err(|e| Error::InvalidInput(format!("the backup's contents do not parse: {e}")))
}

fn check(payload: &Payload, known: impl Fn(&str) -> bool) -> Result<Plan> {
    let bad = |what: String| Error::InvalidInput(format!("the backup holds {what}"));
    let mut providers = Vec::new();
    for value in &payload.providers {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::Internal(e.to_string()))?;
        let def = crate::providers::parse_definition(&bytes)
            .and_then(|def| crate::providers::validate(&def).map(|_| def))
            .map_err(|e| bad(format!("a provider definition that is not valid: {e}")))?;
        providers.push(def);
    }
    let config = match &payload.config {
        Some(text) => Some(
            toml::from_str::<crate::home::Config>(text)
                .map_err(|e| bad(format!("settings that do not parse: {e}")))?,
        ),
        None => None,
    };
    if let Some(rules) = &payload.rules {
        let names: Vec<&str> = providers.iter().map(|d| d.name.as_str()).collect();
        crate::proxy::rules::Rules::parse(rules, |p| known(p) || names.contains(&p))
            .map_err(|e| bad(format!("a rules.toml that is not valid: {e}")))?;
    }
    let mut profiles = Vec::new();
    for p in &payload.profiles {
        let name =
            ProfileName::parse(&p.name).map_err(|e| bad(format!("a bad profile name: {e}")))?;
        let mut plan = PlanProfile {
            connections: Vec::new(),
            clients: Vec::new(),
        };
        for c in &p.connections {
            let mut meta = c.meta.clone();
            ProviderName::parse(meta.provider.as_str()).map_err(|e| bad(e.to_string()))?;
            ConnectionName::parse(meta.connection.as_str()).map_err(|e| bad(e.to_string()))?;
            // A refresh in flight on the old machine is not one here.
            meta.refresh_started_at = None;
            let mut secrets = ConnectionSecrets::default();
            for (field, value) in &c.secrets {
                let v = Some(Secret::new(value.to_string()));
                match field.as_str() {
                    "access_token" => secrets.access_token = v,
                    "refresh_token" => secrets.refresh_token = v,
                    "id_token" => secrets.id_token = v,
                    "api_key" => secrets.api_key = v,
                    other => return Err(bad(format!("an unknown secret field {other:?}"))),
                }
            }
            plan.connections.push(ConnectionRecord { meta, secrets });
        }
        for c in &p.clients {
            plan.clients.push(ClientRecord {
                provider: ProviderName::parse(&c.provider).map_err(|e| bad(e.to_string()))?,
                client_id: c.client_id.clone(),
                client_secret: c.client_secret.as_ref().map(|s| Secret::new(s.to_string())),
                base_url: c.base_url.clone(),
                registered: c.registered,
            });
        }
        profiles.push((name, plan));
    }
    Ok(Plan {
        providers,
        config,
        profiles,
    })
}

fn not_a_backup() -> Error {
    Error::InvalidInput("this file is not an Authsome backup".into())
}

fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Err(Error::InvalidInput(format!(
            "{}: the backup path must be absolute",
            path.display()
        )))
    }
}

fn read_capped(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path.display().to_string(), e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::InvalidInput(format!(
            "{} is larger than a backup can be",
            path.display()
        )));
    }
    Ok(bytes)
}

fn encrypt(plain: &[u8], passphrase: String) -> Result<Vec<u8>> {
    let encryptor =
        age::Encryptor::with_user_passphrase(age::secrecy::SecretString::from(passphrase));
    let mut out = Vec::new();
    let mut writer = encryptor
        .wrap_output(&mut out)
        .map_err(|e| Error::Internal(format!("encrypting the backup: {e}")))?;
    writer
        .write_all(plain)
        .and_then(|_| writer.finish().map(|_| ()))
        .map_err(|e| Error::Internal(format!("encrypting the backup: {e}")))?;
    Ok(out)
}

fn decrypt(sealed: &[u8], passphrase: String) -> Result<Zeroizing<Vec<u8>>> {
    use age::DecryptError as E;
    let damaged = || Error::InvalidInput("the backup file is damaged or truncated".into());
    let decryptor = age::Decryptor::new(sealed).map_err(|e| match e {
        E::UnknownFormat | E::InvalidHeader => Error::InvalidInput(
            "this file is not an Authsome backup (not an age-encrypted file)".into(),
        ),
        _ => damaged(),
    })?;
    if !decryptor.is_scrypt() {
        return Err(Error::InvalidInput(
            "this age file is encrypted to a key, not a passphrase: not an Authsome backup".into(),
        ));
    }
    let identity = age::scrypt::Identity::new(age::secrecy::SecretString::from(passphrase));
    let mut reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|e| match e {
            E::NoMatchingKeys | E::DecryptionFailed | E::KeyDecryptionFailed => {
                Error::InvalidInput("wrong passphrase for this backup".into())
            }
            E::ExcessiveWork { .. } => {
                Error::InvalidInput("this backup asks for more passphrase work than allowed".into())
            }
            _ => damaged(),
        })?;
    let mut plain = Zeroizing::new(Vec::new());
    reader.read_to_end(&mut plain).map_err(|_| damaged())?;
    Ok(plain)
}
