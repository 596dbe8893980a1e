//! `authsome mcp add`: a remote MCP server becomes a provider. Discovery
//! ([`crate::flows::mcp::discover`]) finds the resource and its
//! authorization server; the definition is registered like any custom
//! provider; a client ID given here is stored, otherwise the first login
//! registers a client dynamically (RFC 7591).

use crate::error::{Error, Result};
use crate::flows::mcp::{discover, Registration};
use crate::names::{ProfileName, ProviderName};
use crate::services::Services;
use crate::vault::ClientRecord;
use crate::wire::{McpAddRequest, McpAddResponse, RegisterRequest};

/// Discovers the server at `req.url`, records it as provider `req.name`,
/// and says what was found.
pub async fn add_server(
    d: &Services,
    profile: &ProfileName,
    req: McpAddRequest,
) -> Result<McpAddResponse> {
    let name = ProviderName::parse(&req.name)?;
    let client_id = match &req.client_id {
        Some(id) => {
            let id = id.trim();
            if id.is_empty() || id.len() > 1024 || id.chars().any(char::is_control) {
                return Err(Error::InvalidInput("the client ID is not valid".into()));
            }
            Some(id.to_string())
        }
        None => None,
    };
    let found = discover(d.http(), &req.url).await?;
    let registration = match (&req.client_id, &found.registration_endpoint) {
        // A client ID that is an https URL names a Client ID Metadata
        // Document, when the server takes them.
        (Some(id), _)
            if found.client_id_metadata_document_supported && id.starts_with("https://") =>
        {
            Registration::MetadataDocument
        }
        (Some(_), _) => Registration::ClientId,
        (None, Some(_)) => Registration::Dynamic,
        (None, None) => {
            return Err(Error::FlowUnavailable {
                provider: req.name.clone(),
                flow: "mcp".into(),
                reason: format!(
                    "{} offers no dynamic client registration: {}register a client there \
                     and run `authsome mcp add {} {} --client-id ID` (the secret on \
                     standard input with --stdin when it has one)",
                    found.issuer,
                    if found.client_id_metadata_document_supported {
                        "give the https URL of your Client ID Metadata Document as the \
                         client ID, or "
                    } else {
                        ""
                    },
                    req.name,
                    req.url
                ),
            })
        }
    };
    let def = found.provider(name.as_str(), registration)?;
    let registered = d
        .providers()
        .register(RegisterRequest {
            definition: serde_json::to_value(&def).map_err(|e| Error::Internal(e.to_string()))?,
            force: req.force,
        })
        .await?;
    if registered.replaced {
        // Tokens of another server or issuer are no good for this one, in
        // any profile: the definition is shared, and a token left behind
        // would be sent to the new server.
        for other in d.home().list_profiles()? {
            d.stores()
                .get(&other)
                .await?
                .remove_provider_state(&name)
                .await?;
        }
    }
    let store = d.stores().get(profile).await?;
    if let Some(id) = client_id {
        store
            .put_client(&ClientRecord {
                provider: name.clone(),
                client_id: id,
                client_secret: req.client_secret.clone().filter(|s| !s.is_empty()),
                base_url: None,
                registered: false,
            })
            .await?;
    }
    Ok(McpAddResponse {
        name: name.to_string(),
        url: found.url,
        resource: found.resource,
        issuer: found.issuer,
        scopes: found.scopes,
        registration,
        registration_endpoint: found.registration_endpoint,
        iss_parameter_supported: found.iss_parameter_supported,
        client_id_metadata_document_supported: found.client_id_metadata_document_supported,
        warnings: registered.warnings,
    })
}
