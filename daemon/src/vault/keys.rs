//! Where the master key comes from: `AUTHSOME_MASTER_KEY`, the OS keychain,
//! or `master.key`. A home records its backend in `config.toml` when it is
//! created and never switches by itself: a home on the keychain whose
//! keychain is unavailable fails with an error naming the ways out.

use std::fs;
use std::path::Path;

use rand::RngCore;

use crate::error::{Error, Result};
use crate::home::{mode_of, write_private_file, Home, KeyBackendKind};
use crate::vault::crypto::MasterKey;

/// The keychain service name every entry is stored under.
pub const KEYCHAIN_SERVICE: &str = "authsome";

/// Environment variable that supplies the master key directly (CI).
pub const MASTER_KEY_ENV: &str = "AUTHSOME_MASTER_KEY";

/// The key given in `AUTHSOME_MASTER_KEY` (or handed over on a pipe by the
/// CLI that started this daemon), once taken out of the environment.
static GIVEN_KEY: std::sync::Mutex<Option<zeroize::Zeroizing<String>>> =
    std::sync::Mutex::new(None);

/// Moves `AUTHSOME_MASTER_KEY` out of this process's environment into
/// [`given_key`], so no process Authsome starts (a browser, the daemon, a
/// `run` command) inherits it. Call it first thing in `main`, while the
/// process has a single thread. The bytes of the original environment
/// block stay in `/proc/<pid>/environ` (see docs/SECURITY.md).
pub fn take_master_key_from_env() {
    if let Some(value) = std::env::var_os(MASTER_KEY_ENV) {
        if let Ok(value) = value.into_string() {
            if !value.is_empty() {
                set_given_key(zeroize::Zeroizing::new(value));
            }
        }
        std::env::remove_var(MASTER_KEY_ENV);
    }
}

/// Hands this process a master key (base64) as if given in the environment.
pub fn set_given_key(key: zeroize::Zeroizing<String>) {
    *GIVEN_KEY.lock().expect("given key") = Some(key);
}

/// The master key given to this process, if any (see [`take_master_key_from_env`]).
pub fn given_key() -> Option<zeroize::Zeroizing<String>> {
    GIVEN_KEY.lock().expect("given key").clone().or_else(|| {
        std::env::var(MASTER_KEY_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .map(zeroize::Zeroizing::new)
    })
}

/// Which source the key in effect came from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum KeySource {
    /// `AUTHSOME_MASTER_KEY`.
    Env,
    /// The OS keychain.
    Keychain,
    /// `master.key`.
    File,
}

impl KeySource {
    /// Name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::Env => "env (AUTHSOME_MASTER_KEY)",
            KeySource::Keychain => "keychain",
            KeySource::File => "file",
        }
    }
}

/// What `init` decided.
#[derive(Debug, Clone)]
pub struct InitReport {
    /// The backend recorded for the home (none when the key comes from the environment).
    pub backend: Option<KeyBackendKind>,
    /// Why the keychain was not used, when the file backend was chosen automatically.
    pub fallback_reason: Option<String>,
    /// True when this call created the home's key backend.
    pub created: bool,
}

/// Loads and creates master keys for one home.
#[derive(Debug, Clone)]
pub struct MasterKeyLoader {
    home: Home,
}

fn keychain_user(home: &Home) -> String {
    format!("master-key:{}", home.root().display())
}

/// Turns a keyring error into words that say what is wrong with the keychain.
fn describe_keyring_error(e: &keyring::Error) -> String {
    let text = e.to_string();
    match e {
        keyring::Error::NoStorageAccess(_) => {
            "the keychain is locked or has no default collection".to_string()
        }
        keyring::Error::NoEntry => "no entry".to_string(),
        _ if text.contains("autolaunch") || text.contains("DBUS_SESSION_BUS_ADDRESS") => {
            "no D-Bus session bus".to_string()
        }
        _ if text.contains("org.freedesktop.secrets") => {
            "no Secret Service (such as gnome-keyring or KeePassXC) is running on the session bus"
                .to_string()
        }
        _ => text,
    }
}

/// Writes a probe entry to the keychain, reads it back and deletes it.
/// `Ok` means a key stored there now can be read back later.
pub fn probe_keychain() -> std::result::Result<(), String> {
    let mut tag = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut tag);
    let user = format!(
        "probe:{}",
        tag.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let entry =
        keyring::Entry::new(KEYCHAIN_SERVICE, &user).map_err(|e| describe_keyring_error(&e))?;
    entry
        .set_password("authsome-probe")
        .map_err(|e| describe_keyring_error(&e))?;
    let read = entry.get_password();
    let _ = entry.delete_credential();
    match read {
        Ok(v) if v == "authsome-probe" => Ok(()),
        Ok(_) => Err("the keychain returned a different value than was stored".into()),
        Err(e) => Err(describe_keyring_error(&e)),
    }
}

fn keychain_unavailable(reason: String) -> Error {
    Error::KeychainUnavailable {
        reason: format!(
            "{reason}. This home keeps its master key in the OS keychain. Unlock or start the keychain \
             (for example gnome-keyring in a D-Bus session), or set AUTHSOME_MASTER_KEY, or use a new home \
             (AUTHSOME_HOME) created with `authsome init --key-backend file`"
        ),
    }
}

/// Stores `key` in a keychain entry and reads it back: a keychain that
/// does not keep what it is given is no place for the key.
fn store_in_keychain(entry: &keyring::Entry, key: &MasterKey) -> Result<()> {
    entry
        .set_password(&key.to_base64())
        .map_err(|e| keychain_unavailable(describe_keyring_error(&e)))?;
    let back = zeroize::Zeroizing::new(
        entry
            .get_password()
            .map_err(|e| keychain_unavailable(describe_keyring_error(&e)))?,
    );
    if back.as_str() != key.to_base64().as_str() {
        return Err(keychain_unavailable(
            "the keychain did not return the key just stored".into(),
        ));
    }
    Ok(())
}

impl MasterKeyLoader {
    /// A loader for `home`.
    pub fn new(home: Home) -> Self {
        MasterKeyLoader { home }
    }

    /// The key from the environment, if set.
    fn from_env() -> Result<Option<MasterKey>> {
        match given_key() {
            Some(v) => MasterKey::from_base64(&v)
                .map(Some)
                .map_err(|e| Error::MasterKey(format!("{MASTER_KEY_ENV}: {e}"))),
            None => Ok(None),
        }
    }

    /// Creates the home and its key backend if it has none. `requested` picks
    /// the backend; without it the keychain is used when a probe proves it
    /// works, and the file otherwise.
    pub fn init(&self, requested: Option<KeyBackendKind>) -> Result<InitReport> {
        self.home.ensure_dirs()?;
        let mut config = self.home.load_config()?;
        if let Some(existing) = config.vault.key_backend {
            if let Some(req) = requested.filter(|r| *r != existing) {
                return Err(Error::InvalidInput(format!(
                    "this home already keeps its master key in the {} backend; a backend never changes \
                     once chosen (asked for {}). Use a new AUTHSOME_HOME for a different backend",
                    existing.as_str(),
                    req.as_str()
                )));
            }
            return Ok(InitReport {
                backend: Some(existing),
                fallback_reason: None,
                created: false,
            });
        }
        if requested.is_none() && Self::from_env()?.is_some() {
            if !self.home.is_initialized() {
                self.home.save_config(&config)?;
            }
            return Ok(InitReport {
                backend: None,
                fallback_reason: None,
                created: false,
            });
        }
        let (backend, fallback_reason) = match requested {
            Some(KeyBackendKind::Keychain) => {
                probe_keychain().map_err(keychain_unavailable)?;
                (KeyBackendKind::Keychain, None)
            }
            Some(KeyBackendKind::File) => (KeyBackendKind::File, None),
            None => match probe_keychain() {
                Ok(()) => (KeyBackendKind::Keychain, None),
                Err(reason) => (KeyBackendKind::File, Some(reason)),
            },
        };
        match backend {
            KeyBackendKind::Keychain => self.create_keychain_key()?,
            KeyBackendKind::File => self.create_file_key()?,
        }
        config.vault.key_backend = Some(backend);
        self.home.save_config(&config)?;
        Ok(InitReport {
            backend: Some(backend),
            fallback_reason,
            created: true,
        })
    }

    fn create_keychain_key(&self) -> Result<()> {
        let entry = keyring::Entry::new(KEYCHAIN_SERVICE, &keychain_user(&self.home))
            .map_err(|e| keychain_unavailable(describe_keyring_error(&e)))?;
        // A key left by an earlier home at this path may still open its stores.
        match entry.get_password().map(zeroize::Zeroizing::new) {
            Ok(existing) if MasterKey::from_base64(&existing).is_ok() => return Ok(()),
            Ok(_) | Err(keyring::Error::NoEntry) => {}
            Err(e) => return Err(keychain_unavailable(describe_keyring_error(&e))),
        }
        store_in_keychain(&entry, &MasterKey::generate())
    }

    fn create_file_key(&self) -> Result<()> {
        let path = self.home.master_key_path();
        if path.exists() {
            return self.read_file_key(&path).map(|_| ());
        }
        let key = MasterKey::generate();
        let mut text = key.to_base64();
        text.push('\n');
        write_private_file(&path, text.as_bytes())
    }

    fn read_file_key(&self, path: &Path) -> Result<MasterKey> {
        let mode = mode_of(path).ok_or_else(|| {
            Error::MasterKey(format!(
                "{} is missing; this home's secrets cannot be opened",
                path.display()
            ))
        })?;
        if mode & 0o077 != 0 {
            return Err(Error::MasterKey(format!(
                "{} is readable by other users (mode {:o}); run `chmod 600 {}` and retry",
                path.display(),
                mode,
                path.display()
            )));
        }
        let text = zeroize::Zeroizing::new(
            fs::read_to_string(path).map_err(|e| Error::io(path.display().to_string(), e))?,
        );
        MasterKey::from_base64(&text)
            .map_err(|e| Error::MasterKey(format!("{}: {e}", path.display())))
    }

    /// The master key in effect: `AUTHSOME_MASTER_KEY`, else the home's backend.
    pub fn load(&self) -> Result<(MasterKey, KeySource)> {
        if let Some(key) = Self::from_env()? {
            return Ok((key, KeySource::Env));
        }
        self.load_from_backend()
    }

    /// The key the home's backend holds, whatever `AUTHSOME_MASTER_KEY` says.
    pub fn load_from_backend(&self) -> Result<(MasterKey, KeySource)> {
        match self.home.load_config()?.vault.key_backend {
            None => Err(Error::MasterKey(format!(
                "{} has no master key yet; run `authsome init`",
                self.home.root().display()
            ))),
            Some(KeyBackendKind::File) => Ok((
                self.read_file_key(&self.home.master_key_path())?,
                KeySource::File,
            )),
            Some(KeyBackendKind::Keychain) => {
                let entry = keyring::Entry::new(KEYCHAIN_SERVICE, &keychain_user(&self.home))
                    .map_err(|e| keychain_unavailable(describe_keyring_error(&e)))?;
                match entry.get_password() {
                    Ok(text) => Ok((MasterKey::from_base64(&zeroize::Zeroizing::new(text))?, KeySource::Keychain)),
                    Err(keyring::Error::NoEntry) => Err(Error::MasterKey(
                        "the OS keychain holds no master key for this home (was the entry deleted?); \
                         set AUTHSOME_MASTER_KEY, or start a new home with `authsome init`"
                            .into(),
                    )),
                    Err(e) => Err(keychain_unavailable(describe_keyring_error(&e))),
                }
            }
        }
    }

    /// Stores `key` beside the home's key, as the key a rotation moves to
    /// (`master.key.next`, or a second keychain entry). Nothing is sealed
    /// with it before this returns.
    pub fn stage(&self, key: &MasterKey) -> Result<()> {
        match self.backend()? {
            KeyBackendKind::File => {
                let mut text = key.to_base64();
                text.push('\n');
                write_private_file(&self.home.staged_key_path(), text.as_bytes())
            }
            KeyBackendKind::Keychain => store_in_keychain(&self.staged_entry()?, key),
        }
    }

    /// The key a rotation that has not finished moves to, if any.
    pub fn staged(&self) -> Result<Option<MasterKey>> {
        match self.backend()? {
            KeyBackendKind::File => {
                let path = self.home.staged_key_path();
                if !path.exists() {
                    return Ok(None);
                }
                self.read_file_key(&path).map(Some)
            }
            KeyBackendKind::Keychain => match self.staged_entry()?.get_password() {
                Ok(text) => Ok(Some(MasterKey::from_base64(&zeroize::Zeroizing::new(
                    text,
                ))?)),
                Err(keyring::Error::NoEntry) => Ok(None),
                Err(e) => Err(keychain_unavailable(describe_keyring_error(&e))),
            },
        }
    }

    /// Makes the staged key the home's key, then forgets the staged copy.
    /// A crash in between leaves both holding the new key.
    pub fn promote_staged(&self) -> Result<()> {
        match self.backend()? {
            KeyBackendKind::File => {
                let (from, to) = (self.home.staged_key_path(), self.home.master_key_path());
                std::fs::rename(&from, &to)
                    .map_err(|e| Error::io(from.display().to_string(), e))?;
                if let Ok(dir) = std::fs::File::open(self.home.root()) {
                    let _ = dir.sync_all();
                }
                Ok(())
            }
            KeyBackendKind::Keychain => {
                let Some(key) = self.staged()? else {
                    return Ok(());
                };
                let main = keyring::Entry::new(KEYCHAIN_SERVICE, &keychain_user(&self.home))
                    .map_err(|e| keychain_unavailable(describe_keyring_error(&e)))?;
                store_in_keychain(&main, &key)?;
                match self.staged_entry()?.delete_credential() {
                    Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
                    Err(e) => Err(keychain_unavailable(describe_keyring_error(&e))),
                }
            }
        }
    }

    /// The home's recorded backend (a home without one has no key to rotate).
    fn backend(&self) -> Result<KeyBackendKind> {
        self.recorded_backend()?.ok_or_else(|| {
            Error::MasterKey(format!(
                "{} has no master key yet; run `authsome init`",
                self.home.root().display()
            ))
        })
    }

    fn staged_entry(&self) -> Result<keyring::Entry> {
        keyring::Entry::new(
            KEYCHAIN_SERVICE,
            &format!("{}:next", keychain_user(&self.home)),
        )
        .map_err(|e| keychain_unavailable(describe_keyring_error(&e)))
    }

    /// The backend recorded for the home, if any.
    pub fn recorded_backend(&self) -> Result<Option<KeyBackendKind>> {
        Ok(self.home.load_config()?.vault.key_backend)
    }

    /// Deletes the home's keychain entries (used by tests that clean up after themselves).
    pub fn delete_keychain_key(&self) -> Result<()> {
        match self.staged_entry()?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => {}
            Err(e) => return Err(keychain_unavailable(describe_keyring_error(&e))),
        }
        let entry = keyring::Entry::new(KEYCHAIN_SERVICE, &keychain_user(&self.home))
            .map_err(|e| keychain_unavailable(describe_keyring_error(&e)))?;
        match entry.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keychain_unavailable(describe_keyring_error(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::mode_of;

    // These tests never touch the keychain: they ask for the file backend
    // explicitly, so they run anywhere.
    #[test]
    fn file_backend_creates_a_private_key_and_loads_it() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().to_path_buf());
        let loader = MasterKeyLoader::new(home.clone());
        let report = loader.init(Some(KeyBackendKind::File)).unwrap();
        assert_eq!(report.backend, Some(KeyBackendKind::File));
        assert_eq!(mode_of(&home.master_key_path()), Some(0o600));
        if std::env::var_os(MASTER_KEY_ENV).is_none() {
            let (k1, src) = loader.load().unwrap();
            assert_eq!(src, KeySource::File);
            let (k2, _) = loader.load().unwrap();
            assert_eq!(&*k2.open("a", &k1.seal("a", b"x")).unwrap(), b"x");
        }
    }

    #[test]
    fn backend_never_changes_once_chosen() {
        let dir = tempfile::tempdir().unwrap();
        let loader = MasterKeyLoader::new(Home::at(dir.path().to_path_buf()));
        loader.init(Some(KeyBackendKind::File)).unwrap();
        let err = loader
            .init(Some(KeyBackendKind::Keychain))
            .unwrap_err()
            .to_string();
        assert!(err.contains("never changes"), "{err}");
        assert_eq!(
            loader.recorded_backend().unwrap(),
            Some(KeyBackendKind::File)
        );
    }

    #[test]
    fn a_world_readable_key_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().to_path_buf());
        let loader = MasterKeyLoader::new(home.clone());
        loader.init(Some(KeyBackendKind::File)).unwrap();
        fs::set_permissions(home.master_key_path(), fs::Permissions::from_mode(0o644)).unwrap();
        let err = loader
            .read_file_key(&home.master_key_path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }
}
