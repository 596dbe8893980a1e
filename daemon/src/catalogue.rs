//! The providers the daemon knows, through the API: register a custom
//! definition.

use crate::audit::AuditEvent;
use std::sync::Arc;

use crate::audit::Audit;
use crate::error::{Error, Result};
use crate::events::Events;
use crate::names::Existing;
use crate::providers::Catalogue;
use crate::providers::ProviderDef;
use crate::wire::*;

/// The providers the daemon knows, as a service: registering a custom
/// definition. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Providers {
    catalogue: Arc<Catalogue>,
    audit: Arc<Audit>,
    events: Events,
}

impl Providers {
    /// The providers of `catalogue`.
    pub fn new(catalogue: Arc<Catalogue>, audit: Arc<Audit>, events: Events) -> Providers {
        Providers {
            catalogue,
            audit,
            events,
        }
    }

    /// The catalogue.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

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
        let replaced = self.catalogue.get(&name).is_ok();
        let result = self
            .catalogue()
            .register(def, Existing::replace_if(req.force));
        let event = AuditEvent::new("register").about("-", &name, None);
        match result {
            Ok(warnings) => {
                self.audit
                    .record(event.detail(if replaced { "replaced" } else { "added" }));
                self.events
                    .send(crate::events::Event::ProviderRegistered { name: name.clone() });
                Ok(RegisterResponse {
                    name,
                    warnings,
                    replaced,
                })
            }
            Err(e) => {
                self.audit.record(event.failed(e.to_string()));
                Err(e)
            }
        }
    }
}
