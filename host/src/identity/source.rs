//! Which credential is used, picked from the settings in the order of the
//! Azure SDKs' default chain: a service principal in the environment
//! (secret, then certificate), a workload identity, a managed identity (App
//! Service's endpoint, else the VM metadata service if it answers), the
//! Azure CLI.

use std::path::PathBuf;
use std::time::Duration;

use super::{AzureIdentity, IdentityError, Secret};

/// The VM metadata service's token endpoint.
pub(super) const IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
/// Entra ID of the public cloud.
pub(super) const PUBLIC_AUTHORITY: &str = "https://login.microsoftonline.com";
/// How long the metadata service may take to answer the probe that tells
/// whether it is there (the SDKs wait about as long).
const IMDS_PROBE: Duration = Duration::from_secs(1);

/// One way to get tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    ClientSecret {
        authority: String,
        tenant_id: String,
        client_id: String,
        secret: Secret,
    },
    ClientCertificate {
        authority: String,
        tenant_id: String,
        client_id: String,
        path: PathBuf,
    },
    WorkloadIdentity {
        authority: String,
        tenant_id: String,
        client_id: String,
        token_file: PathBuf,
    },
    /// App Service and Functions: `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`.
    AppService {
        endpoint: String,
        header: Secret,
        client_id: Option<String>,
    },
    /// The VM metadata service (or the endpoint `AZURE_MSI_ENDPOINT` names).
    Imds {
        endpoint: String,
        client_id: Option<String>,
    },
    AzureCli {
        tenant_id: Option<String>,
    },
}

impl Source {
    /// The first source `settings` make usable, in the SDKs' order. Only
    /// when nothing is configured is the network asked: the metadata
    /// service (any answer means it is there), then the Azure CLI.
    pub fn choose(settings: &AzureIdentity) -> Result<Source, IdentityError> {
        if let Some(source) = Source::configured(settings) {
            return Ok(source);
        }
        // The answer does not change while the process runs: asked once.
        static IMDS_ANSWERS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let endpoint = IMDS_ENDPOINT.to_owned();
        let probe = endpoint.clone();
        if *IMDS_ANSWERS.get_or_init(|| crate::io::wait(imds_answers(probe))) {
            return Ok(Source::Imds {
                endpoint,
                client_id: settings.client_id.clone(),
            });
        }
        if az_installed() {
            return Ok(Source::AzureCli {
                tenant_id: settings.tenant_id.clone(),
            });
        }
        Err(IdentityError::NoCredential {
            reason: "the VM metadata service did not answer and `az` is not installed".into(),
        })
    }

    /// The source the settings name, without asking the network.
    pub fn configured(settings: &AzureIdentity) -> Option<Source> {
        let authority = || {
            settings
                .authority_host
                .as_deref()
                .unwrap_or(PUBLIC_AUTHORITY)
                .trim_end_matches('/')
                .to_owned()
        };
        if let (Some(tenant_id), Some(client_id)) = (&settings.tenant_id, &settings.client_id) {
            if let Some(secret) = &settings.client_secret {
                return Some(Source::ClientSecret {
                    authority: authority(),
                    tenant_id: tenant_id.clone(),
                    client_id: client_id.clone(),
                    secret: secret.clone(),
                });
            }
            if let Some(path) = &settings.client_certificate_path {
                return Some(Source::ClientCertificate {
                    authority: authority(),
                    tenant_id: tenant_id.clone(),
                    client_id: client_id.clone(),
                    path: path.clone(),
                });
            }
            if let Some(token_file) = &settings.federated_token_file {
                return Some(Source::WorkloadIdentity {
                    authority: authority(),
                    tenant_id: tenant_id.clone(),
                    client_id: client_id.clone(),
                    token_file: token_file.clone(),
                });
            }
        }
        if let (Some(endpoint), Some(header)) =
            (&settings.identity_endpoint, &settings.identity_header)
        {
            return Some(Source::AppService {
                endpoint: endpoint.clone(),
                header: header.clone(),
                client_id: settings.client_id.clone(),
            });
        }
        if let Some(endpoint) = &settings.msi_endpoint {
            return Some(Source::Imds {
                endpoint: endpoint.clone(),
                client_id: settings.client_id.clone(),
            });
        }
        if settings.use_azure_cli {
            return Some(Source::AzureCli {
                tenant_id: settings.tenant_id.clone(),
            });
        }
        None
    }

    /// What the log says was used.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::ClientSecret { .. } => "service principal (client secret)",
            Source::ClientCertificate { .. } => "service principal (certificate)",
            Source::WorkloadIdentity { .. } => "workload identity",
            Source::AppService { .. } => "managed identity (App Service)",
            Source::Imds { .. } => "managed identity (VM metadata service)",
            Source::AzureCli { .. } => "azure cli",
        }
    }

    /// The identity's client id, when one is named (no secret).
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Source::ClientSecret { client_id, .. }
            | Source::ClientCertificate { client_id, .. }
            | Source::WorkloadIdentity { client_id, .. } => Some(client_id),
            Source::AppService { client_id, .. } | Source::Imds { client_id, .. } => {
                client_id.as_deref()
            }
            Source::AzureCli { .. } => None,
        }
    }

    /// Logs which source is used, once per process for each distinct one.
    pub fn log_once(&self, used_for: &'static str) {
        use std::collections::HashSet;
        use std::sync::{Mutex, OnceLock};
        /// What a source was used for, its kind and its client id.
        type Logged = (&'static str, &'static str, Option<String>);
        static LOGGED: OnceLock<Mutex<HashSet<Logged>>> = OnceLock::new();
        let key = (used_for, self.kind(), self.client_id().map(str::to_owned));
        let first = LOGGED
            .get_or_init(Mutex::default)
            .lock()
            .map(|mut logged| logged.insert(key))
            .unwrap_or(true);
        if first {
            tracing::info!(
                used_for,
                credential = self.kind(),
                client_id = self.client_id().unwrap_or("(the only identity)"),
                "Azure credential chosen"
            );
        }
    }
}

/// Whether the metadata service answers at all: like the SDKs, a request
/// without the `Metadata` header, whose refusal (400) still says it is
/// there.
async fn imds_answers(endpoint: String) -> bool {
    let Ok(client) = reqwest::Client::builder()
        .timeout(IMDS_PROBE)
        .no_proxy()
        .build()
    else {
        return false;
    };
    client.get(&endpoint).send().await.is_ok()
}

fn az_installed() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("az").is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> AzureIdentity {
        AzureIdentity::default().with_vars(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn sources_are_chosen_in_the_azure_sdks_order() {
        let principal = [("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c")];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut vars = principal.to_vec();
            vars.extend_from_slice(extra);
            Source::configured(&settings(&vars)).map(|s| s.kind())
        };
        let everything = [
            ("AZURE_CLIENT_SECRET", "s"),
            ("AZURE_CLIENT_CERTIFICATE_PATH", "/c.pem"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/token"),
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi"),
            ("IDENTITY_HEADER", "h"),
        ];
        assert_eq!(with(&everything), Some("service principal (client secret)"));
        assert_eq!(
            with(&everything[1..]),
            Some("service principal (certificate)")
        );
        assert_eq!(with(&everything[2..]), Some("workload identity"));
        assert_eq!(
            with(&everything[3..]),
            Some("managed identity (App Service)")
        );
        // A client id alone names the user-assigned identity to use.
        let app_service = Source::configured(&settings(&[
            ("AZURE_CLIENT_ID", "c"),
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi"),
            ("IDENTITY_HEADER", "h"),
        ]));
        assert!(matches!(
            app_service,
            Some(Source::AppService { client_id: Some(ref c), .. }) if c == "c"
        ));
        // The endpoint without its header is not App Service's.
        assert_eq!(
            Source::configured(&settings(&[("IDENTITY_ENDPOINT", "http://x")])),
            None
        );
        assert_eq!(
            Source::configured(&settings(&[("AZURE_MSI_ENDPOINT", "http://x")])).map(|s| s.kind()),
            Some("managed identity (VM metadata service)")
        );
        assert_eq!(
            Source::configured(&settings(&[("AZURE_USE_AZURE_CLI", "true")])).map(|s| s.kind()),
            Some("azure cli")
        );
        assert_eq!(Source::configured(&settings(&[])), None);
    }

    #[test]
    fn what_a_file_sets_wins_over_the_environment() {
        let file = AzureIdentity {
            client_id: Some("from-file".into()),
            ..AzureIdentity::default()
        };
        let merged = file.with_vars(|name| Some(format!("env-{name}")));
        assert_eq!(merged.client_id.as_deref(), Some("from-file"));
        assert_eq!(merged.tenant_id.as_deref(), Some("env-AZURE_TENANT_ID"));
    }

    #[test]
    fn no_secret_is_shown() {
        let source = Source::configured(&settings(&[
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_SECRET", "the-client-secret"),
        ]))
        .unwrap();
        let shown = format!("{source:?} {}", source.kind());
        assert!(!shown.contains("the-client-secret"), "{shown}");
    }
}
