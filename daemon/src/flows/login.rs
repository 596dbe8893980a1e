//! OAuth logins end to end: the client (entered, stored, or registered by
//! DCR), the authorization request (browser or device code), the callback,
//! the code exchange, and storing the tokens.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::audit::AuditEvent;
use crate::error::{Error, Result};
use crate::flows::forms::{Callback, CallbackOutcome};
use crate::flows::launch::{Binding, Cookies, Launch};
use crate::flows::oauth::{check_base_url, Endpoints, TokenSet};
use crate::flows::token::{token_request, Grant};
use crate::flows::Logins;
use crate::flows::{dcr, device_code, pkce, LoginSession, LoginState, OAuthLogin, StateMatch};
use crate::names::Existing;
use crate::names::ProviderName;
use crate::prompt::PromptField;
use crate::providers::{AuthType, Flow, OAuthSpec, ProviderDef};
use crate::secret::Secret;
use crate::vault::store::{new_record, ConnectionSecrets};
use crate::vault::ClientRecord;

/// Fields asked for when the provider's client credentials are unknown.
pub fn client_fields(def: &ProviderDef, have_client_id: bool) -> Vec<PromptField> {
    let mut fields = Vec::new();
    if !have_client_id {
        fields.push(PromptField {
            name: "client_id".into(),
            label: format!("{} OAuth client ID", def.display_name),
            secret: false,
            optional: false,
            pattern: None,
            hint: None,
        });
    }
    fields.push(PromptField {
        name: "client_secret".into(),
        label: format!("{} OAuth client secret", def.display_name),
        secret: true,
        optional: true,
        pattern: None,
        hint: Some("Leave empty for a public client.".into()),
    });
    fields
}

fn clean_value(v: &str, what: &str) -> Result<String> {
    let v = v.trim();
    if v.len() > 4096 || v.chars().any(char::is_control) {
        return Err(Error::InvalidInput(format!(
            "the {what} contains control characters or is too long"
        )));
    }
    Ok(v.to_string())
}

fn fail(session: &LoginSession, logins: &Logins, e: &Error) {
    logins.audit.record(
        AuditEvent::new("login_failed")
            .about(
                session.profile.as_str(),
                &session.provider.name,
                Some(session.connection.as_str()),
            )
            .failed(e.to_string()),
    );
    session.finish(LoginState::failed(e));
}

impl Logins {
    fn base_url_for(
        &self,
        session: &LoginSession,
        spec: &OAuthSpec,
        stored: Option<&ClientRecord>,
    ) -> Result<Option<String>> {
        if let Some(b) = &session.options.base_url {
            return check_base_url(b).map(Some);
        }
        Ok(stored
            .and_then(|c| c.base_url.clone())
            .or_else(|| spec.base_url.clone()))
    }

    /// Begins an OAuth login: finds or asks for the client, then starts the
    /// authorization. Leaves the session waiting for input, the browser, or
    /// the device code.
    pub(crate) async fn begin_oauth(
        &self,
        session: &Arc<LoginSession>,
        inputs: &BTreeMap<String, Secret>,
    ) -> Result<()> {
        let def = session.provider.clone();
        let spec = crate::flows::oauth::spec(&def)?;
        match session.flow {
            Flow::DeviceCode
                if !spec.supports_device_code || spec.device_authorization_url.is_none() =>
            {
                return Err(Error::FlowUnavailable {
                    provider: def.name.clone(),
                    flow: "device_code".into(),
                    reason: format!("{} does not offer the device code flow", def.display_name),
                })
            }
            Flow::DcrPkce if !spec.supports_dcr => {
                return Err(Error::FlowUnavailable {
                    provider: def.name.clone(),
                    flow: "dcr_pkce".into(),
                    reason: format!(
                        "{} does not offer dynamic client registration",
                        def.display_name
                    ),
                })
            }
            _ => {}
        }
        let store = self.stores.get(&session.profile).await?;
        let pname = ProviderName::parse(&def.name)?;
        let stored = store.get_client(&pname).await?;
        let base_url = self.base_url_for(session, spec, stored.as_ref())?;

        let client = if session.flow == Flow::DcrPkce {
            match stored.filter(|c| c.registered && c.base_url == base_url) {
                Some(c) => c,
                None => {
                    let c = self
                        .register_client(session, spec, base_url.as_deref())
                        .await?;
                    store.put_client(&c).await?;
                    c
                }
            }
        } else {
            let given_id = session
                .options
                .client_id
                .clone()
                .or_else(|| inputs.get("client_id").map(|s| s.expose().to_string()));
            match (given_id, stored) {
                // A client ID on the command line or in the form: the secret comes with it (empty for public clients).
                (Some(id), _) => {
                    let Some(secret) = inputs.get("client_secret") else {
                        return Ok(());
                    };
                    let secret = clean_value(secret.expose(), "client secret")?;
                    let c = ClientRecord {
                        provider: pname.clone(),
                        client_id: clean_value(&id, "client ID")?,
                        client_secret: (!secret.is_empty()).then(|| Secret::new(secret)),
                        base_url: base_url.clone(),
                        registered: false,
                    };
                    if c.client_id.is_empty() {
                        return Err(Error::InvalidInput("the client ID is empty".into()));
                    }
                    store.put_client(&c).await?;
                    c
                }
                (None, Some(c)) => c,
                (None, None) => return Ok(()), // waits for client_id and client_secret
            }
        };
        self.start_authorization(session, spec, client, base_url)
            .await
    }

    async fn register_client(
        &self,
        session: &LoginSession,
        spec: &OAuthSpec,
        base_url: Option<&str>,
    ) -> Result<ClientRecord> {
        let endpoints = Endpoints::from_spec(spec, base_url)?;
        let registration = match endpoints.registration_endpoint.clone() {
            Some(r) => r,
            None => {
                let issuer_src = endpoints
                    .authorization_url
                    .clone()
                    .unwrap_or_else(|| endpoints.token_url.clone());
                let issuer = url::Url::parse(&issuer_src)
                    .map(|u| u.origin().ascii_serialization())
                    .map_err(|e| Error::InvalidProvider(e.to_string()))?;
                let meta = dcr::discover(&self.http, &issuer, spec.resource.as_deref()).await?;
                meta.registration_endpoint
                    .ok_or_else(|| Error::FlowUnavailable {
                        provider: session.provider.name.clone(),
                        flow: "dcr_pkce".into(),
                        reason: "the authorization server offers no registration endpoint".into(),
                    })?
            }
        };
        let scopes = session
            .options
            .scopes
            .clone()
            .unwrap_or_else(|| spec.scopes.clone());
        let reg = dcr::register(&self.http, &registration, &self.callback_url(), &scopes).await?;
        tracing::info!(provider = %session.provider.name, "registered an OAuth client");
        Ok(ClientRecord {
            provider: ProviderName::parse(&session.provider.name)?,
            client_id: reg.client_id,
            client_secret: reg.client_secret,
            base_url: base_url.map(str::to_string),
            registered: true,
        })
    }

    async fn start_authorization(
        &self,
        session: &Arc<LoginSession>,
        spec: &OAuthSpec,
        client: ClientRecord,
        base_url: Option<String>,
    ) -> Result<()> {
        let endpoints = Endpoints::from_spec(spec, base_url.as_deref())?;
        let scopes = session
            .options
            .scopes
            .clone()
            .unwrap_or_else(|| spec.scopes.clone());
        let mut login = OAuthLogin {
            client,
            endpoints,
            scopes,
            base_url,
            resource: spec.resource.clone(),
            state: None,
            pkce: None,
        };
        match session.flow {
            Flow::DeviceCode => {
                let url = login
                    .endpoints
                    .device_authorization_url
                    .clone()
                    .expect("checked in begin_oauth");
                let device = device_code::authorize(
                    &self.http,
                    &url,
                    &login.endpoints.token_url,
                    &login.client,
                    spec.client_auth,
                    &login.scopes,
                    login.resource.as_deref(),
                )
                .await
                .map_err(|e| Error::DeviceCode(e.reason()))?;
                session.extend_ttl(Duration::from_secs(device.expires_in as u64 + 30));
                session.set_oauth(login.clone());
                // The complete URI carries the user code: the browser gets it
                // through a launch file, never on its command line.
                let page = device
                    .verification_uri_complete
                    .clone()
                    .unwrap_or_else(|| device.verification_uri.clone());
                self.launch(session, page, Binding::None)?;
                session.set(LoginState::DeviceCode {
                    user_code: device.user_code.clone(),
                    verification_uri: device.verification_uri.clone(),
                    verification_uri_complete: device.verification_uri_complete.clone(),
                    expires_in: device.expires_in,
                });
                let this = self.clone();
                let session = session.clone();
                let (client_auth, format) = (spec.client_auth, spec.device_token_format);
                tokio::spawn(async move {
                    // Polling stops as soon as the login ends any other way
                    // (cancelled, expired, the daemon's sweep).
                    let result = tokio::select! {
                        r = device_code::poll(
                            &this.http,
                            &login.endpoints.token_url,
                            &login.client,
                            client_auth,
                            &device,
                            format,
                        ) => r,
                        _ = session.ended() => return,
                    };
                    if session.is_finished() {
                        return;
                    }
                    match result {
                        Ok(tokens) => {
                            if let Err(e) = this.complete_oauth(&session, &login, tokens).await {
                                fail(&session, &this, &e);
                            }
                        }
                        Err(f) => {
                            let e = match f {
                                device_code::PollFailure::Denied => Error::AuthorizationDenied { code: "access_denied".into(), description: None },
                                device_code::PollFailure::Expired => Error::DeviceCode(
                                    "the code expired before it was approved (expired_token); run the login again".into(),
                                ),
                                device_code::PollFailure::Refused(code) => Error::TokenExchange { code },
                            };
                            fail(&session, &this, &e);
                        }
                    }
                });
            }
            Flow::Pkce | Flow::DcrPkce => {
                let endpoint = login.endpoints.authorization_url.clone().ok_or_else(|| {
                    Error::InvalidProvider(format!(
                        "{} has no authorization_url",
                        session.provider.name
                    ))
                })?;
                let p = pkce::Pkce::generate();
                let (url, state) = pkce::authorize_url(&pkce::AuthorizeParams {
                    endpoint: &endpoint,
                    client_id: &login.client.client_id,
                    redirect_uri: &self.callback_url(),
                    scopes: &login.scopes,
                    pkce: &p,
                    resource: login.resource.as_deref(),
                    extra: &spec.authorize_params,
                })?;
                login.state = Some(state);
                login.pkce = Some(p);
                session.set_oauth(login);
                let url = self.launch(session, url, Binding::Cookie)?;
                session.set(LoginState::Authorizing { url });
            }
            Flow::ApiKey => return Err(Error::Internal("api_key flow in an OAuth login".into())),
        }
        Ok(())
    }

    /// Gives `session` a new way in from the browser: a launch file that
    /// leads to a one-time URL, which redirects to `target` (and binds the
    /// browser to the login when `bind`). Returns the launch URL.
    pub(crate) fn launch(
        &self,
        session: &LoginSession,
        target: String,
        binding: Binding,
    ) -> Result<String> {
        let launch = Launch::create(&self.home.launch_dir(), &self.base_url(), target, binding)?;
        let url = launch.url(&self.base_url());
        session.set_launch(launch);
        Ok(url)
    }

    /// A fresh launch file for the verification page of a device-code login
    /// (each launch works once; the person may open the page again).
    pub fn relaunch_device_page(&self, id: &str) -> Result<std::path::PathBuf> {
        let session = self.registry.get(id)?;
        let LoginState::DeviceCode {
            verification_uri,
            verification_uri_complete,
            ..
        } = session.state()
        else {
            return Err(Error::LoginNotFound);
        };
        self.launch(
            &session,
            verification_uri_complete.unwrap_or(verification_uri),
            Binding::None,
        )?;
        session.launch_file().ok_or(Error::LoginNotFound)
    }

    /// Claims a launch token (`GET /bridge/launch/{token}`): where to send
    /// the browser, and the cookie that binds it, if any.
    pub fn claim_launch(&self, token: &str) -> Option<(String, Option<String>)> {
        let (session, launch) = self.registry.claim_launch(token)?;
        let cookie = (launch.binding == Binding::Cookie).then(|| {
            session
                .browser
                .set_cookie(session.remaining().as_secs().max(1))
        });
        Some((launch.target.clone(), cookie))
    }

    /// A callback that could not even be parsed (repeated or oversized
    /// parameters): like one with an unknown state, it ends the logins
    /// waiting for a callback in this browser, so nobody waits for a
    /// timeout. Logins bound to other browsers are left alone.
    pub fn reject_callback(&self, e: &Error, cookies: &Cookies) {
        for s in self.registry.authorizing_in(cookies) {
            fail(&s, self, e);
        }
    }

    /// Handles `GET /auth/callback/oauth`: checks that the browser is the
    /// one the login was launched in, checks `state`, exchanges the code,
    /// stores the tokens. Returns the completed login.
    pub async fn handle_callback(
        &self,
        callback: Callback,
        cookies: &Cookies,
    ) -> Result<Arc<LoginSession>> {
        let session = match self.registry.take_state(&callback.state, cookies) {
            StateMatch::Pending(s) => s,
            StateMatch::Used => return Err(Error::CallbackReplayed),
            StateMatch::Expired(s) => {
                let e = Error::LoginTimedOut {
                    provider: s.provider.name.clone(),
                };
                return Err(e);
            }
            StateMatch::OtherBrowser => return Err(Error::CallbackUnbound),
            StateMatch::Unknown => {
                // A stale tab: the logins waiting in this browser learn of
                // it, as the troubleshooting guide describes. A forged
                // request from elsewhere carries no binding and ends nothing.
                for s in self.registry.authorizing_in(cookies) {
                    fail(&s, self, &Error::StateMismatch);
                }
                return Err(Error::StateMismatch);
            }
        };
        let code = match callback.outcome {
            CallbackOutcome::Code(code) => code,
            CallbackOutcome::Denied { code, description } => {
                let e = Error::AuthorizationDenied { code, description };
                fail(&session, self, &e);
                return Err(e);
            }
            CallbackOutcome::Missing => {
                let e = Error::InvalidInput("the callback has neither code nor error".into());
                fail(&session, self, &e);
                return Err(e);
            }
        };
        let login = session
            .oauth()
            .ok_or_else(|| Error::Internal("login without OAuth state".into()))?;
        let spec = crate::flows::oauth::spec(&session.provider)?;
        if let Err(e) = check_issuer(spec, callback.iss.as_deref()) {
            fail(&session, self, &e);
            return Err(e);
        }
        let mut extra = Vec::new();
        if let Some(r) = &login.resource {
            extra.push(("resource", r.clone()));
        }
        let redirect_uri = self.callback_url();
        let tokens = match token_request(
            &self.http,
            &login.endpoints.token_url,
            &login.client,
            spec.client_auth,
            Grant::Code {
                code: code.expose(),
                verifier: login.pkce.as_ref().map(|p| &p.verifier),
                redirect_uri: &redirect_uri,
            },
            &extra,
        )
        .await
        {
            Ok(t) => t,
            Err(e) => {
                let err = Error::TokenExchange { code: e.reason() };
                fail(&session, self, &err);
                return Err(err);
            }
        };
        if let Err(e) = self.complete_oauth(&session, &login, tokens).await {
            fail(&session, self, &e);
            return Err(e);
        }
        Ok(session)
    }

    async fn complete_oauth(
        &self,
        session: &LoginSession,
        login: &OAuthLogin,
        tokens: TokenSet,
    ) -> Result<()> {
        let now = Utc::now();
        let mut record = new_record(
            ProviderName::parse(&session.provider.name)?,
            session.connection.clone(),
            AuthType::OAuth2,
            ConnectionSecrets {
                access_token: Some(tokens.access_token.clone()),
                refresh_token: tokens.refresh_token.clone(),
                id_token: tokens.id_token.clone(),
                api_key: None,
            },
        );
        record.meta.scopes = match &tokens.scope {
            Some(s) => crate::flows::oauth::split_scopes(s),
            None => login.scopes.clone(),
        };
        record.meta.base_url = login.base_url.clone();
        record.meta.expires_at = tokens.expires_at(now);
        let store = self.stores.get(&session.profile).await?;
        let old = store
            .get_connection(&record.meta.provider, &record.meta.connection)
            .await?
            .map(|r| r.meta.status);
        store
            .put_connection(&record, Existing::replace_if(session.force))
            .await?;
        self.events.connection_status(
            &session.profile,
            &session.provider.name,
            session.connection.as_str(),
            old,
            Some(record.meta.status),
        );
        self.audit.record(
            AuditEvent::new("login")
                .about(
                    session.profile.as_str(),
                    &session.provider.name,
                    Some(session.connection.as_str()),
                )
                .detail(format!("flow {}", session.flow.as_str())),
        );
        session.finish(LoginState::Completed);
        Ok(())
    }
}

/// RFC 9207: an authorization response's `iss` must name the issuer the
/// provider records, and must be there when the server says it sends one.
/// A code from another authorization server (a mix-up) is never redeemed.
fn check_issuer(spec: &OAuthSpec, iss: Option<&str>) -> Result<()> {
    // RFC 9207 §2.4: compared as strings, exactly.
    match (iss, spec.issuer.as_deref()) {
        (Some(got), Some(expected)) if got != expected => Err(Error::IssuerMismatch(format!(
            "the authorization response came from issuer {got:?}, not {expected:?} (RFC 9207); \
             the code was not redeemed"
        ))),
        (None, Some(expected)) if spec.iss_parameter_supported => {
            Err(Error::IssuerMismatch(format!(
                "the authorization response carries no iss, though {expected} says it sends \
                 one (RFC 9207); the code was not redeemed"
            )))
        }
        _ => Ok(()),
    }
}

/// Revokes a token at the provider (RFC 7009). Failures become warnings.
pub(crate) async fn revoke_at_provider(
    http: &reqwest::Client,
    def: &ProviderDef,
    client: Option<&ClientRecord>,
    base_url: Option<&str>,
    tokens: &[(&str, &Secret)],
) -> Vec<String> {
    let mut warnings = Vec::new();
    let Some(spec) = &def.oauth else {
        return warnings;
    };
    let Some(template) = &spec.revocation_url else {
        return warnings;
    };
    let Some(client) = client else {
        warnings.push(
            "no client credentials stored, so the tokens were not revoked at the provider".into(),
        );
        return warnings;
    };
    let url = match crate::flows::oauth::fill(template, base_url) {
        Ok(u) => u,
        Err(e) => {
            warnings.push(e.to_string());
            return warnings;
        }
    };
    for (hint, token) in tokens {
        if let Err(e) =
            crate::flows::token::revoke(http, &url, client, spec.client_auth, hint, token).await
        {
            warnings.push(match e {
                crate::flows::oauth::TokenError::Transient(why) => {
                    format!("could not reach the provider to revoke the {hint}: {why}")
                }
                other => format!("{} to revoking the {hint}", other.reason()),
            });
        }
    }
    warnings
}
