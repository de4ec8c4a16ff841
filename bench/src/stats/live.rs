//! Running totals of the phase in progress, for the progress bar.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Attempt, StatusClass};
use crate::s3::Outcome;

/// Running totals of the current phase; the collector is the only writer.
#[derive(Debug, Default)]
pub struct Live {
    pub requests: AtomicU64,
    pub ok: AtomicU64,
    pub bytes: AtomicU64,
    pub failed: AtomicU64,
}

impl Live {
    pub fn add(&self, attempt: &Attempt) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match &attempt.outcome {
            Outcome::Response { status, .. } if StatusClass::of(*status) == StatusClass::Ok => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                self.bytes
                    .fetch_add(attempt.payload_bytes, Ordering::Relaxed);
            }
            _ => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
