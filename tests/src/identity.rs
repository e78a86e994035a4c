//! A managed-identity token endpoint for tests, speaking both protocols
//! Azure has: App Service's and Functions' (`IDENTITY_ENDPOINT`, the secret
//! of `IDENTITY_HEADER` in `X-IDENTITY-HEADER`, api-version 2019-08-01) at
//! `/appservice`, and the VM metadata service's (`Metadata: true`) at
//! `/imds`. Tokens are JWTs as Entra's look to Azurite's OAuth check
//! (issuer, audience the resource asked for, `nbf`, `exp`); they are not
//! signed, which Azurite's `--oauth basic` does not check. Every request
//! is recorded, so a test sees what was asked for and what was issued.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// One token the endpoint gave.
#[derive(Debug, Clone)]
pub struct Issued {
    /// `appservice` or `imds`.
    pub protocol: String,
    pub resource: String,
    pub client_id: Option<String>,
    pub token: String,
    pub issued_at: SystemTime,
    pub expires_at: SystemTime,
}

/// How the endpoint answers.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub lifetime: Duration,
    /// The audience put in tokens instead of the resource asked for.
    pub audience: Option<String>,
}

pub struct TokenEndpoint {
    pub base: String,
    /// What `X-IDENTITY-HEADER` must carry.
    pub header: String,
    issued: Arc<Mutex<Vec<Issued>>>,
    refused: Arc<Mutex<Vec<String>>>,
    behaviour: Arc<Mutex<Behaviour>>,
}

impl TokenEndpoint {
    /// Serves tokens of `lifetime` until the process ends.
    pub fn start(lifetime: Duration) -> TokenEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let header = format!("identity-header-{}", std::process::id());
        let issued = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(Mutex::new(Behaviour {
            lifetime,
            audience: None,
        }));
        let (log, refusals, wanted, how) = (
            issued.clone(),
            refused.clone(),
            header.clone(),
            behaviour.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (status, body) = answer(&stream, &wanted, &how, &log, &refusals);
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = (&stream).write_all(response.as_bytes());
            }
        });
        TokenEndpoint {
            base,
            header,
            issued,
            refused,
            behaviour,
        }
    }

    /// App Service's endpoint (`IDENTITY_ENDPOINT`).
    pub fn app_service(&self) -> String {
        format!("{}/appservice", self.base)
    }

    /// The VM metadata service's endpoint (`AZURE_MSI_ENDPOINT`).
    pub fn imds(&self) -> String {
        format!("{}/imds", self.base)
    }

    pub fn issued(&self) -> Vec<Issued> {
        self.issued.lock().unwrap().clone()
    }

    /// Why requests were refused (a missing header, a wrong api-version).
    pub fn refused(&self) -> Vec<String> {
        self.refused.lock().unwrap().clone()
    }

    /// Tokens from now on name `audience`, whatever was asked for.
    pub fn set_audience(&self, audience: Option<&str>) {
        self.behaviour.lock().unwrap().audience = audience.map(str::to_owned);
    }
}

fn answer(
    stream: &std::net::TcpStream,
    wanted_header: &str,
    behaviour: &Mutex<Behaviour>,
    issued: &Mutex<Vec<Issued>>,
    refused: &Mutex<Vec<String>>,
) -> (&'static str, String) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return ("400 Bad Request", "{}".into());
    }
    let mut headers = Vec::new();
    let mut line = String::new();
    while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
        if let Some((name, value)) = line.trim_end().split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        line.clear();
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let target = request_line.split_whitespace().nth(1).unwrap_or_default();
    let url = url::Url::parse(&format!("http://endpoint{target}")).expect("a request target");
    let query = |name: &str| {
        url.query_pairs()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
    };
    let refuse = |reason: String| {
        refused.lock().unwrap().push(reason.clone());
        (
            "400 Bad Request",
            serde_json::json!({"error": reason}).to_string(),
        )
    };
    let protocol = url.path().trim_start_matches('/').to_owned();
    match protocol.as_str() {
        "appservice" => {
            if header("x-identity-header") != Some(wanted_header) {
                return refuse("appservice: X-IDENTITY-HEADER missing or wrong".into());
            }
            if query("api-version").as_deref() != Some("2019-08-01") {
                return refuse(format!(
                    "appservice: api-version {:?}",
                    query("api-version")
                ));
            }
        }
        "imds" => {
            if header("metadata") != Some("true") {
                return refuse("imds: no `Metadata: true` header".into());
            }
        }
        other => return refuse(format!("no endpoint /{other}")),
    }
    let Some(resource) = query("resource") else {
        return refuse(format!("{protocol}: no resource"));
    };
    let client_id = query("client_id");
    let (lifetime, audience) = {
        let how = behaviour.lock().unwrap();
        (how.lifetime, how.audience.clone())
    };
    let now = SystemTime::now();
    let expires_at = now + lifetime;
    let epoch = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let number = issued.lock().unwrap().len();
    let claims = serde_json::json!({
        "aud": audience.unwrap_or_else(|| resource.clone()),
        "iss": "https://sts.windows.net/00000000-0000-0000-0000-000000000001/",
        "iat": epoch(now) - 60,
        "nbf": epoch(now) - 60,
        "exp": epoch(expires_at),
        "appid": client_id.clone().unwrap_or_default(),
        "uti": format!("token-{number}"),
    });
    let token = [
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(format!("not-signed-{number}")),
    ]
    .join(".");
    issued.lock().unwrap().push(Issued {
        protocol,
        resource: resource.clone(),
        client_id,
        token: token.clone(),
        issued_at: now,
        expires_at,
    });
    let body = serde_json::json!({
        "access_token": token,
        "expires_on": epoch(expires_at).to_string(),
        "expires_in": lifetime.as_secs().to_string(),
        "resource": resource,
        "token_type": "Bearer",
    });
    ("200 OK", body.to_string())
}
