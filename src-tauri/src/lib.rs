//! The tray app: a thin Tauri shell around `authsome-daemon`. It starts the
//! same daemon as `authsome daemon serve` in its own process, plugs in a
//! prompter (native webview windows) and a notifier (native notifications
//! with a Reconnect action), and keeps a tray menu in step with the
//! connections. Every action is a call into the daemon, as the CLI's are.
//!
//! Modules: [`commands`] (Tauri commands for the windows), [`menu`] (the
//! tray menu model and its handler, and the loop that follows the daemon's
//! events), [`prompter`] and [`notifier`] (the daemon's seams), [`windows`]
//! (opening Authsome's own windows), [`approvals`] (the windows that ask
//! before a run's request goes on).

pub mod approvals;
pub mod commands;
pub mod menu;
pub mod notifier;
pub mod prompter;
pub mod windows;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use authsome_daemon::home::Home;
use authsome_daemon::prompt::PromptRequest;
use authsome_daemon::{Daemon, DaemonOptions};
use tauri::{Manager, RunEvent, Runtime};

/// The tray's state, managed by Tauri.
#[derive(Debug, Default)]
pub struct TrayState {
    daemon: OnceLock<Daemon>,
    prompts: Mutex<std::collections::HashMap<String, PromptRequest>>,
    served: Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
    /// The menu as last built, so an unchanged model builds nothing.
    menu_shown: Mutex<Option<menu::MenuModel>>,
    /// Questions the approval windows show.
    pub questions: approvals::Questions,
    /// No StatusNotifierWatcher on the session bus: the icon shows nowhere.
    pub no_tray_host: std::sync::atomic::AtomicBool,
}

impl TrayState {
    /// The daemon, once started.
    pub fn daemon(&self) -> Result<&Daemon, commands::UiError> {
        self.daemon.get().ok_or_else(|| commands::UiError {
            code: "starting".into(),
            message: "Authsome is still starting".into(),
        })
    }

    /// Installs the daemon (once).
    pub fn set_daemon(&self, d: Daemon) {
        let _ = self.daemon.set(d);
    }

    /// A pending prompt request by login id.
    pub fn prompt(&self, login_id: &str) -> Option<PromptRequest> {
        self.prompts.lock().expect("prompts").get(login_id).cloned()
    }

    /// Records a prompt request the windows will ask for.
    pub fn add_prompt(&self, req: PromptRequest) {
        self.prompts
            .lock()
            .expect("prompts")
            .insert(req.login_id.clone(), req);
    }

    /// Forgets a prompt request.
    pub fn remove_prompt(&self, login_id: &str) {
        self.prompts.lock().expect("prompts").remove(login_id);
    }
}

/// Registers commands and state on a builder of any runtime (the mock one in tests).
pub fn builder<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder
        .manage(TrayState::default())
        .invoke_handler(tauri::generate_handler![
            commands::snapshot,
            commands::connect,
            commands::reconnect,
            commands::revoke,
            commands::prompt_request,
            commands::submit_prompt,
            commands::cancel_prompt,
            commands::login_state,
            commands::open_device_page,
            commands::open_external,
            commands::approval_request,
            commands::answer_approval,
            commands::activity,
            commands::autostart_state,
            commands::set_autostart,
        ])
}

/// Starts the daemon for `home` inside the app, taking over from a headless
/// daemon if one serves the home.
/// `port` overrides `AUTHSOME_PORT` and the config (`Some(0)`: a free port).
pub async fn start_daemon<R: Runtime>(
    app: tauri::AppHandle<R>,
    home: Home,
    port: Option<u16>,
) -> authsome_daemon::Result<()> {
    if authsome_daemon::instance::stop_running(&home).await? {
        tracing::info!("took over from the headless daemon");
    }
    let opts = DaemonOptions {
        home,
        port,
        prompter: Some(Arc::new(prompter::TrayPrompter::new(app.clone()))),
        notifier: Some(Arc::new(notifier::TrayNotifier::new(app.clone()))),
    };
    let (daemon, listener, report) = Daemon::start(opts).await?;
    if let Some(reason) = report.init.fallback_reason {
        tracing::warn!(
            "the OS keychain is not available ({reason}); the master key is in master.key"
        );
    }
    let state = app.state::<TrayState>();
    state.set_daemon(daemon.clone());
    let served = tauri::async_runtime::spawn(async move {
        if let Err(e) = daemon.serve(listener, std::future::pending()).await {
            tracing::error!("daemon stopped: {e}");
        }
    });
    *state.served.lock().expect("served") = Some(served);
    Ok(())
}

/// Stops the daemon and exits the app with code 0.
pub fn quit<R: Runtime>(app: &tauri::AppHandle<R>) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let state = app.state::<TrayState>();
        if let Ok(d) = state.daemon() {
            d.request_shutdown();
        }
        let served = state.served.lock().expect("served").take();
        if let Some(h) = served {
            let _ = tokio::time::timeout(Duration::from_secs(10), h).await;
        }
        app.exit(0);
    });
}

/// Runs the tray app until Quit.
pub fn run() -> Result<(), Box<dyn std::error::Error>> {
    let home = Home::from_env()?;
    authsome_daemon::process::disable_core_dumps();
    authsome_daemon::logging::init(
        Some(&home.logs_dir()),
        authsome_daemon::logging::StderrLevel::Info,
    );
    let app = builder(tauri::Builder::default())
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            // A second launch focuses the first.
            windows::open_main(app);
        }))
        .setup(move |app| {
            let handle = app.handle().clone();
            menu::create_tray(&handle)?;
            // `authsome open` starts the app with --open; a desktop that
            // shows no tray icons gets the window too, or the app would
            // look dead.
            let no_host = !windows::has_tray_host();
            if no_host {
                tracing::warn!(
                    "no StatusNotifierWatcher on the session bus: the tray icon shows nowhere; \
                     opening the main window (on GNOME, the AppIndicator extension shows tray icons)"
                );
            }
            handle
                .state::<TrayState>()
                .no_tray_host
                .store(no_host, std::sync::atomic::Ordering::Relaxed);
            if no_host || std::env::args().any(|a| a == "--open") {
                windows::open_main(&handle);
            }
            let home = home.clone();
            tauri::async_runtime::spawn(async move {
                if let Err(e) = start_daemon(handle.clone(), home, None).await {
                    tracing::error!("the daemon could not start: {e}");
                    eprintln!("Error: {e}");
                    handle.exit(1);
                    return;
                }
                menu::keep_in_step(handle).await;
            });
            Ok(())
        })
        .build(tauri::generate_context!())?;
    app.run(|_app, event| {
        // Closing every window keeps Authsome in the tray; only Quit exits.
        if let RunEvent::ExitRequested {
            api, code: None, ..
        } = event
        {
            api.prevent_exit();
        }
    });
    Ok(())
}
