//! A transform's manifest: its versions, which one is active and the order
//! they were activated in (for rollback). Changes are pure functions, so the
//! compare-and-swap loop in the store can re-apply one to a newer manifest.
//!
//! A manifest may also name a shadow version: one that every running
//! instance also runs on the same batches, after the active one, only to
//! compare (see `crate::shadow`). It ends when it is stopped, promoted
//! (activated) or deleted, or when the transform is rolled back.

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
    /// The version shadowing the active one, if any: never the active one.
    /// Absent from manifests written before shadow runs existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<String>,
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
    /// The version of `wit/`'s contract the component was built against
    /// (`0.1.0`, `0.2.0`). Absent from versions uploaded before Sluice
    /// said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
}

/// A change to a manifest.
#[derive(Debug, Clone)]
pub enum Change {
    Add {
        info: VersionInfo,
        activate: bool,
    },
    Activate(String),
    Rollback,
    Delete(String),
    /// Shadows the active version with the one a prefix names.
    Shadow(String),
    StopShadow,
}

impl Manifest {
    pub fn empty(name: &str) -> Self {
        Manifest {
            name: name.to_owned(),
            sequence: 0,
            active: None,
            activations: Vec::new(),
            versions: Vec::new(),
            shadow: None,
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
                // What was shadowed was compared with the version rolled
                // back: the comparison no longer holds.
                next.shadow = None;
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
                if next.shadow.as_ref() == Some(&version) {
                    next.shadow = None;
                }
            }
            Change::Shadow(prefix) => {
                let shadow = self.find(prefix)?;
                let active = self.active_info()?;
                if shadow.version == active.version {
                    return Err(RegistryError::ShadowIsActive {
                        name: self.name.clone(),
                        version: shadow.version.clone(),
                    });
                }
                if shadow.world != "transformer" || active.world != "transformer" {
                    return Err(RegistryError::ShadowWorld {
                        name: self.name.clone(),
                        version: shadow.version.clone(),
                        world: if shadow.world == "transformer" {
                            active.world.clone()
                        } else {
                            shadow.world.clone()
                        },
                    });
                }
                next.shadow = Some(shadow.version.clone());
            }
            Change::StopShadow => next.shadow = None,
        }
        Ok(next)
    }

    /// The active version's entry.
    fn active_info(&self) -> Result<&VersionInfo, RegistryError> {
        self.active
            .as_ref()
            .and_then(|active| self.versions.iter().find(|v| v.version == *active))
            .ok_or_else(|| RegistryError::NoActiveVersion {
                name: self.name.clone(),
            })
    }

    fn activate(&mut self, version: &str) {
        // Promoting the shadow version ends the shadow run: it is what runs.
        if self.shadow.as_deref() == Some(version) {
            self.shadow = None;
        }
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
            contract: None,
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

    fn shadowed(v: &str) -> Manifest {
        let m = add(
            &add(&add(&Manifest::empty("t"), "a", true), "b", false),
            "c",
            false,
        );
        m.apply(&Change::Shadow(v.repeat(8))).unwrap()
    }

    #[test]
    fn a_shadow_is_another_version_of_the_same_world() {
        let m = shadowed("b");
        assert_eq!(m.shadow, Some("b".repeat(64)));
        assert_eq!(m.active, Some("a".repeat(64)), "the active version stays");
        let replaced = m.apply(&Change::Shadow("cccccccc".into())).unwrap();
        assert_eq!(replaced.shadow, Some("c".repeat(64)));
        assert!(matches!(
            m.apply(&Change::Shadow("aaaaaaaa".into())),
            Err(RegistryError::ShadowIsActive { .. })
        ));
        assert!(matches!(
            m.apply(&Change::Shadow("ffffffff".into())),
            Err(RegistryError::UnknownVersion { .. })
        ));
        let mut aggregator = info("d");
        aggregator.world = "aggregator".into();
        let m = m
            .apply(&Change::Add {
                info: aggregator,
                activate: false,
            })
            .unwrap();
        assert!(matches!(
            m.apply(&Change::Shadow("dddddddd".into())),
            Err(RegistryError::ShadowWorld { .. })
        ));
        let inactive = add(&Manifest::empty("t"), "a", false);
        assert!(matches!(
            inactive.apply(&Change::Shadow("aaaaaaaa".into())),
            Err(RegistryError::NoActiveVersion { .. })
        ));
    }

    #[test]
    fn promote_stop_rollback_and_delete_end_the_shadow() {
        let promoted = shadowed("b")
            .apply(&Change::Activate("bbbbbbbb".into()))
            .unwrap();
        assert_eq!(promoted.active, Some("b".repeat(64)));
        assert_eq!(promoted.shadow, None);
        let stopped = shadowed("b").apply(&Change::StopShadow).unwrap();
        assert_eq!(
            (stopped.active, stopped.shadow),
            (Some("a".repeat(64)), None)
        );
        let rolled_back = shadowed("b")
            .apply(&Change::Activate("cccccccc".into()))
            .unwrap();
        assert_eq!(
            rolled_back.shadow,
            Some("b".repeat(64)),
            "another activation keeps it"
        );
        let rolled_back = rolled_back.apply(&Change::Rollback).unwrap();
        assert_eq!(rolled_back.shadow, None);
        let deleted = shadowed("b")
            .apply(&Change::Delete("bbbbbbbb".into()))
            .unwrap();
        assert_eq!(deleted.shadow, None);
        let other_deleted = shadowed("b")
            .apply(&Change::Delete("cccccccc".into()))
            .unwrap();
        assert_eq!(other_deleted.shadow, Some("b".repeat(64)));
    }

    #[test]
    fn a_manifest_written_before_shadows_loads_without_one() {
        let old = r#"{"name":"t","sequence":1,"active":null,"activations":[],"versions":[]}"#;
        let m: Manifest = serde_json::from_str(old).unwrap();
        assert_eq!(m.shadow, None);
        let text = serde_json::to_string(&m).unwrap();
        assert!(!text.contains("shadow"), "{text}");
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
