//! Login sessions and the flows that complete them. A login starts with
//! `POST /v1/logins`, may wait for input (from the CLI's terminal, a bridge
//! page or a tray window), and ends completed or failed; waiters watch its
//! state. Sessions expire after [`LOGIN_TTL`].

pub mod api_key;
pub mod dcr;
pub mod device_code;
pub mod follow;
pub mod forms;
pub mod launch;
pub mod login;
pub mod mcp;
pub mod oauth;
pub mod pkce;
pub mod start;
pub mod token;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::names::{ConnectionName, ProfileName};
use crate::prompt::PromptField;
use crate::providers::{Flow, ProviderDef};
use crate::secret::random_token;
pub use crate::wire::LoginState;

/// Logins as a service: the sessions, and the flows that complete them.
/// It shares the stores, the catalogue, the audit log and the events; the
/// prompter is whoever asks people for input. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Logins {
    registry: Arc<LoginRegistry>,
    stores: Arc<crate::vault::Stores>,
    catalogue: Arc<crate::providers::Catalogue>,
    prompter: Arc<dyn crate::prompt::Prompter>,
    http: reqwest::Client,
    audit: Arc<crate::audit::Audit>,
    events: crate::events::Events,
    home: crate::home::Home,
    port: u16,
}

/// What [`Logins`] works with.
#[derive(Debug)]
pub struct LoginsParts {
    /// The stores.
    pub stores: Arc<crate::vault::Stores>,
    /// The providers.
    pub catalogue: Arc<crate::providers::Catalogue>,
    /// Who asks people for input.
    pub prompter: Arc<dyn crate::prompt::Prompter>,
    /// The HTTP client for the provider's endpoints.
    pub http: reqwest::Client,
    /// The audit log.
    pub audit: Arc<crate::audit::Audit>,
    /// The event hub.
    pub events: crate::events::Events,
    /// The home (launch files live in it).
    pub home: crate::home::Home,
    /// The daemon's API port (the callback and launch URLs).
    pub port: u16,
}

impl Logins {
    /// Logins over `parts`. Every step of every login is sent as an event.
    pub fn new(parts: LoginsParts) -> Logins {
        let registry = Arc::new(LoginRegistry::default());
        let (events, callback) = (parts.events.clone(), callback_url(parts.port));
        registry.on_change(Arc::new(move |session| {
            events.send(crate::events::Event::Login {
                login: Box::new(session.view(&callback, None)),
            })
        }));
        Logins {
            registry,
            stores: parts.stores,
            catalogue: parts.catalogue,
            prompter: parts.prompter,
            http: parts.http,
            audit: parts.audit,
            events: parts.events,
            home: parts.home,
            port: parts.port,
        }
    }

    /// The sessions.
    pub fn registry(&self) -> &LoginRegistry {
        &self.registry
    }

    /// Base URL of the API (`http://127.0.0.1:<port>`).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The OAuth redirect URI.
    pub fn callback_url(&self) -> String {
        callback_url(self.port)
    }
}

/// The OAuth redirect URI of a daemon on `port`.
pub fn callback_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}{}", crate::OAUTH_CALLBACK_PATH)
}

/// How long a login session (and its bridge page) lives.
pub const LOGIN_TTL: Duration = Duration::from_secs(300);

/// The one-time bridge page of a login.
#[derive(Debug, Clone)]
pub struct BridgeTicket {
    /// Unguessable id in the page URL.
    pub id: String,
    /// CSRF token the form must echo.
    pub csrf: String,
}

/// The OAuth side of a login: who the client is, where the endpoints are,
/// and the single-use values of the authorization request.
#[derive(Debug, Clone)]
pub struct OAuthLogin {
    /// The client.
    pub client: crate::vault::ClientRecord,
    /// Endpoints with `{base_url}` filled.
    pub endpoints: oauth::Endpoints,
    /// Scopes requested.
    pub scopes: Vec<String>,
    /// The base URL used, saved on the connection.
    pub base_url: Option<String>,
    /// RFC 8707 resource.
    pub resource: Option<String>,
    /// The authorization request's `state`.
    pub state: Option<String>,
    /// The PKCE pair.
    pub pkce: Option<pkce::Pkce>,
}

/// What the person asked for on the command line.
#[derive(Debug, Clone, Default)]
pub struct LoginOptions {
    /// `--scopes`.
    pub scopes: Option<Vec<String>>,
    /// `--base-url`.
    pub base_url: Option<String>,
    /// `--client-id`.
    pub client_id: Option<String>,
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
    /// Command-line options.
    pub options: LoginOptions,
    /// The OAuth state of the login, once the client is known.
    pub oauth: Mutex<Option<OAuthLogin>>,
    /// The cookie that ties the login to the browser that launched it.
    pub browser: launch::BrowserBinding,
    on_change: Option<ChangeHook>,
    // The way in from the browser for the current step, until claimed.
    launch: Mutex<Option<launch::Launch>>,
    ttl: Mutex<Duration>,
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

    /// Moves to another state unless the login already ended; the first
    /// final state wins.
    pub fn set(&self, state: LoginState) {
        let ended = state.is_final();
        let changed = self.state.send_if_modified(|s| {
            if s.is_final() || *s == state {
                false
            } else {
                *s = state;
                true
            }
        });
        if ended {
            self.launch.lock().expect("launch lock").take();
        }
        if changed {
            if let Some(hook) = &self.on_change {
                (hook.0)(self);
            }
        }
    }

    /// Makes `launch` the way in from the browser, replacing (and removing
    /// the file of) any earlier one.
    pub fn set_launch(&self, launch: launch::Launch) {
        *self.launch.lock().expect("launch lock") = Some(launch);
    }

    /// The launch file to open in the browser, while it is unclaimed.
    pub fn launch_file(&self) -> Option<std::path::PathBuf> {
        self.launch
            .lock()
            .expect("launch lock")
            .as_ref()
            .map(|l| l.file().to_path_buf())
    }

    /// The one-time launch URL, while it is unclaimed.
    pub fn launch_url(&self, base_url: &str) -> Option<String> {
        self.launch
            .lock()
            .expect("launch lock")
            .as_ref()
            .map(|l| l.url(base_url))
    }

    /// Seconds the session has left.
    pub fn remaining(&self) -> Duration {
        self.ttl
            .lock()
            .expect("ttl lock")
            .saturating_sub(self.created.elapsed())
    }

    /// Ends the login (same as [`LoginSession::set`] with a final state).
    pub fn finish(&self, state: LoginState) {
        self.set(state)
    }

    /// True once completed or failed.
    pub fn is_finished(&self) -> bool {
        self.state().is_final()
    }

    /// Lets the session live `ttl` from its creation (a device code may live longer than 300 s).
    pub fn extend_ttl(&self, ttl: Duration) {
        let mut t = self.ttl.lock().expect("ttl lock");
        *t = (*t).max(ttl);
    }

    fn expired(&self) -> bool {
        self.created.elapsed() > *self.ttl.lock().expect("ttl lock")
    }

    /// Waits up to `timeout` for the state to differ from the one named `after`
    /// (`needs_input` when the caller has seen nothing yet).
    pub async fn wait(&self, after: &str, timeout: Duration) -> LoginState {
        let mut rx = self.state.subscribe();
        let _ =
            tokio::time::timeout(timeout, rx.wait_for(|s| s.tag() != after || s.is_final())).await;
        self.state()
    }

    /// Resolves once the login has ended (completed, failed, cancelled or
    /// expired).
    pub async fn ended(&self) {
        let mut rx = self.state.subscribe();
        let _ = rx.wait_for(|s| s.is_final()).await;
    }

    /// How the API shows the login: `callback_url` is the daemon's, and
    /// `open_url` a page the caller is to open, if any.
    pub fn view(&self, callback_url: &str, open_url: Option<String>) -> crate::wire::LoginResponse {
        crate::wire::LoginResponse {
            id: self.id.clone(),
            provider: self.provider.name.clone(),
            connection: self.connection.to_string(),
            flow: self.flow,
            state: self.state(),
            fields: self.fields.clone(),
            open_url,
            launch_file: self.launch_file().map(|p| p.display().to_string()),
            callback_url: (self.flow != Flow::ApiKey).then(|| callback_url.to_string()),
            docs_url: self.provider.docs_url.clone(),
        }
    }

    /// The OAuth state of the login.
    pub fn oauth(&self) -> Option<OAuthLogin> {
        self.oauth.lock().expect("oauth lock").clone()
    }

    /// Replaces the OAuth state of the login.
    pub fn set_oauth(&self, value: OAuthLogin) {
        *self.oauth.lock().expect("oauth lock") = Some(value);
    }
}

/// What the registry calls when a session's state changes.
#[derive(Clone)]
pub struct ChangeHook(pub Arc<dyn Fn(&LoginSession) + Send + Sync>);

impl std::fmt::Debug for ChangeHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangeHook")
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
    /// Command-line options.
    pub options: LoginOptions,
}

/// All login sessions of the daemon.
#[derive(Debug)]
pub struct LoginRegistry {
    ttl: Duration,
    sessions: Mutex<HashMap<String, Arc<LoginSession>>>,
    // States of callbacks already handled, so a replay is told apart from a mismatch.
    used_states: Mutex<HashMap<String, Instant>>,
    on_change: Mutex<Option<ChangeHook>>,
}

impl Default for LoginRegistry {
    fn default() -> Self {
        Self::with_ttl(LOGIN_TTL)
    }
}

/// What an OAuth callback's `state` refers to.
#[derive(Debug)]
pub enum StateMatch {
    /// A login waiting for this callback.
    Pending(Arc<LoginSession>),
    /// A callback for this state was already handled.
    Used,
    /// The login that issued this state has expired.
    Expired(Arc<LoginSession>),
    /// A login waits for this state, but the callback came from a browser
    /// that login is not bound to.
    OtherBrowser,
    /// No login ever issued this state.
    Unknown,
}

impl LoginRegistry {
    /// A registry whose sessions live `ttl`.
    pub fn with_ttl(ttl: Duration) -> Self {
        LoginRegistry {
            ttl,
            sessions: Mutex::default(),
            used_states: Mutex::default(),
            on_change: Mutex::default(),
        }
    }

    /// Calls `hook` whenever a session created from now on changes state.
    pub fn on_change(&self, hook: Arc<dyn Fn(&LoginSession) + Send + Sync>) {
        *self.on_change.lock().expect("hook lock") = Some(ChangeHook(hook));
    }

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
            options: new.options,
            oauth: Mutex::new(None),
            browser: launch::BrowserBinding::new(),
            on_change: self.on_change.lock().expect("hook lock").clone(),
            launch: Mutex::new(None),
            ttl: Mutex::new(self.ttl),
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
            .filter(|s| !s.expired() && s.state() == LoginState::NeedsInput)
            .cloned()
    }

    /// Claims a launch token: it works once, for a live login. Returns the
    /// login and the launch (whose file goes when it is dropped).
    pub fn claim_launch(&self, token: &str) -> Option<(Arc<LoginSession>, launch::Launch)> {
        let sessions = self.sessions.lock().expect("logins lock");
        sessions.values().find_map(|s| {
            let mut slot = s.launch.lock().expect("launch lock");
            if !slot.as_ref().is_some_and(|l| l.is(token)) {
                return None;
            }
            let claimed = slot.take()?;
            (!s.expired() && !s.is_finished()).then(|| (s.clone(), claimed))
        })
    }

    /// Finds the login an OAuth callback's `state` belongs to, comparing in
    /// constant time, and marks the state used so it works once. A login
    /// the callback's browser is not bound to is left alone: the state
    /// stays unused and the login keeps waiting.
    pub fn take_state(&self, state: &str, cookies: &launch::Cookies) -> StateMatch {
        let sessions = self.sessions.lock().expect("logins lock");
        let mut used = self.used_states.lock().expect("used states lock");
        if used
            .keys()
            .any(|u| crate::secret::constant_time_eq(u, state))
        {
            return StateMatch::Used;
        }
        let found = sessions.values().find(|s| {
            s.oauth
                .lock()
                .expect("oauth lock")
                .as_ref()
                .and_then(|o| o.state.as_deref())
                .is_some_and(|st| crate::secret::constant_time_eq(st, state))
        });
        match found {
            Some(s) if s.expired() => {
                Self::expire(s);
                StateMatch::Expired(s.clone())
            }
            Some(s) if matches!(s.state(), LoginState::Authorizing { .. }) => {
                if !s.browser.holds(cookies) {
                    return StateMatch::OtherBrowser;
                }
                used.insert(state.to_string(), Instant::now());
                StateMatch::Pending(s.clone())
            }
            Some(_) => StateMatch::Used,
            None => StateMatch::Unknown,
        }
    }

    /// Logins waiting for a callback in the browser that sent `cookies`.
    pub fn authorizing_in(&self, cookies: &launch::Cookies) -> Vec<Arc<LoginSession>> {
        let sessions = self.sessions.lock().expect("logins lock");
        sessions
            .values()
            .filter(|s| matches!(s.state(), LoginState::Authorizing { .. }))
            .filter(|s| s.browser.holds(cookies))
            .cloned()
            .collect()
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
                s.created.elapsed() < *s.ttl.lock().expect("ttl lock") + Duration::from_secs(60)
            } else {
                true
            }
        });
        self.used_states
            .lock()
            .expect("used states lock")
            .retain(|_, at| at.elapsed() < LOGIN_TTL * 2);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> Arc<ProviderDef> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "name": "p", "display_name": "P", "auth_type": "oauth2", "flow": "pkce", "host_url": "p.test",
                "oauth": {"authorization_url": "https://p.test/a", "token_url": "https://p.test/t"}
            }))
            .unwrap(),
        )
    }

    fn authorizing(reg: &LoginRegistry, state: &str) -> Arc<LoginSession> {
        let s = reg.create(NewLogin {
            profile: ProfileName::default_name(),
            provider: provider(),
            connection: ConnectionName::default_name(),
            force: false,
            flow: Flow::Pkce,
            fields: vec![],
            with_bridge: false,
            options: LoginOptions::default(),
        });
        s.set_oauth(OAuthLogin {
            client: crate::vault::ClientRecord {
                provider: crate::names::ProviderName::parse("p").unwrap(),
                client_id: "c".into(),
                client_secret: None,
                base_url: None,
                registered: false,
            },
            endpoints: oauth::Endpoints::default(),
            scopes: vec![],
            base_url: None,
            resource: None,
            state: Some(state.into()),
            pkce: None,
        });
        s.set(LoginState::Authorizing {
            url: "https://p.test/a".into(),
        });
        s
    }

    /// The cookies of the browser a login was launched in.
    fn bound(s: &LoginSession) -> launch::Cookies {
        let set = s.browser.set_cookie(60);
        launch::Cookies::parse([set.split(';').next().unwrap()])
    }

    #[test]
    fn a_state_works_once_and_only_in_the_bound_browser() {
        let reg = LoginRegistry::default();
        let s = authorizing(&reg, "s1");
        let none = launch::Cookies::default();
        assert!(matches!(
            reg.take_state("s1", &none),
            StateMatch::OtherBrowser
        ));
        let other = bound(&authorizing(&reg, "s0"));
        assert!(matches!(
            reg.take_state("s1", &other),
            StateMatch::OtherBrowser
        ));
        assert!(!s.is_finished(), "a foreign callback changes nothing");
        let mine = bound(&s);
        assert!(matches!(
            reg.take_state("s1", &mine),
            StateMatch::Pending(_)
        ));
        assert!(matches!(reg.take_state("s1", &mine), StateMatch::Used));
        assert!(matches!(
            reg.take_state("other", &mine),
            StateMatch::Unknown
        ));
        assert!(matches!(reg.take_state("", &mine), StateMatch::Unknown));
        assert_eq!(reg.authorizing_in(&none).len(), 0);
        assert_eq!(reg.authorizing_in(&other).len(), 1);
    }

    #[test]
    fn a_launch_works_once_while_its_login_lives() {
        let dir = tempfile::tempdir().unwrap();
        let reg = LoginRegistry::default();
        let s = authorizing(&reg, "s5");
        let make = || {
            launch::Launch::create(
                dir.path(),
                "http://127.0.0.1:1",
                "https://p.test/a".into(),
                launch::Binding::Cookie,
            )
            .unwrap()
        };
        s.set_launch(make());
        let file = s.launch_file().unwrap();
        let token = s
            .launch_url("")
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        assert!(reg.claim_launch("wrong").is_none());
        let (found, claimed) = reg.claim_launch(&token).unwrap();
        assert_eq!(found.id, s.id);
        assert_eq!(claimed.target, "https://p.test/a");
        drop(claimed);
        assert!(!file.exists(), "a claimed launch leaves no file");
        assert!(reg.claim_launch(&token).is_none(), "a launch works once");
        s.set_launch(make());
        let file = s.launch_file().unwrap();
        let token = s
            .launch_url("")
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        s.finish(LoginState::Completed);
        assert!(!file.exists(), "a finished login leaves no file");
        assert!(reg.claim_launch(&token).is_none());
    }

    #[test]
    fn an_expired_login_fails_and_refuses_its_callback() {
        let reg = LoginRegistry::with_ttl(Duration::from_millis(50));
        let s = authorizing(&reg, "s2");
        std::thread::sleep(Duration::from_millis(80));
        assert!(matches!(
            reg.take_state("s2", &bound(&s)),
            StateMatch::Expired(_)
        ));
        assert!(
            matches!(s.state(), LoginState::Failed { ref error, .. } if error == "login_timed_out")
        );
        let t = authorizing(&reg, "s3");
        std::thread::sleep(Duration::from_millis(80));
        reg.sweep();
        assert!(t.is_finished());
    }

    #[tokio::test]
    async fn waiters_see_the_state_change() {
        let reg = LoginRegistry::default();
        let s = authorizing(&reg, "s4");
        let waiter = {
            let s = s.clone();
            tokio::spawn(async move { s.wait("authorizing", Duration::from_secs(5)).await })
        };
        s.finish(LoginState::Completed);
        assert_eq!(waiter.await.unwrap(), LoginState::Completed);
        s.finish(LoginState::Failed {
            error: "x".into(),
            message: "y".into(),
        });
        assert_eq!(
            s.state(),
            LoginState::Completed,
            "the first final state wins"
        );
    }
}
