//! Which reader a file gets: from its extension, or one format for every
//! file when the caller says so.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;

/// A file format the importer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// One JSON value per line (`.jsonl`, `.ndjson`, `.json`).
    JsonLines,
    /// Avro object container files (`.avro`), as Spark and Kafka Connect
    /// write them.
    Avro,
    /// Parquet (`.parquet`).
    Parquet,
}

impl Format {
    /// The format a file name's extension says, if any.
    pub fn from_path(path: &str) -> Option<Format> {
        let name = path.rsplit('/').next().unwrap_or(path);
        let (_, extension) = name.rsplit_once('.')?;
        match extension.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" | "json" => Some(Format::JsonLines),
            "avro" => Some(Format::Avro),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::JsonLines => "jsonl",
            Format::Avro => "avro",
            Format::Parquet => "parquet",
        })
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "jsonl" | "json" | "ndjson" => Ok(Format::JsonLines),
            "avro" => Ok(Format::Avro),
            "parquet" => Ok(Format::Parquet),
            other => Err(format!(
                "unknown format `{other}` (use jsonl, avro or parquet)"
            )),
        }
    }
}

/// A file's rows in file order, each as the JSON text of one value.
pub type Rows = Box<dyn Iterator<Item = Result<Bytes, ReadError>>>;

/// Why a file could not be read; the importer adds the file's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("not a readable {format} file: {reason}")]
    Open { format: Format, reason: String },
    /// `unit` is what the format counts in (line, record, row), 1-based.
    #[error("{unit} {number}: {reason}")]
    Row {
        unit: &'static str,
        number: u64,
        reason: String,
    },
}

/// Its bytes over and over, without end: an input no reader can hold
/// whole, for tests that rows come as the input is read.
#[cfg(test)]
pub(super) struct Endless(pub Vec<u8>);

#[cfg(test)]
impl std::io::Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        for (to, from) in buf.iter_mut().zip(self.0.iter().cycle()) {
            *to = *from;
        }
        // Whole repeats only, so the next read starts one again.
        Ok(buf.len() / self.0.len().max(1) * self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_pick_the_format() {
        assert_eq!(Format::from_path("a/b.jsonl"), Some(Format::JsonLines));
        assert_eq!(Format::from_path("b.NDJSON"), Some(Format::JsonLines));
        assert_eq!(Format::from_path("x.json"), Some(Format::JsonLines));
        assert_eq!(
            Format::from_path("part-0000.snappy.avro"),
            Some(Format::Avro)
        );
        assert_eq!(Format::from_path("p.parquet"), Some(Format::Parquet));
        assert_eq!(Format::from_path("readme.txt"), None);
        assert_eq!(Format::from_path("dir.avro/noext"), None);
    }
}
