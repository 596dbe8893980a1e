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
