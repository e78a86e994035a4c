variable "region" {
  description = "AWS region, e.g. eu-west-1."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "The function's name; also names its role, key and log group."
  type        = string
  default     = "sluice"
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = { app = "sluice" }
}

variable "package" {
  description = "The zip built by `sluice package --target lambda --out dist` (the binary as `bootstrap`)."
  type        = string
  default     = "../../dist/sluice-lambda.zip"
}

variable "architecture" {
  description = "The binary's architecture, as `sluice package` prints it: x86_64 or arm64."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "memory_mb" {
  description = "Memory (and with it CPU) of each instance, in MiB."
  type        = number
  default     = 1024
}

variable "timeout_seconds" {
  description = "Longest an invocation may run; a fetch stops itself after 10 seconds."
  type        = number
  default     = 30
}

variable "reserved_concurrency" {
  description = "Instances reserved for (and at most running) the function."
  type        = number
  default     = 10
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the function's logs."
  type        = number
  default     = 365
}

# --- Where Kafka and the registry are (e.g. the Azure stack's outputs) -------

variable "kafka_bootstrap_servers" {
  description = "Kafka bootstrap servers, e.g. the Event Hubs endpoint `<namespace>.servicebus.windows.net:9093` (SLUICE_KAFKA_BROKERS)."
  type        = string
}

variable "kafka_properties" {
  description = "librdkafka properties as comma-separated key=value, with the SASL credentials (SLUICE_KAFKA_PROPERTIES). Secret: give it in a *.tfvars file kept out of version control or as TF_VAR_kafka_properties."
  type        = string
  sensitive   = true
}

variable "registry_url" {
  description = "The transform registry, e.g. abfss://registry@<account>.dfs.core.windows.net/ (SLUICE_REGISTRY); null for none."
  type        = string
  default     = null
}

variable "azure_storage_account" {
  description = "Storage account of the registry (SLUICE_AZURE_ACCOUNT)."
  type        = string
  default     = null
}

variable "azure_storage_key" {
  description = "Its account key (SLUICE_AZURE_KEY). Secret, as kafka_properties."
  type        = string
  default     = null
  sensitive   = true
}

variable "admin_key" {
  description = "The key the admin API requires (SLUICE_ADMIN_KEY). Secret, as kafka_properties."
  type        = string
  sensitive   = true
}

variable "api_key" {
  description = "The key the data API requires (SLUICE_API_KEY); null: the admin key. Secret, as kafka_properties."
  type        = string
  default     = null
  sensitive   = true
}

# --- Optional Sluice settings (null: not set) -------------------------------

variable "oauth_issuer" {
  description = "OAuth2 issuer whose JWTs the API accepts besides the keys (SLUICE_OAUTH_ISSUER)."
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
  description = "Role or scope tokens need for the admin API (SLUICE_OAUTH_ADMIN_ROLE)."
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
  description = "A key for scraping /metrics (SLUICE_METRICS_KEY), so a scraper need not hold the admin key; unset, /metrics takes the admin key. Secret, as kafka_properties."
  type        = string
  default     = null
  sensitive   = true
}
