//! Which failed attempts are tried again (`--retries`), and after how long.

use std::time::Duration;

use crate::limits::{RETRY_BACKOFF_FIRST, RETRY_BACKOFF_MAX};
use crate::s3::Outcome;
use crate::stats::StatusClass;

pub fn retryable(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Transport { .. } => true,
        Outcome::Response { status, .. } => StatusClass::of(*status).retryable(*status),
    }
}

/// Wait before retry number `tries` (from 0): doubling, capped.
pub fn backoff(tries: u32) -> Duration {
    RETRY_BACKOFF_FIRST
        .saturating_mul(1u32.checked_shl(tries).unwrap_or(u32::MAX))
        .min(RETRY_BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::TransportKind;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(0), RETRY_BACKOFF_FIRST);
        assert_eq!(backoff(1), RETRY_BACKOFF_FIRST * 2);
        assert_eq!(backoff(40), RETRY_BACKOFF_MAX);
    }

    #[test]
    fn only_busy_or_failed_servers_are_retried() {
        let status = |status| Outcome::Response {
            status,
            body_bytes: 0,
            error_code: None,
            verified: None,
        };
        assert!(retryable(&status(503)));
        assert!(retryable(&status(429)));
        assert!(retryable(&status(500)));
        assert!(!retryable(&status(403)));
        assert!(!retryable(&status(404)));
        assert!(!retryable(&status(200)));
        assert!(retryable(&Outcome::Transport {
            kind: TransportKind::Io,
            message: String::new()
        }));
    }
}
