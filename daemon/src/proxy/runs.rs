//! Run sessions: each `authsome run` gets its own proxy credentials, valid
//! until the command ends. Requests without a live run's credentials get 407.
//!
//! A run ends when the CLI says so, when the daemon sees the command's
//! process exit (a pidfd, so a SIGKILLed CLI does not leave the run live),
//! or when no process was ever registered for it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use base64::Engine;

use crate::names::{ConnectionName, ProfileName};
use crate::proxy::matcher::Candidate;
use crate::secret::{constant_time_eq, random_token, Secret};

/// A run's connections: all of them (which provider a request is for is
/// decided among all, so `--allow` never changes which credential a
/// request gets, only whether it gets one), and those its policy allows.
#[derive(Debug, Default)]
pub struct RunCandidates {
    /// Every connection the run would use without `--allow`.
    pub all: Vec<Candidate>,
    /// Those whose credentials the run may use.
    pub allowed: Vec<Candidate>,
}

/// Candidates built at a time, for a store generation.
pub(crate) type CachedCandidates = (Instant, u64, Arc<RunCandidates>);

/// What a run may use: `--allow`, `--read-only`, `--only-providers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunPolicy {
    /// The standing rules (`rules.toml`) as they were when the run started.
    pub rules: Arc<crate::proxy::rules::Rules>,
    /// Providers whose credentials the run may use (`None`: every connected one).
    pub allow: Option<BTreeSet<String>>,
    /// Only GET, HEAD and OPTIONS get credentials; another method to an
    /// intercepted host is refused and never reaches the provider.
    pub read_only: bool,
    /// Requests to hosts that no allowed connection matches are refused.
    pub only_providers: bool,
    /// The first request to each provider waits for the person.
    pub ask: bool,
    /// At most this many requests per provider get credentials; later
    /// ones are answered 429.
    pub max_requests: Option<u64>,
}

/// The person's answer about a provider that holds for the rest of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// Allowed for the rest of the run.
    Allowed,
    /// Denied for the rest of the run.
    Denied,
}

/// A held request: what it is, and where its answer goes (`true`: it goes
/// on with the credential).
#[derive(Debug)]
pub struct Held {
    /// What `authsome runs` and the tray show.
    pub pending: crate::wire::PendingApproval,
    /// The answer.
    pub answer: tokio::sync::oneshot::Sender<bool>,
}

/// Where a run stands with one provider: a run-wide answer, or the
/// requests waiting for one, oldest first (by ticket).
#[derive(Debug, Default)]
pub struct ProviderApprovals {
    /// The answer for the rest of the run, once given.
    pub decided: Option<Approval>,
    /// Held requests by ticket; the oldest is the one shown and the one
    /// *Allow once* lets go.
    pub waiting: BTreeMap<u64, Held>,
    /// The next ticket.
    pub next_ticket: u64,
}

impl ProviderApprovals {
    /// The oldest held request, the one the person is asked about.
    pub fn shown(&self) -> Option<&crate::wire::PendingApproval> {
        self.waiting.values().next().map(|h| &h.pending)
    }
}

impl RunPolicy {
    /// True when the run may use `provider`'s credentials.
    pub fn allows(&self, provider: &str) -> bool {
        self.allow.as_ref().is_none_or(|a| a.contains(provider))
    }

    /// True when a request with this method may carry a credential.
    pub fn allows_method(&self, method: &str) -> bool {
        !self.read_only || matches!(method, "GET" | "HEAD" | "OPTIONS")
    }
}

/// One `authsome run`.
#[derive(Debug)]
pub struct Run {
    /// Run id (the proxy user name).
    pub id: String,
    secret: Secret,
    /// Profile whose connections are used.
    pub profile: ProfileName,
    /// `--connection PROVIDER=NAME` choices; other providers use `default`.
    pub selections: HashMap<String, ConnectionName>,
    /// The command's name, for the audit log, rules and leases.
    pub command: String,
    /// The command's working directory, when the CLI said.
    pub cwd: Option<String>,
    /// What the run may use.
    pub policy: RunPolicy,
    /// Providers the run reached without credentials (`--allow` left them
    /// out), and refusals of its policy, each recorded once.
    pub(crate) recorded: Mutex<BTreeSet<String>>,
    /// Approvals and held requests, by provider.
    pub approvals: Mutex<HashMap<String, ProviderApprovals>>,
    /// When the run started.
    pub started: Instant,
    /// When the run started, on the clock.
    pub started_at: chrono::DateTime<chrono::Utc>,
    injected: Mutex<BTreeMap<String, u64>>,
    pub(crate) candidates: Mutex<Option<CachedCandidates>>,
    ended: AtomicBool,
    pid: OnceLock<u32>,
}

impl Run {
    /// The proxy URL with this run's credentials.
    pub fn proxy_url(&self, port: u16) -> String {
        format!(
            "http://{}:{}@127.0.0.1:{port}",
            self.id,
            self.secret.expose()
        )
    }

    /// Counts one injected request for a provider.
    pub fn count(&self, provider: &str) {
        *self
            .injected
            .lock()
            .expect("run counters")
            .entry(provider.to_string())
            .or_default() += 1;
    }

    /// Counts one request for a provider if fewer than `max` were counted
    /// (one check and count, so concurrent requests cannot overshoot).
    pub fn take_within(&self, provider: &str, max: u64) -> bool {
        let mut counts = self.injected.lock().expect("run counters");
        let n = counts.entry(provider.to_string()).or_default();
        if *n >= max {
            return false;
        }
        *n += 1;
        true
    }

    /// Injected requests per provider.
    pub fn injected(&self) -> BTreeMap<String, u64> {
        self.injected.lock().expect("run counters").clone()
    }

    /// False once the run has ended, however it ended. Checked on every
    /// request, so a connection opened while the run was live gets no
    /// credential afterwards.
    pub fn is_live(&self) -> bool {
        !self.ended.load(Ordering::SeqCst)
    }

    /// Marks the run ended; its credentials stop working at once.
    pub fn mark_ended(&self) {
        self.ended.store(true, Ordering::SeqCst);
    }

    /// Records the command's pid; only the first one counts.
    pub fn set_pid(&self, pid: u32) -> bool {
        self.pid.set(pid).is_ok()
    }

    /// The command's pid, once registered.
    pub fn pid(&self) -> Option<u32> {
        self.pid.get().copied()
    }

    /// The connection this run uses for a provider.
    pub fn connection_for(&self, provider: &str) -> ConnectionName {
        self.selections
            .get(provider)
            .cloned()
            .unwrap_or_else(ConnectionName::default_name)
    }
}

/// Every live run.
#[derive(Debug, Default)]
pub struct RunTable {
    map: Mutex<HashMap<String, Arc<Run>>>,
}

impl RunTable {
    /// Starts a run.
    pub fn create(
        &self,
        profile: ProfileName,
        selections: HashMap<String, ConnectionName>,
        command: String,
        cwd: Option<String>,
        policy: RunPolicy,
    ) -> Arc<Run> {
        let run = Arc::new(Run {
            id: format!("run-{}", random_token(12)),
            secret: Secret::new(random_token(32)),
            profile,
            selections,
            command,
            cwd,
            policy,
            recorded: Mutex::default(),
            approvals: Mutex::default(),
            started: Instant::now(),
            started_at: chrono::Utc::now(),
            injected: Mutex::default(),
            candidates: Mutex::default(),
            ended: AtomicBool::new(false),
            pid: OnceLock::new(),
        });
        self.map
            .lock()
            .expect("runs")
            .insert(run.id.clone(), run.clone());
        run
    }

    /// Ends a run; its credentials stop working at once.
    pub fn end(&self, id: &str) -> Option<Arc<Run>> {
        let run = self.map.lock().expect("runs").remove(id)?;
        run.mark_ended();
        Some(run)
    }

    /// A run by id, live or ended but not yet removed.
    pub fn get(&self, id: &str) -> Option<Arc<Run>> {
        self.map.lock().expect("runs").get(id).cloned()
    }

    /// The live run whose credentials a `Proxy-Authorization: Basic` header carries.
    pub fn authenticate(&self, header: Option<&str>) -> Option<Arc<Run>> {
        let b64 = header?
            .strip_prefix("Basic ")
            .or_else(|| header?.strip_prefix("basic "))?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (id, secret) = text.split_once(':')?;
        let secret = percent_decode(secret);
        let run = self.map.lock().expect("runs").get(id).cloned()?;
        (constant_time_eq(&secret, run.secret.expose()) && run.is_live()).then_some(run)
    }

    /// The live runs, oldest first.
    pub fn list(&self) -> Vec<Arc<Run>> {
        let mut runs: Vec<Arc<Run>> = self.map.lock().expect("runs").values().cloned().collect();
        runs.sort_by_key(|r| r.started);
        runs
    }

    /// Number of live runs.
    pub fn len(&self) -> usize {
        self.map
            .lock()
            .expect("runs")
            .values()
            .filter(|r| r.is_live())
            .count()
    }

    /// True when no run is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// Clients percent-decode userinfo before sending it; our tokens are URL-safe,
// but decode anyway so an encoded form is accepted too.
fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_live_runs_credentials_authenticate() {
        let runs = RunTable::default();
        let run = runs.create(
            ProfileName::default_name(),
            HashMap::new(),
            "curl".into(),
            None,
            RunPolicy::default(),
        );
        let url = run.proxy_url(1);
        let creds = url
            .trim_start_matches("http://")
            .split('@')
            .next()
            .unwrap()
            .to_string();
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(&creds)
        );
        assert!(runs.authenticate(Some(&header)).is_some());
        let wrong = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:nope", run.id))
        );
        assert!(runs.authenticate(Some(&wrong)).is_none());
        assert!(runs.authenticate(None).is_none());
        assert!(runs.authenticate(Some("Bearer x")).is_none());
        run.mark_ended();
        assert!(
            runs.authenticate(Some(&header)).is_none(),
            "an ended run's credentials are refused before the run is removed"
        );
        assert!(runs.get(&run.id).is_some());
        runs.end(&run.id);
        assert!(
            runs.authenticate(Some(&header)).is_none(),
            "a finished run's credentials are refused"
        );
        assert!(!run.is_live(), "a connection holding the run sees it ended");
    }
}
