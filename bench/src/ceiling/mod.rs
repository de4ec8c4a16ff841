//! `shoal-bench ceiling`: what this machine can do at best, so a benchmark
//! figure can be read as a fraction of it. Four probes, run one after the
//! other on plain threads (no async runtime): durable O_DIRECT writes and
//! O_DIRECT reads of the disk under `--dir` ([`disk`]), SHA-256 and MD5 on
//! one core and on every core ([`hash`]), and TCP over loopback
//! ([`loopback`]). Each probe is bounded in bytes or in time (see
//! `limits.rs`); the whole set takes a few seconds plus the disk's time for
//! `--size` bytes twice.

pub mod cores;
pub mod disk;
pub mod hash;
pub mod loopback;

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::error::BenchError;
use crate::stats::summary::per_second;

/// What to probe.
#[derive(Debug, Clone)]
pub struct CeilingConfig {
    /// Directory for the disk probe's scratch file; not a tmpfs.
    pub dir: PathBuf,
    /// Bytes the disk probe writes, then reads.
    pub disk_bytes: u64,
}

/// One hash's rate on one core and on all of them.
#[derive(Debug, Clone, Serialize)]
pub struct HashCeiling {
    pub per_core_bytes_per_s: f64,
    pub all_cores_bytes_per_s: f64,
    pub cores: usize,
    pub pinned: bool,
}

/// The machine's limits, as measured.
#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    pub dir: String,
    pub disk_probe_bytes: u64,
    /// 4 MiB O_DIRECT writes, each followed by fdatasync.
    pub disk_write_fdatasync_bytes_per_s: f64,
    /// 4 MiB O_DIRECT reads of the same file.
    pub disk_read_bytes_per_s: f64,
    pub sha256: HashCeiling,
    pub md5: HashCeiling,
    /// One sender thread, one receiver thread, 1 MiB writes.
    pub loopback_tcp_bytes_per_s: f64,
    pub elapsed_s: f64,
}

impl Ceiling {
    /// The figure a PUT's throughput is compared with: durable writes.
    pub fn put_bytes_per_s(&self) -> f64 {
        self.disk_write_fdatasync_bytes_per_s
    }

    /// The figure a GET's throughput is compared with: the slower of disk
    /// reads and loopback TCP.
    pub fn get_bytes_per_s(&self) -> f64 {
        self.disk_read_bytes_per_s
            .min(self.loopback_tcp_bytes_per_s)
    }
}

pub fn measure(config: &CeilingConfig) -> Result<Ceiling, BenchError> {
    let started = Instant::now();
    let disk = disk::probe(&config.dir, config.disk_bytes)?;
    let sha256 = hash::probe(hash::Algorithm::Sha256);
    let md5 = hash::probe(hash::Algorithm::Md5);
    let loopback = loopback::probe().map_err(BenchError::Loopback)?;
    Ok(Ceiling {
        dir: config.dir.display().to_string(),
        disk_probe_bytes: disk.bytes,
        disk_write_fdatasync_bytes_per_s: per_second(disk.bytes, disk.write.as_secs_f64()),
        disk_read_bytes_per_s: per_second(disk.bytes, disk.read.as_secs_f64()),
        sha256,
        md5,
        loopback_tcp_bytes_per_s: loopback,
        elapsed_s: started.elapsed().as_secs_f64(),
    })
}
