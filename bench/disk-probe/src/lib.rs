//! The disk as a PUT meets it, measured the same way by `shoal-bench
//! ceiling` (to read benchmark figures as a fraction of the disk) and by
//! `shoal preflight` (to judge a host before deploying):
//!
//! - [`rates`]: a scratch file written with 4 MiB O_DIRECT writes, each
//!   followed by `fdatasync` (as a durable PUT waits for its data), then
//!   read back with 4 MiB O_DIRECT reads; page cache bypassed both ways;
//! - [`sync_latency`]: 4 KiB O_DIRECT writes each followed by `fdatasync`,
//!   timed one by one (what a raft append or a small PUT waits for).
//!
//! Both refuse a tmpfs, where O_DIRECT and `fdatasync` mean nothing, and
//! remove their scratch file however they end. Plain threads, no runtime:
//! this crate sits below both the node and the load generator, and pulls
//! in neither.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::RngCore;

/// Bytes per write and read of [`rates`].
pub const IO_BYTES: usize = 4 << 20;
/// What O_DIRECT buffers, offsets and lengths align to; the size of
/// [`sync_latency`]'s writes.
pub const ALIGN_BYTES: usize = 4096;

/// `statfs` magic of tmpfs (linux/magic.h).
const TMPFS_MAGIC: i64 = 0x0102_1994;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{dir} is a tmpfs: O_DIRECT and fdatasync mean nothing there")]
    Tmpfs { dir: PathBuf },
    #[error("disk probe in {dir}: {source}")]
    Io { dir: PathBuf, source: io::Error },
}

/// What [`rates`] measured.
#[derive(Clone, Copy, Debug)]
pub struct DiskRates {
    /// Bytes written, then read (whole 4 MiB I/Os).
    pub bytes: u64,
    pub write: Duration,
    pub read: Duration,
}

/// Writes then reads `bytes` (rounded up to whole 4 MiB I/Os) in `dir`.
pub fn rates(dir: &Path, bytes: u64) -> Result<DiskRates, ProbeError> {
    let scratch = Scratch::new(dir, "rates")?;
    let fail = |source| ProbeError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    let file = scratch.open().map_err(fail)?;
    let mut buf = AlignedBuf::new(IO_BYTES);
    // Random bytes: a device that compresses or deduplicates zeros would
    // report a ceiling no object ever reaches.
    rand::thread_rng().fill_bytes(buf.as_mut_slice());
    let ios = bytes.div_ceil(IO_BYTES as u64).max(1);
    let write = timed(|| {
        for i in 0..ios {
            file.write_all_at(buf.as_slice(), i * IO_BYTES as u64)?;
            file.sync_data()?;
        }
        Ok(())
    })
    .map_err(fail)?;
    let read = timed(|| {
        for i in 0..ios {
            file.read_exact_at(buf.as_mut_slice(), i * IO_BYTES as u64)?;
        }
        Ok(())
    })
    .map_err(fail)?;
    Ok(DiskRates {
        bytes: ios * IO_BYTES as u64,
        write,
        read,
    })
}

/// Times up to `samples` 4 KiB O_DIRECT writes each followed by
/// `fdatasync` in `dir`, stopping early once `time_max` has passed;
/// returns the times sorted, at least one.
pub fn sync_latency(
    dir: &Path,
    samples: usize,
    time_max: Duration,
) -> Result<Vec<Duration>, ProbeError> {
    let scratch = Scratch::new(dir, "sync")?;
    let fail = |source| ProbeError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    let file = scratch.open().map_err(fail)?;
    let mut buf = AlignedBuf::new(ALIGN_BYTES);
    rand::thread_rng().fill_bytes(buf.as_mut_slice());
    let began = Instant::now();
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples.max(1) {
        let started = Instant::now();
        file.write_all_at(buf.as_slice(), (i * ALIGN_BYTES) as u64)
            .and_then(|()| file.sync_data())
            .map_err(fail)?;
        times.push(started.elapsed());
        if began.elapsed() > time_max {
            break;
        }
    }
    times.sort();
    Ok(times)
}

/// True when `dir` is on a tmpfs.
pub fn is_tmpfs(dir: &Path) -> io::Result<bool> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    // SAFETY: `stat` is a plain struct the kernel fills in.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `stat` is valid for writes.
    if unsafe { libc::statfs(path.as_ptr(), &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // `f_type`'s width differs between architectures.
    #[allow(clippy::unnecessary_cast)]
    let kind = stat.f_type as i64;
    Ok(kind == TMPFS_MAGIC)
}

fn timed(f: impl FnOnce() -> io::Result<()>) -> io::Result<Duration> {
    let started = Instant::now();
    f()?;
    Ok(started.elapsed())
}

/// A scratch file in the directory under test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(dir: &Path, what: &str) -> Result<Scratch, ProbeError> {
        let fail = |source| ProbeError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        if is_tmpfs(dir).map_err(fail)? {
            return Err(ProbeError::Tmpfs {
                dir: dir.to_path_buf(),
            });
        }
        Ok(Scratch(dir.join(format!(
            ".shoal-disk-probe-{what}-{}",
            std::process::id()
        ))))
    }

    fn open(&self) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_DIRECT)
            .open(&self.0)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A zeroed buffer aligned for O_DIRECT.
pub struct AlignedBuf {
    bytes: Vec<u8>,
    offset: usize,
    len: usize,
}

impl AlignedBuf {
    pub fn new(len: usize) -> AlignedBuf {
        let bytes = vec![0u8; len + ALIGN_BYTES];
        let offset = bytes.as_ptr().align_offset(ALIGN_BYTES);
        assert!(offset < ALIGN_BYTES, "a byte buffer can always be aligned");
        AlignedBuf { bytes, offset, len }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[self.offset..self.offset + self.len]
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.bytes[self.offset..self.offset + self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmpfs_is_refused() {
        if is_tmpfs(Path::new("/dev/shm")).unwrap_or(false) {
            assert!(matches!(
                rates(Path::new("/dev/shm"), 1),
                Err(ProbeError::Tmpfs { .. })
            ));
            assert!(matches!(
                sync_latency(Path::new("/dev/shm"), 1, Duration::from_secs(1)),
                Err(ProbeError::Tmpfs { .. })
            ));
        }
        assert!(is_tmpfs(Path::new("/nonexistent-shoal-disk-probe")).is_err());
    }

    #[test]
    fn probes_measure_and_clean_up() {
        let dir = tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap();
        if is_tmpfs(dir.path()).unwrap_or(true) {
            return;
        }
        match rates(dir.path(), 1) {
            Ok(r) => {
                assert_eq!(r.bytes, IO_BYTES as u64);
                assert!(r.write > Duration::ZERO && r.read > Duration::ZERO);
            }
            // Some filesystems refuse O_DIRECT; the error names the dir.
            Err(e) => assert!(e.to_string().contains(&dir.path().display().to_string())),
        }
        if let Ok(times) = sync_latency(dir.path(), 5, Duration::from_secs(5)) {
            assert_eq!(times.len(), 5);
            assert!(times.windows(2).all(|w| w[0] <= w[1]), "sorted");
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no scratch file left"
        );
        let buf = AlignedBuf::new(ALIGN_BYTES);
        assert_eq!(buf.as_slice().as_ptr() as usize % ALIGN_BYTES, 0);
        assert_eq!(buf.as_slice().len(), ALIGN_BYTES);
    }
}
