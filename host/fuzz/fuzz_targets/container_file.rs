//! An object container file as the import reads it: the header, the
//! blocks (any codec), each record checked, decoded and written as JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_avro::{Container, ContainerError};

mod common;

/// Enough records to reach every block of a small file; a file of more
/// (records of no bytes, within their limit) would only slow the run.
const RECORDS: usize = 10_000;

fuzz_target!(|file: &[u8]| {
    let Ok(container) = Container::open(file) else {
        return;
    };
    for record in container.take(RECORDS) {
        match record {
            Ok(value) => common::check_value(value),
            Err(ContainerError::Record { source, .. }) => common::check_error(&source),
            Err(_) => {}
        }
    }
});
