//! `audit.log`: one JSON object per line, appended, never holding a secret.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Outcome of an audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditStatus {
    /// It worked.
    Success,
    /// It failed.
    Failure,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When (UTC, RFC 3339).
    pub ts: String,
    /// What: login, login_failed, get, export, revoke, remove, register, daemon_start, ...
    pub event: String,
    /// The profile, when the event concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The provider, when the event concerns one.
    pub provider: Option<String>,
    /// The connection, when the event concerns one.
    pub connection: Option<String>,
    /// success or failure.
    pub status: AuditStatus,
    /// Free text without secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The `authsome run` the event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// A proxied request (event `request`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestActivity>,
}

/// What the audit log keeps of a proxied request: never headers, query
/// strings or bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RequestActivity {
    /// The method.
    pub method: String,
    /// The host.
    pub host: String,
    /// The path, without its query.
    pub path: String,
    /// The answer's HTTP status.
    pub http_status: u16,
    /// Bytes of the answer's body that reached the command.
    pub bytes: u64,
    /// Milliseconds from the request to the end of the answer.
    pub ms: u64,
}

impl AuditEvent {
    /// A successful event stamped now.
    pub fn new(event: &str) -> Self {
        AuditEvent {
            ts: now_rfc3339(Utc::now()),
            event: event.to_string(),
            profile: None,
            provider: None,
            connection: None,
            status: AuditStatus::Success,
            detail: None,
            run: None,
            request: None,
        }
    }
    /// Sets the profile, provider and connection.
    pub fn about(mut self, profile: &str, provider: &str, connection: Option<&str>) -> Self {
        self.profile = Some(profile.to_string());
        self.provider = Some(provider.to_string());
        self.connection = connection.map(str::to_string);
        self
    }
    /// Marks the event failed with a reason.
    pub fn failed(mut self, detail: impl Into<String>) -> Self {
        self.status = AuditStatus::Failure;
        self.detail = Some(detail.into());
        self
    }
    /// Adds a detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

fn now_rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The audit log writer.
#[derive(Debug)]
pub struct Audit {
    path: PathBuf,
    file: Arc<Mutex<File>>,
    queue: mpsc::Sender<Queued>,
}

#[derive(Debug)]
enum Queued {
    Event(Box<AuditEvent>),
    Flush(mpsc::Sender<()>),
}

/// Events written in one `write` at most.
const BATCH: usize = 4096;

/// How long the writer gathers events before writing them.
const GATHER: std::time::Duration = std::time::Duration::from_millis(20);

impl Audit {
    /// Opens (creating, 0600) the log for appending.
    pub fn open(path: &Path) -> Result<Audit> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io(path.display().to_string(), e))?;
        let file = Arc::new(Mutex::new(file));
        let (queue, rx) = mpsc::channel::<Queued>();
        let (writer_file, writer_path) = (file.clone(), path.to_path_buf());
        // Batched events (proxied requests) go out from a thread of their
        // own, many lines to one write, so the proxy never waits on the disk.
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    // Let events gather for a moment, unwatched (a sender
                    // wakes nobody while the writer sleeps), then write them
                    // all at once: a few writes and wake-ups a second
                    // instead of one per proxied request. A flush is not
                    // kept waiting.
                    if !matches!(first, Queued::Flush(_)) {
                        std::thread::sleep(GATHER);
                    }
                    let mut lines = Vec::new();
                    let mut flushes = Vec::new();
                    let mut next = Some(first);
                    let mut count = 0;
                    while let Some(item) = next.take() {
                        match item {
                            Queued::Event(e) => {
                                if let Ok(mut l) = serde_json::to_vec(&*e) {
                                    l.push(b'\n');
                                    lines.extend_from_slice(&l);
                                }
                                count += 1;
                            }
                            Queued::Flush(done) => flushes.push(done),
                        }
                        if count < BATCH {
                            next = rx.try_recv().ok();
                        }
                    }
                    if !lines.is_empty() {
                        let mut f = writer_file.lock().expect("audit lock");
                        if let Err(e) = f.write_all(&lines) {
                            tracing::error!("cannot write {}: {e}", writer_path.display());
                        }
                    }
                    for done in flushes {
                        let _ = done.send(());
                    }
                }
            })
            .map_err(|e| Error::io("audit writer thread", e))?;
        Ok(Audit {
            path: path.to_path_buf(),
            file,
            queue,
        })
    }

    /// Queues an event for the batched writer (the proxy's per-request
    /// activity); [`Audit::flush`] waits until it is written.
    pub fn record_batched(&self, event: AuditEvent) {
        if self.queue.send(Queued::Event(Box::new(event))).is_err() {
            tracing::error!("the audit writer has stopped");
        }
    }

    /// Waits until every batched event queued so far is written.
    pub fn flush(&self) {
        let (done, wait) = mpsc::channel();
        if self.queue.send(Queued::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(std::time::Duration::from_secs(5));
        }
    }

    /// Appends one event as a single `write` of one line.
    pub fn record(&self, event: AuditEvent) {
        let mut line = match serde_json::to_vec(&event) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("audit event not serialisable: {e}");
                return;
            }
        };
        line.push(b'\n');
        let mut f = self.file.lock().expect("audit lock");
        if let Err(e) = f.write_all(&line) {
            tracing::error!("cannot write {}: {e}", self.path.display());
        }
    }
}

/// The last `n` events of an audit log, oldest first. Lines that are not
/// JSON (a torn final line after a crash) are skipped.
pub fn read_tail(path: &Path, n: usize) -> Result<Vec<serde_json::Value>> {
    read_tail_matching(path, n, |_| true)
}

/// The last `n` events of an audit log for which `keep` holds, oldest first.
pub fn read_tail_matching(
    path: &Path,
    n: usize,
    keep: impl Fn(&serde_json::Value) -> bool,
) -> Result<Vec<serde_json::Value>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path.display().to_string(), e)),
    };
    let mut ring = std::collections::VecDeque::with_capacity(n.min(10_000));
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| Error::io(path.display().to_string(), e))?;
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
            if !keep(&v) {
                continue;
            }
            if ring.len() == n {
                ring.pop_front();
            }
            if n > 0 {
                ring.push_back(v);
            }
        }
    }
    Ok(ring.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_append_as_json_lines_and_tail_reads_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(&path).unwrap();
        for i in 0..5 {
            audit.record(AuditEvent::new("login").about(
                "default",
                "openai",
                Some(&format!("c{i}")),
            ));
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{torn")
            .unwrap();
        let tail = read_tail(&path, 2).unwrap();
        assert_eq!(tail.len(), 2);
        assert_eq!(tail[1]["connection"], "c4");
        assert_eq!(tail[0]["status"], "success");
        assert_eq!(crate::home::mode_of(&path), Some(0o600));
    }
}
