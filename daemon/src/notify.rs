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

/// The desktop notification for `n`: the daemon and the tray show the same
/// (the tray adds its Reconnect action).
pub fn desktop(n: &Notification) -> notify_rust::Notification {
    let mut d = notify_rust::Notification::new();
    d.appname("Authsome")
        .summary(&n.title)
        .body(&n.body)
        .urgency(match n.kind {
            NotificationKind::NeedsAttention => notify_rust::Urgency::Critical,
            NotificationKind::Recovered => notify_rust::Urgency::Normal,
        });
    d
}

/// Native desktop notifications over the session bus (notify-rust). Shown
/// from a thread of their own, so a slow or stuck bus never holds up the
/// refresh that raised one; a failure is logged once.
#[derive(Debug, Default)]
pub struct DesktopNotifier {
    failed_once: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Notifier for DesktopNotifier {
    fn notify(&self, n: &Notification) {
        LogNotifier.notify(n);
        let (shown, failed_once) = (desktop(n), self.failed_once.clone());
        std::thread::spawn(move || {
            if let Err(e) = shown.show() {
                if !failed_once.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    tracing::warn!("desktop notifications unavailable: {e}");
                }
            }
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts a bus that lets a client in and then never answers a call
    /// (the client waits for its reply timeout, 25 s), and points
    /// `DBUS_SESSION_BUS_ADDRESS` at it.
    fn stuck_bus() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bus");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            use std::io::{BufRead, Write};
            let mut held = Vec::new();
            for conn in listener.incoming().flatten() {
                let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
                let mut writer = conn;
                let mut line = Vec::new();
                while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                    let text = String::from_utf8_lossy(&line).to_string();
                    line.clear();
                    if text.contains("AUTH") {
                        let _ = writer.write_all(b"OK 0123456789abcdef0123456789abcdef\r\n");
                    } else if text.contains("NEGOTIATE_UNIX_FD") {
                        let _ = writer.write_all(b"AGREE_UNIX_FD\r\n");
                    } else if text.contains("BEGIN") {
                        break;
                    }
                }
                held.push((reader, writer));
            }
        });
        std::env::set_var(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}", path.display()),
        );
        dir
    }

    #[test]
    fn a_stuck_session_bus_does_not_hold_up_the_caller() {
        let _dir = stuck_bus();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            DesktopNotifier::default().notify(&Notification {
                kind: NotificationKind::NeedsAttention,
                provider: "p".into(),
                connection: "default".into(),
                title: "t".into(),
                body: "b".into(),
            });
            let _ = tx.send(());
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_secs(10)).is_ok(),
            "notify waited for the bus"
        );
    }
}
