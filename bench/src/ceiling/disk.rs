//! The disk probe: durable 4 MiB O_DIRECT writes, then reads, of a scratch
//! file in the directory under test. The probe itself lives in
//! `shoal-disk-probe`, which `shoal preflight` runs too, so a host's
//! preflight figure and a benchmark's ceiling are the same measure.

use std::path::Path;

use shoal_disk_probe::{DiskRates, ProbeError};

use crate::error::BenchError;

/// Writes then reads `bytes` (rounded up to whole 4 MiB I/Os) in `dir`.
pub fn probe(dir: &Path, bytes: u64) -> Result<DiskRates, BenchError> {
    shoal_disk_probe::rates(dir, bytes).map_err(|e| match e {
        ProbeError::Tmpfs { dir } => BenchError::TmpfsDir { dir },
        ProbeError::Io { dir, source } => BenchError::Disk { dir, source },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tmpfs_is_refused_as_the_bench_says_it() {
        if shoal_disk_probe::is_tmpfs(Path::new("/dev/shm")).unwrap_or(false) {
            assert!(matches!(
                probe(Path::new("/dev/shm"), 1),
                Err(BenchError::TmpfsDir { .. })
            ));
        }
    }
}
