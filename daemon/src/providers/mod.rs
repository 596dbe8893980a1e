//! Providers: the schema of a definition, its validation, URL templates and
//! the catalogue (bundled definitions plus the home's custom ones).

mod catalogue;
mod schema;
mod validate;

pub use catalogue::{Catalogue, FileProblem, ProviderOrigin};
pub use schema::{
    ApiKeySpec, AuthType, ClientAuth, DeviceTokenFormat, Flow, HostUrl, OAuthSpec, ProviderDef,
};
pub use validate::{
    is_credential_var, parse_definition, validate, HostPattern, Warning, MAX_DEFINITION_BYTES,
};

/// Puts `base` (without a trailing slash) in place of `{base_url}`. No
/// check: `flows::oauth::fill` is what decides where secrets go.
pub fn substitute(template: &str, base: &str) -> String {
    template.replace("{base_url}", base.trim_end_matches('/'))
}
