//! Login sessions and the flows that complete them. A login starts with
//! `POST /v1/logins`, may wait for input (from the CLI's terminal, a bridge
//! page or a tray window), and ends completed or failed; waiters watch its
//! state. Sessions expire after [`LOGIN_TTL`].

pub mod api_key;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::names::{ConnectionName, ProfileName};
use crate::prompt::PromptField;
use crate::providers::{Flow, ProviderDef};
use crate::secret::random_token;

/// How long a login session (and its bridge page) lives.
pub const LOGIN_TTL: Duration = Duration::from_secs(300);

/// Where a login stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LoginState {
    /// Waiting for the person's input.
    NeedsInput,
    /// Done; the credential is stored.
    Completed,
    /// Ended without a credential.
    Failed {
        /// Error code (as in API errors).
        error: String,
        /// Message for the person.
        message: String,
    },
}

/// The one-time bridge page of a login.
#[derive(Debug, Clone)]
pub struct BridgeTicket {
    /// Unguessable id in the page URL.
    pub id: String,
    /// CSRF token the form must echo.
    pub csrf: String,
}

/// One login in progress.
#[derive(Debug)]
pub struct LoginSession {
    /// Session id.
    pub id: String,
    /// Profile the credential goes to.
    pub profile: ProfileName,
    /// The provider.
    pub provider: Arc<ProviderDef>,
    /// The connection name.
    pub connection: ConnectionName,
    /// Replace an existing connection.
    pub force: bool,
    /// The flow in use.
    pub flow: Flow,
    /// What the person is asked for.
    pub fields: Vec<PromptField>,
    /// The bridge page, when one is offered.
    pub bridge: Option<BridgeTicket>,
    created: Instant,
    state: watch::Sender<LoginState>,
    // Serialises completion attempts so a login completes once.
    pub(crate) completing: tokio::sync::Mutex<()>,
}

impl LoginSession {
    /// The current state.
    pub fn state(&self) -> LoginState {
        self.state.borrow().clone()
    }

    /// Moves to a final state; the first final state wins.
    pub fn finish(&self, state: LoginState) {
        self.state.send_if_modified(|s| {
            if *s == LoginState::NeedsInput {
                *s = state;
                true
            } else {
                false
            }
        });
    }

    /// True once completed or failed.
    pub fn is_finished(&self) -> bool {
        self.state() != LoginState::NeedsInput
    }

    fn expired(&self) -> bool {
        self.created.elapsed() > LOGIN_TTL
    }

    /// Waits up to `timeout` for the session to leave `NeedsInput`.
    pub async fn wait(&self, timeout: Duration) -> LoginState {
        let mut rx = self.state.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|s| *s != LoginState::NeedsInput)).await;
        self.state()
    }
}

/// Parameters of a new session.
#[derive(Debug)]
pub struct NewLogin {
    /// Profile.
    pub profile: ProfileName,
    /// Provider.
    pub provider: Arc<ProviderDef>,
    /// Connection.
    pub connection: ConnectionName,
    /// Replace an existing connection.
    pub force: bool,
    /// Flow.
    pub flow: Flow,
    /// Fields to ask for.
    pub fields: Vec<PromptField>,
    /// Offer a bridge page.
    pub with_bridge: bool,
}

/// All login sessions of the daemon.
#[derive(Debug, Default)]
pub struct LoginRegistry {
    sessions: Mutex<HashMap<String, Arc<LoginSession>>>,
}

impl LoginRegistry {
    /// Creates a session.
    pub fn create(&self, new: NewLogin) -> Arc<LoginSession> {
        let (tx, _) = watch::channel(LoginState::NeedsInput);
        let session = Arc::new(LoginSession {
            id: random_token(24),
            profile: new.profile,
            provider: new.provider,
            connection: new.connection,
            force: new.force,
            flow: new.flow,
            fields: new.fields,
            bridge: new.with_bridge.then(|| BridgeTicket {
                id: random_token(32),
                csrf: random_token(32),
            }),
            created: Instant::now(),
            state: tx,
            completing: tokio::sync::Mutex::new(()),
        });
        self.sessions
            .lock()
            .expect("logins lock")
            .insert(session.id.clone(), session.clone());
        session
    }

    /// A live session by id. Expired sessions fail and disappear.
    pub fn get(&self, id: &str) -> Result<Arc<LoginSession>> {
        let mut sessions = self.sessions.lock().expect("logins lock");
        let session = sessions.get(id).cloned().ok_or(Error::LoginNotFound)?;
        if session.expired() {
            sessions.remove(id);
            Self::expire(&session);
        }
        Ok(session)
    }

    /// The session whose bridge page has this id, if it is still open:
    /// live, waiting for input, and not yet used.
    pub fn by_bridge(&self, bridge_id: &str) -> Option<Arc<LoginSession>> {
        let sessions = self.sessions.lock().expect("logins lock");
        sessions
            .values()
            .find(|s| {
                s.bridge
                    .as_ref()
                    .is_some_and(|b| crate::secret::constant_time_eq(&b.id, bridge_id))
            })
            .filter(|s| !s.expired() && !s.is_finished())
            .cloned()
    }

    /// Removes a session.
    pub fn remove(&self, id: &str) {
        self.sessions.lock().expect("logins lock").remove(id);
    }

    fn expire(session: &LoginSession) {
        session.finish(LoginState::Failed {
            error: "login_timed_out".into(),
            message: Error::LoginTimedOut {
                provider: session.provider.name.clone(),
            }
            .to_string(),
        });
    }

    /// Fails and drops expired sessions, and drops finished ones after a grace
    /// period so late waiters still see the outcome.
    pub fn sweep(&self) {
        let mut sessions = self.sessions.lock().expect("logins lock");
        sessions.retain(|_, s| {
            if s.expired() {
                Self::expire(s);
                s.created.elapsed() < LOGIN_TTL + Duration::from_secs(60)
            } else {
                true
            }
        });
    }

    /// Number of sessions held.
    pub fn len(&self) -> usize {
        self.sessions.lock().expect("logins lock").len()
    }

    /// True when no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
