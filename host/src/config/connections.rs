//! `connections.json`: where Kafka, the Schema Registry and storage are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigError, read_json};
use crate::kafka::KafkaConfig;

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
            endpoint: self.azure_storage_endpoint.clone(),
        }
    }

    /// The Kafka client settings these connections describe.
    pub fn kafka_config(&self) -> KafkaConfig {
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
        let kafka = connections.kafka_config();
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
        let kafka = Connections::read(&path).unwrap().kafka_config();
        assert_eq!(kafka.properties["security.protocol"], "SASL_SSL");
        assert_eq!(kafka.properties["sasl.mechanisms"], "PLAIN");
        assert_eq!(kafka.properties["sasl.username"], "$ConnectionString");
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
