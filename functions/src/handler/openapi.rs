//! The OpenAPI document of the `/api` routes, generated from the handlers'
//! annotations as the routes are registered (so the two cannot drift), and
//! a Swagger UI page for it.

use axum::response::Html;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sluice",
        description = "Fetch Kafka records, run WebAssembly transforms on demand, and manage the transform and pipeline registry."
    ),
    modifiers(&Keys)
)]
pub struct ApiDoc;

/// Both ways of presenting a key.
struct Keys;

impl Modify for Keys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "functions_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-functions-key"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("the key, or an OAuth2 JWT when SLUICE_OAUTH_ISSUER is set")
                    .build(),
            ),
        );
    }
}

/// Swagger UI, loaded from a CDN by the reader's browser: the app ships no
/// front-end assets.
pub async fn swagger_ui() -> Html<&'static str> {
    Html(
        r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sluice API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({ url: "/api/openapi.json", dom_id: "#ui" });</script>
</body></html>"##,
    )
}
