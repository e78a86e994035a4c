use std::path::PathBuf;

/// A configuration file could not be used; the message says where.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {}: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not valid JSON: {reason}", file.display())]
    Syntax { file: PathBuf, reason: String },
    #[error("{}: {location}: {reason}", file.display())]
    Field {
        file: PathBuf,
        location: String,
        reason: String,
    },
}
