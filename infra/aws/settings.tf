# Every setting `sluice serve` reads, by name: set here, or in
# `not_on_lambda` with the reason it does not apply to this function.
# `scripts/check-infra.sh` fails when a setting is in neither or a name here
# is read by nothing. A null value is not set.

locals {
  sluice_settings = {
    # Plain JSON lines: CloudWatch Logs Insights keeps each field.
    SLUICE_LOG_FORMAT = "json"
    # Lambda's only writable disk.
    SLUICE_CACHE_DIR = "/tmp/sluice-artifacts"

    # Files in the package, which Lambda unpacks into /var/task.
    SLUICE_TOPICS         = "/var/task/topics.json"
    SLUICE_CONNECTIONS    = "/var/task/connections.json"
    SLUICE_TRANSFORMS_DIR = "/var/task/transforms"

    SLUICE_KAFKA_BROKERS    = var.kafka_bootstrap_servers
    SLUICE_KAFKA_PROPERTIES = var.kafka_properties

    SLUICE_REGISTRY       = var.registry_url
    # Compiled artifacts shared through the registry (compiled once at
    # upload): "true" makes every instance compile for itself instead.
    SLUICE_NO_SHARED_ARTIFACTS = null
    # For profiling guests with perf only: "1" writes /tmp/perf-<pid>.map.
    SLUICE_PERF_MAP = null
    SLUICE_AZURE_ACCOUNT  = var.azure_storage_account
    SLUICE_AZURE_KEY      = var.azure_storage_key
    SLUICE_AZURE_ENDPOINT = null # the public cloud's endpoint, derived from the account

    SLUICE_ADMIN_KEY        = var.admin_key
    SLUICE_METRICS_KEY      = var.metrics_key
    SLUICE_API_KEY          = var.api_key
    SLUICE_OAUTH_ISSUER     = var.oauth_issuer
    SLUICE_OAUTH_AUDIENCE   = var.oauth_audience
    SLUICE_OAUTH_JWKS_URL   = var.oauth_jwks_url
    SLUICE_OAUTH_ROLE       = var.oauth_role
    SLUICE_OAUTH_ADMIN_ROLE = var.oauth_admin_role
    SLUICE_CORS_ORIGINS     = var.cors_origins

    SLUICE_SCHEMA_REGISTRY_URL = var.schema_registry_url
  }

  not_on_lambda = {
    SLUICE_LISTEN     = "Lambda hands events to the runtime API client; nothing listens on a port."
    SLUICE_EXPORT_URL = "The export runs on the Azure Functions timer, not behind a function URL."
    SLUICE_PIPELINE   = "The Kafka-triggered /Enrich route exists only on Azure Functions."
    SLUICE_KAFKA_AUTH = "This stack signs in to Kafka with SASL through SLUICE_KAFKA_PROPERTIES (SCRAM-SHA-512 for MSK or a self-managed cluster, PLAIN with a connection string for Event Hubs; MSK IAM is not supported). Entra ID for Event Hubs works from Lambda only as a service principal: set SLUICE_KAFKA_AUTH=entra with AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (a managed identity exists only on Azure). Storage on Azure likewise takes the account key (SLUICE_AZURE_KEY) or that service principal."
  }
}
