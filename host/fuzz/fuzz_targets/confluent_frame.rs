//! A Kafka value as the export and the fetch read it: the Confluent frame
//! split, the body checked and decoded with the writer schema its id picks
//! (see `schemas.rs`), the value written as JSON. Where the check refuses a
//! datum of a schema without arrays, maps or lengths for a reason
//! apache-avro also has (a union branch out of range, an overlong number),
//! apache-avro must refuse it too: the check follows its decoder exactly.
//! (With arrays, maps or lengths apache-avro allocates what a count claims
//! before reading the items: asking it would only find that out of memory,
//! which is why the check exists.)
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sluice_avro::{DatumError, WriterSchema, split_frame};

mod common;
mod schemas;

fn schemas() -> &'static Vec<WriterSchema> {
    static SCHEMAS: OnceLock<Vec<WriterSchema>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        schemas::SCHEMAS
            .iter()
            .map(|text| WriterSchema::parse(text).expect("the targets' schemas parse"))
            .collect()
    })
}

fuzz_target!(|frame: &[u8]| {
    let Ok((id, body)) = split_frame(frame) else {
        return;
    };
    let schemas = schemas();
    let index = id as usize % schemas.len();
    let schema = &schemas[index];
    match schema.decode(body) {
        Ok(value) => common::check_value(value),
        Err(error) => {
            common::check_error(&error);
            let comparable = schemas::WITHOUT_LENGTHS.contains(&schemas::SCHEMAS[index]);
            if comparable
                && matches!(
                    error,
                    DatumError::UnionBranch { .. }
                        | DatumError::LongVarint
                        | DatumError::UnknownName(_)
                )
            {
                // Reached within the depth limit, so apache-avro can be
                // asked without overflowing.
                let apache = apache_avro::from_avro_datum(schema.schema(), &mut &body[..], None);
                assert!(
                    apache.is_err(),
                    "refused ({error}) what apache-avro decodes"
                );
            }
        }
    }
});
