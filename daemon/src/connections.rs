//! Connections: the stores of the profiles, what `list`, `get`, `export`
//! and `inspect` show, and `revoke` and `remove`.

use crate::audit::AuditEvent;
use std::sync::Arc;

use crate::audit::Audit;
use crate::error::{Error, Result};
use crate::events::Events;
use crate::names::{ConnectionName, ProfileName, ProviderName};
use crate::providers::Catalogue;
use crate::providers::{AuthType, Flow, ProviderDef, ProviderOrigin};
use crate::refresh::Need;
use crate::refresh::Refresher;
use crate::vault::store::{masked_fields, ConnectionRecord, Reveal};
use crate::vault::Stores;
use crate::vault::{Status, Store};
use crate::wire::*;
use std::collections::BTreeMap;

/// Connections as a service: the profiles' stores, what `list`, `get`,
/// `export` and `inspect` show, and `revoke` and `remove`. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Connections {
    stores: Arc<Stores>,
    catalogue: Arc<Catalogue>,
    refresher: Refresher,
    http: reqwest::Client,
    audit: Arc<Audit>,
    events: Events,
    port: u16,
}

/// What [`Connections`] works with.
#[derive(Debug)]
pub struct ConnectionsParts {
    /// The stores.
    pub stores: Arc<Stores>,
    /// The providers.
    pub catalogue: Arc<Catalogue>,
    /// Fresh credentials for `get` and `export`.
    pub refresher: Refresher,
    /// The HTTP client (revocation at the provider).
    pub http: reqwest::Client,
    /// The audit log.
    pub audit: Arc<Audit>,
    /// The event hub.
    pub events: Events,
    /// The daemon's API port (the callback URL `inspect` shows).
    pub port: u16,
}

impl Connections {
    /// Connections over `parts`.
    pub fn new(parts: ConnectionsParts) -> Connections {
        Connections {
            stores: parts.stores,
            catalogue: parts.catalogue,
            refresher: parts.refresher,
            http: parts.http,
            audit: parts.audit,
            events: parts.events,
            port: parts.port,
        }
    }

    /// The store of a profile (see [`Stores::get`]).
    pub async fn store(&self, profile: &ProfileName) -> Result<Store> {
        self.stores.get(profile).await
    }

    /// Creates a profile and its store.
    pub async fn create_profile(&self, profile: &ProfileName) -> Result<()> {
        self.stores.create(profile).await
    }

    /// A provider's definition and its connections in a profile.
    pub async fn inspect(&self, profile: &ProfileName, provider: &str) -> Result<InspectResponse> {
        let (def, origin) = self.provider(provider)?;
        let pname = ProviderName::parse(provider)?;
        let store = self.store(profile).await?;
        let mut connections = Vec::new();
        for m in store
            .list_connections()
            .await?
            .into_iter()
            .filter(|m| m.provider == pname)
        {
            if let Some(rec) = store.get_connection(&pname, &m.connection).await? {
                connections.push(self.view(profile, Some(&def), &rec, Reveal::Masked));
            }
        }
        Ok(InspectResponse {
            definition: def.as_ref().clone(),
            origin,
            client_configured: store.get_client(&pname).await?.is_some(),
            callback_url: (def.auth_type == AuthType::OAuth2)
                .then(|| crate::flows::callback_url(self.port)),
            connections,
        })
    }

    pub(crate) fn provider(&self, name: &str) -> Result<(Arc<ProviderDef>, ProviderOrigin)> {
        self.catalogue.get(name)
    }

    /// Every provider with its connections and state; those with a state first.
    pub async fn list(&self, profile: &ProfileName) -> Result<ListResponse> {
        let store = self.store(profile).await?;
        let mut by_provider: BTreeMap<String, Vec<ConnectionSummary>> = BTreeMap::new();
        for m in store.list_connections().await? {
            by_provider
                .entry(m.provider.to_string())
                .or_default()
                .push(ConnectionSummary {
                    connection: m.connection.to_string(),
                    status: m.status,
                    expires_at: m.expires_at,
                    last_error: m
                        .last_error
                        .clone()
                        .filter(|_| matches!(m.status, Status::Expired | Status::Invalid)),
                });
        }
        let configured = store.configured_providers().await?;
        let mut providers: Vec<ProviderListing> = self
            .catalogue
            .list()
            .into_iter()
            .map(|(def, origin)| {
                let connections = by_provider.remove(&def.name).unwrap_or_default();
                let status = overall_status(
                    &connections,
                    configured.iter().any(|p| p.as_str() == def.name),
                );
                ProviderListing {
                    name: def.name.clone(),
                    display_name: def.display_name.clone(),
                    auth_type: def.auth_type,
                    flow: def.flow,
                    origin,
                    status,
                    connections,
                    mcp_url: def.mcp_url.clone(),
                }
            })
            .collect();
        // Connections whose provider definition is gone still show up.
        for (name, connections) in by_provider {
            let status = overall_status(&connections, false);
            providers.push(ProviderListing {
                display_name: name.clone(),
                name,
                auth_type: AuthType::ApiKey,
                flow: Flow::ApiKey,
                origin: ProviderOrigin::Custom,
                status,
                connections,
                mcp_url: None,
            });
        }
        providers.sort_by(|a, b| {
            (a.status == Status::Available)
                .cmp(&(b.status == Status::Available))
                .then(a.name.cmp(&b.name))
        });
        Ok(ListResponse {
            profile: profile.to_string(),
            providers,
        })
    }

    pub(crate) fn view(
        &self,
        profile: &ProfileName,
        def: Option<&ProviderDef>,
        rec: &ConnectionRecord,
        reveal: Reveal,
    ) -> ConnectionView {
        let m = &rec.meta;
        ConnectionView {
            provider: m.provider.to_string(),
            display_name: def
                .map(|d| d.display_name.clone())
                .unwrap_or_else(|| m.provider.to_string()),
            connection: m.connection.to_string(),
            profile: profile.to_string(),
            status: m.status,
            auth_type: m.auth_type,
            scopes: m.scopes.clone(),
            base_url: m.base_url.clone(),
            account: m.account.clone(),
            expires_at: m.expires_at,
            obtained_at: m.obtained_at,
            last_refresh_at: m.last_refresh_at,
            last_error: m.last_error.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            secrets: masked_fields(&rec.secrets, reveal),
        }
    }

    pub(crate) async fn record(
        &self,
        profile: &ProfileName,
        provider: &str,
        connection: &ConnectionName,
    ) -> Result<ConnectionRecord> {
        let pname = ProviderName::parse(provider)?;
        let store = self.store(profile).await?;
        match store.get_connection(&pname, connection).await? {
            Some(rec) => Ok(rec),
            None => {
                // Say "provider not found" for names nobody knows, "connection not found" otherwise.
                self.provider(provider)?;
                Err(Error::ConnectionNotFound {
                    provider: provider.into(),
                    connection: connection.to_string(),
                })
            }
        }
    }

    /// One connection; secrets shown only with [`Reveal::Secrets`] (audited).
    pub async fn get(
        &self,
        profile: &ProfileName,
        provider: &str,
        connection: &ConnectionName,
        reveal: Reveal,
    ) -> Result<ConnectionView> {
        let rec = self.record(profile, provider, connection).await?;
        // A secret asked for must be a valid one; a look at the state need not.
        let need = match reveal {
            Reveal::Secrets => Need::Valid,
            Reveal::Masked => Need::Display,
        };
        let rec = self.refresher.fresh_record(profile, rec, need).await?;
        let def = self.provider(provider).ok().map(|(d, _)| d);
        if reveal == Reveal::Secrets {
            self.audit.record(
                AuditEvent::new("get")
                    .about(profile.as_str(), provider, Some(connection.as_str()))
                    .detail("secret shown"),
            );
        }
        Ok(self.view(profile, def.as_deref(), &rec, reveal))
    }

    /// A connection's credential after a server refused `rejected` (its
    /// fingerprint): refreshed when that is still the stored token, else
    /// the token that replaced it. Secrets shown, and audited as `get`.
    pub async fn after_rejection(
        &self,
        profile: &ProfileName,
        provider: &str,
        connection: &ConnectionName,
        rejected: &str,
    ) -> Result<ConnectionView> {
        let rec = self.record(profile, provider, connection).await?;
        let rec = if rec.meta.auth_type == AuthType::OAuth2 {
            self.refresher
                .refresh_rejected(profile, &rec.meta.provider, connection, rejected)
                .await?
        } else {
            rec
        };
        let def = self.provider(provider).ok().map(|(d, _)| d);
        self.audit.record(
            AuditEvent::new("get")
                .about(profile.as_str(), provider, Some(connection.as_str()))
                .detail("secret shown (the server refused the one before)"),
        );
        Ok(self.view(profile, def.as_deref(), &rec, Reveal::Secrets))
    }

    /// Environment variables for one provider's connection, or for every
    /// connected provider's default connection with `all`.
    pub async fn export(
        &self,
        profile: &ProfileName,
        provider: Option<&str>,
        connection: &ConnectionName,
    ) -> Result<ExportResponse> {
        let store = self.store(profile).await?;
        let targets: Vec<(String, ConnectionName)> = match provider {
            Some(p) => vec![(p.to_string(), connection.clone())],
            None => store
                .list_connections()
                .await?
                .into_iter()
                .filter(|m| m.connection == *connection && m.status == Status::Connected)
                .map(|m| (m.provider.to_string(), m.connection))
                .collect(),
        };
        let mut vars = Vec::new();
        for (p, c) in targets {
            let rec = self.record(profile, &p, &c).await?;
            let rec = self
                .refresher
                .fresh_record(profile, rec, Need::Valid)
                .await?;
            let Ok((def, _)) = self.provider(&p) else {
                continue;
            };
            for (env, field) in &def.export {
                if let Some(value) = rec.secrets.get(field) {
                    vars.push(ExportVar {
                        name: env.clone(),
                        value: value.expose().to_string(),
                        provider: p.clone(),
                        connection: c.to_string(),
                    });
                }
            }
            self.audit.record(AuditEvent::new("export").about(
                profile.as_str(),
                &p,
                Some(c.as_str()),
            ));
        }
        if provider.is_some() && vars.is_empty() {
            let p = provider.unwrap_or_default();
            return Err(Error::CredentialMissing {
                provider: p.into(),
                connection: connection.to_string(),
            });
        }
        Ok(ExportResponse { vars })
    }

    /// Deletes a connection's credentials and the provider's client
    /// credentials, so the next login collects them again.
    pub async fn revoke(
        &self,
        profile: &ProfileName,
        provider: &str,
        connection: &ConnectionName,
    ) -> Result<RevokeResponse> {
        let pname = ProviderName::parse(provider)?;
        let store = self.store(profile).await?;
        let mut warnings = Vec::new();
        if let (Ok((def, _)), Some(rec)) = (
            self.provider(provider),
            store.get_connection(&pname, connection).await?,
        ) {
            let client = store.get_client(&pname).await?;
            // RFC 7009 §2: the refresh token first, which also ends its access tokens at most servers.
            let mut tokens = Vec::new();
            if let Some(t) = &rec.secrets.refresh_token {
                tokens.push(("refresh_token", t));
            }
            if let Some(t) = &rec.secrets.access_token {
                tokens.push(("access_token", t));
            }
            let base = rec
                .meta
                .base_url
                .clone()
                .or_else(|| client.as_ref().and_then(|c| c.base_url.clone()));
            warnings = crate::flows::login::revoke_at_provider(
                &self.http,
                &def,
                client.as_ref(),
                base.as_deref(),
                &tokens,
            )
            .await;
        }
        let old = store
            .get_connection(&pname, connection)
            .await?
            .map(|r| r.meta.status);
        let (removed_connection, removed_client) = store.revoke_local(&pname, connection).await?;
        if removed_connection {
            self.events
                .connection_status(profile, provider, connection.as_str(), old, None);
        }
        if !removed_connection && !removed_client {
            self.provider(provider)?;
            return Err(Error::ConnectionNotFound {
                provider: provider.into(),
                connection: connection.to_string(),
            });
        }
        self.audit.record(AuditEvent::new("revoke").about(
            profile.as_str(),
            provider,
            Some(connection.as_str()),
        ));
        Ok(RevokeResponse {
            provider: provider.into(),
            connection: connection.to_string(),
            removed_connection,
            removed_client,
            warnings,
        })
    }

    /// Deletes all of a provider's state in the profile; the definition stays.
    pub async fn remove(&self, profile: &ProfileName, provider: &str) -> Result<RemoveResponse> {
        let pname = ProviderName::parse(provider)?;
        let store = self.store(profile).await?;
        let before: Vec<_> = store
            .list_connections()
            .await?
            .into_iter()
            .filter(|m| m.provider == pname)
            .collect();
        let (connections_removed, client_removed) = store.remove_provider_state(&pname).await?;
        for m in before {
            self.events.connection_status(
                profile,
                provider,
                m.connection.as_str(),
                Some(m.status),
                None,
            );
        }
        if connections_removed == 0 && !client_removed {
            self.provider(provider)?;
        }
        self.audit.record(
            AuditEvent::new("remove")
                .about(profile.as_str(), provider, None)
                .detail(format!("{connections_removed} connection(s)")),
        );
        Ok(RemoveResponse {
            provider: provider.into(),
            connections_removed,
            client_removed,
        })
    }
}

fn overall_status(connections: &[ConnectionSummary], configured: bool) -> Status {
    let rank = |s: Status| match s {
        Status::Connected => 4,
        Status::Expired => 3,
        Status::Invalid => 2,
        Status::Configured => 1,
        Status::Available => 0,
    };
    connections
        .iter()
        .map(|c| c.status)
        .max_by_key(|s| rank(*s))
        .unwrap_or(if configured {
            Status::Configured
        } else {
            Status::Available
        })
}
