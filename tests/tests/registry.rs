//! The registry on a local folder and on Azurite: uploads validated before
//! anything is visible, activation, rollback, concurrent writers, pipeline
//! documents.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;
use sluice_host::enrich::{PipelineDefinition, TransformRef};
use sluice_host::registry::{Registry, RegistryError};
use sluice_host::storage::AzureCredentials;
use sluice_tests::{azurite, azurite_url, block_on, guest, runtime};

/// A local registry (kept alive by the returned folder) and one on Azurite.
fn registries() -> Vec<(String, Registry, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("registry").to_string_lossy().into_owned();
    let remote = azurite_url("registry", "registry");
    vec![
        (
            "local".into(),
            Registry::open(&local, &AzureCredentials::default()).unwrap(),
            Some(dir),
        ),
        (
            "azurite".into(),
            Registry::open(&remote, &azurite::credentials()).unwrap(),
            None,
        ),
    ]
}

fn wasm(name: &str) -> Bytes {
    Bytes::from(guest(name))
}

#[test]
fn upload_activate_rollback_and_delete() {
    for (backend, registry, _dir) in registries() {
        block_on(async {
            let rt = runtime();
            let first = registry
                .upload(rt, "enrich", wasm("misbehave"), true)
                .await
                .unwrap();
            assert_eq!(first.info.world, "transformer", "{backend}");
            let second = registry
                .upload(rt, "enrich", wasm("language-detect"), false)
                .await
                .unwrap();
            let manifest = registry.manifest("enrich").await.unwrap();
            assert_eq!(manifest.versions.len(), 2, "{backend}");
            assert_eq!(
                manifest.active.as_ref(),
                Some(&first.info.version),
                "{backend}"
            );

            let short = &second.info.version[..10];
            let manifest = registry.activate("enrich", short).await.unwrap();
            assert_eq!(manifest.active.as_ref(), Some(&second.info.version));
            let active = registry
                .resolve(rt, &TransformRef::Active("enrich".into()))
                .await
                .unwrap();
            assert_eq!(active.version(), second.info.version, "{backend}");

            let manifest = registry.rollback("enrich").await.unwrap();
            assert_eq!(
                manifest.active.as_ref(),
                Some(&first.info.version),
                "{backend}"
            );
            let pinned = TransformRef::Pinned {
                name: "enrich".into(),
                version: Some(short.to_owned()),
            };
            assert_eq!(
                registry.resolve(rt, &pinned).await.unwrap().version(),
                second.info.version,
                "a pinned version loads whichever is active"
            );

            let refused = registry.delete_version("enrich", &first.info.version).await;
            assert!(
                matches!(refused, Err(RegistryError::DeleteActive { .. })),
                "{backend}"
            );
            let manifest = registry
                .delete_version("enrich", &second.info.version)
                .await
                .unwrap();
            assert_eq!(manifest.versions.len(), 1, "{backend}");
            let listed = registry.list().await.unwrap();
            assert_eq!(listed.len(), 1, "{backend}");
            assert_eq!(listed[0].name, "enrich");
        });
    }
}

#[test]
fn each_version_records_the_contract_its_component_was_built_against() {
    for (backend, registry, _dir) in registries() {
        block_on(async {
            let rt = runtime();
            let name = "contracts";
            let v2 = registry
                .upload(rt, name, wasm("misbehave"), true)
                .await
                .unwrap();
            let v1 = registry
                .upload(rt, name, wasm("misbehave-v01"), false)
                .await
                .unwrap();
            let manifest = registry.manifest(name).await.unwrap();
            let contract = |version: &str| {
                manifest
                    .versions
                    .iter()
                    .find(|v| v.version == version)
                    .and_then(|v| v.contract.clone())
            };
            assert_eq!(
                contract(&v2.info.version).as_deref(),
                Some("0.2.0"),
                "{backend}"
            );
            assert_eq!(
                contract(&v1.info.version).as_deref(),
                Some("0.1.0"),
                "{backend}"
            );
        });
    }
}

#[test]
fn bad_uploads_are_refused_and_the_active_version_stays() {
    // A valid empty core module, and a valid component that implements
    // neither world.
    let core_module = Bytes::from_static(b"\0asm\x01\0\0\0");
    let empty_component = Bytes::from_static(b"\0asm\x0d\0\x01\0");
    let random: Bytes = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    for (backend, registry, _dir) in registries() {
        block_on(async {
            let rt = runtime();
            let good = registry
                .upload(rt, "guarded", wasm("misbehave"), true)
                .await
                .unwrap();
            for (what, bytes) in [
                ("random bytes", random.clone()),
                ("a core module", core_module.clone()),
                ("a component of no Sluice world", empty_component.clone()),
            ] {
                let error = registry
                    .upload(rt, "guarded", bytes, true)
                    .await
                    .expect_err(what);
                assert!(
                    matches!(error, RegistryError::Invalid(_)),
                    "{backend} {what}: {error}"
                );
                assert!(error.is_client_error());
            }
            let small = Registry::open(registry.url(), &credentials_for(&backend))
                .unwrap()
                .with_max_upload(1000);
            let error = small
                .upload(rt, "guarded", wasm("language-detect"), true)
                .await
                .unwrap_err();
            assert!(error.to_string().contains("limit is 1000"), "{error}");
            let error = registry
                .upload(rt, "Bad/Name", wasm("misbehave"), true)
                .await
                .unwrap_err();
            assert!(matches!(error, RegistryError::BadName { .. }));

            let manifest = registry.manifest("guarded").await.unwrap();
            assert_eq!(
                manifest.versions.len(),
                1,
                "{backend}: nothing refused was recorded"
            );
            assert_eq!(manifest.active, Some(good.info.version), "{backend}");
        });
    }
}

fn credentials_for(backend: &str) -> AzureCredentials {
    if backend == "azurite" {
        azurite::credentials()
    } else {
        AzureCredentials::default()
    }
}

#[test]
fn concurrent_uploads_are_all_recorded() {
    for (backend, registry, _dir) in registries() {
        let registry = Arc::new(registry);
        for round in 0..3 {
            let name = format!("race-{round}");
            let uploaders: Vec<_> = ["misbehave", "language-detect", "stay-category"]
                .into_iter()
                .map(|guest_name| {
                    // Separate clients, as separate function instances are.
                    let url = registry.url().to_owned();
                    let credentials = credentials_for(&backend);
                    let name = name.clone();
                    std::thread::spawn(move || {
                        let registry = Registry::open(&url, &credentials).unwrap();
                        block_on(registry.upload(runtime(), &name, wasm(guest_name), true))
                            .unwrap()
                            .info
                            .version
                    })
                })
                .collect();
            let versions: Vec<String> = uploaders.into_iter().map(|u| u.join().unwrap()).collect();
            let manifest = block_on(registry.manifest(&name)).unwrap();
            assert_eq!(manifest.sequence, 3, "{backend}: three changes, none lost");
            for version in &versions {
                assert!(
                    manifest.versions.iter().any(|v| v.version == *version),
                    "{backend}: {version} missing from {manifest:?}"
                );
            }
            assert!(versions.contains(manifest.active.as_ref().unwrap()));
        }
    }
}

#[test]
fn pipelines_are_created_listed_replaced_and_deleted() {
    for (backend, registry, _dir) in registries() {
        block_on(async {
            let definition = |name: &str, output: &str| {
                PipelineDefinition::from_value(&json!({
                    "name": name, "inputs": ["posts"], "outputs": [output],
                    "transform": "language-detect", "dead_letter": "posts.dlq",
                }))
                .unwrap()
            };
            registry
                .put_pipeline(&definition("lang", "a"))
                .await
                .unwrap();
            registry
                .put_pipeline(&definition("other", "b"))
                .await
                .unwrap();
            registry
                .put_pipeline(&definition("lang", "c"))
                .await
                .unwrap();
            assert_eq!(
                registry.pipeline("lang").await.unwrap().outputs,
                ["c"],
                "{backend}"
            );
            let names: Vec<String> = registry
                .pipelines()
                .await
                .unwrap()
                .into_iter()
                .map(|p| p.name)
                .collect();
            assert_eq!(names, ["lang", "other"], "{backend}");
            registry.delete_pipeline("other").await.unwrap();
            assert!(matches!(
                registry.pipeline("other").await,
                Err(RegistryError::UnknownPipeline { .. })
            ));
            assert!(matches!(
                registry.delete_pipeline("other").await,
                Err(RegistryError::UnknownPipeline { .. })
            ));
        });
    }
}
