# Sluice on Azure: the Event Hubs Kafka endpoint, a data lake for exports and
# the transform registry, and one Linux function app (the custom handler
# `sluice serve`) running the timer export, the Kafka-triggered enrichment
# and the HTTP API. Secrets live in Key Vault; the app reads them through Key
# Vault references with its own identity.

data "azurerm_client_config" "current" {}

resource "random_string" "suffix" {
  length  = 6
  upper   = false
  special = false
}

locals {
  unique = "${var.name}${random_string.suffix.result}"
  # Elastic Premium scales on the Kafka trigger's lag through runtime scale
  # monitoring; a Dedicated plan instead needs Always On for non-HTTP triggers.
  elastic = startswith(var.plan_sku, "EP")
}

resource "azurerm_resource_group" "main" {
  name     = "${var.name}-rg"
  location = var.location
  tags     = var.tags
}

# --- Data lake: exports and the registry -----------------------------------

resource "azurerm_storage_account" "lake" {
  #checkov:skip=CKV_AZURE_35:Default network action is Allow: the app reaches the account over its public endpoint (no VNet here); every request is authorised by Entra ID (the app's managed identity; shared keys are off).
  #checkov:skip=CKV_AZURE_59:Public endpoint needed for the same reason as CKV_AZURE_35; anonymous access is off (allow_nested_items_to_be_public = false).
  #checkov:skip=CKV2_AZURE_33:Private endpoints need a VNet and private DNS, outside this stack; see the README's hardening notes.
  #checkov:skip=CKV2_AZURE_1:Customer-managed keys add a key lifecycle this stack does not own; data is encrypted at rest with Microsoft-managed keys and infrastructure encryption.
  #checkov:skip=CKV2_AZURE_41:No SAS tokens are issued by Sluice; the sas_policy below bounds any that are.
  #checkov:skip=CKV_AZURE_33:Queue service is unused in the data lake account (files only).
  name                              = "${local.unique}lake"
  resource_group_name               = azurerm_resource_group.main.name
  location                          = azurerm_resource_group.main.location
  account_kind                      = "StorageV2"
  account_tier                      = "Standard"
  account_replication_type          = var.storage_replication
  is_hns_enabled                    = true
  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = false
  infrastructure_encryption_enabled = true
  local_user_enabled                = false

  sas_policy {
    expiration_period = "01.00:00:00"
  }

  blob_properties {
    delete_retention_policy {
      days = 7
    }
    container_delete_retention_policy {
      days = 7
    }
  }

  tags = var.tags
}

resource "azurerm_storage_container" "exports" {
  #checkov:skip=CKV2_AZURE_21:Blob reads, writes and deletes are logged by the diagnostic setting lake_blobs below; this check only knows the legacy azurerm_log_analytics_storage_insights.
  name                  = var.export_filesystem
  storage_account_id    = azurerm_storage_account.lake.id
  container_access_type = "private"
}

resource "azurerm_storage_container" "registry" {
  #checkov:skip=CKV2_AZURE_21:Blob reads, writes and deletes are logged by the diagnostic setting lake_blobs below; this check only knows the legacy azurerm_log_analytics_storage_insights.
  name                  = var.registry_filesystem
  storage_account_id    = azurerm_storage_account.lake.id
  container_access_type = "private"
}

# Who read, wrote or deleted what in the lake (exports, the registry), in
# the Log Analytics workspace beside the app's logs.
resource "azurerm_monitor_diagnostic_setting" "lake_blobs" {
  name                       = "sluice-lake-access"
  target_resource_id         = "${azurerm_storage_account.lake.id}/blobServices/default"
  log_analytics_workspace_id = azurerm_log_analytics_workspace.main.id

  enabled_log {
    category = "StorageRead"
  }
  enabled_log {
    category = "StorageWrite"
  }
  enabled_log {
    category = "StorageDelete"
  }
}

# --- The Functions host's own storage (leases, timers, the content share) --

resource "azurerm_storage_account" "host" {
  #checkov:skip=CKV_AZURE_35:The Functions host reaches its storage over the public endpoint (no VNet integration here), authorised by the account key.
  #checkov:skip=CKV_AZURE_59:Public endpoint needed for the same reason as CKV_AZURE_35; anonymous access is off.
  #checkov:skip=CKV2_AZURE_33:Private endpoints need a VNet and private DNS, outside this stack.
  #checkov:skip=CKV2_AZURE_1:Holds only the host's runtime state (leases, timer status, the content share); Microsoft-managed keys.
  #checkov:skip=CKV2_AZURE_40:An Elastic Premium app's content share (Azure Files) is only reachable with the account key.
  #checkov:skip=CKV2_AZURE_41:No SAS tokens are issued; the sas_policy below bounds any that are.
  #checkov:skip=CKV_AZURE_206:Runtime state only, recreated by the host: locally redundant is enough.
  name                              = "${local.unique}host"
  resource_group_name               = azurerm_resource_group.main.name
  location                          = azurerm_resource_group.main.location
  account_kind                      = "StorageV2"
  account_tier                      = "Standard"
  account_replication_type          = "LRS"
  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = true
  infrastructure_encryption_enabled = true
  local_user_enabled                = false

  sas_policy {
    expiration_period = "01.00:00:00"
  }

  blob_properties {
    delete_retention_policy {
      days = 7
    }
    container_delete_retention_policy {
      days = 7
    }
  }

  # Deprecated in azurerm 4 for azurerm_storage_account_queue_properties,
  # which checkov's CKV_AZURE_33 does not read yet; works until azurerm 5.
  queue_properties {
    logging {
      delete                = true
      read                  = true
      write                 = true
      version               = "1.0"
      retention_policy_days = 10
    }
  }

  tags = var.tags
}

# --- Event Hubs: the Kafka endpoint -----------------------------------------

resource "azurerm_eventhub_namespace" "main" {
  #checkov:skip=CKV_AZURE_228:azurerm 4 dropped `zone_redundant`: namespaces are zone redundant by default in regions with availability zones.
  name                = "${local.unique}-events"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  sku                 = var.eventhubs_sku
  capacity            = var.eventhubs_capacity
  minimum_tls_version = "1.2"
  # Sluice signs in with Entra ID (SASL OAUTHBEARER); the namespace's SAS
  # keys are on only when the user opts in to a connection string
  # (kafka_auth = "connection_string", e.g. for the Functions Kafka
  # trigger, which has no managed-identity sign-in).
  local_authentication_enabled  = !local.kafka_entra
  public_network_access_enabled = true

  identity {
    type = "SystemAssigned"
  }

  tags = var.tags
}

resource "azurerm_eventhub" "topics" {
  for_each          = var.event_hubs
  name              = each.key
  namespace_id      = azurerm_eventhub_namespace.main.id
  partition_count   = each.value
  message_retention = var.message_retention_days
}

# The app's one credential on the namespace: read and write, no management.
# The connection string's rule exists only when the user opts in.
resource "azurerm_eventhub_namespace_authorization_rule" "app" {
  count               = local.kafka_entra ? 0 : 1
  name                = "sluice-app"
  namespace_name      = azurerm_eventhub_namespace.main.name
  resource_group_name = azurerm_resource_group.main.name
  listen              = true
  send                = true
  manage              = false
}

# --- Monitoring ---------------------------------------------------------------

resource "azurerm_log_analytics_workspace" "main" {
  name                = "${local.unique}-logs"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = var.tags
}

resource "azurerm_application_insights" "main" {
  name                = "${local.unique}-insights"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  workspace_id        = azurerm_log_analytics_workspace.main.id
  application_type    = "other"
  tags                = var.tags
}

# --- Key Vault: every secret the app reads ----------------------------------

resource "azurerm_key_vault" "main" {
  #checkov:skip=CKV_AZURE_109:Key Vault references from the app and this Terraform run reach the vault over its public endpoint (no VNet); access is by Entra ID RBAC only.
  #checkov:skip=CKV_AZURE_189:Public endpoint needed for the same reason as CKV_AZURE_109.
  #checkov:skip=CKV2_AZURE_32:Private endpoints need a VNet and private DNS, outside this stack.
  name                          = "${local.unique}-kv"
  resource_group_name           = azurerm_resource_group.main.name
  location                      = azurerm_resource_group.main.location
  tenant_id                     = data.azurerm_client_config.current.tenant_id
  sku_name                      = "standard"
  rbac_authorization_enabled    = true
  purge_protection_enabled      = true
  soft_delete_retention_days    = 7
  public_network_access_enabled = true

  network_acls {
    default_action = "Allow"
    bypass         = "AzureServices"
  }

  tags = var.tags
}

# Whoever runs Terraform writes the secrets.
resource "azurerm_role_assignment" "deployer_secrets" {
  scope                = azurerm_key_vault.main.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

# The Sluice keys: generated here, never an input or an output. Read them
# with `az keyvault secret show` (see the README).
resource "random_password" "admin_key" {
  length  = 40
  special = false
}

resource "random_password" "api_key" {
  length  = 40
  special = false
}

locals {
  kafka_entra       = var.kafka_auth == "entra"
  connection_string = one(azurerm_eventhub_namespace_authorization_rule.app[*].primary_connection_string)
  kafka_endpoint    = "${azurerm_eventhub_namespace.main.name}.servicebus.windows.net:9093"
  # librdkafka settings for the Event Hubs Kafka endpoint, as
  # SLUICE_KAFKA_PROPERTIES takes them (comma-separated key=value; the
  # connection string holds no comma).
  kafka_properties = local.kafka_entra ? null : join(",", [
    "security.protocol=SASL_SSL",
    "sasl.mechanisms=PLAIN",
    "sasl.username=$ConnectionString",
    "sasl.password=${local.connection_string}",
  ])
  # No storage key (the lake takes none) and, unless the user opts in, no
  # connection string: the app signs in with its managed identity.
  secrets = merge(
    {
      "admin-key" = random_password.admin_key.result
      "api-key"   = random_password.api_key.result
    },
    local.kafka_entra ? {} : {
      "eventhubs-connection-string" = local.connection_string
      "kafka-properties"            = local.kafka_properties
    },
  )
}

resource "azurerm_key_vault_secret" "app" {
  #checkov:skip=CKV_AZURE_41:The storage key, connection string and Sluice keys are rotated by re-running Terraform (taint or key regeneration), not by expiry; an expired secret would stop the app.
  for_each     = toset(keys(local.secrets))
  name         = each.key
  value        = local.secrets[each.key]
  content_type = "text/plain"
  key_vault_id = azurerm_key_vault.main.id
  depends_on   = [azurerm_role_assignment.deployer_secrets]
}

# --- The function app -------------------------------------------------------

# Created before the app and granted read access to the secrets first, so
# the Key Vault references resolve from the app's first start.
resource "azurerm_user_assigned_identity" "app" {
  name                = "${local.unique}-app"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  tags                = var.tags
}

resource "azurerm_role_assignment" "app_secrets" {
  scope                = azurerm_key_vault.main.id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.app.principal_id
}

# The export writes, and the registry stores transforms, as the app's
# identity: data-plane roles on their two containers only. (An import from
# another container of the lake needs the same role there.)
resource "azurerm_role_assignment" "app_lake" {
  for_each = {
    exports  = azurerm_storage_container.exports.id
    registry = azurerm_storage_container.registry.id
  }
  scope                = each.value
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.app.principal_id
}

# Reads and writes every event hub of the namespace over Kafka with Entra
# ID tokens (Data Owner, since the export also manages consumer groups'
# offsets; Sender and Receiver would do for produce and fetch alone).
resource "azurerm_role_assignment" "app_event_hubs" {
  scope                = azurerm_eventhub_namespace.main.id
  role_definition_name = "Azure Event Hubs Data Owner"
  principal_id         = azurerm_user_assigned_identity.app.principal_id
}

resource "azurerm_service_plan" "main" {
  #checkov:skip=CKV_AZURE_212:One instance suffices to start; an Elastic Premium plan scales out on demand up to maximum_elastic_worker_count.
  #checkov:skip=CKV_AZURE_225:Zone redundancy needs at least three instances always on; a cost decision left to the adopter (zone_balancing_enabled).
  name                         = "${local.unique}-plan"
  resource_group_name          = azurerm_resource_group.main.name
  location                     = azurerm_resource_group.main.location
  os_type                      = "Linux"
  sku_name                     = var.plan_sku
  maximum_elastic_worker_count = local.elastic ? var.maximum_elastic_worker_count : null
  tags                         = var.tags
}

resource "azurerm_linux_function_app" "main" {
  #checkov:skip=CKV_AZURE_221:The HTTP API is public by design (fetch page, admin API); every route is checked by the Functions key and Sluice's own keys or OAuth2.
  name                          = "${local.unique}-app"
  resource_group_name           = azurerm_resource_group.main.name
  location                      = azurerm_resource_group.main.location
  service_plan_id               = azurerm_service_plan.main.id
  storage_account_name          = azurerm_storage_account.host.name
  storage_account_access_key    = azurerm_storage_account.host.primary_access_key
  functions_extension_version   = "~4"
  https_only                    = true
  public_network_access_enabled = true
  builtin_logging_enabled       = false
  zip_deploy_file               = var.package

  ftp_publish_basic_authentication_enabled       = false
  webdeploy_publish_basic_authentication_enabled = false

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.app.id]
  }
  key_vault_reference_identity_id = azurerm_user_assigned_identity.app.id

  site_config {
    application_insights_connection_string = azurerm_application_insights.main.connection_string
    always_on                              = local.elastic ? false : true
    runtime_scale_monitoring_enabled       = local.elastic
    minimum_tls_version                    = "1.2"
    scm_minimum_tls_version                = "1.2"
    ftps_state                             = "Disabled"
    http2_enabled                          = true

    application_stack {
      # A custom handler: host.json names the executable.
      use_custom_runtime = true
    }
  }

  # FUNCTIONS_WORKER_RUNTIME=custom comes from use_custom_runtime above;
  # WEBSITE_RUN_FROM_PACKAGE mounts the zip read-only as the app's content
  # (what zip_deploy_file uploads, and `az functionapp deployment source
  # config-zip` later).
  app_settings = merge(
    { WEBSITE_RUN_FROM_PACKAGE = "1" },
    # The identity Sluice signs in as (the app may hold several).
    { AZURE_CLIENT_ID = azurerm_user_assigned_identity.app.client_id },
    { for name, value in local.sluice_settings : name => value if value != null },
  )

  tags = var.tags
  depends_on = [
    azurerm_role_assignment.app_secrets,
    azurerm_role_assignment.app_lake,
    azurerm_role_assignment.app_event_hubs,
  ]
}
