//! The catalogue: bundled definitions (embedded at build time) overlaid with
//! the home's custom ones in `providers/*.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::home::{write_private_file, Home};
use crate::names::Existing;
use crate::providers::validate::{parse_definition, validate, Warning};
use crate::providers::ProviderDef;

mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled_providers.rs"));
}

/// Where a definition came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderOrigin {
    /// Shipped with Authsome.
    Bundled,
    /// Registered in this home.
    Custom,
}

#[derive(Debug, Clone)]
struct Entry {
    def: Arc<ProviderDef>,
    origin: ProviderOrigin,
}

/// All providers known to a home.
#[derive(Debug)]
pub struct Catalogue {
    dir: PathBuf,
    entries: RwLock<BTreeMap<String, Entry>>,
}

/// A custom definition file that could not be used, and why.
#[derive(Debug, Clone, Serialize)]
pub struct FileProblem {
    /// The file.
    pub file: String,
    /// What is wrong with it.
    pub problem: String,
}

impl Catalogue {
    /// Every bundled definition, parsed and validated.
    pub fn bundled() -> Result<Vec<ProviderDef>> {
        bundled::BUNDLED
            .iter()
            .map(|(file, text)| {
                let def = parse_definition(text.as_bytes())
                    .map_err(|e| Error::InvalidProvider(format!("bundled {file}: {e}")))?;
                validate(&def)
                    .map_err(|e| Error::InvalidProvider(format!("bundled {file}: {e}")))?;
                if format!("{}.json", def.name) != *file {
                    return Err(Error::InvalidProvider(format!(
                        "bundled {file}: name {} does not match the file",
                        def.name
                    )));
                }
                Ok(def)
            })
            .collect()
    }

    /// Loads the catalogue for a home. Custom files that do not validate are
    /// left out and reported.
    pub fn load(home: &Home) -> Result<(Catalogue, Vec<FileProblem>)> {
        let mut entries = BTreeMap::new();
        for def in Self::bundled()? {
            entries.insert(
                def.name.clone(),
                Entry {
                    def: Arc::new(def),
                    origin: ProviderOrigin::Bundled,
                },
            );
        }
        let (custom, problems) = Self::read_custom(home);
        for def in custom {
            if entries.contains_key(&def.name) {
                // Its URLs decide where tokens, client secrets and keys go.
                tracing::warn!(
                    provider = %def.name,
                    dir = %home.providers_dir().display(),
                    "a custom provider file replaces the bundled definition of {}",
                    def.name
                );
            }
            entries.insert(
                def.name.clone(),
                Entry {
                    def: Arc::new(def),
                    origin: ProviderOrigin::Custom,
                },
            );
        }
        Ok((
            Catalogue {
                dir: home.providers_dir(),
                entries: RwLock::new(entries),
            },
            problems,
        ))
    }

    /// Reads and validates the home's custom definitions.
    pub fn read_custom(home: &Home) -> (Vec<ProviderDef>, Vec<FileProblem>) {
        let mut defs = Vec::new();
        let mut problems = Vec::new();
        let Ok(rd) = std::fs::read_dir(home.providers_dir()) else {
            return (defs, problems);
        };
        let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        paths.sort();
        for path in paths
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
        {
            let file = path.display().to_string();
            let result = std::fs::read(&path)
                .map_err(|e| Error::io(&file, e))
                .and_then(|bytes| parse_definition(&bytes))
                .and_then(|def| validate(&def).map(|_| def))
                .and_then(|def| {
                    if path.file_stem().and_then(|s| s.to_str()) == Some(def.name.as_str()) {
                        Ok(def)
                    } else {
                        Err(Error::InvalidProvider(format!(
                            "name {:?} does not match the file name",
                            def.name
                        )))
                    }
                });
            match result {
                Ok(def) => defs.push(def),
                Err(e) => problems.push(FileProblem {
                    file,
                    problem: e.to_string(),
                }),
            }
        }
        (defs, problems)
    }

    /// A provider by name.
    pub fn get(&self, name: &str) -> Result<(Arc<ProviderDef>, ProviderOrigin)> {
        self.entries
            .read()
            .expect("catalogue lock")
            .get(name)
            .map(|e| (e.def.clone(), e.origin))
            .ok_or_else(|| Error::ProviderNotFound {
                name: name.chars().take(64).filter(|c| !c.is_control()).collect(),
            })
    }

    /// Every provider, sorted by name.
    pub fn list(&self) -> Vec<(Arc<ProviderDef>, ProviderOrigin)> {
        self.entries
            .read()
            .expect("catalogue lock")
            .values()
            .map(|e| (e.def.clone(), e.origin))
            .collect()
    }

    /// Validates and stores a custom definition. An existing name (bundled
    /// or custom) is replaced only with [`Existing::Replace`].
    pub fn register(&self, def: ProviderDef, existing: Existing) -> Result<Vec<Warning>> {
        let warnings = validate(&def)?;
        let mut entries = self.entries.write().expect("catalogue lock");
        if entries.contains_key(&def.name) && existing == Existing::Keep {
            return Err(Error::ProviderExists {
                name: def.name.clone(),
            });
        }
        let text =
            serde_json::to_string_pretty(&def).map_err(|e| Error::Internal(e.to_string()))?;
        crate::home::ensure_private_dir(&self.dir)?;
        write_private_file(
            &self.dir.join(format!("{}.json", def.name)),
            format!("{text}\n").as_bytes(),
        )?;
        entries.insert(
            def.name.clone(),
            Entry {
                def: Arc::new(def),
                origin: ProviderOrigin::Custom,
            },
        );
        Ok(warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_bundled_definition_is_valid_and_unique() {
        let defs = Catalogue::bundled().expect("bundled providers validate");
        assert!(defs.len() >= 80, "only {} bundled providers", defs.len());
        let names: HashSet<_> = defs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names.len(), defs.len(), "duplicate provider names");
        for d in &defs {
            assert!(d.docs_url.is_some(), "{} has no docs_url", d.name);
        }
    }

    #[test]
    fn register_refuses_an_existing_name_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().to_path_buf());
        home.ensure_dirs().unwrap();
        let (cat, problems) = Catalogue::load(&home).unwrap();
        assert!(problems.is_empty());
        let mut def = cat.get("openai").unwrap().0.as_ref().clone();
        def.display_name = "OpenAI (proxy)".into();
        assert!(matches!(
            cat.register(def.clone(), Existing::Keep),
            Err(Error::ProviderExists { .. })
        ));
        cat.register(def, Existing::Replace).unwrap();
        let (reloaded, _) = Catalogue::load(&home).unwrap();
        let (got, origin) = reloaded.get("openai").unwrap();
        assert_eq!(got.display_name, "OpenAI (proxy)");
        assert_eq!(origin, ProviderOrigin::Custom);
    }
}
