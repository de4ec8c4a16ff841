//! The data directory a node owns: created only when the operator asked
//! for it (or its parent exists, so a typo cannot scatter directories over
//! the filesystem), held by one process at a time, and checked for what
//! the blob logs need.
//!
//! Ownership is an advisory `flock` on `<data-dir>/lock`, which also holds
//! the owner's pid. The kernel drops the lock when the process dies however
//! it dies, so a `kill -9` never leaves a stale lock behind; a second node
//! started on the same directory is refused in words before rocksdb could
//! refuse it with its own `LOCK` error.
//!
//! Runs on the main thread at start, before any executor exists.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const LOCK_FILE: &str = "lock";
const DIRECT_IO_PROBE_FILE: &str = ".direct-io-probe";
/// `statfs.f_type` of tmpfs (linux/magic.h).
pub(crate) const TMPFS_MAGIC: i64 = 0x0102_1994;

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error(
        "data directory {path} does not exist, nor does its parent {parent}; \
         create it, or pass --init to create both"
    )]
    Missing { path: PathBuf, parent: PathBuf },
    #[error("data directory {path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error(
        "data directory {path} is in use by another shoal process{}; stop it first, \
         or give this node its own --data-dir",
        pid.map_or(String::new(), |pid| format!(" (pid {pid})"))
    )]
    InUse { path: PathBuf, pid: Option<u32> },
    #[error("data directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The data directory, locked for this process until it exits.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    /// Holding the file holds the lock.
    _lock: File,
}

impl DataDir {
    /// Creates `path` if allowed, takes its lock and warns about a
    /// filesystem that does not suit the blob logs. `path` is absolute.
    pub fn prepare(path: &Path, init: bool) -> Result<DataDir, DataDirError> {
        assert!(path.is_absolute(), "flags make the data directory absolute");
        let io = |source| DataDirError::Io {
            path: path.to_path_buf(),
            source,
        };
        create_if_allowed(path, init)?;
        let lock = lock(path)?;
        // Before anything below writes to a disk that may be full.
        crate::disk_space::release_ballast_if_full(path);
        if filesystem_type(path).map_err(io)? == TMPFS_MAGIC {
            tracing::warn!(
                data_dir = %path.display(),
                "the data directory is on tmpfs: its objects live in memory and are lost at reboot"
            );
        }
        if !supports_direct_io(path).map_err(io)? {
            tracing::warn!(
                data_dir = %path.display(),
                "the data directory's filesystem refuses O_DIRECT; blob logs need it and may fail to open"
            );
        }
        Ok(DataDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn create_if_allowed(path: &Path, init: bool) -> Result<(), DataDirError> {
    let io = |source| DataDirError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(DataDirError::NotADirectory {
                path: path.to_path_buf(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    if init {
        std::fs::create_dir_all(path).map_err(io)?;
        tracing::info!(data_dir = %path.display(), "created the data directory (--init)");
        return Ok(());
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    if !parent.is_dir() {
        return Err(DataDirError::Missing {
            path: path.to_path_buf(),
            parent: parent.to_path_buf(),
        });
    }
    std::fs::create_dir(path).map_err(io)?;
    tracing::info!(
        data_dir = %path.display(),
        "created the data directory (its parent exists)"
    );
    Ok(())
}

/// Takes the directory's lock, or names the process that holds it.
fn lock(path: &Path) -> Result<File, DataDirError> {
    let lock_path = path.join(LOCK_FILE);
    let io = |source| DataDirError::Io {
        path: lock_path.clone(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(&lock_path)
        .map_err(io)?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut text = String::new();
            let pid = file
                .read_to_string(&mut text)
                .ok()
                .and_then(|_| text.trim().parse().ok());
            return Err(DataDirError::InUse {
                path: path.to_path_buf(),
                pid,
            });
        }
        return Err(io(error));
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    Ok(file)
}

/// `statfs.f_type` of the filesystem holding `path` (linux/magic.h).
pub(crate) fn filesystem_type(path: &Path) -> std::io::Result<i64> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `stat` is a plain struct statfs fills in; the path is a valid
    // NUL-terminated string.
    unsafe {
        let mut stat: libc::statfs = std::mem::zeroed();
        if libc::statfs(c_path.as_ptr(), &mut stat) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // `f_type`'s width differs between architectures.
        #[allow(clippy::unnecessary_cast)]
        let kind = stat.f_type as i64;
        Ok(kind)
    }
}

/// Whether a file in `dir` can be opened with O_DIRECT.
fn supports_direct_io(dir: &Path) -> std::io::Result<bool> {
    let probe = dir.join(DIRECT_IO_PROBE_FILE);
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(&probe);
    let _ = std::fs::remove_file(&probe);
    match opened {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_only_under_an_existing_parent_or_with_init() {
        let root = tempfile::tempdir().unwrap();
        let child = root.path().join("data");
        let _held = DataDir::prepare(&child, false).expect("parent exists");
        assert!(child.is_dir());

        let deep = root.path().join("a/b/data");
        let error = DataDir::prepare(&deep, false).unwrap_err();
        assert!(matches!(error, DataDirError::Missing { .. }), "{error}");
        assert!(error.to_string().contains("--init"), "{error}");
        assert!(!deep.exists());

        let _held = DataDir::prepare(&deep, true).expect("--init creates parents");
        assert!(deep.is_dir());
    }

    #[test]
    fn a_second_owner_is_refused_in_words() {
        let root = tempfile::tempdir().unwrap();
        let first = DataDir::prepare(root.path(), false).unwrap();
        let error = DataDir::prepare(root.path(), false).unwrap_err();
        let DataDirError::InUse { pid, .. } = &error else {
            panic!("expected InUse, got {error}");
        };
        assert_eq!(*pid, Some(std::process::id()));
        assert!(error
            .to_string()
            .contains("in use by another shoal process"));
        drop(first);
        DataDir::prepare(root.path(), false).expect("free once the first owner is gone");
    }
}
