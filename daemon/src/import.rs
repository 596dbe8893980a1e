//! `POST /v1/import`: API keys a person had in `.env` files or the
//! environment, stored as API-key connections. The CLI finds them; the
//! daemon checks each against the provider's pattern and what is stored.

use crate::audit::AuditEvent;
use crate::error::{Error, Result};
use crate::flows::api_key::check_key;
use crate::names::{ConnectionName, Existing, ProfileName, ProviderName};
use crate::providers::AuthType;
use crate::secret::constant_time_eq;
use crate::services::Services;
use crate::vault::store::{new_record, ConnectionSecrets};
use crate::wire::{ImportOutcome, ImportRequest, ImportResponse, ImportResult};

/// Most keys in one request.
const MAX_KEYS: usize = 500;

/// Imports (or, with `dry_run`, judges) each key; one audit event per key
/// stored.
pub async fn import(
    d: &Services,
    profile: &ProfileName,
    req: ImportRequest,
) -> Result<ImportResponse> {
    if req.keys.len() > MAX_KEYS {
        return Err(Error::InvalidInput(format!(
            "at most {MAX_KEYS} keys in one import"
        )));
    }
    let connection = req.connection.unwrap_or_else(ConnectionName::default_name);
    let store = d.stores().get(profile).await?;
    // Every provider is checked before anything is stored: a bad one
    // further down must not leave half an import behind.
    let mut defs = Vec::with_capacity(req.keys.len());
    for key in &req.keys {
        let (def, _) = d.catalogue().get(&key.provider)?;
        if def.auth_type != AuthType::ApiKey {
            return Err(Error::InvalidInput(format!(
                "{} takes an OAuth login, not an API key",
                def.name
            )));
        }
        defs.push(def);
    }
    let mut results = Vec::with_capacity(req.keys.len());
    for (key, def) in req.keys.into_iter().zip(defs) {
        // The stand-in `authsome run` puts in a child's environment is not
        // a key (it is what an import inside a run would find).
        if key.value.expose().trim() == crate::proxy::PLACEHOLDER {
            results.push(ImportResult {
                provider: def.name.clone(),
                variable: key.variable,
                source: key.source,
                outcome: ImportOutcome::Invalid,
                hint: Some(format!(
                    "{} is the stand-in `authsome run` gives its commands, not a key",
                    crate::proxy::PLACEHOLDER
                )),
            });
            continue;
        }
        let provider = ProviderName::parse(&def.name)?;
        let values = std::collections::BTreeMap::from([("api_key".to_string(), key.value)]);
        let mut result = ImportResult {
            provider: def.name.clone(),
            variable: key.variable,
            source: key.source,
            outcome: ImportOutcome::New,
            hint: None,
        };
        let checked = match check_key(&def, &values) {
            Ok(k) => k,
            Err(e @ (Error::KeyPattern { .. } | Error::InvalidInput(_))) => {
                result.outcome = ImportOutcome::Invalid;
                result.hint = Some(e.to_string());
                results.push(result);
                continue;
            }
            Err(e) => return Err(e),
        };
        let existing = store.get_connection(&provider, &connection).await?;
        let old_status = existing.as_ref().map(|r| r.meta.status);
        result.outcome = match existing.as_ref().and_then(|r| r.secrets.api_key.as_ref()) {
            None if existing.is_some() && req.force => ImportOutcome::Replaced,
            None if existing.is_some() => ImportOutcome::Different,
            None => ImportOutcome::New,
            Some(stored) if constant_time_eq(stored.expose(), checked.expose()) => {
                ImportOutcome::Same
            }
            Some(_) if req.force => ImportOutcome::Replaced,
            Some(_) => ImportOutcome::Different,
        };
        if result.outcome == ImportOutcome::Different {
            result.hint = Some(format!(
                "{} ({connection}) holds another key; --force replaces it",
                def.name
            ));
        }
        let store_it = matches!(result.outcome, ImportOutcome::New | ImportOutcome::Replaced);
        if store_it && !req.dry_run {
            let record = new_record(
                provider,
                connection.clone(),
                AuthType::ApiKey,
                ConnectionSecrets {
                    api_key: Some(checked),
                    ..Default::default()
                },
            );
            store
                .put_connection(&record, Existing::replace_if(req.force))
                .await?;
            d.audit(
                AuditEvent::new("import")
                    .about(profile.as_str(), &def.name, Some(connection.as_str()))
                    .detail(format!("{} from {}", result.variable, result.source)),
            );
            d.events().connection_status(
                profile,
                &def.name,
                connection.as_str(),
                old_status,
                Some(record.meta.status),
            );
        }
        results.push(result);
    }
    Ok(ImportResponse {
        connection: connection.to_string(),
        dry_run: req.dry_run,
        results,
    })
}
