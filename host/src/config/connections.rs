//! `connections.json`: where Kafka, the Schema Registry and storage are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigError, read_json};
use crate::codec::RegistryAuth;
use crate::identity::{AzureIdentity, Credential, IdentityError};
use crate::kafka::{KafkaConfig, OAuthBearer};

/// The exporter's `connections.json`, field for field, plus Sluice's additions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Connections {
    /// Kafka bootstrap servers, `host:port[,host:port]`.
    pub bootstrap_servers: String,
    /// Client certificate files for mutual TLS; relative paths are taken
    /// from the folder of `connections.json`.
    #[serde(default)]
    pub ssl_config: Option<SslFiles>,
    /// The Azure storage account of the lake (and of the import's files).
    #[serde(default)]
    pub azure_storage_account_name: Option<String>,
    /// That account's key.
    #[serde(default)]
    pub azure_storage_account_key: Option<String>,
    /// The ADLS Gen2 filesystem (container) exports are written to.
    #[serde(default)]
    pub azure_filesystem_name: Option<String>,
    /// A Confluent Schema Registry, for topics whose `value_format` is
    /// `avro`.
    #[serde(default)]
    pub schema_registry_url: Option<String>,
    /// Addition: SASL, e.g. the Event Hubs Kafka endpoint
    /// (`PLAIN`, user `$ConnectionString`, the connection string as password).
    #[serde(default)]
    pub sasl: Option<Sasl>,
    /// Addition: where exports go (`file:///…`, `abfss://…`); by default the
    /// Azure filesystem above when an account is set, else `./sluice-out`.
    #[serde(default)]
    pub storage_url: Option<String>,
    /// Addition: the Blob endpoint, for the Azurite emulator
    /// (`http://127.0.0.1:10000/devstoreaccount1`) or a sovereign cloud.
    #[serde(default)]
    pub azure_storage_endpoint: Option<String>,
    /// Addition: any other librdkafka property, passed through.
    #[serde(default)]
    pub kafka_properties: BTreeMap<String, String>,
    /// Addition: `entra` signs in to Kafka (Event Hubs) with Entra ID
    /// tokens over SASL OAUTHBEARER, from the identity `azure_identity`
    /// and the environment name, instead of `sasl`'s connection string.
    #[serde(default)]
    pub kafka_auth: Option<KafkaAuth>,
    /// Addition: a shared access signature of the storage account
    /// (`sv=...&sig=...`), used when no key is given.
    #[serde(default)]
    pub azure_storage_sas_token: Option<String>,
    /// Addition: the Entra ID identity Sluice signs in as, to the storage
    /// when neither a key nor a SAS is given and to Kafka with `kafka_auth`
    /// `entra`. What it leaves out is read from the environment as the
    /// Azure SDKs read it (`AZURE_CLIENT_ID`, ...; a managed identity on
    /// App Service and Functions; `az login` on a laptop).
    #[serde(default)]
    pub azure_identity: Option<AzureIdentity>,
    /// Addition: the Schema Registry's basic-auth user (Confluent Cloud's
    /// API key); by default `$SLUICE_SCHEMA_REGISTRY_USERNAME`.
    #[serde(default)]
    pub schema_registry_username: Option<String>,
    /// Addition: that user's password (Confluent Cloud's API secret); by
    /// default `$SLUICE_SCHEMA_REGISTRY_PASSWORD`.
    #[serde(default)]
    pub schema_registry_password: Option<String>,
    /// Addition: a bearer token for the Schema Registry, when it takes one
    /// instead of a user; by default `$SLUICE_SCHEMA_REGISTRY_TOKEN`.
    #[serde(default)]
    pub schema_registry_token: Option<String>,
}

/// How Sluice signs in to Kafka, beyond the `sasl` and `ssl_config` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KafkaAuth {
    /// Entra ID tokens over SASL_SSL and OAUTHBEARER.
    Entra,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SslFiles {
    /// The CA certificate the brokers' certificates are checked against
    /// (PEM).
    pub ca: Option<PathBuf>,
    /// This client's certificate (PEM).
    pub cert: Option<PathBuf>,
    /// This client's private key (PEM).
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sasl {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    #[serde(default = "default_mechanism")]
    pub mechanism: String,
    /// The user; `$ConnectionString` for Event Hubs.
    pub username: String,
    /// The password; the namespace's connection string for Event Hubs.
    pub password: String,
}

fn default_mechanism() -> String {
    "PLAIN".to_owned()
}

impl Connections {
    /// Reads the file, resolving certificate paths against its folder.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let (mut connections, _): (Connections, _) = read_json(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(ssl) = &mut connections.ssl_config {
            for file in [&mut ssl.ca, &mut ssl.cert, &mut ssl.key]
                .into_iter()
                .flatten()
            {
                if file.is_relative() {
                    *file = base.join(&*file);
                }
            }
        }
        let refuse = |field: &str, reason: &str| ConfigError::Field {
            file: path.to_owned(),
            location: format!("field `{field}`"),
            reason: reason.into(),
        };
        if connections.kafka_auth == Some(KafkaAuth::Entra) && connections.sasl.is_some() {
            return Err(refuse(
                "kafka_auth",
                "is entra, but `sasl` is set too: keep one way of signing in",
            ));
        }
        if connections.schema_registry_username.is_some()
            && connections.schema_registry_token.is_some()
        {
            return Err(refuse(
                "schema_registry_token",
                "is set with schema_registry_username: give a user or a token, not both",
            ));
        }
        if connections.bootstrap_servers.trim().is_empty() {
            return Err(ConfigError::Field {
                file: path.to_owned(),
                location: "field `bootstrap_servers`".into(),
                reason: "is empty".into(),
            });
        }
        Ok(connections)
    }

    /// Where exports go: `storage_url`, else the connections' Azure filesystem,
    /// else `./sluice-out`.
    pub fn storage_url(&self) -> String {
        if let Some(url) = &self.storage_url {
            return url.clone();
        }
        match (
            &self.azure_storage_account_name,
            &self.azure_filesystem_name,
        ) {
            (Some(account), Some(filesystem)) => {
                format!("abfss://{filesystem}@{account}.dfs.core.windows.net/")
            }
            _ => "sluice-out".to_owned(),
        }
    }

    pub fn azure_credentials(&self) -> crate::storage::AzureCredentials {
        crate::storage::AzureCredentials {
            account: self.azure_storage_account_name.clone(),
            key: self.azure_storage_account_key.clone(),
            sas: self.azure_storage_sas_token.clone(),
            identity: self.azure_identity.clone().unwrap_or_default(),
            endpoint: self.azure_storage_endpoint.clone(),
        }
    }

    /// How the Schema Registry is signed in to: these fields, else the
    /// environment's.
    pub fn schema_registry_auth(&self) -> Option<RegistryAuth> {
        RegistryAuth::from_parts(
            self.schema_registry_username.clone(),
            self.schema_registry_password.clone(),
            self.schema_registry_token.clone(),
        )
        .or_else(RegistryAuth::from_env)
    }

    /// The Kafka client settings these connections describe. With
    /// `kafka_auth` `entra` the credential is chosen here, so that a
    /// missing one fails before any client starts.
    pub fn kafka_config(&self) -> Result<KafkaConfig, IdentityError> {
        let config = self.kafka_config_without_credential();
        if self.kafka_auth != Some(KafkaAuth::Entra) {
            return Ok(config);
        }
        let identity = self.azure_identity.clone().unwrap_or_default().with_env();
        let credential = Credential::choose(&identity, "kafka")?;
        let scope = OAuthBearer::event_hubs_scope(&self.bootstrap_servers);
        Ok(config.with_oauth(OAuthBearer::new(credential, scope)))
    }

    fn kafka_config_without_credential(&self) -> KafkaConfig {
        let mut config = KafkaConfig::new(&self.bootstrap_servers);
        let tls = self.ssl_config.is_some();
        match (&self.sasl, tls) {
            (Some(sasl), _) => {
                config = config
                    .with("security.protocol", "SASL_SSL")
                    .with("sasl.mechanisms", &sasl.mechanism)
                    .with("sasl.username", &sasl.username)
                    .with("sasl.password", &sasl.password);
            }
            (None, true) => config = config.with("security.protocol", "SSL"),
            (None, false) => {}
        }
        if let Some(ssl) = &self.ssl_config {
            let files = [
                ("ssl.ca.location", &ssl.ca),
                ("ssl.certificate.location", &ssl.cert),
                ("ssl.key.location", &ssl.key),
            ];
            for (key, file) in files {
                if let Some(file) = file {
                    config = config.with(key, &file.to_string_lossy());
                }
            }
        }
        for (key, value) in &self.kafka_properties {
            config = config.with(key, value);
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("connections.json");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_seeds_example_reads_as_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            r#"{
  "bootstrap_servers": "your.kafka.server:port",
 "ssl_config": {
        "ca": "../certifications/your_ca_file.pem",
        "cert": "../certifications/your_sslcert.pem",
        "key": "../certifications/your_rsa.pem"
 },
  "azure_storage_account_name": "your_storage_account",
  "azure_storage_account_key": "your_storage_account_key",
  "azure_filesystem_name": "your_filesystem_name",
  "schema_registry_url": "https://your.schema.registry"
}"#,
        );
        let connections = Connections::read(&path).unwrap();
        assert_eq!(
            connections.azure_filesystem_name.as_deref(),
            Some("your_filesystem_name")
        );
        let ca = connections.ssl_config.as_ref().unwrap().ca.clone().unwrap();
        assert_eq!(ca, dir.path().join("../certifications/your_ca_file.pem"));
        let kafka = connections.kafka_config().unwrap();
        assert_eq!(kafka.properties["security.protocol"], "SSL");
        assert_eq!(kafka.properties["ssl.ca.location"], ca.to_string_lossy());
    }

    #[test]
    fn sasl_for_event_hubs() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            r#"{"bootstrap_servers": "ns.servicebus.windows.net:9093",
                "sasl": {"username": "$ConnectionString", "password": "Endpoint=sb://ns/;Key=x"}}"#,
        );
        let kafka = Connections::read(&path).unwrap().kafka_config().unwrap();
        assert_eq!(kafka.properties["security.protocol"], "SASL_SSL");
        assert_eq!(kafka.properties["sasl.mechanisms"], "PLAIN");
        assert_eq!(kafka.properties["sasl.username"], "$ConnectionString");
    }

    #[test]
    fn entra_for_event_hubs_asks_for_the_namespaces_scope() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            r#"{"bootstrap_servers": "ns.servicebus.windows.net:9093", "kafka_auth": "entra",
                "azure_identity": {"msi_endpoint": "http://127.0.0.1:1/token", "client_id": "app"}}"#,
        );
        let kafka = Connections::read(&path).unwrap().kafka_config().unwrap();
        assert_eq!(kafka.properties["security.protocol"], "SASL_SSL");
        assert_eq!(kafka.properties["sasl.mechanisms"], "OAUTHBEARER");
        assert!(!kafka.properties.contains_key("sasl.password"));
        let oauth = kafka.oauth.expect("a token source");
        assert_eq!(oauth.scope(), "https://ns.servicebus.windows.net/.default");

        let both = write(
            dir.path(),
            r#"{"bootstrap_servers": "ns.servicebus.windows.net:9093", "kafka_auth": "entra",
                "sasl": {"username": "$ConnectionString", "password": "Endpoint=sb://ns/"}}"#,
        );
        let error = Connections::read(&both).unwrap_err().to_string();
        assert!(error.contains("kafka_auth"), "{error}");
        let unknown = write(
            dir.path(),
            r#"{"bootstrap_servers": "k:9093", "kafka_auth": "kerberos"}"#,
        );
        let error = Connections::read(&unknown).unwrap_err().to_string();
        assert!(error.contains("kafka_auth"), "{error}");
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), r#"{"bootstrap_servers": 9092}"#);
        let error = Connections::read(&path).unwrap_err().to_string();
        assert!(error.contains("connections.json"), "{error}");
        assert!(error.contains("field `bootstrap_servers`"), "{error}");

        let path = write(
            dir.path(),
            r#"{"bootstrap_servers": "k:9092", "ssl_config": {"ca": "a", "crt": "b"}}"#,
        );
        let error = Connections::read(&path).unwrap_err().to_string();
        assert!(error.contains("ssl_config"), "{error}");
        assert!(error.contains("crt"), "{error}");

        let path = write(dir.path(), r#"{"bootstrap_servers": "k:9092""#);
        let error = Connections::read(&path).unwrap_err().to_string();
        assert!(error.contains("not valid JSON"), "{error}");

        let error = Connections::read(&dir.path().join("absent.json"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("absent.json"), "{error}");
    }
}
