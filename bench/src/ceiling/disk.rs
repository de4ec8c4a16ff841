//! The disk probe: a scratch file in the directory under test, written with
//! 4 MiB O_DIRECT writes, each followed by fdatasync (as a durable PUT
//! waits for its data to be on disk), then read back with 4 MiB O_DIRECT
//! reads. Page cache bypassed both ways. Refuses a tmpfs, where O_DIRECT
//! and fdatasync mean nothing. The file is removed however the probe ends.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::RngCore;

use crate::error::BenchError;
use crate::limits::{DISK_ALIGN_BYTES, DISK_IO_BYTES};

/// `statfs` magic of tmpfs (linux/magic.h).
const TMPFS_MAGIC: i64 = 0x0102_1994;

pub struct DiskProbe {
    pub bytes: u64,
    pub write: Duration,
    pub read: Duration,
}

/// A heap buffer aligned for O_DIRECT.
struct AlignedBuf {
    ptr: std::ptr::NonNull<u8>,
    layout: std::alloc::Layout,
}

impl AlignedBuf {
    fn new(len: usize) -> AlignedBuf {
        let layout =
            std::alloc::Layout::from_size_align(len, DISK_ALIGN_BYTES).expect("valid layout");
        assert!(len > 0);
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr =
            std::ptr::NonNull::new(ptr).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        AlignedBuf { ptr, layout }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` owns `layout.size()` initialised bytes.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: as above.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// Removes the scratch file when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
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
    Ok(stat.f_type as i64 == TMPFS_MAGIC)
}

/// Writes then reads `bytes` (rounded up to whole 4 MiB I/Os) in `dir`.
pub fn probe(dir: &Path, bytes: u64) -> Result<DiskProbe, BenchError> {
    let fail = |source| BenchError::Disk {
        dir: dir.to_path_buf(),
        source,
    };
    if is_tmpfs(dir).map_err(fail)? {
        return Err(BenchError::TmpfsDir {
            dir: dir.to_path_buf(),
        });
    }
    let ios = bytes.div_ceil(DISK_IO_BYTES as u64).max(1);
    let scratch = Scratch(dir.join(format!(".shoal-bench-ceiling-{}", std::process::id())));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(&scratch.0)
        .map_err(fail)?;
    let mut buf = AlignedBuf::new(DISK_IO_BYTES);
    // Random bytes: a device that compresses or deduplicates zeros would
    // report a ceiling no object ever reaches.
    rand::thread_rng().fill_bytes(buf.as_mut_slice());

    let write = timed(|| write_all(&file, &buf, ios)).map_err(fail)?;
    let read = timed(|| read_all(&file, &mut buf, ios)).map_err(fail)?;
    drop(file);
    drop(scratch);
    Ok(DiskProbe {
        bytes: ios * DISK_IO_BYTES as u64,
        write,
        read,
    })
}

fn timed(f: impl FnOnce() -> io::Result<()>) -> io::Result<Duration> {
    let started = Instant::now();
    f()?;
    Ok(started.elapsed())
}

fn write_all(file: &File, buf: &AlignedBuf, ios: u64) -> io::Result<()> {
    for i in 0..ios {
        file.write_all_at(buf.as_slice(), i * DISK_IO_BYTES as u64)?;
        file.sync_data()?;
    }
    Ok(())
}

fn read_all(file: &File, buf: &mut AlignedBuf, ios: u64) -> io::Result<()> {
    for i in 0..ios {
        file.read_exact_at(buf.as_mut_slice(), i * DISK_IO_BYTES as u64)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmpfs_is_recognised() {
        if is_tmpfs(Path::new("/dev/shm")).unwrap_or(false) {
            assert!(matches!(
                probe(Path::new("/dev/shm"), 1),
                Err(BenchError::TmpfsDir { .. })
            ));
        }
        assert!(is_tmpfs(Path::new("/nonexistent-shoal-bench")).is_err());
    }

    #[test]
    fn probe_writes_reads_and_cleans_up() {
        let dir = std::env::current_dir().unwrap();
        if is_tmpfs(&dir).unwrap_or(true) {
            return;
        }
        let result = probe(&dir, 1);
        let leftover = dir.join(format!(".shoal-bench-ceiling-{}", std::process::id()));
        assert!(!leftover.exists());
        match result {
            Ok(p) => {
                assert_eq!(p.bytes, DISK_IO_BYTES as u64);
                assert!(p.write > Duration::ZERO && p.read > Duration::ZERO);
            }
            // Some filesystems refuse O_DIRECT; the error names the dir.
            Err(e) => assert!(e.to_string().contains(&dir.display().to_string())),
        }
    }
}
