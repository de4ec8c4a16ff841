//! The wall clock, in the one unit the shard stores times in: Unix
//! milliseconds. Only leaders and background work read it; applying an
//! entry never does.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in Unix milliseconds (0 on a clock set before 1970).
pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `age` before now, in Unix milliseconds (0 if that is before 1970).
pub fn unix_ms_ago(age: Duration) -> u64 {
    unix_ms_now().saturating_sub(age.as_millis() as u64)
}
