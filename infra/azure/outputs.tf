# URLs and names only: no output carries a secret. The keys are read from
# Key Vault (see the README).

output "app_url" {
  description = "The function app; the Functions host routes /api/... (fetch, transforms, pipelines) to Sluice."
  value       = "https://${azurerm_linux_function_app.main.default_hostname}"
}

output "fetch_url" {
  description = "The fetch API (GET, with topic, partition, offset, count)."
  value       = "https://${azurerm_linux_function_app.main.default_hostname}/api/fetch"
}

output "api_docs_url" {
  description = "Swagger UI for the HTTP API."
  value       = "https://${azurerm_linux_function_app.main.default_hostname}/api/docs"
}

output "function_app_name" {
  description = "For `az functionapp` commands."
  value       = azurerm_linux_function_app.main.name
}

output "resource_group" {
  value = azurerm_resource_group.main.name
}

output "key_vault_name" {
  description = "Holds admin-key and api-key; with kafka_auth = \"connection_string\" also eventhubs-connection-string and kafka-properties (the lake takes no key)."
  value       = azurerm_key_vault.main.name
}

output "kafka_bootstrap_servers" {
  description = "The Event Hubs Kafka endpoint."
  value       = local.kafka_endpoint
}

output "storage_account_name" {
  value = azurerm_storage_account.lake.name
}

output "export_url" {
  description = "Where the export writes its Parquet files."
  value       = local.sluice_settings.SLUICE_EXPORT_URL
}

output "registry_url" {
  description = "The transform registry (SLUICE_REGISTRY)."
  value       = local.sluice_settings.SLUICE_REGISTRY
}

output "application_insights_name" {
  value = azurerm_application_insights.main.name
}
