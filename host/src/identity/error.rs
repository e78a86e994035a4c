use std::path::PathBuf;

/// Why no token could be had. No variant carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "no Azure credential: set a storage key or SAS, or AZURE_TENANT_ID and AZURE_CLIENT_ID with \
         AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE, or run \
         on Azure with a managed identity, or sign in with `az login` ({reason})"
    )]
    NoCredential { reason: String },
    #[error("{source_kind}: asking {endpoint} for a token failed: {reason}")]
    Request {
        source_kind: &'static str,
        endpoint: String,
        reason: String,
        /// Worth asking again (no answer, 429, 5xx).
        transient: bool,
    },
    #[error("{source_kind}: the token endpoint's answer is not a token: {reason}")]
    Answer {
        source_kind: &'static str,
        reason: String,
    },
    #[error("{source_kind}: cannot read {}: {reason}", path.display())]
    File {
        source_kind: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("azure cli: {0}")]
    Cli(String),
}

impl IdentityError {
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            IdentityError::Request {
                transient: true,
                ..
            }
        )
    }
}
