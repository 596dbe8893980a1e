//! How the daemon tells a person that a connection needs attention. The
//! tray app plugs in native notifications; the headless daemon logs.

use std::fmt::Debug;

/// Why a notification is raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationKind {
    /// The connection moved into `expired` or `invalid`.
    NeedsAttention,
    /// The connection is `connected` again.
    Recovered,
}

/// A notification about one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Why.
    pub kind: NotificationKind,
    /// Provider name.
    pub provider: String,
    /// Connection name.
    pub connection: String,
    /// One-line summary.
    pub title: String,
    /// What happened and what to do.
    pub body: String,
}

/// Delivers notifications. Delivery failures are the notifier's to log: they
/// never fail the operation that raised the notification.
pub trait Notifier: Send + Sync + Debug {
    /// Shows or records a notification.
    fn notify(&self, notification: &Notification);
}

/// Writes notifications to the debug log.
#[derive(Debug, Default)]
pub struct LogNotifier;

impl Notifier for LogNotifier {
    fn notify(&self, n: &Notification) {
        tracing::warn!(provider = %n.provider, connection = %n.connection, "notification: {}: {}", n.title, n.body);
    }
}

/// Native desktop notifications over the session bus (notify-rust). A
/// failure is logged once and never fails the refresh that raised it.
#[derive(Debug, Default)]
pub struct DesktopNotifier {
    failed_once: std::sync::atomic::AtomicBool,
}

impl Notifier for DesktopNotifier {
    fn notify(&self, n: &Notification) {
        LogNotifier.notify(n);
        let (title, body) = (n.title.clone(), n.body.clone());
        let urgency = match n.kind {
            NotificationKind::NeedsAttention => notify_rust::Urgency::Critical,
            NotificationKind::Recovered => notify_rust::Urgency::Normal,
        };
        let result = std::thread::spawn(move || {
            notify_rust::Notification::new()
                .appname("Authsome")
                .summary(&title)
                .body(&body)
                .urgency(urgency)
                .show()
                .map(|_| ())
        })
        .join();
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                if !self
                    .failed_once
                    .swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    tracing::warn!("desktop notifications unavailable: {e}");
                }
            }
            Err(_) => tracing::warn!("the notification thread panicked"),
        }
    }
}

/// The headless daemon's notifier: desktop notifications when a session
/// bus exists, the log otherwise.
pub fn default_notifier() -> std::sync::Arc<dyn Notifier> {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty()) {
        std::sync::Arc::new(DesktopNotifier::default())
    } else {
        std::sync::Arc::new(LogNotifier)
    }
}
