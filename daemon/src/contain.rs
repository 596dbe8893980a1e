//! Containment of `authsome run` commands with Landlock (Linux).
//!
//! A run's command is untrusted: it may be an agent that tries to take the
//! secrets it is only meant to use through the proxy. Before the command is
//! executed, the process that becomes it restricts itself with a Landlock
//! domain, which the command and all its descendants inherit:
//!
//! - **Files.** Everything but the Authsome home. Landlock rules only ever
//!   allow, and a rule on a directory covers everything beneath it, so the
//!   policy walks from `/` to the home and allows every entry *beside* that
//!   path; the directories on the path get no right at all (they cannot be
//!   listed and nothing can be created directly in them). Inside the home,
//!   only the files in [`Policy::readable`] (the CA bundle) can be read.
//! - **TCP.** Connecting to the daemon's own ports is refused, the run's
//!   proxy port excepted. With [`Egress::Proxy`], every port is refused but
//!   the proxy's and the ones allowed explicitly.
//! - **Processes.** Landlock refuses `ptrace` and the attach-guarded parts
//!   of `/proc/<pid>` (`mem`, `stack`, `syscall`, the `fd`, `exe`, `cwd` and
//!   `root` links) for every process outside the domain. The read-guarded
//!   `environ`, `maps` and `auxv` are not refused by Landlock on Linux 6.18
//!   to a root process holding certain capabilities (measured), so a
//!   command run as root loses those capabilities (and the ones that reach
//!   kernel memory) before it starts.
//!
//! - **Signals and abstract UNIX sockets** (ABI 6): none to processes or
//!   sockets outside the domain.
//!
//! Path UNIX sockets (D-Bus), binding ports and UDP stay allowed (see
//! docs/SECURITY.md for what that leaves reachable).

use std::fs::File;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use landlock::{
    Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, LandlockStatus, NetPort,
    PathBeneath, RestrictSelf, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};
use serde::{Deserialize, Serialize};

/// The Landlock ABI whose rights the policy is written for and tested on.
/// Newer kernels add rights that this policy then leaves unhandled.
const TARGET_ABI: ABI = ABI::V7;

/// Where a contained command may open TCP connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Egress {
    /// Anywhere but the daemon's ports (the proxy port excepted).
    #[default]
    Any,
    /// Only the run's proxy port and the ports allowed explicitly.
    Proxy,
}

impl Egress {
    /// The word used in `config.toml` and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Egress::Any => "any",
            Egress::Proxy => "proxy",
        }
    }
}

impl std::str::FromStr for Egress {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Egress, String> {
        match s {
            "any" => Ok(Egress::Any),
            "proxy" => Ok(Egress::Proxy),
            other => Err(format!("unknown egress {other:?}: use any or proxy")),
        }
    }
}

/// What a contained command may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// The Authsome home: nothing under it can be read, written or listed.
    pub home: PathBuf,
    /// Files under the home that may be read (the CA bundle).
    pub readable: Vec<PathBuf>,
    /// Ports the daemon listens on (API and OAuth callback, proxy).
    pub daemon_ports: Vec<u16>,
    /// The run's proxy port, always reachable.
    pub proxy_port: u16,
    /// Where TCP connections may go.
    pub egress: Egress,
    /// Extra ports reachable under [`Egress::Proxy`] (local dev servers).
    pub allow_ports: Vec<u16>,
    /// Hide the home behind an empty mount in a private mount namespace
    /// when user namespaces allow it; path rules otherwise.
    #[serde(default = "yes")]
    pub mount_namespace: bool,
}

fn yes() -> bool {
    true
}

/// How the home is kept from a contained command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shield {
    /// In a private mount namespace (inside an unprivileged user
    /// namespace), an empty read-only tmpfs covers the home; only copies of
    /// the readable files are in it. The command may use the rest of the
    /// filesystem as before.
    Mount,
    /// Landlock path rules allow every entry beside the path to the home;
    /// the directories on that path cannot be listed or written directly.
    Paths,
}

impl Policy {
    /// The home with symlinks resolved: the path both shields act on.
    fn canonical_home(&self) -> Result<PathBuf, ContainError> {
        self.home
            .canonicalize()
            .map_err(|source| ContainError::Home {
                path: self.home.display().to_string(),
                source,
            })
    }

    /// The ports a contained command may connect to.
    fn connect_ports(&self) -> Vec<u16> {
        match self.egress {
            Egress::Proxy => {
                let mut ports = self.allow_ports.clone();
                ports.push(self.proxy_port);
                ports.retain(|p| {
                    *p != 0 && (*p == self.proxy_port || !self.daemon_ports.contains(p))
                });
                ports.sort_unstable();
                ports.dedup();
                ports
            }
            Egress::Any => (1..=u16::MAX)
                .filter(|p| *p == self.proxy_port || !self.daemon_ports.contains(p))
                .collect(),
        }
    }
}

/// What the running kernel's Landlock can enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Support {
    /// The Landlock ABI version usable here (0: no Landlock).
    pub abi: u8,
}

/// Landlock ABI version numbers, oldest first.
const ABIS: [ABI; 7] = [
    ABI::V1,
    ABI::V2,
    ABI::V3,
    ABI::V4,
    ABI::V5,
    ABI::V6,
    ABI::V7,
];

fn abi_number(abi: ABI) -> u8 {
    ABIS.iter().filter(|a| **a <= abi).count() as u8
}

impl Support {
    /// Asks the kernel (no restriction is applied).
    pub fn detect() -> Support {
        let status = RestrictSelf::default()
            .no_new_privs(false)
            .apply()
            .map(|s| s.landlock);
        let abi = match status {
            Ok(LandlockStatus::Available {
                effective_abi,
                kernel_abi,
                ..
            }) => kernel_abi
                .and_then(|k| u8::try_from(k).ok())
                .unwrap_or_else(|| abi_number(effective_abi)),
            _ => 0,
        };
        Support { abi }
    }

    /// File rules (ABI 1, Linux 5.13).
    pub fn files(self) -> bool {
        self.abi >= 1
    }

    /// TCP connect rules (ABI 4, Linux 6.7).
    pub fn tcp(self) -> bool {
        self.abi >= 4
    }

    /// The one line a run prints when it gets less than full containment.
    pub fn missing(self, egress: Egress) -> Option<String> {
        if !self.files() {
            // A private mount alone is no boundary: without Landlock the
            // command can reach the home through /proc/<pid>/root of any
            // process of the user, or by debugging one.
            return Some(
                "authsome: warning: this kernel has no Landlock; the command runs uncontained \
                 and can read the Authsome home and reach the daemon's API"
                    .into(),
            );
        }
        if !self.tcp() {
            let what = match egress {
                Egress::Any => "the command can connect to the daemon's API port",
                Egress::Proxy => {
                    "the command can connect to the daemon's API port and around the proxy"
                }
            };
            return Some(format!(
                "authsome: warning: this kernel's Landlock (ABI {}) has no TCP rules (ABI 4, Linux 6.7); {what}",
                self.abi
            ));
        }
        None
    }

    /// A sentence for `doctor`: the ABI and what a contained run gets.
    pub fn describe(self) -> String {
        match self.abi {
            0 => "not available: `authsome run` cannot contain commands on this kernel".into(),
            1..=3 => format!(
                "ABI {}: runs cannot read the home or inspect Authsome's processes; \
                 no TCP rules, so they can reach the daemon's API port",
                self.abi
            ),
            _ => format!(
                "ABI {}: runs cannot read the home, reach the daemon's API port, \
                 or inspect Authsome's processes; --egress proxy can confine them to the proxy",
                self.abi
            ),
        }
    }
}

/// What [`apply`] enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The kernel's support.
    pub support: Support,
    /// How the home was kept from the command.
    pub shield: Shield,
    /// Landlock enforced the policy at least in part.
    pub enforced: bool,
}

/// Why the sandbox could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ContainError {
    /// A directory on the way to the home cannot be listed, so its other
    /// entries cannot be allowed.
    #[error("cannot list {path} to build the sandbox: {source}")]
    List {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The home cannot be resolved.
    #[error("cannot resolve the Authsome home {path}: {source}")]
    Home {
        /// The home.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The user and mount namespace was created but could not be set up.
    #[error("cannot set up the private mount namespace: {0} (AUTHSOME_RUN_USERNS=0 uses path rules instead)")]
    Namespace(String),
    /// Landlock refused the ruleset.
    #[error("Landlock: {0}")]
    Landlock(#[from] landlock::RulesetError),
}

/// Opens a path for a Landlock rule without following a final symlink.
fn open_path(path: &Path) -> std::io::Result<File> {
    // O_PATH needs no read permission; with O_NOFOLLOW a symlink is opened
    // as itself, so it can be recognised and skipped. std adds O_CLOEXEC.
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
        .open(path)
}

/// One rule: an opened path and what it allows.
type FileRule = (File, BitFlags<AccessFs>);

/// The file rules: every entry beside the path from `/` to the home, all
/// rights; the readable files, read only.
fn file_rules(policy: &Policy) -> Result<Vec<FileRule>, ContainError> {
    let home = policy.canonical_home()?;
    let mut rules = Vec::new();
    let mut dir = PathBuf::from("/");
    for component in home.components() {
        let Component::Normal(next) = component else {
            continue;
        };
        let entries = std::fs::read_dir(&dir).map_err(|source| ContainError::List {
            path: dir.display().to_string(),
            source,
        })?;
        for entry in entries.flatten() {
            if entry.file_name() == next {
                continue;
            }
            if let Some(rule) = entry_rule(&entry.path()) {
                rules.push(rule);
            }
        }
        dir.push(next);
    }
    for file in &policy.readable {
        if let Ok(f) = open_path(file) {
            if f.metadata().is_ok_and(|m| m.is_file()) {
                rules.push((f, AccessFs::ReadFile.into()));
            }
        }
    }
    Ok(rules)
}

/// The rule for one entry beside the path to the home: everything for a
/// directory, the file rights for anything else, nothing for a symlink
/// (its target is covered by the rule for wherever it lies, or it leads
/// into the home or onto the path to it and must not be allowed).
fn entry_rule(path: &Path) -> Option<FileRule> {
    let file = open_path(path).ok()?;
    let kind = file.metadata().ok()?.file_type();
    if kind.is_symlink() {
        return None;
    }
    let access = if kind.is_dir() {
        AccessFs::from_all(TARGET_ABI)
    } else if kind.is_file()
        || kind.is_char_device()
        || kind.is_block_device()
        || kind.is_fifo()
        || kind.is_socket()
    {
        AccessFs::from_file(TARGET_ABI)
    } else {
        return None;
    };
    Some((file, access))
}

/// Restricts the calling thread (and what it executes next) to `policy`.
/// Call it in a single-threaded process right before `exec`.
pub fn apply(policy: &Policy) -> Result<Applied, ContainError> {
    let support = Support::detect();
    let shield = if support.files() && policy.mount_namespace && user_namespaces_allowed().is_ok() {
        hide_home(policy)?
    } else {
        Shield::Paths
    };
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(TARGET_ABI))?
        // ABI 6: no signals to processes outside the domain (the daemon,
        // the tray, the CLI: killing the daemon is the first step of
        // impersonating it) and no abstract UNIX sockets created outside.
        .scope(Scope::from_all(TARGET_ABI))?;
    if support.tcp() {
        ruleset = ruleset.handle_access(AccessNet::ConnectTcp)?;
    }
    let mut created = ruleset.create()?;
    let rules = match shield {
        // Everything is allowed: the home is an empty mount now, and the
        // Landlock domain keeps the command from unmounting it.
        Shield::Mount => vec![(
            open_path(Path::new("/")).map_err(|source| ContainError::List {
                path: "/".into(),
                source,
            })?,
            AccessFs::from_all(TARGET_ABI),
        )],
        Shield::Paths => file_rules(policy)?,
    };
    for (file, access) in rules {
        created = created.add_rule(PathBeneath::new(file, access))?;
    }
    if support.tcp() {
        created =
            created.add_rules(policy.connect_ports().into_iter().map(|p| {
                Ok::<_, landlock::RulesetError>(NetPort::new(p, AccessNet::ConnectTcp))
            }))?;
    }
    drop_inspection_capabilities();
    let status = created.restrict_self()?;
    Ok(Applied {
        support,
        shield,
        enforced: status.ruleset != RulesetStatus::NotEnforced,
    })
}

/// Why an unprivileged user namespace cannot be had here, if it cannot.
pub fn user_namespaces_allowed() -> Result<(), String> {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    let root = nix::unistd::geteuid().is_root();
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Err("user.max_user_namespaces is 0".into());
    }
    if !root && read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Err("kernel.unprivileged_userns_clone is 0".into());
    }
    if !root
        && read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1")
    {
        return Err("AppArmor restricts unprivileged user namespaces".into());
    }
    Ok(())
}

/// Enters a new user and mount namespace (the same ids inside as outside)
/// and covers the home with an empty read-only tmpfs holding copies of the
/// readable files. [`Shield::Paths`] when the namespace cannot be created;
/// an error when it was created but could not be set up.
fn hide_home(policy: &Policy) -> Result<Shield, ContainError> {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    let home = policy.canonical_home()?;
    // Read what stays readable before it is covered.
    let copies: Vec<(PathBuf, Vec<u8>)> = policy
        .readable
        .iter()
        .filter_map(|p| {
            let p = p.canonicalize().ok()?;
            let rel = p.strip_prefix(&home).ok()?.to_path_buf();
            std::fs::read(&p).ok().map(|bytes| (rel, bytes))
        })
        .collect();
    let cwd = std::env::current_dir().ok();
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    if unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).is_err() {
        return Ok(Shield::Paths);
    }
    let setup =
        |what: &str, e: &dyn std::fmt::Display| ContainError::Namespace(format!("{what}: {e}"));
    let _ = std::fs::write("/proc/self/setgroups", "deny");
    std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1"))
        .map_err(|e| setup("uid_map", &e))?;
    std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1"))
        .map_err(|e| setup("gid_map", &e))?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some("authsome-home"),
        &home,
        Some("tmpfs"),
        flags,
        Some("mode=0755,size=16m"),
    )
    .map_err(|e| setup("mount over the home", &e))?;
    for (rel, bytes) in &copies {
        let target = home.join(rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| setup("copy", &e))?;
        }
        std::fs::write(&target, bytes).map_err(|e| setup("copy", &e))?;
    }
    mount(
        None::<&str>,
        &home,
        None::<&str>,
        flags | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(|e| setup("read-only remount", &e))?;
    // A working directory inside the home still points at the real one:
    // enter it again by name, which now leads into the empty mount.
    if let Some(cwd) = cwd {
        if cwd.starts_with(&home) {
            std::env::set_current_dir(&cwd)
                .or_else(|_| std::env::set_current_dir(&home))
                .map_err(|e| setup("working directory", &e))?;
        }
    }
    Ok(Shield::Mount)
}

/// Capabilities that let a process read other processes' memory or
/// `/proc` files past Landlock: on Linux 6.18 (measured) a root process
/// keeping any of `CAP_SYS_ADMIN`, `CAP_PERFMON` or `CAP_CHECKPOINT_RESTORE`
/// reads `/proc/<pid>/environ` of processes outside its domain, and
/// `CAP_BPF`, `CAP_SYS_MODULE` and `CAP_SYS_RAWIO` reach kernel memory.
fn inspection_capabilities() -> rustix::thread::CapabilitySet {
    use rustix::thread::CapabilitySet as C;
    C::SYS_PTRACE
        | C::SYS_ADMIN
        | C::PERFMON
        | C::CHECKPOINT_RESTORE
        | C::BPF
        | C::SYS_MODULE
        | C::SYS_RAWIO
}

/// Takes the [`inspection_capabilities`] away for good (bounding set and
/// every set of this process). A process that has none loses nothing.
fn drop_inspection_capabilities() {
    use rustix::thread;
    let drop = inspection_capabilities();
    for cap in drop.iter() {
        let _ = thread::remove_capability_from_bounding_set(cap);
    }
    if let Ok(mut sets) = thread::capabilities(None) {
        sets.effective.remove(drop);
        sets.permitted.remove(drop);
        sets.inheritable.remove(drop);
        let _ = thread::set_capabilities(None, sets);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(egress: Egress) -> Policy {
        Policy {
            home: PathBuf::from("/nonexistent"),
            readable: vec![],
            daemon_ports: vec![7998, 40000],
            proxy_port: 40000,
            egress,
            allow_ports: vec![5173, 7998],
            mount_namespace: true,
        }
    }

    #[test]
    fn egress_any_allows_every_port_but_the_daemons_api() {
        let ports = policy(Egress::Any).connect_ports();
        assert!(!ports.contains(&7998));
        assert!(ports.contains(&40000), "the proxy port stays reachable");
        assert!(ports.contains(&443) && ports.contains(&65535) && !ports.contains(&0));
        assert_eq!(ports.len(), 65535 - 1);
    }

    #[test]
    fn egress_proxy_allows_the_proxy_and_the_allowed_ports_never_the_api() {
        assert_eq!(policy(Egress::Proxy).connect_ports(), vec![5173, 40000]);
    }

    #[test]
    fn a_kernel_without_tcp_rules_is_named_in_one_line() {
        assert!(Support { abi: 7 }.missing(Egress::Any).is_none());
        assert!(Support { abi: 4 }.missing(Egress::Proxy).is_none());
        let line = Support { abi: 3 }.missing(Egress::Proxy).unwrap();
        assert!(line.contains("ABI 3") && line.contains("TCP") && !line.contains('\n'));
        let none = Support { abi: 0 }.missing(Egress::Any).unwrap();
        assert!(none.contains("no Landlock") && none.contains("uncontained"));
        assert!(!none.contains('\n'));
    }
}
