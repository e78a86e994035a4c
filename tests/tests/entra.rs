//! Entra ID tokens: the managed-identity protocols (App Service's and the
//! VM metadata service's) against a local token endpoint, and Kafka's SASL
//! OAUTHBEARER through librdkafka's token refresh against a listener that
//! speaks the broker's side of the SASL handshake and records the tokens
//! it is sent. tansu takes no OAUTHBEARER tokens, and no broker here checks
//! one as Event Hubs does: what only Event Hubs shows (that it accepts the
//! token and the identity's roles, re-authentication on a live connection)
//! is listed in docs/src/deploy-azure.md.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use sluice_host::identity::{Credential, Secret, Source};
use sluice_host::kafka::{GroupConsumer, GroupStart, KafkaConfig, OAuthBearer, Producer};
use sluice_host::retry::Backoff;
use sluice_tests::identity::TokenEndpoint;

const EVENT_HUBS: &str = "https://ns.servicebus.windows.net/.default";
const EVENT_HUBS_RESOURCE: &str = "https://ns.servicebus.windows.net";

fn app_service(endpoint: &TokenEndpoint, header: &str) -> Source {
    Source::AppService {
        endpoint: endpoint.app_service(),
        header: Secret::new(header),
        client_id: Some("user-assigned-client-id".into()),
    }
}

/// Polls `done` until it holds or `within` passes.
fn wait_for(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn both_managed_identity_protocols_are_asked_for_the_resource_and_asked_again_before_expiry() {
    let endpoint = TokenEndpoint::start(Duration::from_secs(3));
    let sources = [
        app_service(&endpoint, &endpoint.header),
        Source::Imds {
            endpoint: endpoint.imds(),
            client_id: Some("user-assigned-client-id".into()),
        },
    ];
    for (n, source) in sources.into_iter().enumerate() {
        let protocol = ["appservice", "imds"][n];
        let credential = Arc::new(
            Credential::new(source)
                .unwrap()
                .with_refresh_margin(Duration::from_secs(1)),
        );
        let first = credential.token_blocking(EVENT_HUBS).unwrap();
        let asked: Vec<_> = endpoint
            .issued()
            .into_iter()
            .filter(|i| i.protocol == protocol)
            .collect();
        assert_eq!(asked.len(), 1, "{protocol}: {asked:?}");
        assert_eq!(asked[0].resource, EVENT_HUBS_RESOURCE, "{protocol}");
        assert_eq!(
            asked[0].client_id.as_deref(),
            Some("user-assigned-client-id")
        );
        assert_eq!(first.secret.expose(), asked[0].token);
        // Kept while it has more than the margin left...
        let again = credential.token_blocking(EVENT_HUBS).unwrap();
        assert_eq!(again, first);
        // ...and replaced once it has less, before it expires.
        wait_for(Duration::from_secs(10), "a new token", || {
            credential.token_blocking(EVENT_HUBS).unwrap() != first
        });
        let issued: Vec<_> = endpoint
            .issued()
            .into_iter()
            .filter(|i| i.protocol == protocol)
            .collect();
        assert_eq!(
            issued.len(),
            2,
            "{protocol}: asked once per token: {issued:?}"
        );
        assert!(
            issued[1].issued_at < issued[0].expires_at,
            "{protocol}: the new token was asked for after the old one expired"
        );
    }
    assert!(endpoint.refused().is_empty(), "{:?}", endpoint.refused());
}

#[test]
fn a_wrong_identity_header_is_refused_and_the_error_shows_no_secret() {
    let endpoint = TokenEndpoint::start(Duration::from_secs(3600));
    let credential = Arc::new(
        Credential::new(app_service(&endpoint, "a-wrong-header-value"))
            .unwrap()
            .with_backoff(Backoff::NONE),
    );
    let error = credential
        .token_blocking(EVENT_HUBS)
        .unwrap_err()
        .to_string();
    assert!(error.contains("managed identity (App Service)"), "{error}");
    assert!(error.contains("400"), "{error}");
    assert!(!error.contains("a-wrong-header-value"), "{error}");
    assert!(endpoint.issued().is_empty());
}

/// The broker's side of SASL/OAUTHBEARER (ApiVersions, SaslHandshake v0,
/// then the client's first message): records each token sent and when, then drops
/// the connection, so that librdkafka connects again with the token it
/// holds then.
struct SaslListener {
    port: u16,
    seen: Arc<Mutex<Vec<(String, SystemTime)>>>,
}

impl SaslListener {
    fn start() -> SaslListener {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let record = record.clone();
                std::thread::spawn(move || {
                    if let Some(token) = handshake(stream) {
                        record.lock().unwrap().push((token, SystemTime::now()));
                    }
                });
            }
        });
        SaslListener { port, seen }
    }

    fn tokens(&self) -> Vec<(String, SystemTime)> {
        self.seen.lock().unwrap().clone()
    }

    /// A client that talks to this listener with Entra ID tokens.
    fn config(&self, oauth: OAuthBearer) -> KafkaConfig {
        let mut config = KafkaConfig::new(format!("127.0.0.1:{}", self.port))
            .with("security.protocol", "SASL_PLAINTEXT")
            .with("reconnect.backoff.max.ms", "200")
            .with_oauth(oauth);
        config.request_timeout = Duration::from_secs(2);
        config
    }
}

fn frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(length) as usize];
    stream.read_exact(&mut body).ok()?;
    Some(body)
}

fn answer(stream: &mut TcpStream, correlation: &[u8], body: &[u8]) -> Option<()> {
    let length = (correlation.len() + body.len()) as u32;
    stream.write_all(&length.to_be_bytes()).ok()?;
    stream.write_all(correlation).ok()?;
    stream.write_all(body).ok()
}

/// An ApiVersions v0 body: `error` and the APIs offered as (key, min, max).
fn api_versions(error: i16, apis: &[(i16, i16, i16)]) -> Vec<u8> {
    let mut body = error.to_be_bytes().to_vec();
    body.extend_from_slice(&(apis.len() as i32).to_be_bytes());
    for (key, min, max) in apis {
        for n in [key, min, max] {
            body.extend_from_slice(&n.to_be_bytes());
        }
    }
    body
}

fn handshake(mut stream: TcpStream) -> Option<String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    loop {
        let request = frame(&mut stream)?;
        let api_key = i16::from_be_bytes([*request.first()?, *request.get(1)?]);
        let version = i16::from_be_bytes([*request.get(2)?, *request.get(3)?]);
        let correlation = request.get(4..8)?.to_vec();
        match api_key {
            // ApiVersions: only v0 (a later version is answered, as Kafka
            // does, with UNSUPPORTED_VERSION in v0's format), offering
            // SaslHandshake v0, after which the token comes as a bare frame.
            18 if version > 0 => {
                answer(&mut stream, &correlation, &api_versions(35, &[(18, 0, 0)]))?
            }
            18 => answer(
                &mut stream,
                &correlation,
                &api_versions(0, &[(18, 0, 0), (17, 0, 0), (3, 0, 1)]),
            )?,
            17 => {
                let mechanism = b"OAUTHBEARER";
                let mut body = 0i16.to_be_bytes().to_vec();
                body.extend_from_slice(&1i32.to_be_bytes());
                body.extend_from_slice(&(mechanism.len() as i16).to_be_bytes());
                body.extend_from_slice(mechanism);
                answer(&mut stream, &correlation, &body)?;
                // RFC 7628's client-first message:
                // `n,,\x01auth=Bearer <token>\x01\x01`.
                let first = String::from_utf8(frame(&mut stream)?).ok()?;
                let token = first.split("auth=Bearer ").nth(1)?.split('\u{1}').next()?;
                return Some(token.to_owned());
            }
            _ => return None,
        }
    }
}

#[test]
fn kafka_clients_send_entra_tokens_and_refresh_them_before_they_expire() {
    // Tokens live an hour in Azure and librdkafka refreshes them at 80% of
    // that; here they live 8 s so that three are seen in a test. Shorter
    // lives (3 s) left too little slack for a refresh on a loaded machine,
    // a timescale no real token comes near.
    let endpoint = TokenEndpoint::start(Duration::from_secs(8));
    let credential = Arc::new(
        Credential::new(app_service(&endpoint, &endpoint.header))
            .unwrap()
            .with_refresh_margin(Duration::from_secs(2)),
    );
    let broker = SaslListener::start();
    let config = broker.config(OAuthBearer::new(credential, EVENT_HUBS));

    // A bounded read's consumer asks for metadata before it ever polls:
    // its first token is served before that, or it never connects.
    let offsets = sluice_host::kafka::end_offsets(&config, &["t".to_owned()]);
    assert!(offsets.is_err(), "the listener answers no metadata");
    assert!(
        !broker.tokens().is_empty(),
        "a bounded consumer sent no token before its metadata request (issued: {})",
        endpoint.issued().len()
    );

    // The producer (its own poll thread) and the group consumer (polled by
    // the worker) each sign in, and keep signing in with fresh tokens.
    let before = broker.tokens().len();
    let producer = Producer::new(&config).unwrap();
    wait_for(Duration::from_secs(10), "the producer's token", || {
        broker.tokens().len() > before
    });
    drop(producer);
    let mut consumer = GroupConsumer::subscribe(
        &config,
        "entra-group",
        &["t".to_owned()],
        GroupStart::Earliest,
    )
    .unwrap();
    let start = broker.tokens().len();
    let asked_before = endpoint.issued().len();
    wait_for(Duration::from_secs(60), "three tokens on the wire", || {
        let _ = consumer.poll(10, Duration::from_millis(100));
        let mut distinct: Vec<String> = broker.tokens()[start..]
            .iter()
            .map(|(t, _)| t.clone())
            .collect();
        distinct.dedup();
        distinct.len() >= 3
    });

    let issued = endpoint.issued();
    for (token, seen_at) in broker.tokens() {
        let Some(from) = issued.iter().find(|i| i.token == token) else {
            panic!("a token the endpoint never issued was sent");
        };
        assert_eq!(from.resource, EVENT_HUBS_RESOURCE);
        assert!(seen_at < from.expires_at, "an expired token was sent");
    }
    // While a client runs, each token is replaced before it expires.
    let while_polled = &issued[asked_before..];
    assert!(while_polled.len() >= 2, "{while_polled:?}");
    for pair in while_polled.windows(2) {
        assert!(
            pair[1].issued_at < pair[0].expires_at,
            "a token was replaced only after it expired: {pair:?}"
        );
    }
    assert!(endpoint.refused().is_empty(), "{:?}", endpoint.refused());
}

#[test]
fn the_schema_registry_is_signed_in_to_with_a_key_and_secret_or_a_token() {
    use base64::Engine;
    use sluice_host::codec::{RegistryAuth, SchemaRegistry};
    use sluice_tests::schema_registry;

    let schema = r#"{"type": "record", "name": "R", "fields": [{"name": "a", "type": "long"}]}"#;
    let basic = base64::engine::general_purpose::STANDARD.encode("API-KEY:api-secret-value");
    let cases = [
        (
            format!("Basic {basic}"),
            RegistryAuth::Basic {
                username: "API-KEY".into(),
                password: Secret::new("api-secret-value"),
            },
        ),
        (
            "Bearer registry-token-value".to_owned(),
            RegistryAuth::Bearer(Secret::new("registry-token-value")),
        ),
    ];
    for (authorization, auth) in cases {
        let registry = schema_registry::start_requiring(vec![(1, schema.into())], &authorization);
        let shown = format!("{auth:?}");
        assert!(!shown.contains("value"), "a secret is shown: {shown}");
        let signed = SchemaRegistry::new(&registry.url)
            .unwrap()
            .with_auth(Some(auth))
            .with_backoff(Backoff::NONE);
        assert!(signed.schema(1).is_ok(), "{authorization}");
        // Without it the registry refuses, and that is the registry's
        // fault, never the record's.
        let unsigned = SchemaRegistry::new(&registry.url)
            .unwrap()
            .with_backoff(Backoff::NONE);
        let error = unsigned.schema(1).unwrap_err().to_string();
        assert!(error.contains("401"), "{error}");
        assert!(!error.contains("value"), "{error}");
    }
}
