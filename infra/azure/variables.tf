variable "subscription_id" {
  description = "The Azure subscription to deploy into (`az account show --query id -o tsv`)."
  type        = string
}

variable "name" {
  description = "Base of every resource name: lower-case letters and digits, 3 to 11 characters. A random suffix makes the globally unique names (storage, Key Vault, Event Hubs, the app) unique."
  type        = string
  default     = "sluice"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{2,10}$", var.name))
    error_message = "name must be 3 to 11 lower-case letters and digits, starting with a letter (storage account names allow nothing else)."
  }
}

variable "location" {
  description = "Azure region, e.g. westeurope."
  type        = string
  default     = "westeurope"
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = { app = "sluice" }
}

# --- The function app ------------------------------------------------------

variable "plan_sku" {
  description = "App Service plan SKU. The Kafka trigger needs Elastic Premium (EP1, EP2, EP3) or a Dedicated plan (e.g. P1v3); Consumption has no Kafka trigger and Flex Consumption runs no custom handlers."
  type        = string
  default     = "EP1"

  validation {
    condition     = can(regex("^(EP[1-3]|P[0-9]v[2-3]|P[0-9]mv3|S[1-3]|B[1-3])$", var.plan_sku))
    error_message = "plan_sku must be an Elastic Premium (EP1-EP3) or Dedicated (B, S, P...v2/v3) SKU: the Kafka trigger is not available on Consumption plans."
  }
}

variable "maximum_elastic_worker_count" {
  description = "Most instances an Elastic Premium plan scales out to."
  type        = number
  default     = 4
}

variable "package" {
  description = "The zip built by `sluice package --target azure --out dist`; deployed as the app's content (run from package)."
  type        = string
  default     = "../../dist/sluice-azure.zip"
}

variable "log_retention_days" {
  description = "Days Log Analytics keeps the app's logs and traces."
  type        = number
  default     = 90
}

# --- Event Hubs (the Kafka endpoint) ---------------------------------------

variable "eventhubs_sku" {
  description = "Event Hubs namespace tier. The Kafka endpoint needs Standard or above (Basic has none)."
  type        = string
  default     = "Standard"

  validation {
    condition     = contains(["Standard", "Premium"], var.eventhubs_sku)
    error_message = "eventhubs_sku must be Standard or Premium: the Basic tier has no Kafka endpoint."
  }
}

variable "eventhubs_capacity" {
  description = "Throughput units (Standard) or processing units (Premium)."
  type        = number
  default     = 1
}

variable "event_hubs" {
  description = "The hubs (Kafka topics) the pipelines read and write, with their partition counts: inputs, outputs and dead-letter topics."
  type        = map(number)
  default = {
    "expedia"         = 3
    "expedia_ext"     = 3
    "expedia_ext.dlq" = 1
  }
}

variable "message_retention_days" {
  description = "Days each hub keeps its records (Standard: at most 7)."
  type        = number
  default     = 7
}

variable "enrich_topic" {
  description = "The topic the Kafka-triggered Enrich function reads (one of event_hubs); the pipeline's input."
  type        = string
  default     = "expedia"
}

variable "enrich_group" {
  description = "The Enrich function's consumer group."
  type        = string
  default     = "sluice-enrich"
}

# --- Storage ---------------------------------------------------------------

variable "storage_replication" {
  description = "Replication of the data lake account (LRS, ZRS, GRS, RAGRS, GZRS, RAGZRS); geo-redundant by default, the exports being the product."
  type        = string
  default     = "GRS"
}

variable "export_filesystem" {
  description = "The ADLS Gen2 filesystem exports are written to."
  type        = string
  default     = "exports"
}

variable "registry_filesystem" {
  description = "The ADLS Gen2 filesystem holding the transform registry."
  type        = string
  default     = "registry"
}

# --- Optional Sluice settings (null: not set) -------------------------------

variable "oauth_issuer" {
  description = "OAuth2 issuer whose JWTs the API accepts besides the keys, e.g. https://login.microsoftonline.com/<tenant>/v2.0 (SLUICE_OAUTH_ISSUER)."
  type        = string
  default     = null
}

variable "oauth_audience" {
  description = "The audience tokens must carry (SLUICE_OAUTH_AUDIENCE); required with oauth_issuer."
  type        = string
  default     = null
}

variable "oauth_jwks_url" {
  description = "The issuer's signing keys, when not found by OpenID discovery (SLUICE_OAUTH_JWKS_URL)."
  type        = string
  default     = null
}

variable "oauth_role" {
  description = "Role or scope tokens need for the data API (SLUICE_OAUTH_ROLE)."
  type        = string
  default     = null
}

variable "oauth_admin_role" {
  description = "Role or scope tokens need for the admin API (SLUICE_OAUTH_ADMIN_ROLE); without it only the admin key opens it."
  type        = string
  default     = null
}

variable "cors_origins" {
  description = "Origins allowed to call the API from a browser, comma-separated (SLUICE_CORS_ORIGINS)."
  type        = string
  default     = null
}

variable "schema_registry_url" {
  description = "Confluent Schema Registry for Avro values (SLUICE_SCHEMA_REGISTRY_URL)."
  type        = string
  default     = null
}

variable "metrics_key" {
  description = "A key for scraping /metrics (SLUICE_METRICS_KEY), so a Prometheus scraper need not hold the admin key; unset, /metrics takes the admin key. Secret."
  type        = string
  default     = null
  sensitive   = true
}

variable "kafka_auth" {
  description = "How Sluice signs in to Event Hubs: `entra` (the app's managed identity, Azure Event Hubs Data Owner on the namespace; the namespace's shared keys are off) or `connection_string` (a SAS connection string in Key Vault; opt-in, for the Functions Kafka trigger, which has no managed-identity sign-in)."
  type        = string
  default     = "entra"
  validation {
    condition     = contains(["entra", "connection_string"], var.kafka_auth)
    error_message = "kafka_auth is `entra` or `connection_string`."
  }
}
