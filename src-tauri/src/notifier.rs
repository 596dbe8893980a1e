//! The tray's notifier: native notifications when a connection moves into
//! `expired` or `invalid` (with a Reconnect action) and when it recovers.
//! A notification that cannot be shown is logged once; it never fails the
//! refresh that raised it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use authsome_daemon::notify::{LogNotifier, Notification, NotificationKind, Notifier};
use tauri::{AppHandle, Runtime};

/// Shows notifications and starts Reconnect when one is activated.
pub struct TrayNotifier<R: Runtime> {
    app: AppHandle<R>,
    failed_once: Arc<AtomicBool>,
}

impl<R: Runtime> TrayNotifier<R> {
    /// A notifier for the app.
    pub fn new(app: AppHandle<R>) -> Self {
        TrayNotifier {
            app,
            failed_once: Arc::default(),
        }
    }
}

impl<R: Runtime> std::fmt::Debug for TrayNotifier<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrayNotifier")
    }
}

impl<R: Runtime> Notifier for TrayNotifier<R> {
    fn notify(&self, n: &Notification) {
        LogNotifier.notify(n);
        let (app, n, failed_once) = (self.app.clone(), n.clone(), self.failed_once.clone());
        let refresh = app.clone();
        tauri::async_runtime::spawn(async move { crate::menu::refresh(&refresh).await });
        std::thread::spawn(move || {
            let mut notification = authsome_daemon::notify::desktop(&n);
            let attention = n.kind == NotificationKind::NeedsAttention;
            if attention {
                notification
                    .action("default", "Reconnect")
                    .action("reconnect", "Reconnect");
            }
            match notification.show() {
                Ok(handle) => {
                    #[cfg(all(unix, not(target_os = "macos")))]
                    if attention {
                        handle.wait_for_action(|action| {
                            if action == "default" || action == "reconnect" {
                                let (provider, connection) =
                                    (n.provider.clone(), n.connection.clone());
                                tauri::async_runtime::spawn(async move {
                                    if let Err(e) = crate::menu::start_login(
                                        app,
                                        provider,
                                        Some(connection),
                                        true,
                                    )
                                    .await
                                    {
                                        tracing::warn!("reconnect failed: {}", e.message);
                                    }
                                });
                            }
                        });
                    }
                    #[cfg(not(all(unix, not(target_os = "macos"))))]
                    let _ = handle;
                }
                Err(e) => {
                    if !failed_once.swap(true, Ordering::Relaxed) {
                        tracing::warn!("desktop notifications unavailable: {e}");
                    }
                }
            }
        });
    }
}
