//! Where a storage URL points: a local folder, or an Azure container and a
//! folder in it.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::azure::{AzureConfigKey, AzureCredential, MicrosoftAzureBuilder};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{CredentialProvider, ObjectStore};

use super::error::{Failure, StorageError};
use crate::identity::{self, AzureIdentity, Credential, Source};

/// Azure credentials: the account, its key or a SAS when one is given,
/// else the Entra ID identity (see [`crate::identity`]), and an endpoint
/// for the Azurite emulator or a sovereign cloud.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AzureCredentials {
    pub account: Option<String>,
    pub key: Option<String>,
    /// A shared access signature (`sv=...&sig=...`), used when no key is.
    pub sas: Option<String>,
    /// Signs in with Entra ID when neither a key nor a SAS is given; what
    /// it leaves out is read from the environment.
    pub identity: AzureIdentity,
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
    builder = match (&azure.key, &azure.sas) {
        (Some(key), _) => builder.with_access_key(key),
        (None, Some(sas)) => builder.with_config(AzureConfigKey::SasKey, sas),
        (None, None) => {
            signed_in(builder, &azure.identity).map_err(|e| url_error(e.to_string()))?
        }
    };
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

/// `builder` signed in as the identity the settings (and the environment)
/// choose: object_store's own token provider for each source it has one
/// for, ours for a certificate.
fn signed_in(
    builder: MicrosoftAzureBuilder,
    identity: &AzureIdentity,
) -> Result<MicrosoftAzureBuilder, identity::IdentityError> {
    let source = Source::choose(&identity.clone().with_env())?;
    source.log_once("storage");
    Ok(match source {
        Source::ClientSecret {
            authority,
            tenant_id,
            client_id,
            secret,
        } => builder
            .with_client_secret_authorization(client_id, secret.expose(), tenant_id)
            .with_authority_host(authority),
        Source::WorkloadIdentity {
            authority,
            tenant_id,
            client_id,
            token_file,
        } => builder
            .with_client_id(client_id)
            .with_tenant_id(tenant_id)
            .with_federated_token_file(token_file.to_string_lossy())
            .with_authority_host(authority),
        // object_store sends `IDENTITY_HEADER` from the environment, where
        // the platform puts it and where the settings read it.
        Source::AppService {
            endpoint,
            client_id,
            ..
        }
        | Source::Imds {
            endpoint,
            client_id,
        } => {
            let builder = builder.with_msi_endpoint(endpoint);
            match client_id {
                Some(id) => builder.with_client_id(id),
                None => builder,
            }
        }
        Source::AzureCli { .. } => builder.with_use_azure_cli(true),
        certificate @ Source::ClientCertificate { .. } => {
            let credential = Arc::new(Credential::new(certificate)?);
            builder.with_credentials(Arc::new(StorageToken(credential)))
        }
    })
}

/// Storage tokens from a [`Credential`], for the sources object_store has
/// no provider of its own for.
#[derive(Debug)]
struct StorageToken(Arc<Credential>);

#[async_trait::async_trait]
impl CredentialProvider for StorageToken {
    type Credential = AzureCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AzureCredential>> {
        let token = self.0.token(identity::STORAGE_SCOPE).await.map_err(|e| {
            object_store::Error::Generic {
                store: "MicrosoftAzure",
                source: Box::new(e),
            }
        })?;
        Ok(Arc::new(AzureCredential::BearerToken(
            token.secret.expose().to_owned(),
        )))
    }
}
