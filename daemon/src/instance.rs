//! The daemon instance of a home, as other processes see it: `daemon.json`,
//! and stopping the daemon that serves a home.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::home::Home;
use crate::process::{process_alive, runs_authsome};
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
