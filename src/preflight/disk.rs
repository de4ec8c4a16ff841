//! Checks of each data directory: it exists (or can), its filesystem and
//! mount, O_DIRECT, the device's I/O scheduler, free space against the
//! reserve, and the disk's rates and sync latency as a PUT meets them.

use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use shoal_disk_probe::{AlignedBuf, ALIGN_BYTES};

use super::{Check, Verdict};
use crate::data_dir::{filesystem_type, TMPFS_MAGIC};
use crate::limits::{PREFLIGHT_SYNC_PROBES, PREFLIGHT_SYNC_PROBE_TIME_MAX};

/// `statfs.f_type` values (linux/magic.h).
const XFS_MAGIC: i64 = 0x5846_5342;
const EXT4_MAGIC: i64 = 0xEF53;
const BTRFS_MAGIC: i64 = 0x9123_683E;
const OVERLAYFS_MAGIC: i64 = 0x794C_7630;
const NFS_MAGIC: i64 = 0x6969;
const ZFS_MAGIC: i64 = 0x2FC1_2FC1;

/// A median sync above this is slow for a device meant for a storage node.
const SYNC_SLOW: Duration = Duration::from_millis(2);
/// Durable write rate below which a device is slow for Shoal.
const WRITE_SLOW_BYTES_PER_S: f64 = 200e6;

/// Every check of one data directory. Nothing is created: a directory
/// that does not exist yet is measured in its parent, where `shoal serve`
/// would make it.
pub fn checks(dir: &Path, probe_bytes: u64, reserve: u64) -> Vec<Check> {
    let (check, measured) = directory(dir);
    let Some(at) = measured else {
        return vec![check];
    };
    let mut checks = vec![
        check,
        filesystem(&at),
        scheduler(&at),
        free_space(&at, reserve),
    ];
    let direct = direct_io(&at);
    let works = direct.verdict == Verdict::Ok;
    checks.push(direct);
    if works {
        checks.push(rates(&at, probe_bytes));
        checks.push(sync_latency(&at));
    }
    checks
}

/// Directories that share a filesystem share its device.
pub fn shared_devices(dirs: &[PathBuf]) -> Vec<Check> {
    let devices: Vec<Option<u64>> = dirs
        .iter()
        .map(|d| std::fs::metadata(existing(d)?).ok().map(|m| m.dev()))
        .collect();
    let mut checks = Vec::new();
    for (i, dev) in devices.iter().enumerate() {
        if let Some(j) = devices[..i].iter().position(|d| d.is_some() && d == dev) {
            checks.push(Check::new(
                "devices",
                Verdict::Warn,
                format!(
                    "{} and {} are on one filesystem: their shards share its device; give one \
                     data directory per NVMe device",
                    dirs[j].display(),
                    dirs[i].display()
                ),
            ));
        }
    }
    if checks.is_empty() && dirs.len() > 1 {
        checks.push(Check::new(
            "devices",
            Verdict::Ok,
            format!(
                "{} data directories on {} filesystems",
                dirs.len(),
                dirs.len()
            ),
        ));
    }
    checks
}

/// `dir` when it exists, else its parent when that does (where the node
/// would create it).
fn existing(dir: &Path) -> Option<&Path> {
    [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .find(|d| d.is_dir())
}

/// The directory check, and where the others measure (`None`: nowhere).
fn directory(dir: &Path) -> (Check, Option<PathBuf>) {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => (
            Check::new("directory", Verdict::Ok, dir.display().to_string()),
            Some(dir.to_path_buf()),
        ),
        Ok(_) => (
            Check::new(
                "directory",
                Verdict::Fail,
                format!("{} is not a directory", dir.display()),
            ),
            None,
        ),
        Err(_) => match existing(dir) {
            Some(parent) => (
                Check::new(
                    "directory",
                    Verdict::Ok,
                    format!(
                        "{} does not exist yet: `shoal serve` creates it; measured in {}",
                        dir.display(),
                        parent.display()
                    ),
                ),
                Some(parent.to_path_buf()),
            ),
            None => (
                Check::new(
                    "directory",
                    Verdict::Fail,
                    format!(
                        "{} and its parent are missing: mount the device, or create it",
                        dir.display()
                    ),
                ),
                None,
            ),
        },
    }
}

fn filesystem(dir: &Path) -> Check {
    let kind = match filesystem_type(dir) {
        Ok(kind) => kind,
        Err(e) => {
            return Check::new(
                "filesystem",
                Verdict::Fail,
                format!("{}: {e}", dir.display()),
            )
        }
    };
    let mount = mount_of(dir);
    let on_root = mount.as_ref().is_some_and(|m| m.point == "/");
    let mount = mount
        .map(|m| format!(" ({} on {}, {})", m.source, m.point, m.options))
        .unwrap_or_default();
    let (verdict, name, advice) = match kind {
        XFS_MAGIC => (Verdict::Ok, "xfs", ""),
        EXT4_MAGIC => (Verdict::Ok, "ext4", "; accepted, XFS is recommended"),
        TMPFS_MAGIC => (
            Verdict::Fail,
            "tmpfs",
            ": objects would live in memory and be lost at reboot",
        ),
        BTRFS_MAGIC | ZFS_MAGIC => (
            Verdict::Warn,
            if kind == BTRFS_MAGIC { "btrfs" } else { "zfs" },
            ": copy-on-write rewrites what the blob log already writes once; use XFS",
        ),
        OVERLAYFS_MAGIC => (
            Verdict::Warn,
            "overlayfs",
            ": a container's layer; give the node a volume on the device",
        ),
        NFS_MAGIC => (
            Verdict::Warn,
            "nfs",
            ": a network filesystem; Shoal is built for directly attached drives",
        ),
        _ => (
            Verdict::Warn,
            "unknown",
            ": Shoal is tested on XFS and ext4 on directly attached drives",
        ),
    };
    if on_root && verdict == Verdict::Ok {
        return Check::new(
            "filesystem",
            Verdict::Warn,
            format!(
                "{}: {name}{mount}: the root filesystem; give each data directory a device of \
                 its own, and if one is meant to be mounted here, mount it",
                dir.display()
            ),
        );
    }
    Check::new(
        "filesystem",
        verdict,
        format!("{}: {name}{advice}{mount}", dir.display()),
    )
}

fn direct_io(dir: &Path) -> Check {
    let probe = dir.join(format!(".shoal-preflight-direct-io-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_DIRECT)
            .open(&probe)?;
        let mut buf = AlignedBuf::new(ALIGN_BYTES);
        buf.as_mut_slice().fill(0x5A);
        file.write_all_at(buf.as_slice(), 0)?;
        buf.as_mut_slice().fill(0);
        file.read_exact_at(buf.as_mut_slice(), 0)?;
        if buf.as_slice().iter().any(|&b| b != 0x5A) {
            return Err(std::io::Error::other("read back other bytes than written"));
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&probe);
    match result {
        Ok(()) => Check::new("O_DIRECT", Verdict::Ok, format!("{}: works", dir.display())),
        Err(e) => Check::new(
            "O_DIRECT",
            Verdict::Fail,
            format!(
                "{}: {e}: the blob logs write with O_DIRECT; use XFS or ext4",
                dir.display()
            ),
        ),
    }
}

fn free_space(dir: &Path, reserve: u64) -> Check {
    let Some((capacity, free)) = crate::disk_space::filesystem_bytes(dir) else {
        return Check::new(
            "free space",
            Verdict::Warn,
            format!("{}: statvfs failed", dir.display()),
        );
    };
    let figures = format!(
        "{}: {} free of {}, reserve {}",
        dir.display(),
        gib(free),
        gib(capacity),
        gib(reserve)
    );
    if free < reserve {
        Check::new(
            "free space",
            Verdict::Fail,
            format!("{figures}: below the reserve the node refuses every PUT (--disk-reserve)"),
        )
    } else {
        Check::new("free space", Verdict::Ok, figures)
    }
}

fn scheduler(dir: &Path) -> Check {
    let Some((device, text)) = std::fs::metadata(dir)
        .ok()
        .and_then(|m| scheduler_of(m.dev()))
    else {
        return Check::new(
            "io scheduler",
            Verdict::Ok,
            format!(
                "{}: none to set (not a block device's queue)",
                dir.display()
            ),
        );
    };
    // The active one is in brackets: "[none] mq-deadline kyber".
    let active = text
        .split_whitespace()
        .find_map(|s| s.strip_prefix('[')?.strip_suffix(']'))
        .unwrap_or("none");
    if active == "none" || !device.starts_with("nvme") {
        Check::new(
            "io scheduler",
            Verdict::Ok,
            format!("{}: {device} uses {active}", dir.display()),
        )
    } else {
        Check::new(
            "io scheduler",
            Verdict::Warn,
            format!(
                "{}: {device} uses {active}; NVMe devices do best with none \
                 (echo none > /sys/block/{device}/queue/scheduler, or a udev rule)",
                dir.display()
            ),
        )
    }
}

/// The block device (name, scheduler line) behind device number `dev`,
/// the whole disk's for a partition.
fn scheduler_of(dev: u64) -> Option<(String, String)> {
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let sys = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
    for candidate in [sys.clone(), sys.parent()?.to_path_buf()] {
        if let Ok(text) = std::fs::read_to_string(candidate.join("queue/scheduler")) {
            let name = candidate.file_name()?.to_string_lossy().to_string();
            return Some((name, text.trim().to_string()));
        }
    }
    None
}

/// Durable write and read rates with 4 MiB O_DIRECT I/Os, measured as
/// `shoal-bench ceiling` measures them.
fn rates(dir: &Path, bytes: u64) -> Check {
    let rates = match shoal_disk_probe::rates(dir, bytes) {
        Ok(rates) => rates,
        Err(e) => return Check::new("disk rate", Verdict::Fail, e.to_string()),
    };
    let per_s = |d: Duration| rates.bytes as f64 / d.as_secs_f64();
    let (write, read) = (per_s(rates.write), per_s(rates.read));
    let figures = format!(
        "{}: write+fdatasync {:.0} MB/s, read {:.0} MB/s (4 MiB O_DIRECT, {} MiB)",
        dir.display(),
        write / 1e6,
        read / 1e6,
        rates.bytes >> 20
    );
    if write < WRITE_SLOW_BYTES_PER_S {
        Check::new(
            "disk rate",
            Verdict::Warn,
            format!("{figures}: slow for a storage node's device"),
        )
    } else {
        Check::new("disk rate", Verdict::Ok, figures)
    }
}

/// Latency of one 4 KiB O_DIRECT write plus `fdatasync`.
fn sync_latency(dir: &Path) -> Check {
    let times = match shoal_disk_probe::sync_latency(
        dir,
        PREFLIGHT_SYNC_PROBES,
        PREFLIGHT_SYNC_PROBE_TIME_MAX,
    ) {
        Ok(times) => times,
        Err(e) => return Check::new("fdatasync", Verdict::Fail, e.to_string()),
    };
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    let (p50, p99) = (at(0.5), at(0.99));
    let figures = format!(
        "{}: 4 KiB write+fdatasync p50 {:.3} ms, p99 {:.3} ms ({} samples)",
        dir.display(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        times.len()
    );
    if p50 > SYNC_SLOW {
        Check::new(
            "fdatasync",
            Verdict::Warn,
            format!(
                "{figures}: every raft append and small PUT waits this long; devices with \
                 power-loss protection sync in tens of microseconds"
            ),
        )
    } else {
        Check::new("fdatasync", Verdict::Ok, figures)
    }
}

/// A mount, as `/proc/self/mountinfo` lists it.
struct Mount {
    point: String,
    source: String,
    options: String,
}

/// The mount holding `path`: the longest mount point that prefixes it.
fn mount_of(path: &Path) -> Option<Mount> {
    let path = std::fs::canonicalize(path).ok()?;
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines()
        .filter_map(|line| {
            // id parent major:minor root point options [optional...] - type source super
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let point = fields.get(4)?.replace("\\040", " ");
            let options = fields.get(5)?.to_string();
            let source = right.split(' ').nth(1)?.to_string();
            Some(Mount {
                point,
                source,
                options,
            })
        })
        .filter(|m| path.starts_with(&m.point))
        .max_by_key(|m| m.point.len())
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_checked_and_measured_and_left_clean() {
        let root = tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap();
        let dir = root.path().join("data");
        let checks = checks(&dir, 8 << 20, 0);
        let names: Vec<_> = checks.iter().map(|c| c.name).collect();
        assert_eq!(
            names[..4],
            ["directory", "filesystem", "io scheduler", "free space"]
        );
        assert!(!dir.exists(), "nothing is created");
        assert!(
            checks[0].detail.contains("does not exist yet"),
            "{:?}",
            checks[0]
        );
        std::fs::create_dir(&dir).unwrap();
        let checks = super::checks(&dir, 8 << 20, 0);
        let names: Vec<_> = checks.iter().map(|c| c.name).collect();
        if checks[4].verdict == Verdict::Ok {
            assert_eq!(names[5..], ["disk rate", "fdatasync"]);
            assert!(checks[5].detail.contains("MB/s"), "{:?}", checks[5]);
            assert!(checks[6].detail.contains("p99"), "{:?}", checks[6]);
        }
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "no scratch file left behind"
        );
        let huge = super::checks(&dir, 1 << 20, u64::MAX);
        let free = huge.iter().find(|c| c.name == "free space").unwrap();
        assert_eq!(free.verdict, Verdict::Fail, "{free:?}");
    }

    #[test]
    fn a_missing_parent_fails_and_shared_filesystems_are_named() {
        let root = tempfile::tempdir().unwrap();
        let checks = checks(&root.path().join("a/b"), 1 << 20, 0);
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].verdict, Verdict::Fail);
        let dirs = vec![root.path().to_path_buf(), root.path().to_path_buf()];
        let shared = shared_devices(&dirs);
        assert_eq!(shared.len(), 1);
        assert_eq!(shared[0].verdict, Verdict::Warn);
        if std::path::Path::new("/dev/shm").is_dir() {
            let apart = vec![root.path().to_path_buf(), PathBuf::from("/dev/shm")];
            let line = shared_devices(&apart);
            assert_eq!(line.len(), 1);
            assert_eq!(line[0].verdict, Verdict::Ok, "{line:?}");
        }
    }
}
