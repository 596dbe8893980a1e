//! The tray's prompter: the daemon's requests for input open a native
//! window with the form instead of a page in the browser.

use authsome_daemon::prompt::{PromptOutcome, PromptRequest, Prompter};
use tauri::{AppHandle, Manager, Runtime};

use crate::{windows, TrayState};

/// Opens prompt windows.
pub struct TrayPrompter<R: Runtime> {
    app: AppHandle<R>,
}

impl<R: Runtime> TrayPrompter<R> {
    /// A prompter for the app.
    pub fn new(app: AppHandle<R>) -> Self {
        TrayPrompter { app }
    }
}

impl<R: Runtime> std::fmt::Debug for TrayPrompter<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrayPrompter")
    }
}

impl<R: Runtime> Prompter for TrayPrompter<R> {
    fn present(&self, request: &PromptRequest) -> PromptOutcome {
        self.app.state::<TrayState>().add_prompt(request.clone());
        match windows::open_prompt(&self.app, &request.login_id, &request.display_name) {
            Ok(()) => PromptOutcome::Presented,
            Err(e) => {
                // Without a window the one-time bridge page still works.
                tracing::warn!(
                    "cannot open a prompt window ({e}); falling back to the bridge page"
                );
                PromptOutcome::OpenUrl(request.bridge_url.clone())
            }
        }
    }
}
