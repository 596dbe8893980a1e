//! Authsome's own windows: the main window, prompt forms and device codes.
//! A prompt or device window's label carries its login id, so a window can
//! only read and answer its own login.

use tauri::{AppHandle, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};

/// Label prefix of prompt windows.
pub const PROMPT_PREFIX: &str = "prompt-";
/// Label prefix of device-code windows.
pub const DEVICE_PREFIX: &str = "device-";

/// The login id in a window label with `prefix`.
pub fn login_id_of<'a>(label: &'a str, prefix: &str) -> Option<&'a str> {
    label.strip_prefix(prefix).filter(|id| !id.is_empty())
}

/// The bus name of the StatusNotifierWatcher, which shows tray icons.
pub const WATCHER: &str = "org.kde.StatusNotifierWatcher";

/// True when the session bus has a StatusNotifierWatcher: tray icons show.
/// Stock GNOME without the AppIndicator extension has none, and an icon
/// there shows nowhere.
pub fn has_tray_host() -> bool {
    let Ok(conn) = dbus::blocking::Connection::new_session() else {
        return false;
    };
    let proxy = conn.with_proxy(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        std::time::Duration::from_secs(2),
    );
    let owned: Result<(bool,), dbus::Error> =
        proxy.method_call("org.freedesktop.DBus", "NameHasOwner", (WATCHER,));
    owned.map(|(b,)| b).unwrap_or(false)
}

/// Shows the main window, creating it if needed.
pub fn open_main<R: Runtime>(app: &AppHandle<R>) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
        return;
    }
    if let Err(e) = WebviewWindowBuilder::new(app, "main", WebviewUrl::App("index.html".into()))
        .title("Authsome")
        .inner_size(880.0, 640.0)
        .build()
    {
        tracing::error!("cannot open the main window: {e}");
    }
}

/// Opens the form window of a login.
pub fn open_prompt<R: Runtime>(
    app: &AppHandle<R>,
    login_id: &str,
    display_name: &str,
) -> tauri::Result<()> {
    login_window(
        app,
        format!("{PROMPT_PREFIX}{login_id}"),
        "prompt.html",
        format!("Authsome: connect {display_name}"),
        480.0,
    )
}

/// Opens the device-code window of a login.
pub fn open_device<R: Runtime>(
    app: &AppHandle<R>,
    login_id: &str,
    display_name: &str,
) -> tauri::Result<()> {
    login_window(
        app,
        format!("{DEVICE_PREFIX}{login_id}"),
        "device.html",
        format!("Authsome: sign in to {display_name}"),
        300.0,
    )
}

fn login_window<R: Runtime>(
    app: &AppHandle<R>,
    label: String,
    page: &str,
    title: String,
    height: f64,
) -> tauri::Result<()> {
    WebviewWindowBuilder::new(app, label, WebviewUrl::App(page.into()))
        .title(title)
        .inner_size(520.0, height)
        .center()
        .focused(true)
        .build()
        .map(|_| ())
}
