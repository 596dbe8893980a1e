//! Tauri commands for Authsome's windows. Each is a short call into the
//! daemon; errors cross to the UI as `{code, message}`.

use std::collections::BTreeMap;

use authsome_daemon::names::{ConnectionName, ProfileName};
use authsome_daemon::prompt::PromptRequest;
use authsome_daemon::secret::Secret;
use authsome_daemon::wire::{ListResponse, LoginResponse};
use serde::Serialize;
use tauri::{AppHandle, Manager, Runtime, WebviewWindow};

use crate::{approvals, menu, windows, TrayState};

/// An error as the UI sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UiError {
    /// Stable code (the daemon's).
    pub code: String,
    /// Message for people.
    pub message: String,
}

impl From<authsome_daemon::Error> for UiError {
    fn from(e: authsome_daemon::Error) -> Self {
        UiError {
            code: e.code().into(),
            message: e.to_string(),
        }
    }
}

/// What the main window shows.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    /// Providers and connections of the default profile.
    pub list: ListResponse,
    /// Recent audit events, oldest first.
    pub audit: Vec<serde_json::Value>,
    /// Where the master key came from.
    pub key_source: String,
    /// The proxy CA's fingerprint.
    pub ca_fingerprint: String,
    /// The desktop shows no tray icons (no StatusNotifierWatcher).
    pub no_tray_host: bool,
}

fn profile<R: Runtime>(app: &AppHandle<R>) -> Result<ProfileName, UiError> {
    Ok(app
        .state::<TrayState>()
        .daemon()?
        .home()
        .default_profile()?)
}

fn login_id<R: Runtime>(window: &WebviewWindow<R>, prefix: &str) -> Result<String, UiError> {
    windows::login_id_of(window.label(), prefix)
        .map(str::to_string)
        .ok_or_else(|| UiError {
            code: "not_found".into(),
            message: "this window has no login".into(),
        })
}

/// Connections, providers and recent events for the main window.
#[tauri::command]
pub async fn snapshot<R: Runtime>(app: AppHandle<R>) -> Result<Snapshot, UiError> {
    let d = app.state::<TrayState>().daemon()?.clone();
    let list = d.connections().list(&profile(&app)?).await?;
    let audit = authsome_daemon::audit::read_tail(&d.home().audit_log(), 20)?;
    let status = d.status().await?;
    Ok(Snapshot {
        list,
        audit,
        key_source: status.key_source.as_str().into(),
        ca_fingerprint: status.ca_fingerprint,
        no_tray_host: app
            .state::<TrayState>()
            .no_tray_host
            .load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// Starts connecting a provider.
#[tauri::command]
pub async fn connect<R: Runtime>(app: AppHandle<R>, provider: String) -> Result<(), UiError> {
    menu::start_login(app, provider, None, false).await
}

/// Logs in again to a connection, replacing it.
#[tauri::command]
pub async fn reconnect<R: Runtime>(
    app: AppHandle<R>,
    provider: String,
    connection: String,
) -> Result<(), UiError> {
    menu::start_login(app, provider, Some(connection), true).await
}

/// Revokes a connection.
#[tauri::command]
pub async fn revoke<R: Runtime>(
    app: AppHandle<R>,
    provider: String,
    connection: String,
) -> Result<(), UiError> {
    let d = app.state::<TrayState>().daemon()?.clone();
    d.connections()
        .revoke(
            &profile(&app)?,
            &provider,
            &ConnectionName::parse(&connection)?,
        )
        .await?;
    menu::refresh(&app).await;
    Ok(())
}

/// The request a prompt window shows.
#[tauri::command]
pub fn prompt_request<R: Runtime>(
    app: AppHandle<R>,
    window: WebviewWindow<R>,
) -> Result<PromptRequest, UiError> {
    let id = login_id(&window, windows::PROMPT_PREFIX)?;
    app.state::<TrayState>().prompt(&id).ok_or_else(|| UiError {
        code: "login_not_found".into(),
        message: "this login has ended".into(),
    })
}

/// Sends a prompt window's values to the daemon; closes the window when they are accepted.
#[tauri::command]
pub async fn submit_prompt<R: Runtime>(
    app: AppHandle<R>,
    window: WebviewWindow<R>,
    values: BTreeMap<String, String>,
) -> Result<(), UiError> {
    let id = login_id(&window, windows::PROMPT_PREFIX)?;
    let d = app.state::<TrayState>().daemon()?.clone();
    let values: BTreeMap<String, Secret> = values
        .into_iter()
        .map(|(k, v)| (k, Secret::new(v)))
        .collect();
    d.logins().submit_login_input(&id, &values).await?;
    app.state::<TrayState>().remove_prompt(&id);
    let _ = window.close();
    Ok(())
}

/// Cancels the login behind a prompt window and closes it.
#[tauri::command]
pub fn cancel_prompt<R: Runtime>(
    app: AppHandle<R>,
    window: WebviewWindow<R>,
) -> Result<(), UiError> {
    let id = login_id(&window, windows::PROMPT_PREFIX)?;
    if let Ok(d) = app.state::<TrayState>().daemon() {
        let _ = d.logins().cancel_login(&id);
    }
    app.state::<TrayState>().remove_prompt(&id);
    let _ = window.close();
    Ok(())
}

/// The state of the login behind a device-code window.
#[tauri::command]
pub async fn login_state<R: Runtime>(
    app: AppHandle<R>,
    window: WebviewWindow<R>,
) -> Result<LoginResponse, UiError> {
    let id = login_id(&window, windows::DEVICE_PREFIX)?;
    let d = app.state::<TrayState>().daemon()?.clone();
    Ok(d.logins()
        .login_status(&id, "", std::time::Duration::ZERO)
        .await?)
}

/// Opens the verification page of the login behind a device-code window.
/// The page's address carries the user code, so the browser gets a fresh
/// launch file, never the address on its command line.
#[tauri::command]
pub fn open_device_page<R: Runtime>(
    app: AppHandle<R>,
    window: WebviewWindow<R>,
) -> Result<(), UiError> {
    let id = login_id(&window, windows::DEVICE_PREFIX)?;
    let d = app.state::<TrayState>().daemon()?.clone();
    let file = d.logins().relaunch_device_page(&id)?;
    webbrowser::open(&file.display().to_string()).map_err(|e| UiError {
        code: "browser".into(),
        message: e.to_string(),
    })
}

/// Opens a public http(s) URL in the system browser (docs links).
#[tauri::command]
pub fn open_external(url: String) -> Result<(), UiError> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(UiError {
            code: "invalid_input".into(),
            message: "only web links open".into(),
        });
    }
    webbrowser::open(&url).map_err(|e| UiError {
        code: "browser".into(),
        message: e.to_string(),
    })
}

/// The question an approval window shows.
#[tauri::command]
pub fn approval_request<R: Runtime>(
    app: AppHandle<R>,
    window: WebviewWindow<R>,
) -> Result<approvals::Question, UiError> {
    app.state::<TrayState>()
        .questions
        .get(window.label())
        .ok_or_else(|| UiError {
            code: "not_found".into(),
            message: "this request is no longer waiting".into(),
        })
}

/// An approval window's answer: the daemon lets the held request go (once,
/// for the run, or for an hour for the command) or refuses it; the window
/// closes.
#[tauri::command]
pub async fn answer_approval<R: Runtime>(
    app: AppHandle<R>,
    window: WebviewWindow<R>,
    answer: approvals::Answer,
) -> Result<(), UiError> {
    let state = app.state::<TrayState>();
    let q = state.questions.get(window.label()).ok_or_else(|| UiError {
        code: "not_found".into(),
        message: "this request is no longer waiting".into(),
    })?;
    let d = state.daemon()?.clone();
    let (allowed, scope, seconds) = answer.decision();
    // The window closes when the daemon says the question is answered.
    d.runs()
        .decide(&q.run, &q.pending.provider, allowed, scope, seconds)
        .await?;
    Ok(())
}

/// What the Activity view starts from: the live runs (latest first) and
/// the recent run events of the audit log (`request`, `run`, `approval`,
/// policy refusals), oldest first. Later events arrive live.
#[derive(Debug, Serialize)]
pub struct Activity {
    /// Live runs, latest first.
    pub runs: Vec<authsome_daemon::wire::RunInfo>,
    /// Recent run events.
    pub events: Vec<serde_json::Value>,
}

/// The Activity view's starting point.
#[tauri::command]
pub async fn activity<R: Runtime>(app: AppHandle<R>) -> Result<Activity, UiError> {
    let d = app.state::<TrayState>().daemon()?.clone();
    let mut runs = d.runs().list();
    runs.reverse();
    let events = authsome_daemon::audit::read_tail(&d.home().audit_log(), 500)?
        .into_iter()
        .filter(|e| e.get("run").is_some_and(|r| !r.is_null()))
        .collect();
    Ok(Activity { runs, events })
}

/// Whether Authsome starts with the desktop session: the `Exec` line of
/// its autostart entry, or nothing.
#[tauri::command]
pub fn autostart_state() -> Result<Option<String>, UiError> {
    Ok(authsome_daemon::autostart::exec_line()?)
}

/// Starts Authsome with the desktop session, or stops doing so.
#[tauri::command]
pub fn set_autostart<R: Runtime>(app: AppHandle<R>, on: bool) -> Result<Option<String>, UiError> {
    if on {
        let tray = authsome_daemon::autostart::tray_beside_me()?;
        let d = app.state::<TrayState>().daemon()?.clone();
        let home = std::env::var_os("AUTHSOME_HOME").map(|_| d.home().root().to_path_buf());
        authsome_daemon::autostart::enable(&tray, home.as_deref())?;
    } else {
        authsome_daemon::autostart::disable()?;
    }
    autostart_state()
}
