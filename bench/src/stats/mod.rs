//! What a step measured: every attempt is folded into one [`Recorder`]
//! (latency histograms per operation, counts per status code and per S3
//! error code, transport failures, a one-second timeline and one per
//! `--interval` for [`intervals`]), which the
//! output layer turns into summaries. Pure: no clock reads and no I/O;
//! times arrive with each [`Attempt`].
//!
//! One collector task owns the recorder and workers send it attempts over
//! a bounded channel, so memory does not grow with concurrency: a 1024
//! connection step keeps one set of histograms, not 1024.

pub mod intervals;
pub mod late;
pub mod live;
pub mod recorder;
pub mod summary;
pub mod timeline;

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::s3::Outcome;

pub use live::Live;
pub use recorder::Recorder;

/// The operations a step times separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    Put,
    Get,
    /// HEAD of an object.
    Stat,
    List,
    Delete,
}

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Put => "put",
            OpKind::Get => "get",
            OpKind::Stat => "stat",
            OpKind::List => "list",
            OpKind::Delete => "delete",
        }
    }
}

/// One HTTP attempt, as a worker reports it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub op: OpKind,
    /// When it finished.
    pub finished: Instant,
    pub latency: Duration,
    /// From the same start as `latency` to the first body byte: GETs only.
    pub ttfb: Option<Duration>,
    /// Constant-rate steps, an operation's first attempt: how long after
    /// its intended time it started (its latency runs from that time).
    pub start_delay: Option<Duration>,
    pub outcome: Outcome,
    /// Payload bytes a success moved (object size for PUT, body for GET).
    pub payload_bytes: u64,
    /// A retry of an earlier failed attempt of the same operation.
    pub is_retry: bool,
    /// The operation's last attempt: it completes an operation.
    pub is_last: bool,
    /// Keys on a 2xx listing page.
    pub keys_listed: u64,
    /// The last page of a complete listing: how long the listing took.
    pub listing: Option<Duration>,
}

/// How a status code counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    Ok,
    /// 503, S3's `SlowDown`.
    SlowDown,
    /// 429.
    TooManyRequests,
    OtherError,
}

impl StatusClass {
    pub fn of(status: u16) -> StatusClass {
        match status {
            200..=299 => StatusClass::Ok,
            503 => StatusClass::SlowDown,
            429 => StatusClass::TooManyRequests,
            _ => StatusClass::OtherError,
        }
    }

    /// Worth retrying: the server is busy or failed, not the request.
    pub fn retryable(self, status: u16) -> bool {
        match self {
            StatusClass::SlowDown | StatusClass::TooManyRequests => true,
            StatusClass::OtherError => status >= 500,
            StatusClass::Ok => false,
        }
    }
}
