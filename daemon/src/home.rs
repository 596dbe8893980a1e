//! The home directory (`AUTHSOME_HOME`, default `~/.authsome`): its layout,
//! `config.toml`, and small file helpers that keep permissions tight and
//! writes atomic.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::names::ProfileName;

/// Where the master key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyBackendKind {
    /// The OS keychain (Secret Service, macOS Keychain, Windows Credential Manager).
    Keychain,
    /// `master.key` in the home, mode 0600.
    File,
}

impl KeyBackendKind {
    /// The name used in config and output.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyBackendKind::Keychain => "keychain",
            KeyBackendKind::File => "file",
        }
    }
}

impl std::str::FromStr for KeyBackendKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "keychain" => Ok(KeyBackendKind::Keychain),
            "file" => Ok(KeyBackendKind::File),
            other => Err(Error::InvalidInput(format!(
                "unknown key backend {other:?}: use keychain or file"
            ))),
        }
    }
}

/// `config.toml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The profile used when `--profile` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The daemon port when `AUTHSOME_PORT` is not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Vault settings.
    #[serde(default)]
    pub vault: VaultConfig,
    /// Proxy settings.
    #[serde(default, skip_serializing_if = "ProxyConfig::is_empty")]
    pub proxy: ProxyConfig,
    /// Defaults for `authsome run`.
    #[serde(default, skip_serializing_if = "RunConfig::is_default")]
    pub run: RunConfig,
}

/// `[run]` in `config.toml`: defaults for `authsome run`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Run commands in the Landlock sandbox (`--no-contain` turns it off for one run).
    #[serde(default = "yes")]
    pub contain: bool,
    /// Where a contained command may connect: `any`, or only the `proxy`.
    #[serde(default)]
    pub egress: crate::contain::Egress,
}

fn yes() -> bool {
    true
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            contain: true,
            egress: crate::contain::Egress::Any,
        }
    }
}

impl RunConfig {
    fn is_default(&self) -> bool {
        self == &RunConfig::default()
    }
}

/// `[proxy]` in `config.toml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Extra CA certificates (PEM) trusted for upstream TLS, for corporate TLS inspection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_ca_file: Option<PathBuf>,
    /// Fixed proxy port; a free one when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Write one `request` audit event per proxied request (default on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<bool>,
    /// Seconds a held request waits for the person before it is denied
    /// (default 120; from 1 s to a day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask_timeout: Option<u64>,
}

impl ProxyConfig {
    fn is_empty(&self) -> bool {
        self == &ProxyConfig::default()
    }
}

/// `[vault]` in `config.toml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// The key backend chosen when the home was created; never changed by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_backend: Option<KeyBackendKind>,
    /// When `authsome rekey` last rotated the master key (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_rotated_at: Option<String>,
}

/// A home directory and the paths inside it.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// The home named by `AUTHSOME_HOME`, else `~/.authsome`.
    pub fn from_env() -> Result<Home> {
        if let Some(dir) = std::env::var_os("AUTHSOME_HOME").filter(|v| !v.is_empty()) {
            return Ok(Home::at(PathBuf::from(dir)));
        }
        let home = std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::InvalidInput("neither AUTHSOME_HOME nor HOME is set".into()))?;
        Ok(Home::at(PathBuf::from(home).join(".authsome")))
    }

    /// A home at an explicit path.
    pub fn at(root: PathBuf) -> Home {
        let root = if root.is_absolute() {
            root
        } else {
            std::env::current_dir()
                .map(|d| d.join(&root))
                .unwrap_or(root)
        };
        Home { root }
    }

    /// The home directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    /// `daemon.json`: pid, port and version of the running daemon.
    pub fn daemon_json(&self) -> PathBuf {
        self.root.join("daemon.json")
    }
    /// `daemon.token`: the API bearer token (0600).
    pub fn token_path(&self) -> PathBuf {
        self.root.join("daemon.token")
    }
    /// `daemon.lock`: held by the one daemon serving this home.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join("daemon.lock")
    }
    /// `audit.log`.
    pub fn audit_log(&self) -> PathBuf {
        self.root.join("audit.log")
    }
    /// `rules.toml`: standing rules for runs.
    pub fn rules_path(&self) -> PathBuf {
        self.root.join("rules.toml")
    }
    /// `logs/`.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// `providers/`: custom provider definitions.
    pub fn providers_dir(&self) -> PathBuf {
        self.root.join("providers")
    }
    /// `profiles/`.
    pub fn profiles_dir(&self) -> PathBuf {
        self.root.join("profiles")
    }
    /// `profiles/<name>/`.
    pub fn profile_dir(&self, profile: &ProfileName) -> PathBuf {
        self.profiles_dir().join(profile.as_str())
    }
    /// `profiles/<name>/store.db`.
    pub fn store_path(&self, profile: &ProfileName) -> PathBuf {
        self.profile_dir(profile).join("store.db")
    }
    /// `ca/`: the proxy's certificate authority.
    pub fn ca_dir(&self) -> PathBuf {
        self.root.join("ca")
    }
    /// `launch/`: launch files that lead a browser into a login.
    pub fn launch_dir(&self) -> PathBuf {
        self.root.join("launch")
    }
    /// `master.key` (file key backend only).
    pub fn master_key_path(&self) -> PathBuf {
        self.root.join("master.key")
    }
    /// `master.key.next`: a new master key staged by `authsome rekey` (file backend).
    pub fn staged_key_path(&self) -> PathBuf {
        self.root.join("master.key.next")
    }

    /// Creates the home and its directories, all 0700.
    pub fn ensure_dirs(&self) -> Result<()> {
        for dir in [
            self.root.clone(),
            self.logs_dir(),
            self.providers_dir(),
            self.profiles_dir(),
        ] {
            ensure_private_dir(&dir)?;
        }
        Ok(())
    }

    /// True when `config.toml` exists.
    pub fn is_initialized(&self) -> bool {
        self.config_path().exists()
    }

    /// Reads `config.toml` (defaults when absent).
    pub fn load_config(&self) -> Result<Config> {
        let path = self.config_path();
        match fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| Error::InvalidInput(format!("{}: {}", path.display(), e.message()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(Error::io(path.display().to_string(), e)),
        }
    }

    /// Writes `config.toml` atomically.
    pub fn save_config(&self, config: &Config) -> Result<()> {
        let text = toml::to_string_pretty(config).map_err(|e| Error::Internal(e.to_string()))?;
        write_private_file(&self.config_path(), text.as_bytes())
    }

    /// The default profile: the configured one, else `default`.
    pub fn default_profile(&self) -> Result<ProfileName> {
        match self.load_config()?.profile {
            Some(p) => ProfileName::parse(&p),
            None => Ok(ProfileName::default_name()),
        }
    }

    /// Profiles that have a directory in the home, sorted.
    pub fn list_profiles(&self) -> Result<Vec<ProfileName>> {
        let mut out = Vec::new();
        let dir = self.profiles_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io(dir.display().to_string(), e)),
        };
        for entry in entries.flatten() {
            if let Some(name) = entry.file_name().to_str() {
                if let Ok(p) = ProfileName::parse(name) {
                    if entry.path().is_dir() {
                        out.push(p);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// The port: `AUTHSOME_PORT`, else the config, else 7998.
    pub fn port(&self) -> Result<u16> {
        if let Ok(v) = std::env::var("AUTHSOME_PORT") {
            if !v.is_empty() {
                return v.parse().map_err(|_| {
                    Error::InvalidInput(format!("AUTHSOME_PORT is not a port number: {v:?}"))
                });
            }
        }
        Ok(self.load_config()?.port.unwrap_or(crate::DEFAULT_PORT))
    }
}

/// Creates a directory (and parents) and sets it to 0700.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io(dir.display().to_string(), e))
}

/// Writes a file atomically (temp file, fsync, rename) with mode 0600.
///
/// The temp file has an unguessable name and is created with `O_EXCL` and
/// `O_NOFOLLOW`: in a directory others can write (a backup in `/tmp`), a
/// file or symlink planted under the name is never opened, so nobody can
/// steer the write into another file. The rename replaces a symlink at
/// `path` itself rather than writing through it.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<()> {
    let ctx = || path.display().to_string();
    let dir = path
        .parent()
        .ok_or_else(|| Error::Internal(format!("{} has no parent", ctx())))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        crate::secret::random_token(12)
    ));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::io(tmp.display().to_string(), e))?;
    let written = f
        .set_permissions(fs::Permissions::from_mode(0o600))
        .and_then(|_| f.write_all(contents))
        .and_then(|_| f.sync_all())
        .and_then(|_| fs::rename(&tmp, path));
    drop(f);
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(ctx(), e));
    }
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The permission bits of a path, if it exists.
pub fn mode_of(path: &Path) -> Option<u32> {
    fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_and_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("h"));
        home.ensure_dirs().unwrap();
        assert_eq!(mode_of(home.root()), Some(0o700));
        let cfg = Config {
            profile: Some("work".into()),
            port: Some(9000),
            vault: VaultConfig {
                key_backend: Some(KeyBackendKind::File),
                key_rotated_at: None,
            },
            proxy: ProxyConfig {
                extra_ca_file: Some(PathBuf::from("/etc/corp-ca.pem")),
                port: None,
                activity: Some(false),
                ask_timeout: Some(30),
            },
            run: RunConfig {
                contain: false,
                egress: crate::contain::Egress::Proxy,
            },
        };
        home.save_config(&cfg).unwrap();
        assert_eq!(home.load_config().unwrap(), cfg);
        std::fs::write(home.config_path(), "[run]\negress = \"proxy\"\n").unwrap();
        let run = home.load_config().unwrap().run;
        assert!(run.contain, "contain defaults to true");
        assert_eq!(run.egress, crate::contain::Egress::Proxy);
        std::fs::write(home.config_path(), "[run]\negress = \"nowhere\"\n").unwrap();
        let err = home.load_config().unwrap_err().to_string();
        assert!(
            err.contains("nowhere") || err.contains("unknown variant"),
            "{err}"
        );
        home.save_config(&cfg).unwrap();
        assert_eq!(mode_of(&home.config_path()), Some(0o600));
        assert_eq!(home.default_profile().unwrap().as_str(), "work");
    }
}
