//! The vault: an SQLite store per profile whose secret fields are sealed with
//! AES-256-GCM under a master key, and the backends that keep that key.

pub mod crypto;
pub mod keys;
pub mod rekey;
pub mod store;
pub mod stores;

pub use crypto::MasterKey;
pub use keys::{KeySource, MasterKeyLoader};
pub use store::{ClientRecord, ConnectionMeta, ConnectionRecord, ConnectionSecrets, Status, Store};
pub use stores::Stores;
