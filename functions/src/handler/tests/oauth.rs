//! OAuth2 bearer tokens against a local identity provider: an HTTP server
//! with an OpenID configuration and a JWKS, and P-256 keys made for the test.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use sluice_host::registry::Registry;
use sluice_host::storage::AzureCredentials;
use sluice_tests::{broker, fresh_topic, runtime};

use super::answer;
use crate::handler::admin::Admin;
use crate::handler::data::DataApi;
use crate::handler::oauth::{OAuth, OAuthConfig, TokenError};
use crate::handler::{Access, AppConfig, OAuthRule, PayloadLimit};
use sluice_host::fetch::{FetchLimits, reader_pool};

const ISSUER_PATH: &str = "/tenant/v2.0";
const AUDIENCE: &str = "api://sluice";
const ADMIN_ROLE: &str = "Sluice.Admin";
const ADMIN_KEY: &str = "oauth-admin-key-0123456789abcdef0123";
const DATA_KEY: &str = "oauth-data-key-0123456789abcdef01234";

struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
    jwk: Value,
}

fn signing_key(kid: &str) -> SigningKey {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    // Uncompressed point: 0x04, then x and y.
    let point = pair.public_key().as_ref();
    SigningKey {
        kid: kid.to_owned(),
        pkcs8: pkcs8.as_ref().to_vec(),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }),
    }
}

/// The identity provider: what its JWKS holds, how often it was read, and
/// whether it is down (its JWKS answers 503).
struct Provider {
    issuer: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

async fn provider(keys: &[&SigningKey]) -> Provider {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let issuer = format!("{base}{ISSUER_PATH}");
    let published = Arc::new(Mutex::new(keys.iter().map(|k| k.jwk.clone()).collect()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let down = Arc::new(AtomicBool::new(false));
    let discovery = json!({"issuer": issuer, "jwks_uri": format!("{base}/keys")});
    let app = axum::Router::new()
        .route(
            &format!("{ISSUER_PATH}/.well-known/openid-configuration"),
            get(move || async move { Json(discovery) }),
        )
        .route(
            "/keys",
            get({
                let (published, fetches, down) = (published.clone(), fetches.clone(), down.clone());
                move || async move {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    if down.load(Ordering::SeqCst) {
                        return Err(StatusCode::SERVICE_UNAVAILABLE);
                    }
                    Ok(Json(json!({"keys": *published.lock().unwrap()})))
                }
            }),
        );
    tokio::spawn(axum::serve(listener, app).into_future());
    Provider {
        issuer,
        keys: published,
        fetches,
        down,
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A token signed by `key`: valid for the provider unless `changes` say
/// otherwise (they replace claims).
fn token(key: &SigningKey, issuer: &str, changes: Value) -> String {
    let mut claims = json!({
        "iss": issuer, "aud": AUDIENCE, "sub": "user-1",
        "exp": now() + 600, "nbf": now() - 10, "roles": [],
    });
    for (name, value) in changes.as_object().unwrap() {
        claims[name] = value.clone();
    }
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    encode(&header, &claims, &EncodingKey::from_ec_der(&key.pkcs8)).unwrap()
}

fn verifier(issuer: &str, refetch_after: Duration) -> Arc<OAuth> {
    Arc::new(OAuth::new(OAuthConfig {
        issuer: issuer.to_owned(),
        audience: AUDIENCE.to_owned(),
        jwks_url: None,
        refetch_after,
    }))
}

fn app(verifier: Arc<OAuth>, dir: &std::path::Path) -> AppConfig {
    let registry = Registry::open(dir.to_str().unwrap(), &AzureCredentials::default()).unwrap();
    let rule = |role: Option<&str>| OAuthRule {
        verifier: verifier.clone(),
        role: role.map(str::to_owned),
    };
    AppConfig {
        topics: dir.join("topics.json"),
        connections: dir.join("connections.json"),
        out: None,
        enrich: None,
        admin: Some(Arc::new(Admin {
            registry: Arc::new(registry),
            runtime: runtime().clone(),
            kafka: None,
            exports: None,
        })),
        data: Some(Arc::new(DataApi {
            readers: Arc::new(reader_pool(broker())),
            limits: FetchLimits::default(),
            transforms: super::folder_transforms(),
            schema_registry: None,
            lake: None,
        })),
        transforms: super::folder_transforms(),
        metrics: None,
        access: Arc::new(Access {
            admin_key: Some(super::key(ADMIN_KEY)),
            data_key: Some(super::key(DATA_KEY)),
            admin_oauth: Some(rule(Some(ADMIN_ROLE))),
            data_oauth: Some(rule(None)),
            ..Access::default()
        }),
        payload_limit: PayloadLimit::built_in(),
    }
}

async fn get_with(config: &AppConfig, path: &str, authorization: &str) -> (StatusCode, String) {
    let request = Request::get(path)
        .header("authorization", authorization)
        .body(Body::empty())
        .unwrap();
    let answered = answer(config, request).await;
    (answered.status, answered.text())
}

#[tokio::test]
async fn tokens_from_the_issuer_are_accepted_and_every_bad_one_is_refused() {
    let (k1, k2, stranger) = (signing_key("k1"), signing_key("k2"), signing_key("k1"));
    let idp = provider(&[&k1]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = app(verifier(&idp.issuer, Duration::ZERO), dir.path());
    // A missing topic answers 404 only to a caller who got through.
    let fetch = format!("/api/fetch?topic={}", fresh_topic("oauth-none"));
    let bearer = |t: &str| format!("Bearer {t}");

    let good = token(&k1, &idp.issuer, json!({}));
    assert_eq!(
        get_with(&config, &fetch, &bearer(&good)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get_with(&config, &fetch, &format!("Bearer {DATA_KEY}"))
            .await
            .0,
        StatusCode::NOT_FOUND,
        "the key still works"
    );
    let refused = [
        (
            token(&k1, &idp.issuer, json!({"exp": now() - 3600})),
            "ExpiredSignature",
        ),
        (
            token(&k1, &idp.issuer, json!({"nbf": now() + 3600})),
            "ImmatureSignature",
        ),
        (
            token(&k1, &idp.issuer, json!({"aud": "api://other"})),
            "InvalidAudience",
        ),
        (
            token(&k1, "https://evil.example/v2.0", json!({})),
            "InvalidIssuer",
        ),
        (token(&stranger, &idp.issuer, json!({})), "InvalidSignature"),
        (
            encode(
                &Header::new(Algorithm::HS256),
                &json!({"iss": idp.issuer, "aud": AUDIENCE, "exp": now() + 600}),
                &EncodingKey::from_secret(b"guessable"),
            )
            .unwrap(),
            "are not accepted",
        ),
        ("not.a.jwt".to_owned(), "not a JWT"),
    ];
    for (bad, reason) in refused {
        let (status, body) = get_with(&config, &fetch, &bearer(&bad)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{reason}: {body}");
        assert!(body.contains(reason), "{reason} in {body}");
    }

    // The admin API wants the admin role.
    let (status, body) = get_with(&config, "/api/transforms", &bearer(&good)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains(ADMIN_ROLE), "{body}");
    let admin = token(&k1, &idp.issuer, json!({"roles": [ADMIN_ROLE]}));
    assert_eq!(
        get_with(&config, "/api/transforms", &bearer(&admin))
            .await
            .0,
        StatusCode::OK
    );
    let scoped = token(
        &k1,
        &idp.issuer,
        json!({"scp": format!("read {ADMIN_ROLE}")}),
    );
    assert_eq!(
        get_with(&config, "/api/transforms", &bearer(&scoped))
            .await
            .0,
        StatusCode::OK,
        "a delegated scope grants it too"
    );

    // The provider rotates to k2: the first token naming it fetches again.
    let before = idp.fetches.load(Ordering::SeqCst);
    idp.keys.lock().unwrap().push(k2.jwk.clone());
    let rotated = token(&k2, &idp.issuer, json!({}));
    assert_eq!(
        get_with(&config, &fetch, &bearer(&rotated)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(idp.fetches.load(Ordering::SeqCst), before + 1);
}

#[tokio::test]
async fn unknown_keys_fetch_the_jwks_at_most_once_per_interval() {
    let (k1, k2) = (signing_key("k1"), signing_key("k2"));
    let idp = provider(&[&k1]).await;
    let oauth = verifier(&idp.issuer, Duration::from_secs(3600));
    oauth
        .verify(&token(&k1, &idp.issuer, json!({})), None)
        .await
        .unwrap();
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);
    idp.keys.lock().unwrap().push(k2.jwk.clone());
    for _ in 0..5 {
        let refused = oauth
            .verify(&token(&k2, &idp.issuer, json!({})), None)
            .await;
        assert_eq!(refused.unwrap_err(), TokenError::UnknownKey("k2".into()));
    }
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1, "no fetch storm");
}

#[tokio::test]
async fn an_unreachable_provider_is_a_503_not_a_401() {
    let key = signing_key("k1");
    let dir = tempfile::tempdir().unwrap();
    let issuer = "http://127.0.0.1:9/tenant/v2.0";
    let config = app(verifier(issuer, Duration::ZERO), dir.path());
    let (status, body) = get_with(
        &config,
        "/api/fetch?topic=x",
        &format!("Bearer {}", token(&key, issuer, json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("openid-configuration"), "{body}");
}

/// The production interval (30 s, as `app.rs` sets it): while the keys
/// cannot be fetched every token with a well-formed header is answered 503,
/// and the provider is asked at most once per interval; a token that is
/// wrong whatever the keys say is still a 401. Once the provider is back,
/// the next fetch after the interval lets good tokens through.
#[tokio::test]
async fn while_the_keys_cannot_be_fetched_tokens_get_503_not_401_at_a_bounded_rate() {
    let key = signing_key("k1");
    let idp = provider(&[&key]).await;
    idp.down.store(true, Ordering::SeqCst);
    let interval = Duration::from_secs(30);
    let dir = tempfile::tempdir().unwrap();
    let config = app(verifier(&idp.issuer, interval), dir.path());
    let fetch = format!("/api/fetch?topic={}", fresh_topic("oauth-outage"));
    let good = format!("Bearer {}", token(&key, &idp.issuer, json!({})));
    let started = std::time::Instant::now();
    for attempt in 0..5 {
        let (status, body) = get_with(&config, &fetch, &good).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "attempt {attempt}: {body}"
        );
        assert!(body.contains("could not be fetched"), "{body}");
    }
    assert_eq!(
        idp.fetches.load(Ordering::SeqCst),
        1,
        "one fetch per interval, however many requests"
    );
    let (status, body) = get_with(&config, &fetch, "Bearer not.a.jwt").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    idp.down.store(false, Ordering::SeqCst);
    let deadline = started + interval + Duration::from_secs(15);
    let recovered = loop {
        let (status, body) = get_with(&config, &fetch, &good).await;
        if status != StatusCode::SERVICE_UNAVAILABLE {
            break (status, body, started.elapsed());
        }
        assert!(std::time::Instant::now() < deadline, "still 503: {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(recovered.0, StatusCode::NOT_FOUND, "{}", recovered.1);
    assert!(
        recovered.2 >= interval,
        "no fetch before the interval ran out: {:?}",
        recovered.2
    );
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2);
}
