//! The wall clock as the rest of the host records it: milliseconds since
//! the Unix epoch (UTC), as Kafka timestamps, Delta actions and heartbeats
//! hold them.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in milliseconds since the Unix epoch; 0 for a clock set before
/// 1970, saturating far in the future.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
