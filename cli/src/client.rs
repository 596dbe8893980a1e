//! The daemon calls go through `authsome-client`, the same crate agent code
//! uses: one client, not two.

pub use authsome_client::*;
