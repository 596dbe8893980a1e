//! The providers the daemon knows, through the API: register a custom
//! definition, inspect one with its connections.

use crate::audit::AuditEvent;
use crate::daemon::Daemon;
use crate::error::{Error, Result};
use crate::names::Existing;
use crate::names::{ProfileName, ProviderName};
use crate::providers::{AuthType, ProviderDef};
use crate::vault::store::Reveal;
use crate::wire::*;

impl Daemon {
    /// Validates and stores a custom provider definition.
    pub async fn register(&self, req: RegisterRequest) -> Result<RegisterResponse> {
        let size = serde_json::to_vec(&req.definition)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > crate::providers::MAX_DEFINITION_BYTES {
            return Err(Error::InvalidProvider(format!(
                "definition is {size} bytes; the limit is {}",
                crate::providers::MAX_DEFINITION_BYTES
            )));
        }
        let def: ProviderDef = serde_json::from_value(req.definition)
            .map_err(|e| Error::InvalidProvider(format!("not a valid definition: {e}")))?;
        let name = def.name.clone();
        let replaced = self.provider(&name).is_ok();
        let result = self
            .catalogue()
            .register(def, Existing::replace_if(req.force));
        let event = AuditEvent::new("register").about("-", &name, None);
        match result {
            Ok(warnings) => {
                self.audit(event.detail(if replaced { "replaced" } else { "added" }));
                self.events()
                    .send(crate::events::Event::ProviderRegistered { name: name.clone() });
                Ok(RegisterResponse {
                    name,
                    warnings,
                    replaced,
                })
            }
            Err(e) => {
                self.audit(event.failed(e.to_string()));
                Err(e)
            }
        }
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
            callback_url: (def.auth_type == AuthType::OAuth2).then(|| self.callback_url()),
            connections,
        })
    }
}
