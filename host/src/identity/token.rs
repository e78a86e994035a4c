//! Asking one source for a token of one scope: each protocol as Microsoft
//! documents it. The App Service and VM metadata endpoints take a
//! `resource` (the scope without `/.default`); Entra's v2 token endpoint
//! takes the scope; the Azure CLI is asked with `--scope`.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use super::{IdentityError, Secret, Source};

/// A bearer token and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub secret: Secret,
    pub expires_at: SystemTime,
}

impl AccessToken {
    /// Whether it still has more than `margin` left at `now`.
    pub(super) fn fresh(&self, now: SystemTime, margin: Duration) -> bool {
        self.expires_at
            .duration_since(now)
            .is_ok_and(|left| left > margin)
    }
}

/// Each request's own limit; retries come on top.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a certificate's signed assertion is valid.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(600);

/// Entra's and the managed-identity endpoints' answer. Managed identity
/// gives `expires_on` (seconds since the epoch, as a string on App
/// Service and IMDS); Entra's v2 endpoint `expires_in` (seconds from now).
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_on: Option<serde_json::Value>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

/// What `az account get-access-token` prints (`expires_on` since 2.54).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CliAnswer {
    access_token: String,
    #[serde(default, rename = "expires_on")]
    expires_on: Option<serde_json::Value>,
}

pub(super) fn http_client() -> Result<reqwest::Client, IdentityError> {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| IdentityError::Request {
            source_kind: "token client",
            endpoint: String::new(),
            reason: e.to_string(),
            transient: false,
        })
}

/// One token of `scope` from `source`.
pub(super) async fn fetch(
    http: &reqwest::Client,
    source: &Source,
    scope: &str,
) -> Result<AccessToken, IdentityError> {
    let kind = source.kind();
    let resource = scope.strip_suffix("/.default").unwrap_or(scope);
    match source {
        Source::AppService {
            endpoint,
            header,
            client_id,
        } => {
            let mut query = vec![("api-version", "2019-08-01"), ("resource", resource)];
            if let Some(id) = client_id {
                query.push(("client_id", id));
            }
            let request = http
                .get(endpoint)
                .query(&query)
                .header("X-IDENTITY-HEADER", header.expose());
            answer(kind, endpoint, request).await
        }
        Source::Imds {
            endpoint,
            client_id,
        } => {
            let mut query = vec![("api-version", "2018-02-01"), ("resource", resource)];
            if let Some(id) = client_id {
                query.push(("client_id", id));
            }
            let request = http.get(endpoint).query(&query).header("Metadata", "true");
            answer(kind, endpoint, request).await
        }
        Source::ClientSecret {
            authority,
            tenant_id,
            client_id,
            secret,
        } => {
            let url = token_url(authority, tenant_id);
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret.expose()),
                ("scope", scope),
            ];
            answer(kind, &url, http.post(&url).form(&form)).await
        }
        Source::WorkloadIdentity {
            authority,
            tenant_id,
            client_id,
            token_file,
        } => {
            // Kubernetes rotates the file; it is read again for each token
            // (a small local file: read in place).
            let assertion =
                std::fs::read_to_string(token_file).map_err(|e| IdentityError::File {
                    source_kind: kind,
                    path: token_file.clone(),
                    reason: e.to_string(),
                })?;
            let url = token_url(authority, tenant_id);
            assert_with(http, kind, &url, client_id, assertion.trim(), scope).await
        }
        Source::ClientCertificate {
            authority,
            tenant_id,
            client_id,
            path,
        } => {
            let url = token_url(authority, tenant_id);
            let assertion = signed_assertion(path, client_id, &url)?;
            assert_with(http, kind, &url, client_id, assertion.expose(), scope).await
        }
        Source::AzureCli { tenant_id } => {
            let mut args = vec![
                "account",
                "get-access-token",
                "--output",
                "json",
                "--scope",
                scope,
            ];
            if let Some(tenant) = tenant_id {
                args.extend(["--tenant", tenant]);
            }
            let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
            let output = tokio::task::spawn_blocking(move || {
                std::process::Command::new("az").args(&args).output()
            })
            .await
            .map_err(|e| IdentityError::Cli(e.to_string()))?
            .map_err(|e| IdentityError::Cli(format!("cannot run `az`: {e}")))?;
            if !output.status.success() {
                let said = String::from_utf8_lossy(&output.stderr);
                return Err(IdentityError::Cli(format!(
                    "`az account get-access-token` failed ({}): {}",
                    output.status,
                    said.trim().chars().take(300).collect::<String>()
                )));
            }
            let parsed: CliAnswer = serde_json::from_slice(&output.stdout)
                .map_err(|e| IdentityError::Cli(format!("unexpected answer: {e}")))?;
            let expires = parsed
                .expires_on
                .as_ref()
                .and_then(seconds)
                .ok_or_else(|| {
                    IdentityError::Cli(
                        "no `expires_on` in the answer: Azure CLI 2.54 or later is needed".into(),
                    )
                })?;
            Ok(AccessToken {
                secret: Secret::new(parsed.access_token),
                expires_at: UNIX_EPOCH + Duration::from_secs(expires),
            })
        }
    }
}

fn token_url(authority: &str, tenant_id: &str) -> String {
    format!("{authority}/{tenant_id}/oauth2/v2.0/token")
}

/// The client-credentials grant with a signed assertion (a workload
/// identity's federated token, a certificate's JWT).
async fn assert_with(
    http: &reqwest::Client,
    kind: &'static str,
    url: &str,
    client_id: &str,
    assertion: &str,
    scope: &str,
) -> Result<AccessToken, IdentityError> {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion),
        ("scope", scope),
    ];
    answer(kind, url, http.post(url).form(&form)).await
}

/// Sends `request` and reads the token out of its answer.
async fn answer(
    kind: &'static str,
    endpoint: &str,
    request: reqwest::RequestBuilder,
) -> Result<AccessToken, IdentityError> {
    let failed = |reason: String, transient: bool| IdentityError::Request {
        source_kind: kind,
        endpoint: endpoint.to_owned(),
        reason,
        transient,
    };
    let response = request
        .send()
        .await
        .map_err(|e| failed(e.to_string(), true))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| failed(e.to_string(), true))?;
    if !status.is_success() {
        // Entra's and the platforms' error answers name the problem
        // (AADSTS codes); they carry no secret.
        let said: String = String::from_utf8_lossy(&body).chars().take(300).collect();
        let transient = status.as_u16() == 429 || status.is_server_error();
        return Err(failed(format!("HTTP {status}: {said}"), transient));
    }
    let parsed: TokenAnswer = serde_json::from_slice(&body).map_err(|e| IdentityError::Answer {
        source_kind: kind,
        reason: e.to_string(),
    })?;
    let now = SystemTime::now();
    let expires_at = match (
        parsed.expires_on.as_ref().and_then(seconds),
        parsed.expires_in.as_ref().and_then(seconds),
    ) {
        (Some(on), _) => UNIX_EPOCH + Duration::from_secs(on),
        (None, Some(within)) => now + Duration::from_secs(within),
        (None, None) => {
            return Err(IdentityError::Answer {
                source_kind: kind,
                reason: "neither expires_on nor expires_in".into(),
            });
        }
    };
    Ok(AccessToken {
        secret: Secret::new(parsed.access_token),
        expires_at,
    })
}

/// A number of seconds, given as a number or a string of digits.
fn seconds(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The JWT a certificate's holder signs to prove it (RFC 7523), as Entra
/// wants it: PS256 over the claims, the certificate named by its SHA-256
/// thumbprint (`x5t#S256`).
fn signed_assertion(path: &Path, client_id: &str, audience: &str) -> Result<Secret, IdentityError> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use sha2::Digest;

    let unreadable = |reason: String| IdentityError::File {
        source_kind: "service principal (certificate)",
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
    let certificate =
        pem_block(&pem, "CERTIFICATE").ok_or_else(|| unreadable("no CERTIFICATE block".into()))?;
    let der = STANDARD
        .decode(certificate)
        .map_err(|e| unreadable(format!("the CERTIFICATE block is not base64: {e}")))?;
    let key = rsa_key(&pem).map_err(unreadable)?;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
    header.x5t_s256 = Some(URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&der)));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let claims = serde_json::json!({
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": now,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME.as_secs(),
    });
    jsonwebtoken::encode(&header, &claims, &key)
        .map(Secret::new)
        .map_err(|e| unreadable(format!("cannot sign with the key: {e}")))
}

/// The file's RSA private key, PKCS#8 (`PRIVATE KEY`, as Azure Key Vault
/// and openssl write it) or PKCS#1 (`RSA PRIVATE KEY`).
fn rsa_key(pem: &str) -> Result<jsonwebtoken::EncodingKey, String> {
    use base64::Engine;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;

    let der = |body: String| {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| format!("the private key is not base64: {e}"))
    };
    if let Some(body) = pem_block(pem, "RSA PRIVATE KEY") {
        return Ok(jsonwebtoken::EncodingKey::from_rsa_der(&der(body)?));
    }
    let body = pem_block(pem, "PRIVATE KEY").ok_or("no PRIVATE KEY block")?;
    let key = rsa::RsaPrivateKey::from_pkcs8_der(&der(body)?)
        .map_err(|e| format!("not an RSA private key: {e}"))?;
    let pkcs1 = key
        .to_pkcs1_der()
        .map_err(|e| format!("not an RSA private key: {e}"))?;
    Ok(jsonwebtoken::EncodingKey::from_rsa_der(pkcs1.as_bytes()))
}

/// The base64 body of the first `-----BEGIN {label}-----` block.
fn pem_block(pem: &str, label: &str) -> Option<String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    Some(pem[start..stop].split_whitespace().collect())
}
