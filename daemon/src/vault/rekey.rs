//! Rotating the master key (`authsome rekey`), crash-safe.
//!
//! 1. The new key is stored beside the old one (`master.key.next`, or a
//!    second keychain entry) before anything is sealed with it.
//! 2. Each profile's store is re-sealed in one transaction, then the CA key
//!    is rewritten by rename. Each step is whole or not done at all.
//! 3. The new key replaces the old one in the backend, and the staged copy
//!    goes.
//!
//! A kill at any moment leaves the old key in the backend and, from step 1
//! on, the new key staged. Whatever opens the home next (the daemon, or
//! `rekey` again) finishes the rotation first: a store or CA key that
//! already opens with the new key is left alone, the rest are re-sealed. So
//! every secret opens with the old key or the new one, and never with
//! neither.

use crate::error::{Error, Result};
use crate::home::Home;
use crate::vault::crypto::MasterKey;
use crate::vault::keys::{KeySource, MasterKeyLoader};
use crate::vault::store::Store;

/// What a rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RekeyReport {
    /// Profiles whose store was re-sealed.
    pub profiles: usize,
    /// Sealed fields re-sealed across them.
    pub fields: usize,
    /// Whether the proxy CA's key was re-sealed.
    pub ca_key: bool,
    /// When the rotation finished (RFC 3339).
    pub rotated_at: String,
}

/// A step of a rotation, reported as it is done.
pub type Progress<'a> = &'a mut (dyn FnMut(&str) + Send);

/// Rotates the master key of `home`. The caller holds the home's lock (no
/// daemon serves it).
pub async fn rotate(home: &Home, progress: Progress<'_>) -> Result<RekeyReport> {
    let loader = MasterKeyLoader::new(home.clone());
    // A rotation a crash interrupted ends first.
    finish(home, progress).await?;
    let (old, source) = loader.load()?;
    if source == KeySource::Env {
        return Err(Error::InvalidInput(
            "the master key comes from AUTHSOME_MASTER_KEY; rotate it where it is kept, \
             or unset it to rotate the home's own key"
                .into(),
        ));
    }
    // Every sealed value must open with the key in effect before anything
    // moves: a rotation that could not finish would leave a staged key the
    // daemon cannot get past.
    let mut checked = 0;
    for profile in home.list_profiles()? {
        let path = home.store_path(&profile);
        if path.exists() {
            checked += Store::check_sealed(&path, &profile, &old).await?;
        }
    }
    // With the same key twice this only checks that the CA key opens.
    crate::proxy::ca::reseal_key(home, &old, &old)?;
    progress(&format!("checked {checked} sealed fields"));
    let new = MasterKey::generate();
    loader.stage(&new)?;
    progress("staged the new master key");
    roll_forward(home, &loader, &old, &new, progress).await
}

/// Finishes a rotation that was interrupted, if the home has a staged key.
/// Run before the home's key is loaded.
pub async fn finish(home: &Home, progress: Progress<'_>) -> Result<Option<RekeyReport>> {
    let loader = MasterKeyLoader::new(home.clone());
    if loader.recorded_backend()?.is_none() {
        return Ok(None);
    }
    let Some(new) = loader.staged()? else {
        return Ok(None);
    };
    // The backend's key, even when AUTHSOME_MASTER_KEY is set: the rotation
    // moves from it.
    let (old, _) = loader.load_from_backend()?;
    progress("finishing an interrupted key rotation");
    roll_forward(home, &loader, &old, &new, progress)
        .await
        .map(Some)
}

async fn roll_forward(
    home: &Home,
    loader: &MasterKeyLoader,
    old: &MasterKey,
    new: &MasterKey,
    progress: Progress<'_>,
) -> Result<RekeyReport> {
    let mut report = RekeyReport::default();
    for profile in home.list_profiles()? {
        let path = home.store_path(&profile);
        if !path.exists() {
            continue;
        }
        match Store::reseal(&path, &profile, old, new).await {
            Ok(Some(fields)) => {
                report.profiles += 1;
                report.fields += fields;
                progress(&format!("re-sealed profile {profile} ({fields} fields)"));
            }
            Ok(None) => {}
            // Neither key opens it: it was unreadable before this rotation,
            // and holding the rotation back would not make it readable.
            Err(Error::MasterKey(reason)) => progress(&format!("left profile {profile}: {reason}")),
            Err(e) => return Err(e),
        }
    }
    match crate::proxy::ca::reseal_key(home, old, new) {
        Ok(true) => {
            report.ca_key = true;
            progress("re-sealed the proxy CA key");
        }
        Ok(false) => {}
        Err(Error::MasterKey(reason)) => progress(&format!("left the proxy CA key: {reason}")),
        Err(e) => return Err(e),
    }
    loader.promote_staged()?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut config = home.load_config()?;
    config.vault.key_rotated_at = Some(now.clone());
    home.save_config(&config)?;
    progress("stored the new master key");
    report.rotated_at = now;
    Ok(report)
}
