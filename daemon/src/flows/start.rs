//! A login through the API: begin it, report it, take its input (and
//! store an API key), cancel it. The OAuth steps are in `login.rs`.

use crate::audit::AuditEvent;
use crate::error::{Error, Result};
use crate::flows::Logins;
use crate::flows::{api_key, LoginOptions, LoginSession, LoginState, NewLogin};
use crate::names::Existing;
use crate::names::{ConnectionName, ProfileName, ProviderName};
use crate::prompt::{PromptOutcome, PromptRequest};
use crate::providers::{AuthType, Flow};
use crate::secret::Secret;
use crate::vault::store::{new_record, ConnectionSecrets};
use crate::wire::*;
use std::collections::BTreeMap;
use std::time::Duration;

impl Logins {
    /// Starts a login. Returns the session and, when the input is to come
    /// through a prompter, where it was presented.
    pub async fn begin_login(
        &self,
        profile: &ProfileName,
        req: LoginRequest,
    ) -> Result<LoginResponse> {
        let (def, _) = self.catalogue.get(req.provider.as_str())?;
        let connection = req
            .connection
            .clone()
            .unwrap_or_else(ConnectionName::default_name);
        let flow = req.flow.unwrap_or(def.flow);
        if flow.auth_type() != def.auth_type {
            return Err(Error::FlowUnavailable {
                provider: def.name.clone(),
                flow: flow.as_str().into(),
                reason: format!("{} uses {}", def.display_name, def.auth_type.as_str()),
            });
        }
        let store = self.stores.get(profile).await?;
        if !req.force
            && store
                .get_connection(&req.provider, &connection)
                .await?
                .is_some()
        {
            return Err(Error::AlreadyConnected {
                provider: def.name.clone(),
                connection: connection.to_string(),
            });
        }
        let options = LoginOptions {
            scopes: req.scopes.clone().filter(|s| !s.is_empty()),
            base_url: req.base_url.clone(),
            client_id: req.client_id.clone(),
        };
        if let Some(scopes) = &options.scopes {
            if scopes.iter().any(|s| {
                s.is_empty()
                    || s.len() > 200
                    || s.chars().any(|c| c.is_whitespace() || c.is_control())
            }) {
                return Err(Error::InvalidInput(
                    "scopes must be non-empty and contain no spaces".into(),
                ));
            }
        }
        let fields = match flow {
            Flow::ApiKey => api_key::fields(&def),
            Flow::DcrPkce => Vec::new(),
            Flow::Pkce | Flow::DeviceCode => {
                let pname = ProviderName::parse(&def.name)?;
                match (&options.client_id, store.get_client(&pname).await?) {
                    (Some(_), _) => crate::flows::login::client_fields(&def, true),
                    (None, Some(_)) => Vec::new(),
                    (None, None) => crate::flows::login::client_fields(&def, false),
                }
            }
        };
        let with_bridge = req.mode == InputMode::Prompter && !fields.is_empty();
        let session = self.registry.create(NewLogin {
            profile: profile.clone(),
            provider: def.clone(),
            connection: connection.clone(),
            force: req.force,
            flow,
            fields,
            with_bridge,
            options,
        });
        if flow != Flow::ApiKey && (session.fields.is_empty() || !req.inputs.is_empty()) {
            if let Err(e) = self.begin_oauth(&session, &req.inputs).await {
                self.registry.remove(&session.id);
                return Err(e);
            }
            return Ok(self.login_response(&session, None));
        }
        if !req.inputs.is_empty() {
            self.submit_login_input(&session.id, &req.inputs).await?;
            return Ok(self.login_response(&session, None));
        }
        let mut open_url = None;
        if let Some(bridge) = &session.bridge {
            let page = format!("{}/bridge/{}", self.base_url(), bridge.id);
            let request = PromptRequest {
                login_id: session.id.clone(),
                provider: def.name.clone(),
                display_name: def.display_name.clone(),
                connection: connection.to_string(),
                fields: session.fields.clone(),
                docs_url: def.docs_url.clone(),
                callback_url: (def.auth_type == AuthType::OAuth2).then(|| self.callback_url()),
                bridge_url: page.clone(),
            };
            if let PromptOutcome::OpenUrl(url) = self.prompter.present(&request) {
                open_url =
                    Some(self.launch(&session, url, crate::flows::launch::Binding::Cookie)?);
            }
        }
        Ok(self.login_response(&session, open_url))
    }

    pub(crate) fn login_response(
        &self,
        session: &LoginSession,
        open_url: Option<String>,
    ) -> LoginResponse {
        session.view(&self.callback_url(), open_url)
    }

    /// The state of a login, waiting up to `wait` for it to differ from `after`.
    pub async fn login_status(
        &self,
        id: &str,
        after: &str,
        wait: Duration,
    ) -> Result<LoginResponse> {
        let session = self.registry.get(id)?;
        session.wait(after, wait).await;
        Ok(self.login_response(&session, None))
    }

    /// Cancels a login that is still waiting.
    pub fn cancel_login(&self, id: &str) -> Result<()> {
        let session = self.registry.get(id)?;
        session.finish(LoginState::Failed {
            error: "login_cancelled".into(),
            message: Error::LoginCancelled.to_string(),
        });
        self.registry.remove(id);
        Ok(())
    }

    /// Completes a login with the person's input. A value that fails its
    /// check leaves the session waiting, so the person can try again.
    pub async fn submit_login_input(
        &self,
        id: &str,
        values: &BTreeMap<String, Secret>,
    ) -> Result<LoginState> {
        let session = self.registry.get(id)?;
        let _guard = session.completing.lock().await;
        if session.state() != LoginState::NeedsInput {
            return Err(Error::LoginNotFound);
        }
        if session.flow != Flow::ApiKey {
            if let Err(e) = self.begin_oauth(&session, values).await {
                if !matches!(e, Error::InvalidInput(_)) {
                    session.finish(LoginState::failed(&e));
                }
                return Err(e);
            }
            return Ok(session.state());
        }
        let def = session.provider.clone();
        let audit = || {
            AuditEvent::new("login").about(
                session.profile.as_str(),
                &def.name,
                Some(session.connection.as_str()),
            )
        };
        let key = match api_key::check_key(&def, values) {
            Ok(k) => k,
            Err(e) => {
                self.audit.record(audit().failed(e.to_string()));
                return Err(e);
            }
        };
        let pname = ProviderName::parse(&def.name)?;
        let record = new_record(
            pname,
            session.connection.clone(),
            AuthType::ApiKey,
            ConnectionSecrets {
                api_key: Some(key),
                ..Default::default()
            },
        );
        let store = self.stores.get(&session.profile).await?;
        let old = store
            .get_connection(&record.meta.provider, &record.meta.connection)
            .await?
            .map(|r| r.meta.status);
        if let Err(e) = store
            .put_connection(&record, Existing::replace_if(session.force))
            .await
        {
            self.audit.record(audit().failed(e.to_string()));
            session.finish(LoginState::Failed {
                error: e.code().into(),
                message: e.to_string(),
            });
            return Err(e);
        }
        self.audit
            .record(audit().detail(format!("flow {}", session.flow.as_str())));
        self.events.connection_status(
            &session.profile,
            &def.name,
            session.connection.as_str(),
            old,
            Some(record.meta.status),
        );
        session.finish(LoginState::Completed);
        Ok(session.state())
    }
}
