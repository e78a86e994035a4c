//! A transform's manifest: its versions, which one is active and the order
//! they were activated in (for rollback). Changes are pure functions, so the
//! compare-and-swap loop in the store can re-apply one to a newer manifest.

use serde::{Deserialize, Serialize};

use super::RegistryError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    /// Increases by one with every change; the store's key for it.
    pub sequence: u64,
    pub active: Option<String>,
    /// Versions in the order they were activated, the active one last.
    pub activations: Vec<String>,
    pub versions: Vec<VersionInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// SHA-256 of the component, hex.
    pub version: String,
    /// Milliseconds since the Unix epoch.
    pub uploaded_at_ms: u64,
    pub size: u64,
    /// `transformer` or `aggregator`.
    pub world: String,
}

/// A change to a manifest.
#[derive(Debug, Clone)]
pub enum Change {
    Add { info: VersionInfo, activate: bool },
    Activate(String),
    Rollback,
    Delete(String),
}

impl Manifest {
    pub fn empty(name: &str) -> Self {
        Manifest {
            name: name.to_owned(),
            sequence: 0,
            active: None,
            activations: Vec::new(),
            versions: Vec::new(),
        }
    }

    /// The full version a prefix (at least 8 hex digits) names.
    pub fn find(&self, prefix: &str) -> Result<&VersionInfo, RegistryError> {
        let mut matches = self
            .versions
            .iter()
            .filter(|v| v.version.starts_with(prefix));
        match (matches.next(), matches.next()) {
            (Some(found), None) if prefix.len() >= 8 => Ok(found),
            (Some(_), Some(_)) | (Some(_), None) => Err(RegistryError::AmbiguousVersion {
                name: self.name.clone(),
                version: prefix.to_owned(),
            }),
            (None, _) => Err(RegistryError::UnknownVersion {
                name: self.name.clone(),
                version: prefix.to_owned(),
            }),
        }
    }

    /// The manifest after `change`, with the next sequence number.
    pub fn apply(&self, change: &Change) -> Result<Manifest, RegistryError> {
        let mut next = self.clone();
        next.sequence += 1;
        match change {
            Change::Add { info, activate } => {
                if !next.versions.iter().any(|v| v.version == info.version) {
                    next.versions.push(info.clone());
                }
                if *activate {
                    next.activate(&info.version);
                }
            }
            Change::Activate(prefix) => {
                let version = self.find(prefix)?.version.clone();
                next.activate(&version);
            }
            Change::Rollback => {
                let previous = self
                    .activations
                    .iter()
                    .rev()
                    .find(|v| Some(*v) != self.active.as_ref())
                    .cloned()
                    .ok_or_else(|| RegistryError::NothingToRollBack {
                        name: self.name.clone(),
                    })?;
                // The rolled-back version leaves the history, so a second
                // rollback goes one further back.
                if let Some(active) = &self.active {
                    next.activations.retain(|v| v != active);
                }
                next.activate(&previous);
            }
            Change::Delete(prefix) => {
                let version = self.find(prefix)?.version.clone();
                if self.active.as_ref() == Some(&version) {
                    return Err(RegistryError::DeleteActive {
                        name: self.name.clone(),
                        version,
                    });
                }
                next.versions.retain(|v| v.version != version);
                next.activations.retain(|v| *v != version);
            }
        }
        Ok(next)
    }

    fn activate(&mut self, version: &str) {
        self.activations.retain(|v| v != version);
        self.activations.push(version.to_owned());
        self.active = Some(version.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(version: &str) -> VersionInfo {
        VersionInfo {
            version: version.repeat(64 / version.len()),
            uploaded_at_ms: 1,
            size: 10,
            world: "transformer".into(),
        }
    }

    fn add(m: &Manifest, v: &str, activate: bool) -> Manifest {
        m.apply(&Change::Add {
            info: info(v),
            activate,
        })
        .unwrap()
    }

    #[test]
    fn upload_activate_rollback_delete() {
        let m = Manifest::empty("t");
        let m = add(&m, "a", true);
        let m = add(&m, "b", false);
        assert_eq!(m.active.as_deref(), Some(&*"a".repeat(64)));
        assert_eq!(m.sequence, 2);
        let m = m.apply(&Change::Activate("bbbbbbbb".into())).unwrap();
        assert_eq!(m.active, Some("b".repeat(64)));
        let m = add(&m, "c", true);
        let m = m.apply(&Change::Rollback).unwrap();
        assert_eq!(m.active, Some("b".repeat(64)));
        let m = m.apply(&Change::Rollback).unwrap();
        assert_eq!(m.active, Some("a".repeat(64)));
        assert!(matches!(
            m.apply(&Change::Rollback),
            Err(RegistryError::NothingToRollBack { .. })
        ));
        assert!(matches!(
            m.apply(&Change::Delete("aaaaaaaa".into())),
            Err(RegistryError::DeleteActive { .. })
        ));
        let m = m.apply(&Change::Delete("cccccccc".into())).unwrap();
        assert_eq!(m.versions.len(), 2);
    }

    #[test]
    fn uploading_the_same_version_twice_keeps_one_entry() {
        let m = add(&add(&Manifest::empty("t"), "a", false), "a", true);
        assert_eq!(m.versions.len(), 1);
        assert_eq!(m.active, Some("a".repeat(64)));
    }

    #[test]
    fn version_prefixes_must_be_long_and_unique() {
        let m = add(&add(&Manifest::empty("t"), "ab", false), "ac", false);
        assert!(matches!(
            m.find("abab"),
            Err(RegistryError::AmbiguousVersion { .. })
        ));
        assert!(m.find("abababab").is_ok());
        assert!(matches!(
            m.find("ffffffff"),
            Err(RegistryError::UnknownVersion { .. })
        ));
    }
}
