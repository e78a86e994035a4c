//! The configuration files of the Python exporter Sluice replaces, read exactly as its users
//! wrote them: `connections.json` and `topics.json`, plus the additions
//! Sluice users need (SASL for Event Hubs, a storage URL, a value format).
//! Every error names the file, the entry and the field.

mod connections;
mod error;
mod topics;

pub use connections::{Connections, KafkaAuth, Sasl, SslFiles};
pub use error::ConfigError;
pub use topics::{
    EntryConflict, ExportFormat, LateData, PartitionBy, TopicEntry, ValueFormat, check_entries,
    read_topics,
};

use std::path::Path;

use serde::de::DeserializeOwned;

/// Reads `path` as JSON into `T`, naming the field that is wrong.
fn read_json<T: DeserializeOwned>(path: &Path) -> Result<(T, serde_json::Value), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_owned(),
        source,
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ConfigError::Syntax {
            file: path.to_owned(),
            reason: e.to_string(),
        })?;
    let parsed = parse_value(path, &value, String::new())?;
    Ok((parsed, value))
}

/// Deserialises `value`; `at` prefixes the location in an error message.
fn parse_value<T: DeserializeOwned>(
    path: &Path,
    value: &serde_json::Value,
    at: String,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." {
            String::new()
        } else {
            format!("field `{field}`")
        };
        ConfigError::Field {
            file: path.to_owned(),
            location: [at, field]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(", "),
            reason: e.into_inner().to_string(),
        }
    })
}
