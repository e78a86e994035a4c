//! A record as an export's file keeps it: the value checked (UTF-8 JSON,
//! raw bytes) or decoded from Confluent-framed Avro to JSON text with its
//! typed cells. A record that cannot be kept is a dead letter with the
//! reason; a record nothing can be said about yet (the schema registry
//! cannot be asked) stops the run instead, so that it is read again later
//! rather than given up.

use crate::codec::{CodecError, NonFinite, SchemaRegistry, decode_confluent_avro, write_avro_json};
use crate::record::KafkaRecord;
use crate::table::{Cell, ValueField, admit, merged_fields, typed_cells};

use super::options::ExportOptions;

/// Why a record is not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The record itself cannot be kept: a dead letter with this reason.
    DeadLetter(String),
    /// The schema registry could not be asked, even after retries: the
    /// topic's run fails, and nothing from this record on is committed.
    Unavailable(CodecError),
}

impl From<String> for Refusal {
    fn from(reason: String) -> Self {
        Refusal::DeadLetter(reason)
    }
}

impl From<CodecError> for Refusal {
    fn from(error: CodecError) -> Self {
        if error.is_unavailable() {
            Refusal::Unavailable(error)
        } else {
            Refusal::DeadLetter(error.to_string())
        }
    }
}

/// A record as the file keeps it (an Avro value replaced by its JSON) and
/// its typed cells, or why it cannot be kept.
pub fn decode(
    record: &KafkaRecord,
    options: &ExportOptions,
    typed: &[ValueField],
) -> Result<(KafkaRecord, Option<Vec<Cell>>), Refusal> {
    options.timestamps().admit(record)?;
    let (Some(registry), Some(value)) = (&options.registry, &record.value) else {
        admit(record, options.value)?;
        let cells = (!typed.is_empty()).then(|| vec![Cell::Null; typed.len()]);
        return Ok((record.clone(), cells));
    };
    let (id, avro) = decode_confluent_avro(value, registry)?;
    let cells = if typed.is_empty() {
        None
    } else {
        Some(typed_cells(&avro, typed)?)
    };
    let mut json = Vec::with_capacity(value.len() * 2);
    write_avro_json(id, &avro, NonFinite::Refuse, &mut json)?;
    // Everything but the value, which is replaced (cloning it first would
    // copy the Avro bytes for nothing).
    let decoded = KafkaRecord {
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
        timestamp: record.timestamp,
        key: record.key.clone(),
        value: Some(json),
        headers: record.headers.clone(),
    };
    Ok((decoded, cells))
}

/// Typed columns for the fields of every version of `<topic>-value` (the
/// registry's default subject naming); none when the registry does not
/// know the subject, and the values stay JSON text only. A registry that
/// cannot be asked is an error: a run without the columns would write
/// files whose schema differs from the next run's for no reason of the
/// data's.
pub fn typed_value_fields(
    registry: &SchemaRegistry,
    topic: &str,
) -> Result<Vec<ValueField>, CodecError> {
    let subject = format!("{topic}-value");
    match registry.subject_schemas(&subject) {
        Ok(Some(schemas)) => {
            let fields = merged_fields(schemas.iter().map(|s| s.schema()));
            tracing::info!(
                topic,
                subject,
                versions = schemas.len(),
                columns = fields.len(),
                "typed value columns from the schema registry"
            );
            Ok(fields)
        }
        Ok(None) => {
            tracing::warn!(
                topic,
                subject,
                "subject not in the schema registry: values are written as JSON text only"
            );
            Ok(Vec::new())
        }
        Err(error) if error.is_unavailable() => Err(error),
        Err(error) => {
            // A version the registry holds but that is not a usable Avro
            // schema: the subject cannot give columns, ever.
            tracing::warn!(topic, subject, %error, "the subject's schemas cannot give columns: values are written as JSON text only");
            Ok(Vec::new())
        }
    }
}
