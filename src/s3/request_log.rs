//! What the S3 front end says about requests in the log (each line names
//! the operation, as `s3::op` classified it): one info line per
//! refused request (failed authentication, denied access, admission
//! rejections), at most [`REFUSALS_LOGGED_PER_S_MAX`] per second per core,
//! and with `--access-log` one line per request.
//!
//! A client hammering with a bad key, or a flood of `SlowDown`s, must not
//! flood the log or slow the core: past the rate the lines are counted,
//! and the count is reported with the next line that is written.

use std::cell::Cell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::access::Caller;
use super::error::S3Error;
use super::request::Target;
use crate::limits::REFUSALS_LOGGED_PER_S_MAX;

/// Who asked for what: the parts of a request both kinds of line name.
pub struct RequestSummary<'a> {
    pub request_id: &'a str,
    /// The operation's name (`s3::op`).
    pub operation: &'static str,
    pub method: &'a http::Method,
    pub target: Option<&'a Target>,
    pub caller: Option<&'a Caller>,
    pub remote: Option<SocketAddr>,
}

impl RequestSummary<'_> {
    fn bucket(&self) -> &str {
        match self.target {
            Some(Target::Bucket(bucket) | Target::Object(bucket, _)) => bucket,
            _ => "",
        }
    }

    fn key(&self) -> &str {
        match self.target {
            Some(Target::Object(_, key)) => key,
            _ => "",
        }
    }

    fn user(&self) -> &str {
        match self.caller {
            Some(caller) => caller.user_name().unwrap_or("-anonymous-"),
            None => "",
        }
    }

    fn remote(&self) -> String {
        self.remote
            .map_or_else(String::new, |addr| addr.to_string())
    }
}

/// Whether an error refuses the client (rather than failing its request):
/// those are what an operator looks for when a client says "it does not
/// work".
pub fn is_refusal(error: &S3Error) -> bool {
    matches!(
        error,
        S3Error::Auth(_)
            | S3Error::AccessDenied { .. }
            | S3Error::SlowDown { .. }
            | S3Error::DownloadsFull(_)
    )
}

/// One core's rate limit on refusal lines: a one-second window.
#[derive(Debug)]
pub struct RefusalLog {
    window_start: Cell<Instant>,
    logged_in_window: Cell<u32>,
    suppressed: Cell<u64>,
}

impl Default for RefusalLog {
    fn default() -> Self {
        RefusalLog {
            window_start: Cell::new(Instant::now()),
            logged_in_window: Cell::new(0),
            suppressed: Cell::new(0),
        }
    }
}

impl RefusalLog {
    /// Whether a line may be written at `now`; if so, how many were
    /// suppressed since the last one written.
    pub fn admit(&self, now: Instant) -> Option<u64> {
        if now.duration_since(self.window_start.get()) >= Duration::from_secs(1) {
            self.window_start.set(now);
            self.logged_in_window.set(0);
        }
        let logged = self.logged_in_window.get();
        if logged >= REFUSALS_LOGGED_PER_S_MAX {
            self.suppressed.set(self.suppressed.get() + 1);
            return None;
        }
        self.logged_in_window.set(logged + 1);
        Some(self.suppressed.replace(0))
    }

    /// Logs `error` for `request`, if the rate allows.
    pub fn log(&self, request: &RequestSummary<'_>, error: &S3Error) {
        let Some(suppressed) = self.admit(Instant::now()) else {
            return;
        };
        let reason = match error {
            // The numbers behind the rejection: which shard, how much.
            S3Error::SlowDown { reason } => reason.to_string(),
            S3Error::DownloadsFull(reason) => reason.to_string(),
            other => other.to_string(),
        };
        tracing::info!(
            target: "shoal::refused",
            request_id = request.request_id,
            operation = request.operation,
            code = error.code(),
            status = error.status().as_u16(),
            method = %request.method,
            bucket = request.bucket(),
            key = request.key(),
            user = request.user(),
            remote = %request.remote(),
            %reason,
            suppressed_before = suppressed,
            "request refused"
        );
    }
}

/// With `--access-log`: one line for a request, written when its response
/// starts (`bytes_out` is the response's `Content-Length`, so a GET that
/// breaks off midway still counts its whole length).
pub fn access(
    request: &RequestSummary<'_>,
    status: u16,
    bytes_in: u64,
    bytes_out: u64,
    duration: Duration,
) {
    tracing::info!(
        target: "shoal::access",
        request_id = request.request_id,
        operation = request.operation,
        method = %request.method,
        bucket = request.bucket(),
        key = request.key(),
        status,
        bytes_in,
        bytes_out,
        duration_ms = duration.as_secs_f64() * 1e3,
        user = request.user(),
        remote = %request.remote(),
        "request"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_limited_per_second_and_counted() {
        let log = RefusalLog::default();
        let start = log.window_start.get();
        for _ in 0..REFUSALS_LOGGED_PER_S_MAX {
            assert_eq!(log.admit(start), Some(0));
        }
        assert_eq!(log.admit(start + Duration::from_millis(10)), None);
        assert_eq!(log.admit(start + Duration::from_millis(900)), None);
        // A new window: the next line reports the two it held back.
        assert_eq!(log.admit(start + Duration::from_millis(1000)), Some(2));
        assert_eq!(log.admit(start + Duration::from_millis(1001)), Some(0));
    }
}
