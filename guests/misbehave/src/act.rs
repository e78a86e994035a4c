//! What the misbehaving transformer does with one record, written once
//! and compiled against both contract versions: `misbehave` (the SDK,
//! `sluice:transform@0.2.0`) and `misbehave-v01` (`sluice:transform@0.1.0`),
//! each providing these names in its `api` module.

use crate::api::{KafkaRecord, Level, Outcome, OutputRecord, log, metadata};

pub fn act(record: KafkaRecord) -> Outcome {
    let request: serde_json::Value = record
        .value
        .as_deref()
        .and_then(|v| serde_json::from_slice(v).ok())
        .unwrap_or_default();
    let field = |name: &str| request.get(name).cloned().unwrap_or_default();
    match field("do").as_str().unwrap_or("echo") {
        "trap" => panic!("asked to trap at offset {}", record.offset),
        "loop" => {
            let mut n = 0u64;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "alloc" => {
            let mb = field("mb").as_u64().unwrap_or(1) as usize;
            let block = std::hint::black_box(vec![1u8; mb << 20]);
            let value = format!("{{\"allocated\":{}}}", block.len()).into_bytes();
            Outcome::Emit(vec![OutputRecord::derived_from(record, value)])
        }
        "grow" => {
            let bytes = field("bytes").as_u64().unwrap_or(0) as usize;
            let mut value = b"{\"pad\":\"".to_vec();
            value.resize(bytes.saturating_sub(2).max(value.len()), b'x');
            value.extend_from_slice(b"\"}");
            Outcome::Emit(vec![OutputRecord::derived_from(record, value)])
        }
        "drop" => Outcome::Drop,
        "fail" => Outcome::Fail(
            field("reason")
                .as_str()
                .unwrap_or("asked to fail")
                .to_owned(),
        ),
        "metadata" => {
            let pairs: serde_json::Map<String, serde_json::Value> =
                metadata().into_iter().map(|(k, v)| (k, v.into())).collect();
            let value = serde_json::to_vec(&pairs).unwrap_or_default();
            Outcome::Emit(vec![OutputRecord::derived_from(record, value)])
        }
        "log" => {
            log(Level::Warn, field("message").as_str().unwrap_or(""));
            Outcome::Drop
        }
        _ => {
            let value = record.value.clone().unwrap_or_default();
            Outcome::Emit(vec![OutputRecord::derived_from(record, value)])
        }
    }
}
