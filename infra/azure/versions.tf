terraform {
  # 1.5 for `check` blocks and the current azurerm 4.x behaviour.
  required_version = ">= 1.5"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # 4.42 renamed the Key Vault RBAC switch to `rbac_authorization_enabled`.
      version = ">= 4.42, < 5.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6, < 4.0"
    }
  }
}

provider "azurerm" {
  features {
    key_vault {
      # Purge protection is on (a deleted vault stays recoverable), so
      # `terraform destroy` only soft-deletes the vault and its secrets.
      purge_soft_delete_on_destroy = false
    }
  }
  subscription_id = var.subscription_id
  # The lake account takes no shared keys: containers are made through
  # Entra ID as the deployer.
  storage_use_azuread = true
}
