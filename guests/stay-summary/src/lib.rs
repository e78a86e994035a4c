//! The expedia job's ksqlDB `stay_counts` table as an aggregator: per stay
//! category, how many bookings (`count_all`) and how many distinct hotels
//! (`count_distinct`).
//!
//! Records that already carry `stay_category` (the output of the
//! stay-category transform) are counted under it; raw bookings are
//! categorised on the way in with the same rules.

mod summary;

#[cfg(target_arch = "wasm32")]
mod component;

pub use summary::{CategoryCount, Summary};
