//! Any schema text, as the registry or a file's header gives it, parsed
//! within the limits; then the bytes after the first NUL decoded with it
//! and written as JSON, so that odd schemas meet odd datums.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_avro::WriterSchema;

mod common;

fuzz_target!(|input: &[u8]| {
    let (text, datum) = match input.iter().position(|&b| b == 0) {
        Some(nul) => (&input[..nul], &input[nul + 1..]),
        None => (input, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let Ok(schema) = WriterSchema::parse(text) else {
        return;
    };
    match schema.decode(datum) {
        Ok(value) => common::check_value(value),
        Err(error) => common::check_error(&error),
    }
});
