//! The life of an `authsome run` on the daemon's side: begun by the CLI,
//! tied to the command's process through a pidfd once the CLI registers it,
//! and ended by the CLI, by the process exiting, or by a deadline when no
//! process was ever registered. No run outlives its command.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::audit::AuditEvent;
use crate::error::{Error, Result};
use crate::names::{ConnectionName, ProfileName, ProviderName};
use std::sync::Arc;

use crate::proxy::runs::{Approval, RunPolicy};
use crate::proxy::Runs;
use crate::vault::Status;
use crate::wire::{ApprovalScope, GrantView, RunInfo, RunRequest, RunResponse, RunSummary};

/// The longest lease: a day.
pub const MAX_LEASE: Duration = Duration::from_secs(24 * 3600);

/// "1 hour", "30 minutes", "1 hour 30 minutes".
pub fn human_secs(secs: u64) -> String {
    let (h, m) = (secs / 3600, secs % 3600 / 60);
    let unit = |n: u64, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    match (h, m) {
        (0, m) => unit(m, "minute"),
        (h, 0) => unit(h, "hour"),
        (h, m) => format!("{} {}", unit(h, "hour"), unit(m, "minute")),
    }
}

/// How long a run may wait for the CLI to register its command's process.
/// The CLI does it right after spawning, so this only ends runs whose CLI
/// died in between.
pub const PID_DEADLINE: Duration = Duration::from_secs(30);

/// How long a run whose process exited waits for the CLI to report the
/// exit code before it is recorded without one. Its credentials are dead
/// from the moment the process exits.
pub const EXIT_REPORT_GRACE: Duration = Duration::from_secs(5);

impl Runs {
    /// Starts an `authsome run` session: proxy credentials, the CA bundle,
    /// and placeholder variables for the connected API-key providers.
    pub async fn begin_run(&self, profile: &ProfileName, req: RunRequest) -> Result<RunResponse> {
        let store = self.stores.get(profile).await?;
        let mut selections = HashMap::new();
        for (provider, connection) in &req.connections {
            let pname = ProviderName::parse(provider)?;
            let cname = ConnectionName::parse(connection)?;
            self.catalogue.get(provider)?;
            if store.get_connection(&pname, &cname).await?.is_none() {
                return Err(Error::ConnectionNotFound {
                    provider: provider.clone(),
                    connection: connection.clone(),
                });
            }
            selections.insert(provider.clone(), cname);
        }
        let mut allow = None;
        if let Some(entries) = &req.allow {
            let mut allowed = std::collections::BTreeSet::new();
            for entry in entries {
                let (provider, connection) = match entry.split_once('=') {
                    Some((p, c)) => (p, Some(c)),
                    None => (entry.as_str(), None),
                };
                let pname = ProviderName::parse(provider)?;
                self.catalogue.get(provider)?;
                if let Some(c) = connection {
                    let cname = ConnectionName::parse(c)?;
                    if store.get_connection(&pname, &cname).await?.is_none() {
                        return Err(Error::ConnectionNotFound {
                            provider: provider.into(),
                            connection: c.into(),
                        });
                    }
                    match selections.get(provider) {
                        Some(other) if *other != cname => {
                            return Err(Error::InvalidInput(format!(
                                "two different connections are named for {provider}: {other} and {c}"
                            )))
                        }
                        _ => {
                            selections.insert(provider.to_string(), cname);
                        }
                    }
                }
                allowed.insert(pname.to_string());
            }
            allow = Some(allowed);
        }
        let rules =
            crate::proxy::rules::Rules::load(&self.rules_path, |p| self.catalogue.get(p).is_ok())?;
        let policy = RunPolicy {
            rules: Arc::new(rules),
            allow,
            read_only: req.read_only,
            only_providers: req.only_providers,
            ask: req.ask,
            max_requests: req.max_requests,
        };
        let command: String = req
            .command
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect();
        let cwd = req
            .cwd
            .as_deref()
            .map(|c| c.chars().filter(|c| !c.is_control()).take(500).collect());
        let proxy = &self.state;
        let run = proxy
            .runs
            .create(profile.clone(), selections, command, cwd, policy);
        self.events.send(crate::events::Event::RunStarted {
            id: run.id.clone(),
            profile: profile.to_string(),
            command: run.command.clone(),
        });
        let mut env = BTreeMap::new();
        for m in store.list_connections().await? {
            if m.status != Status::Connected
                || m.connection != run.connection_for(m.provider.as_str())
                || !run.policy.allows(m.provider.as_str())
            {
                continue;
            }
            if let Ok((def, _)) = self.catalogue.get(m.provider.as_str()) {
                if let Some(var) = def.api_key.as_ref().and_then(|k| k.env_var.clone()) {
                    env.insert(var, crate::proxy::PLACEHOLDER.to_string());
                }
            }
        }
        let d = self.clone();
        let id = run.id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(PID_DEADLINE).await;
            let orphan = d
                .state
                .runs
                .get(&id)
                .is_some_and(|r| r.pid().is_none() && r.is_live());
            if orphan {
                tracing::info!(run = %id, "no process was registered for the run; ending it");
                d.finish_run(&id, "its process was never registered");
            }
        });
        Ok(RunResponse {
            id: run.id.clone(),
            proxy_url: run.proxy_url(proxy.port()),
            ca_bundle: proxy.bundle_path.display().to_string(),
            env,
            proxy_port: proxy.port(),
            daemon_ports: vec![self.api_port, proxy.port()],
        })
    }

    /// Ties a run to its command's process: when the process exits, the
    /// run's credentials stop working, whatever happened to the CLI.
    pub fn watch_run(&self, id: &str, pid: u32) -> Result<()> {
        let run = self
            .state
            .runs
            .get(id)
            .filter(|r| r.is_live())
            .ok_or(Error::NotFound)?;
        let raw = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .ok_or_else(|| Error::InvalidInput(format!("{pid} is not a process id")))?;
        if !run.set_pid(pid) {
            return Err(Error::InvalidInput(
                "the run's process is already registered".into(),
            ));
        }
        let pidfd = match rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::SRCH) => {
                self.process_exited(id);
                return Ok(());
            }
            Err(e) => {
                // Without a pidfd the run would have no end but the CLI's: end it.
                self.finish_run(id, &format!("its process could not be watched: {e}"));
                return Err(Error::Internal(format!(
                    "cannot watch process {pid} (pidfd_open): {e}"
                )));
            }
        };
        let d = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            // A pidfd becomes readable when the process exits. The AsyncFd
            // owns the OwnedFd, so the descriptor cannot be closed under the
            // registration (the I/O-safety concern behind the deprecation).
            #[allow(deprecated)]
            let registered =
                tokio::io::unix::AsyncFd::with_interest(pidfd, tokio::io::Interest::READABLE);
            match registered {
                Ok(fd) => {
                    let _ = fd.readable().await;
                }
                Err(e) => {
                    tracing::warn!("cannot poll the pidfd of run {id}: {e}; polling /proc");
                    while crate::process::process_alive(pid) {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
            }
            d.process_exited(&id);
        });
        Ok(())
    }

    /// The command's process is gone: its credentials die now; the record
    /// waits briefly for the CLI's exit code.
    fn process_exited(&self, id: &str) {
        let Some(run) = self.state.runs.get(id) else {
            return;
        };
        run.mark_ended();
        tracing::debug!(run = %id, "the run's process exited");
        let d = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(EXIT_REPORT_GRACE).await;
            d.finish_run(
                &id,
                "its process exited without `authsome run` reporting it",
            );
        });
    }

    /// Ends a run nobody reported the end of.
    fn finish_run(&self, id: &str, why: &str) {
        if let Some(run) = self.state.runs.end(id) {
            self.audit_run(&run, &format!("exit unknown ({why})"));
            self.events.send(crate::events::Event::RunEnded {
                id: id.to_string(),
                exit: None,
            });
        }
    }

    /// The person's answer for a provider in a run (`authsome approve` or
    /// `deny`, or the tray's window). A denial holds for the rest of the
    /// run. An approval lets the held request go with the credential and,
    /// by `scope`: nothing more (`Once`: the next request asks again), the
    /// rest of the run (`Run`), or this command for `seconds`, in this run
    /// and later ones (`Lease`, stored in the vault).
    pub async fn decide(
        &self,
        id: &str,
        provider: &str,
        allowed: bool,
        scope: ApprovalScope,
        seconds: Option<u64>,
    ) -> Result<Option<GrantView>> {
        let run = self
            .state
            .runs
            .get(id)
            .filter(|r| r.is_live())
            .ok_or(Error::NotFound)?;
        let provider = provider.split_once('=').map_or(provider, |(p, _)| p);
        ProviderName::parse(provider)?;
        let connection = run.connection_for(provider);
        let scope = if allowed { scope } else { ApprovalScope::Run };
        if scope == ApprovalScope::Once && !self.is_waiting(&run, provider) {
            return Err(Error::InvalidInput(format!(
                "no request of run {id} to {provider} is waiting; \
                 approve without --once to allow it for the run"
            )));
        }
        let mut grant = None;
        let detail = match scope {
            _ if !allowed => "denied for this run".to_string(),
            ApprovalScope::Run => "allowed for this run".to_string(),
            ApprovalScope::Once => "allowed once".to_string(),
            ApprovalScope::Lease => {
                let secs = seconds.unwrap_or(3600);
                if !(60..=MAX_LEASE.as_secs()).contains(&secs) {
                    return Err(Error::InvalidInput(format!(
                        "a lease lasts from 1 minute to {} hours",
                        MAX_LEASE.as_secs() / 3600
                    )));
                }
                let now = chrono::Utc::now();
                let g = GrantView {
                    id: format!("grant-{}", crate::secret::random_token(10)),
                    provider: provider.to_string(),
                    connection: connection.to_string(),
                    command: run.command.clone(),
                    created_at: now,
                    expires_at: now + chrono::Duration::seconds(secs as i64),
                };
                self.stores.get(&run.profile).await?.add_grant(&g).await?;
                let detail = format!(
                    "allowed for {} for command {:?} until {} (lease {})",
                    human_secs(secs),
                    g.command,
                    g.expires_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    g.id
                );
                grant = Some(g);
                detail
            }
        };
        // Told first: a request still held after an `Once` is asked about
        // again, and that question must come after this answer.
        let mut event = AuditEvent::new("approval")
            .about(run.profile.as_str(), provider, Some(connection.as_str()))
            .detail(detail);
        event.run = Some(run.id.clone());
        self.audit.record(event);
        self.events.send(crate::events::Event::ApprovalDecided {
            run: run.id.clone(),
            provider: provider.to_string(),
            allowed,
            scope,
        });
        let next = {
            let mut approvals = run.approvals.lock().expect("approvals");
            let a = approvals.entry(provider.to_string()).or_default();
            match scope {
                ApprovalScope::Once => {
                    // The oldest held request, the one the person saw.
                    if let Some((_, held)) = a.waiting.pop_first() {
                        let _ = held.answer.send(true);
                    }
                    a.shown().cloned()
                }
                _ => {
                    // A lease answers the requests held now; later ones
                    // find it, or are asked again once it ends. Under
                    // `--ask` it also holds for the rest of this run.
                    if scope == ApprovalScope::Run
                        || !allowed
                        || (scope == ApprovalScope::Lease && run.policy.ask)
                    {
                        a.decided = Some(if allowed {
                            Approval::Allowed
                        } else {
                            Approval::Denied
                        });
                    }
                    for (_, held) in std::mem::take(&mut a.waiting) {
                        let _ = held.answer.send(allowed);
                    }
                    None
                }
            }
        };
        if let Some(pending) = next {
            self.announce_queue(&run, provider, Some(pending));
        }
        Ok(grant)
    }

    /// True when a request of `run` to `provider` waits.
    fn is_waiting(&self, run: &crate::proxy::runs::Run, provider: &str) -> bool {
        run.approvals
            .lock()
            .expect("approvals")
            .get(provider)
            .is_some_and(|a| !a.waiting.is_empty())
    }

    /// The live leases of a profile.
    pub async fn grants(&self, profile: &ProfileName) -> Result<Vec<GrantView>> {
        self.stores.get(profile).await?.list_grants().await
    }

    /// Ends a lease: runs of its command are asked again.
    pub async fn revoke_grant(&self, profile: &ProfileName, id: &str) -> Result<GrantView> {
        let g = self
            .stores
            .get(profile)
            .await?
            .delete_grant(id)
            .await?
            .ok_or(Error::NotFound)?;
        let event = AuditEvent::new("grant_revoked")
            .about(profile.as_str(), &g.provider, Some(g.connection.as_str()))
            .detail(format!("lease {} for command {:?}", g.id, g.command));
        self.audit.record(event);
        Ok(g)
    }

    /// The live runs, oldest first.
    pub fn list(&self) -> Vec<RunInfo> {
        self.state
            .runs
            .list()
            .into_iter()
            .filter(|r| r.is_live())
            .map(|r| RunInfo {
                id: r.id.clone(),
                pid: r.pid(),
                command: r.command.clone(),
                cwd: r.cwd.clone(),
                profile: r.profile.to_string(),
                started_at: r.started_at,
                injected: r.injected(),
                allow: r.policy.allow.as_ref().map(|a| a.iter().cloned().collect()),
                read_only: r.policy.read_only,
                only_providers: r.policy.only_providers,
                ask: r.policy.ask,
                max_requests: r.policy.max_requests,
                pending: r
                    .approvals
                    .lock()
                    .expect("approvals")
                    .values()
                    .filter_map(|a| a.shown().cloned())
                    .collect(),
            })
            .collect()
    }

    /// Ends a run: its credentials stop working, and one `run` audit event
    /// records the command, its exit code and what was injected.
    pub fn end_run(&self, id: &str, exit_code: i32) -> Result<RunSummary> {
        let run = self.state.runs.end(id).ok_or(Error::NotFound)?;
        let summary = self.audit_run(&run, &format!("exit {exit_code}"));
        self.events.send(crate::events::Event::RunEnded {
            id: id.to_string(),
            exit: Some(exit_code),
        });
        Ok(summary)
    }

    fn audit_run(&self, run: &crate::proxy::runs::Run, exit: &str) -> RunSummary {
        let injected = run.injected();
        let counts: Vec<String> = injected.iter().map(|(p, n)| format!("{p}={n}")).collect();
        let mut event = AuditEvent::new("run").detail(format!(
            "command {}, {exit}, {:.1} s, injected {}",
            if run.command.is_empty() {
                "-"
            } else {
                &run.command
            },
            run.started.elapsed().as_secs_f64(),
            if counts.is_empty() {
                "nothing".to_string()
            } else {
                counts.join(" ")
            }
        ));
        event.profile = Some(run.profile.to_string());
        event.run = Some(run.id.clone());
        // The run's requests are written before its end.
        self.audit.flush();
        self.audit.record(event);
        RunSummary { injected }
    }
}
