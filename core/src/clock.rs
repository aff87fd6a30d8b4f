//! The wall clock, read in one place: quotes, policies, holds and responses all count Unix
//! seconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds now (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    since_epoch().as_secs()
}

/// Unix nanoseconds now, for ids and seeds that must differ between calls.
pub fn unix_nanos() -> u128 {
    since_epoch().as_nanos()
}

fn since_epoch() -> std::time::Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}
