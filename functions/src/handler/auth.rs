//! The one check in front of every route but the pages: which credential a
//! route needs is decided here, from the route's template, and nowhere
//! else. Keys come in the Functions `x-functions-key` header or as
//! `Authorization: Bearer`, compared in constant time; where configured,
//! an OAuth2 bearer token stands in for a key. The custom-handler routes
//! (`/Export`, `/Enrich`, `/events`) answer only the platform's own
//! trigger: the Functions host calling from this machine, a Lambda event
//! that did not come through an HTTP front door, or, standalone, a caller
//! with the admin key. A request that fails the check reaches no handler.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::oauth::{OAuth, TokenError, looks_like_jwt};

/// The fewest characters a key may have. 32 random characters from the
/// usual generators carry 128 bits or more (`openssl rand -hex 16`), past
/// any guessing over the network; a placeholder (`changeme`), a typo'd
/// variable or a blank one is refused when the app starts.
pub const MIN_KEY_CHARS: usize = 32;

/// A key as a setting gave it: at least [`MIN_KEY_CHARS`] visible ASCII
/// characters (a key travels in an HTTP header, where anything else could
/// never be presented intact).
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error(
        "{setting} is set but blank: give a key of {MIN_KEY_CHARS} or more characters, or unset it"
    )]
    Empty { setting: String },
    #[error(
        "{setting} has {chars} characters; a key needs {MIN_KEY_CHARS} or more (e.g. `openssl rand -hex 20`)"
    )]
    TooShort { setting: String, chars: usize },
    #[error(
        "{setting} holds a space or a character that is not visible ASCII; a key is sent in an HTTP header and must be visible ASCII only"
    )]
    NotVisibleAscii { setting: String },
}

impl AccessKey {
    /// The key `value` of `setting` (named in the error), checked.
    pub fn new(setting: &str, value: &str) -> Result<AccessKey, KeyError> {
        let setting = setting.to_owned();
        if value.trim().is_empty() {
            return Err(KeyError::Empty { setting });
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(KeyError::NotVisibleAscii { setting });
        }
        let chars = value.chars().count();
        if chars < MIN_KEY_CHARS {
            return Err(KeyError::TooShort { setting, chars });
        }
        Ok(AccessKey(value.to_owned()))
    }

    /// Whether `given` is this key, in time independent of where the first
    /// difference is.
    fn matches(&self, given: &str) -> bool {
        use subtle::ConstantTimeEq;
        // The length is not secret (keys have a minimum, not a fixed one).
        self.0.as_bytes().ct_eq(given.as_bytes()).into()
    }
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessKey(<set>)")
    }
}

/// Tokens a group of routes accepts: valid for the provider and, when
/// `role` is set, granting it.
#[derive(Clone)]
pub struct OAuthRule {
    pub verifier: Arc<OAuth>,
    pub role: Option<String>,
}

/// Where the app runs, which says how its triggers reach it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Platform {
    /// `sluice serve` on its own: the triggers take the admin key.
    #[default]
    Standalone,
    /// Started by the Azure Functions host (`FUNCTIONS_CUSTOMHANDLER_WORKER_ID`
    /// set): the host invokes the triggers over loopback, and forwards only
    /// `/api/*` from outside.
    FunctionsHost,
    /// An AWS Lambda bootstrap: the triggers run only for events that are
    /// not HTTP requests ([`PlatformEvent`]).
    Lambda,
}

/// Set on a request by the Lambda adapter when the event it came from is
/// not an HTTP request (an EventBridge schedule's, say): only the platform
/// can send those, never a caller of the function URL.
#[derive(Debug, Clone, Copy)]
pub struct PlatformEvent;

/// Who may call what. The data and metrics keys are resolved by whoever
/// builds this (they default to the admin key in `app.rs`).
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub platform: Platform,
    pub admin_key: Option<AccessKey>,
    pub data_key: Option<AccessKey>,
    pub metrics_key: Option<AccessKey>,
    /// Tokens accepted by the data API besides its key.
    pub data_oauth: Option<OAuthRule>,
    /// Tokens accepted by the admin API besides its key (with a role).
    pub admin_oauth: Option<OAuthRule>,
}

impl std::fmt::Debug for OAuthRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthRule")
            .field("role", &self.role)
            .finish()
    }
}

/// What a route needs, by its template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// The pages and the API's description: they hold no data.
    Public,
    /// `/api/fetch`, `/api/search`, `/api/search/download`, `/api/topics`,
    /// `/api/transforms/{name}/invoke`.
    Data,
    /// `/metrics`.
    Metrics,
    /// `/Export`, `/Enrich`, `/events`: the platform's triggers.
    Trigger,
    /// Every other route, the registry's among them: a route nobody
    /// classified is closed, not open.
    Admin,
}

impl Guard {
    pub fn of(route: &str) -> Guard {
        match route {
            "/" | "/topology" | "/api/docs" | "/api/openapi.json" => Guard::Public,
            "/api/fetch"
            | "/api/search"
            | "/api/search/download"
            | "/api/topics"
            | "/api/transforms/{name}/invoke" => Guard::Data,
            "/metrics" => Guard::Metrics,
            "/Export" | "/Enrich" | "/events" => Guard::Trigger,
            _ => Guard::Admin,
        }
    }
}

/// The layer: lets a request through to its route when it carries what
/// the route's [`Guard`] asks for.
pub async fn authenticate(
    State(access): State<Arc<Access>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(String::new, |m| m.as_str().to_owned());
    let guard = Guard::of(&route);
    let verdict = match guard {
        Guard::Public => Ok(()),
        Guard::Data => {
            access
                .key_or_token(
                    request.headers(),
                    access.data_key.as_ref(),
                    access.data_oauth.as_ref(),
                    "the data API is closed: no API key is configured (SLUICE_API_KEY or SLUICE_ADMIN_KEY)",
                )
                .await
        }
        Guard::Admin => {
            access
                .key_or_token(
                    request.headers(),
                    access.admin_key.as_ref(),
                    access.admin_oauth.as_ref(),
                    "the admin API is disabled: no admin key is configured (SLUICE_ADMIN_KEY)",
                )
                .await
        }
        Guard::Metrics => {
            access
                .key_or_token(
                    request.headers(),
                    access.metrics_key.as_ref(),
                    None,
                    "metrics are closed: set SLUICE_METRICS_KEY or SLUICE_ADMIN_KEY",
                )
                .await
        }
        Guard::Trigger => {
            let caller = Caller {
                platform_event: request.extensions().get::<PlatformEvent>().is_some(),
                peer: request
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip()),
            };
            access.trigger(request.headers(), caller, &route).await
        }
    };
    match verdict {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

/// Where a request came from, as far as the triggers care.
struct Caller {
    /// A Lambda event that is not an HTTP request.
    platform_event: bool,
    /// The connection's peer, when the server knows it.
    peer: Option<IpAddr>,
}

impl Access {
    /// The platform's own call of a trigger route, or a refusal saying how
    /// the route is run.
    async fn trigger(
        &self,
        headers: &HeaderMap,
        caller: Caller,
        route: &str,
    ) -> Result<(), ApiError> {
        match self.platform {
            Platform::Lambda if caller.platform_event => Ok(()),
            Platform::Lambda => Err(ApiError(
                StatusCode::FORBIDDEN,
                format!(
                    "{route} runs only as this function's trigger (an EventBridge scheduled \
                     event for the export), never through the function URL or an API gateway"
                ),
            )),
            Platform::FunctionsHost => {
                let peer = caller.peer;
                if peer.is_some_and(|ip| ip.is_loopback()) {
                    Ok(())
                } else {
                    Err(ApiError(
                        StatusCode::FORBIDDEN,
                        format!(
                            "{route} is invoked only by the Functions host on this machine \
                             (request from {})",
                            peer.map_or_else(|| "an unknown address".into(), |ip| ip.to_string())
                        ),
                    ))
                }
            }
            Platform::Standalone => {
                self.key_or_token(
                    headers,
                    self.admin_key.as_ref(),
                    None,
                    "the custom-handler routes take the admin key when the app runs on its \
                     own, and none is configured (SLUICE_ADMIN_KEY)",
                )
                .await
            }
        }
    }

    /// `Ok` when `headers` carry `expected` or a token `oauth` accepts;
    /// `closed` is the answer when neither is configured.
    async fn key_or_token(
        &self,
        headers: &HeaderMap,
        expected: Option<&AccessKey>,
        oauth: Option<&OAuthRule>,
        closed: &str,
    ) -> Result<(), ApiError> {
        let denied = |message: String| ApiError(StatusCode::UNAUTHORIZED, message);
        if expected.is_none() && oauth.is_none() {
            return Err(denied(closed.to_owned()));
        }
        let Some((given, bearer)) = presented(headers) else {
            let how = if oauth.is_some() {
                "send x-functions-key, or Authorization: Bearer with the key or an OAuth2 token"
            } else {
                "send x-functions-key or Authorization: Bearer"
            };
            return Err(denied(format!("a key is required: {how}")));
        };
        if expected.is_some_and(|key| key.matches(given)) {
            return Ok(());
        }
        match oauth {
            Some(rule) if bearer && looks_like_jwt(given) => {
                match rule.verifier.verify(given, rule.role.as_deref()).await {
                    Ok(claims) => {
                        tracing::debug!(subject = claims.sub.as_deref(), "token accepted");
                        Ok(())
                    }
                    Err(error @ TokenError::MissingRole(_)) => {
                        Err(ApiError(StatusCode::FORBIDDEN, error.to_string()))
                    }
                    Err(error @ TokenError::Keys(_)) => {
                        tracing::error!(%error, "cannot check OAuth2 tokens");
                        Err(ApiError(StatusCode::SERVICE_UNAVAILABLE, error.to_string()))
                    }
                    Err(error) => Err(denied(error.to_string())),
                }
            }
            _ => Err(denied("wrong key".into())),
        }
    }
}

/// The credential and whether it came as `Authorization: Bearer`.
fn presented(headers: &HeaderMap) -> Option<(&str, bool)> {
    if let Some(key) = headers.get("x-functions-key").and_then(|v| v.to_str().ok()) {
        return Some((key, false));
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|token| (token.trim(), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_refused_empty_blank_short_or_with_spaces_naming_the_setting() {
        let cases = [
            ("", "blank"),
            ("   \t", "blank"),
            ("0123456789abcdef0123456789abcde", "31 characters"),
            ("0123456789abcdef 0123456789abcdef", "visible ASCII"),
            ("0123456789abcdef0123456789abcdéf", "visible ASCII"),
        ];
        for (value, why) in cases {
            let error = AccessKey::new("SLUICE_API_KEY", value).unwrap_err();
            let message = error.to_string();
            assert!(message.contains("SLUICE_API_KEY"), "{message}");
            assert!(message.contains(why), "{value:?}: {message}");
        }
        let key = AccessKey::new("SLUICE_API_KEY", "0123456789abcdef0123456789abcdef").unwrap();
        assert!(key.matches("0123456789abcdef0123456789abcdef"));
        assert!(!key.matches(""));
        assert_eq!(format!("{key:?}"), "AccessKey(<set>)");
    }

    #[test]
    fn every_route_template_has_its_guard_and_unknown_ones_are_admin() {
        assert_eq!(Guard::of("/"), Guard::Public);
        assert_eq!(Guard::of("/api/transforms/{name}/invoke"), Guard::Data);
        assert_eq!(Guard::of("/api/search"), Guard::Data);
        assert_eq!(Guard::of("/api/transforms/{name}"), Guard::Admin);
        assert_eq!(Guard::of("/Export"), Guard::Trigger);
        assert_eq!(Guard::of("/events"), Guard::Trigger);
        assert_eq!(Guard::of("/api/something-new"), Guard::Admin);
    }
}
