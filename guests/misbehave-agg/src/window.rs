//! What the misbehaving aggregator does, written once and compiled against
//! both contract versions: `misbehave-agg` (the SDK,
//! `sluice:transform@0.2.0`) and `misbehave-agg-v01`
//! (`sluice:transform@0.1.0`), each providing these names in its `api`
//! module.

use std::cell::RefCell;

use crate::api::{KafkaRecord, OutputRecord};

thread_local! {
    static COUNTED: RefCell<Vec<i64>> = const { RefCell::new(Vec::new()) };
}

pub fn add(batch: Vec<KafkaRecord>) {
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

pub fn finish() -> Vec<OutputRecord> {
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
