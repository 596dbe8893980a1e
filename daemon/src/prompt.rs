//! How the daemon asks a person for input (API keys, client credentials).
//! A headless daemon offers a one-time bridge page in the browser; the tray
//! app opens a native window. The CLI on a terminal asks itself and sends the
//! values over the API, so it never needs a prompter.

use std::fmt::Debug;

use serde::{Deserialize, Serialize};

/// One value to ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PromptField {
    /// Field name (`api_key`, `client_id`, `client_secret`, `base_url`).
    pub name: String,
    /// Label shown to the person.
    pub label: String,
    /// Masked input; never shown back.
    pub secret: bool,
    /// May be left empty.
    #[serde(default)]
    pub optional: bool,
    /// Regular expression the value must match, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Shown when the value does not match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// A request for input, as a prompter receives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PromptRequest {
    /// The login session waiting for the input.
    pub login_id: String,
    /// Provider name.
    pub provider: String,
    /// Provider display name.
    pub display_name: String,
    /// Connection name.
    pub connection: String,
    /// What to ask for.
    pub fields: Vec<PromptField>,
    /// Where the person gets the values.
    pub docs_url: Option<String>,
    /// The OAuth callback URL to register, for OAuth clients.
    pub callback_url: Option<String>,
    /// The one-time bridge page serving this form.
    pub bridge_url: String,
}

/// What a prompter did with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptOutcome {
    /// The caller (the CLI) should open this URL in a browser and print it.
    OpenUrl(String),
    /// The prompter showed the form itself (a tray window).
    Presented,
}

/// Asks a person for input on the daemon's behalf.
pub trait Prompter: Send + Sync + Debug {
    /// Presents the request; must not block waiting for the answer.
    fn present(&self, request: &PromptRequest) -> PromptOutcome;
}

/// The headless prompter: the bridge page, opened by the CLI.
#[derive(Debug, Default)]
pub struct BridgePrompter;

impl Prompter for BridgePrompter {
    fn present(&self, request: &PromptRequest) -> PromptOutcome {
        PromptOutcome::OpenUrl(request.bridge_url.clone())
    }
}
