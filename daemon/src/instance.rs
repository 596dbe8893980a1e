//! The daemon instance of a home, as other processes see it: `daemon.json`,
//! and stopping the daemon that serves a home.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::home::{write_private_file, Home};
use crate::process::{process_alive, runs_authsome};
use crate::secret::Secret;
use crate::wire::HealthResponse;

/// `daemon.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DaemonInfo {
    /// Process id.
    pub pid: u32,
    /// Port on 127.0.0.1.
    pub port: u16,
    /// Version.
    pub version: String,
}

/// Takes the home's lock, held for the daemon's life: one daemon per home.
pub fn lock(home: &Home) -> Result<std::fs::File> {
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(home.lock_path())
        .map_err(|e| Error::io(home.lock_path().display().to_string(), e))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::DaemonRunning {
            home: home.root().display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("daemon.lock", e)),
    }
}

/// Listens on 127.0.0.1:`port` (0: a free port), non-blocking.
pub fn bind(port: u16) -> Result<std::net::TcpListener> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            Error::AddrInUse {
                addr: addr.to_string(),
            }
        } else {
            Error::io(format!("cannot listen on {addr}"), e)
        }
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("listener", e))?;
    Ok(listener)
}

/// Writes `daemon.token` and `daemon.json` (0600) for this process on `port`.
pub fn publish(home: &Home, port: u16, token: &Secret) -> Result<()> {
    write_private_file(&home.token_path(), token.expose().as_bytes())?;
    let info = DaemonInfo {
        pid: std::process::id(),
        port,
        version: crate::VERSION.to_string(),
    };
    write_private_file(
        &home.daemon_json(),
        serde_json::to_string(&info)
            .map_err(|e| Error::Internal(e.to_string()))?
            .as_bytes(),
    )
}

/// Removes `daemon.json` and `daemon.token` if they are this process's.
pub fn withdraw(home: &Home) {
    let ours = std::fs::read(home.daemon_json())
        .ok()
        .and_then(|b| serde_json::from_slice::<DaemonInfo>(&b).ok())
        .is_some_and(|i| i.pid == std::process::id());
    if ours {
        let _ = std::fs::remove_file(home.daemon_json());
        let _ = std::fs::remove_file(home.token_path());
    }
}

/// Asks the daemon that serves `home` (if any) to stop, and waits until its
/// process is gone. True when one was stopped. The tray app uses this to
/// take over from a headless daemon.
pub async fn stop_running(home: &Home) -> Result<bool> {
    let Some(info) = std::fs::read(home.daemon_json())
        .ok()
        .and_then(|b| serde_json::from_slice::<DaemonInfo>(&b).ok())
    else {
        return Ok(false);
    };
    if info.pid == std::process::id() || !process_alive(info.pid) {
        return Ok(false);
    }
    let token = std::fs::read_to_string(home.token_path()).unwrap_or_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| Error::Internal(e.to_string()))?;
    // The token goes only to a port that proves it knows it.
    let challenge = crate::identity::new_challenge();
    let answer = client
        .get(format!(
            "http://127.0.0.1:{}/health?{}={challenge}",
            info.port,
            crate::identity::CHALLENGE_PARAM
        ))
        .send()
        .await
        .ok();
    let Some(answer) = answer else {
        // Nothing listens: a stale daemon.json.
        return Ok(false);
    };
    let proven = answer.json::<HealthResponse>().await.ok().is_some_and(|h| {
        h.proof
            .is_some_and(|p| crate::identity::verify(token.trim(), info.port, &challenge, &p))
    });
    if !proven {
        // An Authsome daemon of this user that cannot answer the challenge
        // (one from before it existed) is stopped with a signal: nothing is
        // sent to its port. Anything else on the port is an impostor.
        if !runs_authsome(info.pid) {
            return Err(Error::Impostor { port: info.port });
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(info.pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    } else {
        let _ = client
            .post(format!("http://127.0.0.1:{}/v1/shutdown", info.port))
            .bearer_auth(token.trim())
            .send()
            .await;
    }
    for _ in 0..200 {
        if !process_alive(info.pid) {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(Error::DaemonRunning {
        home: home.root().display().to_string(),
    })
}
