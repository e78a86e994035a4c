//! Records as owned values, for transforms that would rather hold them
//! than read views: what `sluice:transform@0.1.0` handed every guest, and
//! what [`crate::Transform`] and [`crate::Aggregate`] still take.

/// A Kafka record header. Kafka allows a header without a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// A record as the host read it from Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the Unix epoch (UTC), when the record has one.
    pub timestamp: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
}

/// A record a transform asks the host to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRecord {
    /// One of the pipeline's declared output topics; `None` sends the
    /// record to every declared output.
    pub topic: Option<String>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
}

/// What became of one input record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Produce these records (zero or more).
    Emit(Vec<OutputRecord>),
    /// Nothing to produce; the input is done.
    Drop,
    /// The input is bad; the host sends it to the dead-letter topic with
    /// this reason and goes on with the rest of the batch.
    Fail(String),
}

impl OutputRecord {
    /// A record for every declared output topic, keeping the input's key
    /// and headers: what most transforms emit.
    pub fn derived_from(input: KafkaRecord, value: Vec<u8>) -> Self {
        OutputRecord {
            topic: None,
            key: input.key,
            value: Some(value),
            headers: input.headers,
        }
    }
}
