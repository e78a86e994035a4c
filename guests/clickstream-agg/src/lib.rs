//! The clickstream pipeline's periodic aggregation: per (url, country) the
//! number of clicks, of unique users, and the average time spent, computed
//! as the seed does: (latest − earliest timestamp, in seconds) ÷ unique
//! users, shown as `HH:MM:SS`. Timestamps are Unix seconds.

mod window;

#[cfg(target_arch = "wasm32")]
mod component;

pub use window::{GroupRow, Window, hh_mm_ss};
