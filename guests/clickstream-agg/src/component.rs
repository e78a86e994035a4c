//! The WebAssembly component: the window lives in the instance, which the
//! host creates fresh for each window.

use std::cell::RefCell;

use sluice_guest::{Aggregate, KafkaRecord, OutputRecord, add_values};

use crate::Window;

thread_local! {
    static WINDOW: RefCell<Window> = RefCell::new(Window::default());
}

struct ClickstreamAgg;

impl Aggregate for ClickstreamAgg {
    fn add(batch: Vec<KafkaRecord>) {
        WINDOW.with_borrow_mut(|window| add_values(batch, |value| window.add(value)));
    }

    fn finish() -> Vec<OutputRecord> {
        WINDOW.with_borrow(|window| {
            window
                .rows()
                .into_iter()
                .map(|row| OutputRecord {
                    topic: None,
                    key: Some(format!("{}|{}", row.url, row.country).into_bytes()),
                    value: serde_json::to_vec(&row).ok(),
                    headers: Vec::new(),
                })
                .collect()
        })
    }
}

sluice_guest::export_aggregator!(ClickstreamAgg);
