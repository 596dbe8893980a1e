//! What happens in the daemon, as typed events: a connection's status
//! changed, a login moved on, a run started or ended. `GET /v1/events`
//! streams them (Server-Sent Events); the tray subscribes in-process. Events
//! carry names and states, never a secret.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::names::ProfileName;
use crate::vault::Status;
use crate::wire::LoginResponse;

/// How many events a slow subscriber may fall behind before it is told it
/// missed some.
const CAPACITY: usize = 1024;

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A connection's status changed. `old: null` is a new connection;
    /// `new: null` a connection that is gone (revoked or removed).
    ConnectionStatus {
        /// Profile.
        profile: String,
        /// Provider.
        provider: String,
        /// Connection.
        connection: String,
        /// The status before.
        old: Option<Status>,
        /// The status now.
        new: Option<Status>,
    },
    /// A login moved on: its state, as `GET /v1/logins/{id}` shows it.
    Login {
        /// The login.
        login: Box<LoginResponse>,
    },
    /// An `authsome run` began.
    RunStarted {
        /// Run id.
        id: String,
        /// Profile.
        profile: String,
        /// The command's program name.
        command: String,
    },
    /// An `authsome run` ended.
    RunEnded {
        /// Run id.
        id: String,
        /// The command's exit code, when known.
        exit: Option<i32>,
    },
    /// A run's request to a provider's host (or through an intercepted
    /// tunnel) was answered: what its `request` audit event records.
    Request {
        /// Run id.
        run: String,
        /// Provider, when the request was for one.
        provider: Option<String>,
        /// Connection.
        connection: Option<String>,
        /// Method, host, path without query, status, bytes, time.
        request: crate::audit::RequestActivity,
    },
    /// A run's request waits for the person (`--ask`): `authsome approve`
    /// or `authsome deny` answers it.
    ApprovalPending {
        /// Run id.
        run: String,
        /// The held request.
        pending: crate::wire::PendingApproval,
    },
    /// No request of the run to the provider waits any more, and nobody
    /// answered (they ran out of time, or their client went away).
    ApprovalWithdrawn {
        /// Run id.
        run: String,
        /// Provider.
        provider: String,
    },
    /// The person decided.
    ApprovalDecided {
        /// Run id.
        run: String,
        /// Provider.
        provider: String,
        /// Allowed, or denied (for the rest of the run).
        allowed: bool,
        /// How far an approval reaches.
        #[serde(default)]
        scope: crate::wire::ApprovalScope,
    },
    /// A provider definition was added or replaced.
    ProviderRegistered {
        /// Provider.
        name: String,
    },
    /// This subscriber fell behind and missed `missed` events; what it shows
    /// may be stale until it reads the current state again.
    Lagged {
        /// Events missed.
        missed: u64,
    },
}

impl Event {
    /// The event's type name, as in the `type` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::ConnectionStatus { .. } => "connection_status",
            Event::Login { .. } => "login",
            Event::RunStarted { .. } => "run_started",
            Event::RunEnded { .. } => "run_ended",
            Event::ProviderRegistered { .. } => "provider_registered",
            Event::ApprovalPending { .. } => "approval_pending",
            Event::ApprovalDecided { .. } => "approval_decided",
            Event::ApprovalWithdrawn { .. } => "approval_withdrawn",
            Event::Request { .. } => "request",
            Event::Lagged { .. } => "lagged",
        }
    }
}

/// The daemon's event hub; cheap to clone.
#[derive(Debug, Clone)]
pub struct Events {
    tx: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(CAPACITY).0,
        }
    }
}

impl Events {
    /// Sends an event to every subscriber (none is fine).
    pub fn send(&self, event: Event) {
        if !matches!(event, Event::Request { .. }) {
            // One line per proxied request would double the proxy's work.
            tracing::debug!(kind = event.kind(), "event");
        }
        let _ = self.tx.send(event);
    }

    /// True when someone listens (the tray, `authsome events`): events that
    /// cost something to build are built only then.
    pub fn has_subscribers(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Tells subscribers a connection's status changed (`None`: no
    /// connection); nothing is sent when it did not.
    pub fn connection_status(
        &self,
        profile: &ProfileName,
        provider: &str,
        connection: &str,
        old: Option<Status>,
        new: Option<Status>,
    ) {
        if old != new {
            self.send(Event::ConnectionStatus {
                profile: profile.to_string(),
                provider: provider.to_string(),
                connection: connection.to_string(),
                old,
                new,
            });
        }
    }

    /// A new subscription: every event sent from now on.
    pub fn subscribe(&self) -> Subscription {
        Subscription {
            rx: self.tx.subscribe(),
        }
    }
}

/// One subscriber's view of the events.
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<Event>,
}

impl Subscription {
    /// The next event; [`Event::Lagged`] when this subscriber fell behind;
    /// `None` when the daemon is gone.
    pub async fn next(&mut self) -> Option<Event> {
        match self.rx.recv().await {
            Ok(e) => Some(e),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(Event::Lagged { missed }),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_get_events_sent_after_they_subscribed_and_hear_when_they_lag() {
        let events = Events::default();
        events.send(Event::RunEnded {
            id: "before".into(),
            exit: None,
        });
        let mut sub = events.subscribe();
        let ended = |id: &str| Event::RunEnded {
            id: id.into(),
            exit: Some(0),
        };
        events.send(ended("a"));
        assert_eq!(sub.next().await, Some(ended("a")));
        for i in 0..CAPACITY + 5 {
            events.send(ended(&i.to_string()));
        }
        assert_eq!(sub.next().await, Some(Event::Lagged { missed: 5 }));
        assert_eq!(sub.next().await, Some(ended("5")));
    }

    #[test]
    fn events_serialize_with_their_type() {
        let e = Event::ConnectionStatus {
            profile: "default".into(),
            provider: "github".into(),
            connection: "default".into(),
            old: Some(Status::Connected),
            new: Some(Status::Expired),
        };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["type"], "connection_status");
        assert_eq!(json["old"], "connected");
        assert_eq!(json["new"], "expired");
        assert_eq!(serde_json::from_value::<Event>(json).unwrap(), e);
    }
}
