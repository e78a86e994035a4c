//! Why a frame, a schema, a datum or a container file was refused. Each
//! message names what is wrong in the user's terms; the callers add where
//! (the record's topic, partition and offset, or the file).

/// A value not in the Confluent wire format (magic byte 0, a 4-byte
/// schema id, the Avro body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("the value is empty")]
    Empty,
    #[error("magic byte is {0}, expected 0")]
    Magic(u8),
    #[error("{0} bytes, too short for a schema id")]
    NoSchemaId(usize),
}

/// A writer schema that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("the schema's JSON nests more than {limit} levels deep")]
    TooDeep { limit: usize },
    #[error("not an Avro schema: {0}")]
    Invalid(String),
}

/// A datum that cannot be had as a value, or a value as JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatumError {
    #[error(
        "the value nests more than {limit} levels deep (each record, array, map or union inside another is one)"
    )]
    TooDeep { limit: usize },
    #[error(
        "more than {limit} array items that take no bytes (of null or of an empty record) in one value"
    )]
    TooManyEmptyItems { limit: usize },
    #[error("the value ends inside {what}")]
    EndsEarly { what: &'static str },
    #[error("{what} has the negative length {length}")]
    NegativeLength { what: &'static str, length: i64 },
    #[error("a variable-length integer runs past 10 bytes")]
    LongVarint,
    #[error("union branch {index} does not exist (the union has {variants})")]
    UnionBranch { index: i64, variants: usize },
    #[error("the schema names `{0}`, which it does not define")]
    UnknownName(String),
    #[error("a decimal must be bytes or fixed, not {0}")]
    DecimalOf(String),
    #[error("{0} bytes left over after the value")]
    LeftOver(usize),
    /// apache-avro's own reason (a boolean that is not 0 or 1, text that
    /// is not UTF-8, an enum index past its symbols...).
    #[error("{0}")]
    Decoder(String),
    /// The check and apache-avro read a datum differently: a bug here,
    /// refused rather than trusted.
    #[error("the depth check read {checked} bytes where the decoder read {decoded}")]
    Disagreement { checked: usize, decoded: usize },
    #[error("{0}")]
    NotJson(String),
}

/// An object container file, or one of its records, that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContainerError {
    #[error("not an Avro object container file: {0}")]
    NotContainer(&'static str),
    #[error("reading the file: {0}")]
    Read(String),
    #[error("the header's metadata: {0}")]
    Metadata(DatumError),
    #[error("the header's schema: {0}")]
    Schema(#[from] SchemaError),
    #[error("codec `{0}` is not supported (null, deflate and snappy are)")]
    Codec(String),
    /// The block holding record `number` (1-based).
    #[error("record {number}: {source}")]
    Block { number: u64, source: BlockError },
    #[error("record {number}: {source}")]
    Record { number: u64, source: DatumError },
}

/// A data block of a container file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("the file ends inside a block")]
    EndsEarly,
    #[error("reading the file: {0}")]
    Read(String),
    #[error("a block declares {0} records")]
    BadCount(i64),
    #[error("a block declares {0} bytes")]
    BadSize(i64),
    #[error("a block's sync marker differs from the header's")]
    Sync,
    #[error("a block holds more than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("a block does not decompress: {0}")]
    Corrupt(String),
    #[error("more than {limit} records that take no bytes")]
    TooManyEmpty { limit: usize },
}
