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
        tracing::warn!(provider = %n.provider, connection = %n.connection, "{}: {}", n.title, n.body);
    }
}
