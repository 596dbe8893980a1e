//! This process and others: core dumps off, whether a pid is alive and
//! ours, and whether it runs an Authsome daemon.

/// Turns off core dumps for this process: a daemon holds every secret in memory.
pub fn disable_core_dumps() {
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
    // Not dumpable: no core file even if the limit is raised again, and other
    // processes of the same user can no longer ptrace this one or read its
    // /proc/<pid>/mem and environ.
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_dumpable(false);
}

/// True when this process can leave no core file and is not dumpable.
pub fn core_dumps_disabled() -> bool {
    let no_core = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_CORE)
        .is_ok_and(|(soft, hard)| soft == 0 && hard == 0);
    #[cfg(target_os = "linux")]
    let dumpable = nix::sys::prctl::get_dumpable().unwrap_or(true);
    #[cfg(not(target_os = "linux"))]
    let dumpable = false;
    no_core && !dumpable
}

/// True when a process of this user with this pid exists and is not a
/// zombie waiting to be reaped (a detached daemon's parent is whoever adopts
/// orphans). A pid that answers `EPERM` belongs to another user: after an
/// unclean stop it is not our daemon, whatever `daemon.json` says.
pub fn process_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    let exists = ours(nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(raw),
        None,
    ));
    // /proc/<pid>/stat: "pid (comm) S ..."; comm may hold spaces or parentheses.
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false);
    exists && !zombie
}

/// True when `pid` runs an `authsome` binary serving a daemon (its command
/// line is `authsome daemon serve ...` or the tray's).
pub(crate) fn runs_authsome(pid: u32) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let name = args
        .first()
        .and_then(|a| std::path::Path::new(std::str::from_utf8(a).ok()?).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let serves = args.get(1) == Some(&&b"daemon"[..]) && args.get(2) == Some(&&b"serve"[..]);
    name == "authsome-tray" || (name == "authsome" && serves)
}

/// Whether the answer to `kill(pid, 0)` means a process we can signal.
fn ours(signal_zero: nix::Result<()>) -> bool {
    signal_zero.is_ok()
}

/// Removes from `cmd`'s environment what a daemon must not inherit: a
/// run's proxy and CA variables (a daemon started from inside
/// `authsome run --no-contain` would send its own requests through that
/// run's proxy and trust its CA) and `AUTHSOME_MASTER_KEY` (the key goes
/// over a pipe, never in an environment its children could inherit).
pub fn scrub_daemon_env(cmd: &mut std::process::Command) {
    for var in crate::proxy::PROXY_VARS
        .iter()
        .chain(&crate::proxy::CA_VARS)
        .chain(&["NODE_USE_ENV_PROXY", crate::vault::keys::MASTER_KEY_ENV])
    {
        cmd.env_remove(var);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_of_another_user_is_not_our_daemon() {
        assert!(ours(Ok(())));
        assert!(
            !ours(Err(nix::errno::Errno::EPERM)),
            "EPERM: another user's process"
        );
        assert!(!ours(Err(nix::errno::Errno::ESRCH)));
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(u32::MAX));
    }
}
