//! An aggregator that misbehaves on request, so the host's isolation of
//! aggregators can be tested with a real component. It counts the records
//! of its window (`{"count": n, "offsets": [..]}` at the end, the offsets
//! it counted, in order) unless a record's value is a JSON object whose
//! `do` field is `trap` (panic) or `loop` (spin forever).

#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;

use sluice_guest::{Aggregate, KafkaRecord, OutputRecord};

thread_local! {
    static COUNTED: RefCell<Vec<i64>> = const { RefCell::new(Vec::new()) };
}

struct MisbehaveAgg;

impl Aggregate for MisbehaveAgg {
    fn add(batch: Vec<KafkaRecord>) {
        for record in batch {
            let asked = record
                .value
                .as_deref()
                .and_then(|v| serde_json::from_slice::<serde_json::Value>(v).ok())
                .and_then(|v| v.get("do").and_then(|d| d.as_str()).map(str::to_owned));
            match asked.as_deref() {
                Some("trap") => panic!("asked to trap at offset {}", record.offset),
                Some("loop") => {
                    let mut n = 0u64;
                    loop {
                        n = std::hint::black_box(n.wrapping_add(1));
                    }
                }
                _ => COUNTED.with_borrow_mut(|counted| counted.push(record.offset)),
            }
        }
    }

    fn finish() -> Vec<OutputRecord> {
        COUNTED.with_borrow(|counted| {
            let value = serde_json::json!({"count": counted.len(), "offsets": counted});
            vec![OutputRecord {
                topic: None,
                key: None,
                value: serde_json::to_vec(&value).ok(),
                headers: Vec::new(),
            }]
        })
    }
}

sluice_guest::export_aggregator!(MisbehaveAgg);
