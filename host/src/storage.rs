//! Where finished files go: a local folder, or Azure Blob Storage / ADLS
//! Gen2 (`az://`, `abfss://`) through `object_store`. Files are written
//! locally first and uploaded whole, so a half-written file never appears
//! and a failed upload leaves the previous version in place.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage URL `{url}`: {reason}")]
    Url { url: String, reason: String },
    #[error("{}: {source}", path.display())]
    Local {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{location}: {reason}")]
    Remote { location: String, reason: String },
}

/// Azure credentials: seed 000's account name and key, and an endpoint for
/// the Azurite emulator or a sovereign cloud.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AzureCredentials {
    pub account: Option<String>,
    pub key: Option<String>,
    /// E.g. `http://127.0.0.1:10000/devstoreaccount1` for Azurite.
    pub endpoint: Option<String>,
}

pub struct Storage {
    url: String,
    target: Target,
}

enum Target {
    Local(PathBuf),
    Remote {
        store: Arc<dyn ObjectStore>,
        prefix: String,
        runtime: tokio::runtime::Runtime,
    },
}

/// Uploads stream in parts of this size: memory stays bounded.
const UPLOAD_CHUNK: usize = 8 << 20;

impl Storage {
    /// `file:///dir` or a plain path: a local folder. `az://container/dir`,
    /// `abfss://filesystem@account.dfs.core.windows.net/dir`: Azure.
    pub fn open(url: &str, azure: &AzureCredentials) -> Result<Self, StorageError> {
        let url_error = |reason: String| StorageError::Url {
            url: url.to_owned(),
            reason,
        };
        let scheme = url.split_once("://").map(|(s, _)| s);
        let target = match scheme {
            None => Target::Local(PathBuf::from(url)),
            Some("file") => Target::Local(PathBuf::from(&url["file://".len()..])),
            Some("az" | "abfs" | "abfss" | "azure" | "adl") => {
                let (store, prefix) = azure_store(url, azure)?;
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| url_error(format!("starting the I/O runtime: {e}")))?;
                Target::Remote {
                    store,
                    prefix,
                    runtime,
                }
            }
            Some(other) => {
                return Err(url_error(format!(
                    "unsupported scheme `{other}` (use file://, az:// or abfss://)"
                )));
            }
        };
        Ok(Storage {
            url: url.to_owned(),
            target,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where a local file waits before `upload`: the folder itself for local
    /// storage (the upload is then a rename), a temporary folder otherwise.
    pub fn staging_dir(&self, run_id: &str) -> PathBuf {
        match &self.target {
            Target::Local(root) => root.join(".staging").join(run_id),
            Target::Remote { .. } => std::env::temp_dir().join("sluice-staging").join(run_id),
        }
    }

    /// Moves `local` to `key`, replacing what was there, and removes `local`.
    pub fn upload(&self, local: &Path, key: &str) -> Result<(), StorageError> {
        let local_error = |source| StorageError::Local {
            path: local.to_owned(),
            source,
        };
        match &self.target {
            Target::Local(root) => {
                let path = root.join(key);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|source| StorageError::Local {
                        path: dir.to_owned(),
                        source,
                    })?;
                }
                std::fs::rename(local, &path).map_err(local_error)
            }
            Target::Remote {
                store,
                prefix,
                runtime,
            } => {
                let location = object_path(prefix, key);
                let mut file = std::fs::File::open(local).map_err(local_error)?;
                let remote_error = |reason: String| StorageError::Remote {
                    location: format!("{}/{key}", self.url),
                    reason,
                };
                runtime.block_on(async {
                    let mut writer =
                        BufWriter::with_capacity(store.clone(), location, UPLOAD_CHUNK);
                    let mut chunk = vec![0u8; UPLOAD_CHUNK];
                    loop {
                        let n = file.read(&mut chunk).map_err(local_error)?;
                        if n == 0 {
                            break;
                        }
                        writer
                            .write_all(&chunk[..n])
                            .await
                            .map_err(|e| remote_error(e.to_string()))?;
                    }
                    writer
                        .shutdown()
                        .await
                        .map_err(|e| remote_error(e.to_string()))
                })?;
                std::fs::remove_file(local).map_err(local_error)
            }
        }
    }

    /// The bytes stored at `key`.
    pub fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        match &self.target {
            Target::Local(root) => {
                let path = root.join(key);
                std::fs::read(&path)
                    .map(Bytes::from)
                    .map_err(|source| StorageError::Local { path, source })
            }
            Target::Remote {
                store,
                prefix,
                runtime,
            } => runtime.block_on(async {
                let remote_error = |e: object_store::Error| StorageError::Remote {
                    location: format!("{}/{key}", self.url),
                    reason: e.to_string(),
                };
                store
                    .get(&object_path(prefix, key))
                    .await
                    .map_err(remote_error)?
                    .bytes()
                    .await
                    .map_err(remote_error)
            }),
        }
    }
}

/// An object store for `url` (a local folder, created if missing, or Azure)
/// and the key prefix inside it; for callers that need conditional puts and
/// listings, which a plain folder copy cannot give.
pub fn open_object_store(
    url: &str,
    azure: &AzureCredentials,
) -> Result<(Arc<dyn ObjectStore>, String), StorageError> {
    let local = match url.split_once("://") {
        None => Some(url),
        Some(("file", path)) => Some(path),
        Some(_) => None,
    };
    let Some(dir) = local else {
        return azure_store(url, azure);
    };
    std::fs::create_dir_all(dir).map_err(|source| StorageError::Local {
        path: PathBuf::from(dir),
        source,
    })?;
    let store = object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(|e| {
        StorageError::Url {
            url: url.to_owned(),
            reason: e.to_string(),
        }
    })?;
    Ok((Arc::new(store), String::new()))
}

fn azure_store(
    url: &str,
    azure: &AzureCredentials,
) -> Result<(Arc<dyn ObjectStore>, String), StorageError> {
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
    Ok((Arc::new(store), parsed.path().trim_matches('/').to_owned()))
}

pub(crate) fn object_path(prefix: &str, key: &str) -> ObjectPath {
    if prefix.is_empty() {
        ObjectPath::from(key)
    } else {
        ObjectPath::from(format!("{prefix}/{key}"))
    }
}
