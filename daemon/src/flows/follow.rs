//! Following a login from the daemon's events: the one rule the CLI (over
//! `GET /v1/events`) and the tray (in-process) both use to wait for a
//! login's next step.

use crate::events::Event;
use crate::flows::LoginState;
use crate::wire::LoginResponse;

/// How far a state is along a login: input, then the browser or a device
/// code, then the end. A login never moves back.
fn rank(state: &LoginState) -> u8 {
    match state {
        LoginState::NeedsInput => 0,
        LoginState::Authorizing { .. } | LoginState::DeviceCode { .. } => 1,
        LoginState::Completed | LoginState::Failed { .. } => 2,
    }
}

/// The step `event` brings login `id` to, when it is news to a follower
/// that has seen `seen`: a later state, or the same kind of state with new
/// content (a fresh launch, another device code). Events of other logins,
/// repeats and stale states left in a stream are not.
pub fn next_step<'a>(event: &'a Event, id: &str, seen: &LoginState) -> Option<&'a LoginResponse> {
    let Event::Login { login } = event else {
        return None;
    };
    if login.id != id || seen.is_final() {
        return None;
    }
    let news = rank(&login.state) > rank(seen)
        || (rank(&login.state) == rank(seen) && login.state != *seen);
    news.then_some(login.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Flow;

    fn login(id: &str, state: LoginState) -> Event {
        Event::Login {
            login: Box::new(LoginResponse {
                id: id.into(),
                provider: "p".into(),
                connection: "default".into(),
                flow: Flow::Pkce,
                state,
                fields: vec![],
                open_url: None,
                launch_file: None,
                callback_url: None,
                docs_url: None,
            }),
        }
    }

    #[test]
    fn only_later_states_of_the_same_login_are_news() {
        let authorizing = |url: &str| LoginState::Authorizing { url: url.into() };
        let seen = authorizing("a");
        assert!(next_step(&login("x", LoginState::Completed), "x", &seen).is_some());
        assert!(next_step(&login("y", LoginState::Completed), "x", &seen).is_none());
        assert!(
            next_step(&login("x", LoginState::NeedsInput), "x", &seen).is_none(),
            "stale"
        );
        assert!(
            next_step(&login("x", authorizing("a")), "x", &seen).is_none(),
            "repeat"
        );
        assert!(
            next_step(&login("x", authorizing("b")), "x", &seen).is_some(),
            "a new launch"
        );
        let other = Event::RunEnded {
            id: "x".into(),
            exit: None,
        };
        assert!(next_step(&other, "x", &seen).is_none());
        assert!(next_step(
            &login("x", LoginState::Completed),
            "x",
            &LoginState::Completed
        )
        .is_none());
    }
}
