//! Approval windows: when a run's request waits for the person, a window
//! names the command, its working directory, the provider and connection,
//! and the request (method, host, path), with four answers. It opens
//! without keyboard focus, so keys typed elsewhere never answer it; a
//! notification announces it, and clicking the notification focuses it.

use std::collections::HashMap;

use authsome_daemon::wire::{ApprovalScope, PendingApproval};
use serde::Serialize;
use tauri::{AppHandle, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};

use crate::TrayState;

/// Label prefix of approval windows.
pub const PREFIX: &str = "approval-";

/// What an approval window shows.
#[derive(Debug, Clone, Serialize)]
pub struct Question {
    /// The run.
    pub run: String,
    /// The held request.
    pub pending: PendingApproval,
}

/// Open questions, by window label.
#[derive(Debug, Default)]
pub struct Questions(std::sync::Mutex<HashMap<String, Question>>);

impl Questions {
    /// The question a window shows.
    pub fn get(&self, label: &str) -> Option<Question> {
        self.0.lock().expect("questions").get(label).cloned()
    }

    fn insert(&self, label: String, q: Question) {
        self.0.lock().expect("questions").insert(label, q);
    }

    /// Forgets a window's question.
    pub fn remove(&self, label: &str) -> Option<Question> {
        self.0.lock().expect("questions").remove(label)
    }

    fn labels_where(&self, f: impl Fn(&Question) -> bool) -> Vec<String> {
        self.0
            .lock()
            .expect("questions")
            .iter()
            .filter(|(_, q)| f(q))
            .map(|(l, _)| l.clone())
            .collect()
    }
}

/// A fresh window label: each question gets its own window, so one that
/// is closing never stands in for the next.
fn next_label() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    format!(
        "{PREFIX}{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// One of the window's four answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// Allow once.
    Once,
    /// Allow for this run.
    Run,
    /// Allow for 1 hour for this command.
    Hour,
    /// Deny.
    Deny,
}

impl Answer {
    /// `(allowed, scope, seconds)` for the daemon.
    pub fn decision(self) -> (bool, ApprovalScope, Option<u64>) {
        match self {
            Answer::Once => (true, ApprovalScope::Once, None),
            Answer::Run => (true, ApprovalScope::Run, None),
            Answer::Hour => (true, ApprovalScope::Lease, Some(3600)),
            Answer::Deny => (false, ApprovalScope::Run, None),
        }
    }
}

/// A request waits: its window opens, unfocused, and a notification
/// announces it. A question about the same run and provider replaces the
/// one shown (the oldest held request changed).
pub fn ask<R: Runtime>(app: &AppHandle<R>, run: String, pending: PendingApproval) {
    let state = app.state::<TrayState>();
    let same = |q: &Question| q.run == run && q.pending.provider == pending.provider;
    if !state
        .questions
        .labels_where(|q| same(q) && q.pending == pending)
        .is_empty()
    {
        return;
    }
    settled(app, &run, Some(&pending.provider));
    let label = next_label();
    let title = format!(
        "Authsome: approve {} for {}",
        pending.provider, pending.command
    );
    let body = format!(
        "{} {}{} from {}{}",
        pending.method,
        pending.host,
        pending.path,
        pending.command,
        pending
            .cwd
            .as_deref()
            .map(|c| format!(" in {c}"))
            .unwrap_or_default()
    );
    state
        .questions
        .insert(label.clone(), Question { run, pending });
    let built = WebviewWindowBuilder::new(app, &label, WebviewUrl::App("approval.html".into()))
        .title(&title)
        .inner_size(560.0, 340.0)
        .center()
        .focused(false)
        .build();
    if let Err(e) = built {
        tracing::error!("cannot open the approval window: {e}");
        state.questions.remove(&label);
        return;
    }
    announce(app.clone(), label, title, body);
}

/// The notification for a window; clicking it focuses the window.
fn announce<R: Runtime>(app: AppHandle<R>, label: String, title: String, body: String) {
    std::thread::spawn(move || {
        let mut n = notify_rust::Notification::new();
        n.appname("Authsome")
            .summary(&title)
            .body(&body)
            .urgency(notify_rust::Urgency::Critical)
            .action("default", "Show");
        match n.show() {
            Ok(handle) => {
                #[cfg(all(unix, not(target_os = "macos")))]
                handle.wait_for_action(|action| {
                    if action == "default" {
                        if let Some(w) = app.get_webview_window(&label) {
                            let _ = w.show();
                            let _ = w.unminimize();
                            let _ = w.set_focus();
                            // The page too, so its keys (o, r, h, d) answer.
                            let page: &tauri::Webview<R> = w.as_ref();
                            let _ = page.set_focus();
                        }
                    }
                });
                #[cfg(not(all(unix, not(target_os = "macos"))))]
                let _ = (handle, app, label);
            }
            Err(e) => tracing::warn!("cannot announce an approval: {e}"),
        }
    });
}

/// The run's question about `provider` was answered (here or elsewhere),
/// or the run ended (`provider: None`): its windows close.
pub fn settled<R: Runtime>(app: &AppHandle<R>, run: &str, provider: Option<&str>) {
    let state = app.state::<TrayState>();
    for l in state
        .questions
        .labels_where(|q| q.run == run && provider.is_none_or(|p| q.pending.provider == p))
    {
        state.questions.remove(&l);
        if let Some(w) = app.get_webview_window(&l) {
            let _ = w.close();
        }
    }
}

/// After missed events: every held request of every live run has its
/// window, and no window stays for a question nobody asks any more.
pub fn resync<R: Runtime>(app: &AppHandle<R>, runs: Vec<authsome_daemon::wire::RunInfo>) {
    let state = app.state::<TrayState>();
    let asked: Vec<(String, PendingApproval)> = runs
        .into_iter()
        .flat_map(|r| {
            let id = r.id;
            r.pending.into_iter().map(move |p| (id.clone(), p))
        })
        .collect();
    for l in state.questions.labels_where(|q| {
        !asked
            .iter()
            .any(|(run, p)| *run == q.run && *p == q.pending)
    }) {
        state.questions.remove(&l);
        if let Some(w) = app.get_webview_window(&l) {
            let _ = w.close();
        }
    }
    for (run, pending) in asked {
        ask(app, run, pending);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_button_answers_as_it_says() {
        assert_eq!(Answer::Once.decision(), (true, ApprovalScope::Once, None));
        assert_eq!(Answer::Run.decision(), (true, ApprovalScope::Run, None));
        assert_eq!(
            Answer::Hour.decision(),
            (true, ApprovalScope::Lease, Some(3600))
        );
        assert_eq!(Answer::Deny.decision(), (false, ApprovalScope::Run, None));
    }
}
