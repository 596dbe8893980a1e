//! The stores of a home's profiles, opened on first use and shared.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::home::Home;
use crate::names::ProfileName;
use crate::vault::{MasterKey, Store};

/// Every profile's store, by name; cheap to share (`Arc<Stores>`).
#[derive(Debug)]
pub struct Stores {
    home: Home,
    key: Arc<MasterKey>,
    open: tokio::sync::Mutex<HashMap<ProfileName, Store>>,
}

impl Stores {
    /// The stores of `home`, with `first` already open.
    pub fn new(home: Home, key: Arc<MasterKey>, first: Store) -> Stores {
        let open = HashMap::from([(first.profile().clone(), first)]);
        Stores {
            home,
            key,
            open: tokio::sync::Mutex::new(open),
        }
    }

    /// The store of a profile. The default profile is created on first use;
    /// any other must exist (`authsome profile create`).
    pub async fn get(&self, profile: &ProfileName) -> Result<Store> {
        let mut open = self.open.lock().await;
        if let Some(s) = open.get(profile) {
            return Ok(s.clone());
        }
        let path = self.home.store_path(profile);
        let implicit =
            *profile == ProfileName::default_name() || *profile == self.home.default_profile()?;
        if !path.exists() && !implicit {
            return Err(Error::ProfileNotFound {
                name: profile.to_string(),
            });
        }
        let store = Store::open(&path, self.key.clone(), profile.clone()).await?;
        open.insert(profile.clone(), store.clone());
        Ok(store)
    }

    /// Creates a profile and its store.
    pub async fn create(&self, profile: &ProfileName) -> Result<()> {
        let path = self.home.store_path(profile);
        if path.exists() {
            return Err(Error::ProfileExists {
                name: profile.to_string(),
            });
        }
        let store = Store::open(&path, self.key.clone(), profile.clone()).await?;
        self.open.lock().await.insert(profile.clone(), store);
        Ok(())
    }

    /// Closes every open store (the daemon is stopping).
    pub async fn close_all(&self) {
        for store in self.open.lock().await.values() {
            store.close().await;
        }
    }
}
