//! Free space on the data directory's filesystem, and what the node does
//! about it: below `--disk-reserve` it refuses requests that store bytes
//! (PUT, UploadPart, copies) before reading their bodies, while reads,
//! listings and deletes go on, so an operator can delete their way out.
//!
//! **Ballast.** A node whose disk is full to the last byte could not even
//! start: rocksdb writes files when it opens. And a metadata write that
//! finds the disk full stops its shard's raft group. So the node keeps two
//! ballast files of [`BALLAST_BYTES`] allocated while space allows:
//! `<data-dir>/ballast`, deleted at start when the filesystem is nearly
//! full (the metadata stores then have room to open and record deletes),
//! and `<data-dir>/ballast-running`, deleted by the watcher as soon as
//! free space drops below a quarter of it while the node runs (something
//! else filled the disk: deletes still fit). Each is allocated again once
//! free space is back above the reserve plus twice its size.
//!
//! With several data directories ([`Disks`]), each has its own reserve and
//! ballast, and a request is refused only when the directory of the shard
//! it writes to is low.
//!
//! A thread of its own polls `statvfs` of every data directory each
//! [`DISK_WATCH_INTERVAL`]: `statvfs` of a hung filesystem can block, so it
//! never runs on an executor.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use shoal_shard::ids::ShardIndex;

use crate::limits::{BALLAST_BYTES, DISK_WATCH_INTERVAL};

/// Released at start when the disk is full.
const START_BALLAST: &str = "ballast";
/// Released while running when the disk is nearly full.
const RUNNING_BALLAST: &str = "ballast-running";

/// One data directory's filesystem, as the watcher last saw it.
#[derive(Debug)]
pub struct DiskSpace {
    path: PathBuf,
    reserve_bytes: u64,
    free_bytes: AtomicU64,
    capacity_bytes: AtomicU64,
    low: AtomicBool,
}

/// Every data directory's free space, and which one each shard writes to.
#[derive(Debug)]
pub struct Disks {
    devices: Vec<DiskSpace>,
    /// Position in `devices` of each shard's directory, by shard index.
    device_of_shard: Vec<usize>,
}

impl Disks {
    /// Measures each of `dirs` now and starts the thread that keeps
    /// measuring them (and keeps their ballast). `device_of_shard[i]` is
    /// the position in `dirs` of shard `i`'s directory.
    pub fn watch(
        dirs: Vec<PathBuf>,
        reserve_bytes: u64,
        device_of_shard: Vec<usize>,
    ) -> Arc<Disks> {
        assert!(
            device_of_shard.iter().all(|&d| d < dirs.len()),
            "every shard lives on one of the directories"
        );
        let disks = Arc::new(Disks {
            devices: dirs
                .into_iter()
                .map(|path| DiskSpace {
                    path,
                    reserve_bytes,
                    free_bytes: AtomicU64::new(u64::MAX),
                    capacity_bytes: AtomicU64::new(0),
                    low: AtomicBool::new(false),
                })
                .collect(),
            device_of_shard,
        });
        for device in &disks.devices {
            device.measure();
        }
        let watched = Arc::clone(&disks);
        let started = std::thread::Builder::new()
            .name("shoal-disk-watch".into())
            .spawn(move || loop {
                std::thread::sleep(DISK_WATCH_INTERVAL);
                for device in &watched.devices {
                    device.measure();
                    device.release_running_ballast_if_full();
                    device.keep_ballast();
                }
            });
        if let Err(e) = started {
            tracing::warn!(error = %e, "could not start the disk space watcher; the reserve is not enforced");
        }
        disks
    }

    /// The space of the directory `shard` writes to.
    pub fn of_shard(&self, shard: ShardIndex) -> &DiskSpace {
        &self.devices[self.device_of_shard[shard.as_usize()]]
    }

    /// Every data directory, in the node's order.
    pub fn devices(&self) -> &[DiskSpace] {
        &self.devices
    }

    /// Appends the reserve and whether any directory refuses writes to a
    /// Prometheus exposition.
    pub fn write_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let reserve = self.devices.first().map_or(0, |d| d.reserve_bytes);
        let low = self.devices.iter().any(DiskSpace::is_low);
        let _ = writeln!(
            out,
            "# HELP shoal_data_dir_reserve_bytes Free space the node keeps on each data directory (--disk-reserve); below it, requests that store bytes there are refused.\n\
             # TYPE shoal_data_dir_reserve_bytes gauge\n\
             shoal_data_dir_reserve_bytes {reserve}\n\
             # HELP shoal_data_dir_below_reserve 1 while free space on any data directory is below the reserve.\n\
             # TYPE shoal_data_dir_below_reserve gauge\n\
             shoal_data_dir_below_reserve {}",
            u8::from(low)
        );
    }
}

impl DiskSpace {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether free space is below the reserve (requests that store bytes
    /// are refused).
    pub fn is_low(&self) -> bool {
        self.free_bytes() < self.reserve_bytes
    }

    /// Counts `bytes` about to be written against the free space until the
    /// next measurement, so a burst of PUTs is refused at the reserve, not
    /// up to one watch interval past it.
    pub fn consume(&self, bytes: u64) {
        let _ = self
            .free_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |free| {
                Some(free.saturating_sub(bytes))
            });
    }

    pub fn free_bytes(&self) -> u64 {
        self.free_bytes.load(Ordering::Relaxed)
    }

    pub fn reserve_bytes(&self) -> u64 {
        self.reserve_bytes
    }

    fn measure(&self) {
        let Some((capacity, free)) = filesystem_bytes(&self.path) else {
            return;
        };
        self.capacity_bytes.store(capacity, Ordering::Relaxed);
        self.free_bytes.store(free, Ordering::Relaxed);
        let low = free < self.reserve_bytes;
        if self.low.swap(low, Ordering::Relaxed) != low {
            if low {
                tracing::warn!(free_bytes = free, reserve_bytes = self.reserve_bytes, "disk space below the reserve: refusing requests that store bytes until deletes free some");
            } else {
                tracing::info!(
                    free_bytes = free,
                    reserve_bytes = self.reserve_bytes,
                    "disk space back above the reserve: taking writes again"
                );
            }
        }
    }

    /// Allocates each missing ballast file when there is room for it
    /// well above the reserve.
    fn keep_ballast(&self) {
        for name in [START_BALLAST, RUNNING_BALLAST] {
            let path = self.path.join(name);
            if path.exists() {
                continue;
            }
            if self.free_bytes() < self.reserve_bytes + 2 * BALLAST_BYTES {
                return;
            }
            match allocate(&path, BALLAST_BYTES) {
                Ok(()) => {
                    self.consume(BALLAST_BYTES);
                    tracing::info!(path = %path.display(), bytes = BALLAST_BYTES, "allocated a ballast file (released when the disk fills)");
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&path);
                    tracing::warn!(path = %path.display(), error = %e, "could not allocate a ballast file");
                    return;
                }
            }
        }
    }

    /// Deletes the running ballast when free space is nearly gone, so the
    /// metadata stores can still record deletes.
    fn release_running_ballast_if_full(&self) {
        if self.free_bytes() >= BALLAST_BYTES / 4 {
            return;
        }
        let path = self.path.join(RUNNING_BALLAST);
        if !path.exists() {
            return;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::warn!(free_bytes = self.free_bytes(), released_bytes = BALLAST_BYTES, "the disk is nearly full: released the running ballast file so deletes still fit; delete objects to free space");
                self.measure();
            }
            Err(e) => {
                tracing::warn!(error = %e, "the disk is nearly full and the running ballast file could not be released")
            }
        }
    }
}

/// At start, before anything else writes to `data_dir`: deletes the
/// ballast if the filesystem has less than its size free, so the node can
/// open its stores.
pub fn release_ballast_if_full(data_dir: &Path) {
    let path = data_dir.join(START_BALLAST);
    if !path.exists() {
        return;
    }
    let free = filesystem_bytes(data_dir).map_or(0, |(_, free)| free);
    if free >= BALLAST_BYTES {
        return;
    }
    match std::fs::remove_file(&path) {
        Ok(()) => tracing::warn!(free_bytes = free, released_bytes = BALLAST_BYTES, "the disk is full: released the ballast file so the node can start; delete objects to free space"),
        Err(e) => tracing::warn!(error = %e, "the disk is full and the ballast file could not be released"),
    }
}

/// Creates `path` with `bytes` allocated (not sparse) and synced.
fn allocate(path: &Path, bytes: u64) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    let len = libc::off_t::try_from(bytes).map_err(std::io::Error::other)?;
    // SAFETY: a valid open descriptor; plain integers otherwise.
    let r = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    file.sync_all()?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// `(capacity, available)` of the filesystem holding `path`.
// statvfs's field widths differ between architectures.
#[allow(clippy::unnecessary_cast)]
pub fn filesystem_bytes(path: &Path) -> Option<(u64, u64)> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: `stat` is a plain struct statvfs fills in; the path is a
    // valid NUL-terminated string.
    unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c_path.as_ptr(), &mut stat) != 0 {
            return None;
        }
        let unit = stat.f_frsize as u64;
        Some((stat.f_blocks as u64 * unit, stat.f_bavail as u64 * unit))
    }
}
