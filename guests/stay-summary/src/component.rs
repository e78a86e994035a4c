//! The WebAssembly component. The host gives each window a fresh instance,
//! so the window's state can live in the instance.

use std::cell::RefCell;

use sluice_guest::{Aggregate, KafkaRecord, OutputRecord, add_values};

use crate::Summary;

thread_local! {
    static WINDOW: RefCell<Summary> = RefCell::new(Summary::default());
}

struct StaySummary;

impl Aggregate for StaySummary {
    fn add(batch: Vec<KafkaRecord>) {
        WINDOW.with_borrow_mut(|summary| add_values(batch, |value| summary.add(value)));
    }

    fn finish() -> Vec<OutputRecord> {
        WINDOW.with_borrow(|summary| {
            summary
                .rows()
                .into_iter()
                .map(|row| OutputRecord {
                    topic: None,
                    key: Some(row.stay_category.clone().into_bytes()),
                    value: serde_json::to_vec(&row).ok(),
                    headers: Vec::new(),
                })
                .collect()
        })
    }
}

sluice_guest::export_aggregator!(StaySummary);
