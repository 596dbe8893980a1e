//! The tray menu: one entry per connection with its state (Reconnect and
//! Revoke inside), Connect ▸ providers, Open Authsome, Quit. It is rebuilt
//! whenever the connections change; the icon shows when one needs attention.

use std::time::Duration;

use authsome_daemon::events::Event;
use authsome_daemon::flows::{follow, LoginState};
use authsome_daemon::names::{ConnectionName, ProviderName};
use authsome_daemon::vault::Status;
use authsome_daemon::wire::{InputMode, ListResponse, LoginRequest};
use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::commands::UiError;
use crate::{windows, TrayState};

/// The tray icon's id (libayatana exports the menu under a path naming it).
pub const TRAY_ID: &str = "authsome";

const ICON: &[u8] = include_bytes!("../../icons/tray.png");
const ICON_ATTENTION: &[u8] = include_bytes!("../../icons/tray-attention.png");

/// What a menu item does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MenuAction {
    /// Stop the daemon and exit.
    Quit,
    /// Show the main window.
    Open,
    /// Connect a provider.
    Connect(String),
    /// Log in again to a connection.
    Reconnect(String, String),
    /// Revoke a connection.
    Revoke(String, String),
}

impl MenuAction {
    /// The menu item id.
    pub fn id(&self) -> String {
        match self {
            MenuAction::Quit => "quit".into(),
            MenuAction::Open => "open".into(),
            MenuAction::Connect(p) => format!("connect:{p}"),
            MenuAction::Reconnect(p, c) => format!("reconnect:{p}:{c}"),
            MenuAction::Revoke(p, c) => format!("revoke:{p}:{c}"),
        }
    }

    /// Parses a menu item id; names are validated so an id cannot smuggle anything.
    pub fn parse(id: &str) -> Option<MenuAction> {
        let parts: Vec<&str> = id.split(':').collect();
        let provider = |p: &str| ProviderName::parse(p).ok().map(|n| n.to_string());
        let connection = |c: &str| ConnectionName::parse(c).ok().map(|n| n.to_string());
        match parts.as_slice() {
            ["quit"] => Some(MenuAction::Quit),
            ["open"] => Some(MenuAction::Open),
            ["connect", p] => Some(MenuAction::Connect(provider(p)?)),
            ["reconnect", p, c] => Some(MenuAction::Reconnect(provider(p)?, connection(c)?)),
            ["revoke", p, c] => Some(MenuAction::Revoke(provider(p)?, connection(c)?)),
            _ => None,
        }
    }
}

/// One connection line of the menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionEntry {
    /// `GitHub (default) — connected`.
    pub label: String,
    /// Provider name.
    pub provider: String,
    /// Connection name.
    pub connection: String,
}

/// The menu's content, derived from the connections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MenuModel {
    /// Connection lines.
    pub connections: Vec<ConnectionEntry>,
    /// Connect ▸ entries: (label, provider).
    pub providers: Vec<(String, String)>,
    /// Some connection is `expired` or `invalid`.
    pub attention: bool,
}

impl MenuModel {
    /// The model for a listing.
    pub fn from_list(list: &ListResponse) -> MenuModel {
        let mut model = MenuModel::default();
        for p in &list.providers {
            for c in &p.connections {
                model.attention |= matches!(c.status, Status::Expired | Status::Invalid);
                model.connections.push(ConnectionEntry {
                    label: format!(
                        "{} ({}) — {}",
                        p.display_name,
                        c.connection,
                        c.status.as_str()
                    ),
                    provider: p.name.clone(),
                    connection: c.connection.clone(),
                });
            }
            model
                .providers
                .push((p.display_name.clone(), p.name.clone()));
        }
        model.providers.sort();
        model
    }
}

/// Builds the menu for a model.
pub fn build<R: Runtime>(app: &AppHandle<R>, model: &MenuModel) -> tauri::Result<Menu<R>> {
    let menu = Menu::new(app)?;
    for c in &model.connections {
        let sub = Submenu::with_items(
            app,
            &c.label,
            true,
            &[
                &MenuItem::with_id(
                    app,
                    MenuAction::Reconnect(c.provider.clone(), c.connection.clone()).id(),
                    "Reconnect",
                    true,
                    None::<&str>,
                )?,
                &MenuItem::with_id(
                    app,
                    MenuAction::Revoke(c.provider.clone(), c.connection.clone()).id(),
                    "Revoke",
                    true,
                    None::<&str>,
                )?,
            ],
        )?;
        menu.append(&sub)?;
    }
    if model.connections.is_empty() {
        menu.append(&MenuItem::with_id(
            app,
            "none",
            "No connections yet",
            false,
            None::<&str>,
        )?)?;
    }
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    let connect = Submenu::new(app, "Connect", true)?;
    for (label, name) in &model.providers {
        connect.append(&MenuItem::with_id(
            app,
            MenuAction::Connect(name.clone()).id(),
            label,
            true,
            None::<&str>,
        )?)?;
    }
    menu.append(&connect)?;
    menu.append(&MenuItem::with_id(
        app,
        MenuAction::Open.id(),
        "Open Authsome",
        true,
        None::<&str>,
    )?)?;
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    menu.append(&MenuItem::with_id(
        app,
        MenuAction::Quit.id(),
        "Quit",
        true,
        None::<&str>,
    )?)?;
    Ok(menu)
}

/// Creates the tray icon with a first menu (Open, Quit) until the daemon is up.
pub fn create_tray<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let menu = build(app, &MenuModel::default())?;
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(Image::from_bytes(ICON)?)
        .tooltip("Authsome")
        .menu(&menu)
        .on_menu_event(|app, event| handle(app, event.id().as_ref()))
        .build(app)?;
    Ok(())
}

/// Runs a menu item's action.
pub fn handle<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let Some(action) = MenuAction::parse(id) else {
        return;
    };
    tracing::debug!(?action, "menu");
    match action {
        MenuAction::Quit => crate::quit(app),
        MenuAction::Open => windows::open_main(app),
        MenuAction::Connect(p) => spawn_login(app, p, None, false),
        MenuAction::Reconnect(p, c) => spawn_login(app, p, Some(c), true),
        MenuAction::Revoke(p, c) => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                if let Err(e) = crate::commands::revoke(app, p, c).await {
                    tracing::warn!("revoke failed: {}", e.message);
                }
            });
        }
    }
}

fn spawn_login<R: Runtime>(
    app: &AppHandle<R>,
    provider: String,
    connection: Option<String>,
    force: bool,
) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        if let Err(e) = start_login(app, provider, connection, force).await {
            tracing::warn!("login failed to start: {}", e.message);
        }
    });
}

/// Starts a login driven by the tray: input through prompt windows, the
/// provider's sign-in page in the system browser, device codes in a window.
pub async fn start_login<R: Runtime>(
    app: AppHandle<R>,
    provider: String,
    connection: Option<String>,
    force: bool,
) -> Result<(), UiError> {
    let d = app.state::<TrayState>().daemon()?.clone();
    let profile = d.home().default_profile()?;
    let connection = connection.map(|c| ConnectionName::parse(&c)).transpose()?;
    let req = LoginRequest {
        provider: ProviderName::parse(&provider)?,
        connection,
        force,
        flow: None,
        mode: InputMode::Prompter,
        inputs: Default::default(),
        scopes: None,
        base_url: None,
        client_id: None,
    };
    // Subscribed before the login begins, so no step of it is missed.
    let mut events = d.events().subscribe();
    let resp = d.logins().begin_login(&profile, req).await?;
    let id = resp.id.clone();
    let display_name = d
        .catalogue()
        .get(&provider)
        .map(|(def, _)| def.display_name.clone())
        .unwrap_or_else(|_| provider.clone());
    tauri::async_runtime::spawn(async move {
        let mut current = resp;
        loop {
            match &current.state {
                LoginState::Authorizing { .. } => {
                    // The launch file, not the URL: a browser's command
                    // line is readable by every user of the machine.
                    if let Some(file) = &current.launch_file {
                        if let Err(e) = webbrowser::open(file) {
                            tracing::warn!("cannot open the browser: {e}");
                        }
                    }
                }
                LoginState::DeviceCode { .. } => {
                    let _ = windows::open_device(&app, &id, &display_name);
                }
                s if s.is_final() => {
                    refresh(&app).await;
                    return;
                }
                _ => {}
            }
            current = loop {
                match events.next().await {
                    None => return,
                    Some(Event::Lagged { .. }) => {
                        // Steps may have been missed: read the login itself.
                        match d.logins().login_status(&id, "", Duration::ZERO).await {
                            Ok(r) if r.state != current.state => break r,
                            Ok(_) => {}
                            Err(_) => return,
                        }
                    }
                    Some(event) => {
                        if let Some(next) = follow::next_step(&event, &id, &current.state) {
                            break next.clone();
                        }
                    }
                }
            };
        }
    });
    Ok(())
}

/// Rebuilds the menu and icon if the connections changed.
pub async fn refresh<R: Runtime>(app: &AppHandle<R>) {
    let state = app.state::<TrayState>();
    let Ok(d) = state.daemon() else { return };
    let Ok(profile) = d.home().default_profile() else {
        return;
    };
    let Ok(list) = d.connections().list(&profile).await else {
        return;
    };
    let model = MenuModel::from_list(&list);
    {
        let mut shown = state.menu_shown.lock().expect("menu shown");
        if shown.as_ref() == Some(&model) {
            return;
        }
        *shown = Some(model.clone());
    }
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    match build(app, &model) {
        Ok(menu) => {
            let _ = tray.set_menu(Some(menu));
        }
        Err(e) => tracing::warn!("cannot build the tray menu: {e}"),
    }
    let icon = if model.attention {
        ICON_ATTENTION
    } else {
        ICON
    };
    if let Ok(img) = Image::from_bytes(icon) {
        let _ = tray.set_icon(Some(img));
    }
}

/// Keeps the menu in step with the connections: rebuilt at once whenever
/// the daemon says a connection or a provider changed.
pub async fn keep_in_step<R: Runtime>(app: AppHandle<R>) {
    let Ok(d) = app.state::<TrayState>().daemon().cloned() else {
        return;
    };
    let mut events = d.events().subscribe();
    refresh(&app).await;
    while let Some(event) = events.next().await {
        // The main window's views follow the same events.
        if let Some(main) = app.get_webview_window("main") {
            let _ = main.emit("daemon-event", &event);
        }
        match &event {
            Event::ConnectionStatus { .. } | Event::ProviderRegistered { .. } => {
                refresh(&app).await
            }
            Event::Lagged { .. } => {
                refresh(&app).await;
                crate::approvals::resync(&app, d.runs().list());
            }
            Event::ApprovalPending { run, pending } => {
                crate::approvals::ask(&app, run.clone(), pending.clone())
            }
            Event::ApprovalDecided { run, provider, .. }
            | Event::ApprovalWithdrawn { run, provider } => {
                crate::approvals::settled(&app, run, Some(provider))
            }
            Event::RunEnded { id, .. } => crate::approvals::settled(&app, id, None),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authsome_daemon::providers::{AuthType, Flow, ProviderOrigin};
    use authsome_daemon::wire::{ConnectionSummary, ProviderListing};

    #[test]
    fn menu_ids_round_trip_and_refuse_smuggled_names() {
        for a in [
            MenuAction::Quit,
            MenuAction::Open,
            MenuAction::Connect("github".into()),
            MenuAction::Reconnect("github".into(), "work".into()),
            MenuAction::Revoke("openai".into(), "default".into()),
        ] {
            assert_eq!(MenuAction::parse(&a.id()), Some(a));
        }
        assert_eq!(MenuAction::parse("connect:../x"), None);
        assert_eq!(MenuAction::parse("revoke:github"), None);
        assert_eq!(MenuAction::parse("rm -rf"), None);
    }

    #[test]
    fn the_model_lists_connections_with_state_and_flags_attention() {
        let list = ListResponse {
            profile: "default".into(),
            providers: vec![
                ProviderListing {
                    name: "github".into(),
                    display_name: "GitHub".into(),
                    auth_type: AuthType::OAuth2,
                    flow: Flow::Pkce,
                    origin: ProviderOrigin::Bundled,
                    status: Status::Invalid,
                    connections: vec![ConnectionSummary {
                        connection: "default".into(),
                        status: Status::Invalid,
                        expires_at: None,
                        last_error: None,
                    }],
                    mcp_url: None,
                },
                ProviderListing {
                    name: "openai".into(),
                    display_name: "OpenAI".into(),
                    auth_type: AuthType::ApiKey,
                    flow: Flow::ApiKey,
                    origin: ProviderOrigin::Bundled,
                    status: Status::Available,
                    connections: vec![],
                    mcp_url: None,
                },
            ],
        };
        let m = MenuModel::from_list(&list);
        assert_eq!(m.connections[0].label, "GitHub (default) — invalid");
        assert!(m.attention);
        assert_eq!(
            m.providers,
            vec![
                ("GitHub".to_string(), "github".to_string()),
                ("OpenAI".to_string(), "openai".to_string())
            ]
        );
    }
}
