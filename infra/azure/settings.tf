# Every setting `sluice serve` reads and every %NAME% the function.json files
# of functions/app/ use, by name; `scripts/check-infra.sh` fails when one is
# missing here or a name here is read by nothing. A null value is not set.

locals {
  # Key Vault references: the app resolves them with its identity at start.
  secret_ref = { for name, secret in azurerm_key_vault_secret.app : name => "@Microsoft.KeyVault(SecretUri=${secret.versionless_id})" }
  # A secret's reference, or null when the secret is not kept (no
  # connection string under kafka_auth = "entra").
  secret_or_null = { for name in ["kafka-properties", "eventhubs-connection-string"] : name => try(local.secret_ref[name], null) }

  sluice_settings = {
    # Logs as JSON lines: Application Insights keeps each field.
    SLUICE_LOG_FORMAT = "json"
    # The custom handler listens where the Functions host connects.
    SLUICE_LISTEN = "127.0.0.1"
    # Compiled transforms are cached on the instance's local disk (/home is
    # a network share).
    SLUICE_CACHE_DIR = "/tmp/sluice-artifacts"

    # Files in the package (`sluice package` writes them under these names).
    SLUICE_TOPICS         = "topics.json"
    SLUICE_CONNECTIONS    = "connections.json"
    SLUICE_PIPELINE       = "pipeline.json"
    SLUICE_TRANSFORMS_DIR = "transforms"

    # The export's destination: the data lake's export filesystem.
    SLUICE_EXPORT_URL = "abfss://${azurerm_storage_container.exports.name}@${azurerm_storage_account.lake.name}.dfs.core.windows.net/"

    # Kafka, for Sluice itself (fetch, enrichment outputs)...
    SLUICE_KAFKA_BROKERS    = local.kafka_endpoint
    SLUICE_KAFKA_AUTH       = local.kafka_entra ? "entra" : null
    SLUICE_KAFKA_PROPERTIES = local.secret_or_null["kafka-properties"]
    # ...and for the Kafka trigger (Enrich/function.json).
    SLUICE_ENRICH_TOPIC    = var.enrich_topic
    SLUICE_ENRICH_GROUP    = var.enrich_group
    SLUICE_KAFKA_PROTOCOL  = "SaslSsl"
    SLUICE_KAFKA_AUTH_MODE = "Plain"
    SLUICE_KAFKA_USERNAME  = "$ConnectionString"
    SLUICE_KAFKA_PASSWORD  = local.secret_or_null["eventhubs-connection-string"]

    # The registry, in the data lake.
    SLUICE_REGISTRY       = "abfss://${azurerm_storage_container.registry.name}@${azurerm_storage_account.lake.name}.dfs.core.windows.net/"
    # Compiled artifacts shared through the registry (compiled once at
    # upload): "true" makes every instance compile for itself instead.
    SLUICE_NO_SHARED_ARTIFACTS = null
    # For profiling guests with perf only: "1" writes /tmp/perf-<pid>.map.
    SLUICE_PERF_MAP = null
    SLUICE_AZURE_ACCOUNT  = azurerm_storage_account.lake.name
    SLUICE_AZURE_KEY      = null # no key: the lake takes Entra ID only
    SLUICE_AZURE_ENDPOINT = null # the public cloud's endpoint, derived from the account

    # Who may call the API.
    SLUICE_ADMIN_KEY        = local.secret_ref["admin-key"]
    SLUICE_METRICS_KEY      = var.metrics_key
    SLUICE_API_KEY          = local.secret_ref["api-key"]
    SLUICE_OAUTH_ISSUER     = var.oauth_issuer
    SLUICE_OAUTH_AUDIENCE   = var.oauth_audience
    SLUICE_OAUTH_JWKS_URL   = var.oauth_jwks_url
    SLUICE_OAUTH_ROLE       = var.oauth_role
    SLUICE_OAUTH_ADMIN_ROLE = var.oauth_admin_role
    SLUICE_CORS_ORIGINS     = var.cors_origins

    SLUICE_SCHEMA_REGISTRY_URL = var.schema_registry_url
  }
}
