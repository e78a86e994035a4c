//! What may be configured about the Entra ID credential: the
//! `azure_identity` object of connections.json, completed from the
//! environment the Azure SDKs read (`AZURE_*`) and the one App Service and
//! Functions set (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`).

use std::path::PathBuf;

use serde::Deserialize;

use super::Secret;

/// The Entra ID identity Sluice signs in as, where no storage key or SAS is
/// given and for Event Hubs with `"kafka_auth": "entra"`. Every field may be
/// left out: the environment's `AZURE_*` variable of the same name fills
/// it, as the Azure SDKs read them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureIdentity {
    /// The Entra tenant (directory) id, for a service principal or workload
    /// identity (`AZURE_TENANT_ID`).
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// The application (client) id of a service principal or workload
    /// identity, or of the user-assigned managed identity to use when the
    /// app has several (`AZURE_CLIENT_ID`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// A service principal's client secret (`AZURE_CLIENT_SECRET`).
    #[serde(default, deserialize_with = "secret")]
    pub client_secret: Option<Secret>,
    /// A service principal's certificate: a PEM file holding the
    /// certificate and its private key (`AZURE_CLIENT_CERTIFICATE_PATH`).
    #[serde(default)]
    pub client_certificate_path: Option<PathBuf>,
    /// The file a workload identity's federated token is read from, again
    /// at every sign-in (`AZURE_FEDERATED_TOKEN_FILE`; AKS sets it).
    #[serde(default)]
    pub federated_token_file: Option<PathBuf>,
    /// The Entra sign-in host, for a sovereign cloud
    /// (`AZURE_AUTHORITY_HOST`; by default `https://login.microsoftonline.com`).
    #[serde(default)]
    pub authority_host: Option<String>,
    /// Another managed-identity token endpoint than the VM metadata
    /// service's (`AZURE_MSI_ENDPOINT`).
    #[serde(default)]
    pub msi_endpoint: Option<String>,
    /// Use the Azure CLI's sign-in (`az login`) without first asking the
    /// VM metadata service (`AZURE_USE_AZURE_CLI=true`).
    #[serde(default)]
    pub use_azure_cli: bool,
    /// App Service's and Functions' managed-identity endpoint: only ever
    /// from the platform's `IDENTITY_ENDPOINT`.
    #[serde(skip)]
    pub(crate) identity_endpoint: Option<String>,
    /// The header that endpoint wants: only from `IDENTITY_HEADER`.
    #[serde(skip)]
    pub(crate) identity_header: Option<Secret>,
}

fn secret<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Secret>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.map(Secret::new))
}

impl AzureIdentity {
    /// These settings, each missing one taken from the process's
    /// environment.
    pub fn with_env(self) -> Self {
        self.with_vars(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// These settings, each missing one taken from `var` (the environment,
    /// or a test's table).
    pub fn with_vars(self, var: impl Fn(&str) -> Option<String>) -> Self {
        let path = |name: &str| var(name).map(PathBuf::from);
        AzureIdentity {
            tenant_id: self.tenant_id.or_else(|| var("AZURE_TENANT_ID")),
            client_id: self.client_id.or_else(|| var("AZURE_CLIENT_ID")),
            client_secret: self
                .client_secret
                .or_else(|| var("AZURE_CLIENT_SECRET").map(Secret::new)),
            client_certificate_path: self
                .client_certificate_path
                .or_else(|| path("AZURE_CLIENT_CERTIFICATE_PATH")),
            federated_token_file: self
                .federated_token_file
                .or_else(|| path("AZURE_FEDERATED_TOKEN_FILE")),
            authority_host: self.authority_host.or_else(|| var("AZURE_AUTHORITY_HOST")),
            msi_endpoint: self.msi_endpoint.or_else(|| var("AZURE_MSI_ENDPOINT")),
            use_azure_cli: self.use_azure_cli
                || var("AZURE_USE_AZURE_CLI").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            identity_endpoint: self.identity_endpoint.or_else(|| var("IDENTITY_ENDPOINT")),
            identity_header: self
                .identity_header
                .or_else(|| var("IDENTITY_HEADER").map(Secret::new)),
        }
    }
}
