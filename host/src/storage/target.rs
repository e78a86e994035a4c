//! Where a storage URL points: a local folder, or an Azure container and a
//! folder in it.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;

use super::error::{Failure, StorageError};

/// Azure credentials: the account name and key of the connections.json
/// file, and an endpoint for the Azurite emulator or a sovereign cloud.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AzureCredentials {
    pub account: Option<String>,
    pub key: Option<String>,
    /// E.g. `http://127.0.0.1:10000/devstoreaccount1` for Azurite.
    pub endpoint: Option<String>,
}

/// What a URL opens.
pub(super) struct Target {
    pub store: Arc<dyn ObjectStore>,
    /// Keys are under this folder of the store (empty: at its root).
    pub prefix: ObjectPath,
    /// The folder, when it is local: `root` as given, `folder` the store
    /// on it (which maps keys to paths).
    pub local: Option<(PathBuf, Arc<LocalFileSystem>)>,
}

/// Whether a missing local folder is made or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Missing {
    Create,
    Refuse,
}

/// `file:///dir` or a plain path: a local folder. `az://container/dir`,
/// `abfss://filesystem@account.dfs.core.windows.net/dir` (and `abfs`,
/// `azure`, `adl`): Azure.
pub(super) fn open(
    url: &str,
    azure: &AzureCredentials,
    missing: Missing,
) -> Result<Target, StorageError> {
    let url_error = |reason: String| StorageError::Url {
        url: url.to_owned(),
        reason,
    };
    let dir = match url.split_once("://") {
        None => url,
        Some(("file", path)) => path,
        Some(("az" | "abfs" | "abfss" | "azure" | "adl", _)) => return azure_store(url, azure),
        Some((other, _)) => {
            return Err(url_error(format!(
                "unsupported scheme `{other}` (use file://, az:// or abfss://)"
            )));
        }
    };
    let root = PathBuf::from(dir);
    match missing {
        Missing::Create => {
            std::fs::create_dir_all(&root).map_err(|source| StorageError::Local {
                path: root.clone(),
                source,
            })?
        }
        Missing::Refuse if !root.is_dir() => {
            return Err(StorageError::Store {
                location: url.trim_end_matches('/').to_owned(),
                failure: Failure::NotFound,
                reason: "no such folder".into(),
            });
        }
        Missing::Refuse => {}
    }
    let folder =
        Arc::new(LocalFileSystem::new_with_prefix(&root).map_err(|e| url_error(e.to_string()))?);
    Ok(Target {
        store: folder.clone(),
        prefix: ObjectPath::ROOT,
        local: Some((root, folder)),
    })
}

fn azure_store(url: &str, azure: &AzureCredentials) -> Result<Target, StorageError> {
    let url_error = |reason: String| StorageError::Url {
        url: url.to_owned(),
        reason,
    };
    let parsed = url::Url::parse(url).map_err(|e| url_error(e.to_string()))?;
    let mut builder = MicrosoftAzureBuilder::new().with_url(url);
    if let Some(account) = &azure.account {
        builder = builder.with_account(account);
    }
    if let Some(key) = &azure.key {
        builder = builder.with_access_key(key);
    }
    if let Some(endpoint) = &azure.endpoint {
        builder = builder
            .with_endpoint(endpoint.clone())
            .with_allow_http(endpoint.starts_with("http://"));
    }
    let store = builder.build().map_err(|e| url_error(e.to_string()))?;
    // The folder as named, not as the URL escapes it (`a%20b` is `a b`).
    let prefix = ObjectPath::from_url_path(parsed.path()).map_err(|e| url_error(e.to_string()))?;
    Ok(Target {
        store: Arc::new(store),
        prefix,
        local: None,
    })
}
