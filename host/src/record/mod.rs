//! The record types every part of Sluice passes around. They are the ones
//! generated from `wit/` (`wit.rs`, the bindings of both worlds), so a record
//! crosses into a guest without conversion; a leaf, which every module may
//! import.

use std::fmt;

pub mod wit;
// A value's JSON text checked and searched without a `Value` tree: the
// import's rows and the export's time field.
pub(crate) mod json_row;

pub use wit::{Header, KafkaRecord, Outcome, OutputRecord};

/// Where a record came from: enough to find it again in Kafka.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordRef {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl fmt::Display for RecordRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "topic {} partition {} offset {}",
            self.topic, self.partition, self.offset
        )
    }
}

impl KafkaRecord {
    /// A record holding only a value, as read from a file or stdin rather
    /// than from Kafka.
    pub fn from_value(topic: &str, offset: i64, value: Vec<u8>) -> Self {
        KafkaRecord {
            topic: topic.to_owned(),
            partition: 0,
            offset,
            timestamp: None,
            key: None,
            value: Some(value),
            headers: Vec::new(),
        }
    }

    /// Bytes of what the record carries: its key, value and headers (names
    /// and values). What the fetch's and the join's byte limits count.
    pub fn payload_len(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|h| h.key.len() + h.value.as_ref().map_or(0, Vec::len))
            .sum();
        self.key.as_ref().map_or(0, Vec::len) + self.value.as_ref().map_or(0, Vec::len) + headers
    }

    pub fn locator(&self) -> RecordRef {
        RecordRef {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset,
        }
    }
}
