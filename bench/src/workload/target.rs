//! Where a step's requests go and as whom, and where the server's usage is
//! read.

use crate::s3::Endpoint;
use crate::server_usage::ServerProbe;
use crate::sigv4::Credentials;

/// Where requests go and as whom.
#[derive(Debug)]
pub struct Target {
    pub endpoint: Endpoint,
    pub credentials: Credentials,
    pub region: String,
    /// The bucket named by `--bucket` (or the scenario).
    pub bucket: String,
    /// Where the keys go, round-robin by key index: `bucket` itself, or
    /// with `--buckets N`, `<bucket>-0` to `<bucket>-<N-1>`.
    pub buckets: Vec<String>,
    /// Where the server's CPU time and memory are read
    /// (`--server-metrics`, `--server-pid`).
    pub server: Option<ServerProbe>,
}
