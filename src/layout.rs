//! Where a node's shards live: one or more data directories (one per NVMe
//! device), shard `i` on directory `i mod n`, each shard's blob log and
//! metadata together on one device. The placement is a storage format, so
//! it is fixed when the node is created and checked at every start.
//!
//! Every directory holds a `layout` file naming the node (a random id
//! made at creation), the shard count, how many directories the node has
//! and which one this is. A start is refused, before anything is opened or
//! created, when
//! - a directory lacks its file while another has one: its device is
//!   probably not mounted, and the empty mount point must not become a
//!   fresh device that rocksdb and the blob log would fill;
//! - the directories are given in another order, or belong to different
//!   nodes: two NVMe devices swapped names at boot, or a mount went to the
//!   wrong place;
//! - the count of directories or shards differs from the node's.
//!
//! A node made before this file named devices (`shards=` only) has one
//! directory; its file gains the new lines at the next start.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use shoal_shard::ids::ShardIndex;

use crate::data_dir::{DataDir, DataDirError};

const LAYOUT_FILE: &str = "layout";

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is malformed: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error(
        "data directory {path} holds no shoal node, but {other} belongs to node {node}, made with \
         {devices} data directories: is the device behind {path} mounted? A node's data \
         directories are fixed when it is created"
    )]
    DeviceMissing {
        path: PathBuf,
        other: PathBuf,
        node: String,
        devices: usize,
    },
    #[error(
        "data directory {path} is directory {found} of node {node}, but was given as directory \
         {given}: give the data directories in the order the node was created with ({order})"
    )]
    DeviceOutOfOrder {
        path: PathBuf,
        node: String,
        found: usize,
        given: usize,
        order: String,
    },
    #[error("data directory {path} belongs to node {found}, not to node {expected} of {first}")]
    OtherNode {
        path: PathBuf,
        found: String,
        expected: String,
        first: PathBuf,
    },
    #[error(
        "node {node} was created with {stored} data directories; {given} given (a node's data \
         directories are fixed when it is created)"
    )]
    DeviceCountChanged {
        node: String,
        stored: usize,
        given: usize,
    },
    #[error("{path} was created with {stored} shards; --shards {requested} cannot change that")]
    ShardCountChanged {
        path: PathBuf,
        stored: u16,
        requested: u16,
    },
    #[error(
        "{shards} shards cannot spread over {devices} data directories: give --shards at least \
         {devices}, or fewer directories"
    )]
    TooFewShards { shards: u16, devices: usize },
}

/// What one directory's `layout` file says.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Recorded {
    shards: u16,
    /// `None` in a file from before devices were recorded.
    node: Option<String>,
    devices: usize,
    device: usize,
}

/// The node's data directories, locked for this process, and where each
/// shard lives on them.
#[derive(Debug)]
pub struct Layout {
    shards: u16,
    node: String,
    dirs: Vec<DataDir>,
}

impl Layout {
    /// Settles the layout of `paths` (absolute, in the order given): reads
    /// and checks an existing node's files, or creates a new node's
    /// directories (under an existing parent, or any with `init`) and
    /// files. `requested_shards` applies to a new node; `explicit` means
    /// the operator asked for that count, so a different stored one is an
    /// error rather than kept.
    pub fn open(
        paths: &[PathBuf],
        init: bool,
        requested_shards: u16,
        explicit: bool,
    ) -> Result<Layout, LayoutError> {
        assert!(!paths.is_empty(), "flags give at least one data directory");
        // Read before anything is created: a missing device's empty mount
        // point must be refused, not made into a fresh directory.
        let before: Vec<Option<Recorded>> =
            paths.iter().map(|p| read(p)).collect::<Result<_, _>>()?;
        if let Some(known) = before.iter().position(Option::is_some) {
            if let Some(missing) = before.iter().position(Option::is_none) {
                let recorded = before[known].as_ref().expect("found above");
                return Err(LayoutError::DeviceMissing {
                    path: paths[missing].clone(),
                    other: paths[known].clone(),
                    node: recorded.node.clone().unwrap_or_else(|| "(unnamed)".into()),
                    devices: recorded.devices,
                });
            }
        }
        let dirs = paths
            .iter()
            .map(|p| DataDir::prepare(p, init))
            .collect::<Result<Vec<_>, _>>()?;
        // Read again now that the directories are locked for this process.
        let recorded: Vec<Option<Recorded>> =
            paths.iter().map(|p| read(p)).collect::<Result<_, _>>()?;
        if recorded.iter().all(Option::is_none) {
            return Self::create(dirs, requested_shards);
        }
        let layout = Self::check(dirs, &recorded, requested_shards, explicit)?;
        if recorded[0].as_ref().is_some_and(|r| r.node.is_none()) {
            // A node from before devices were recorded: name it now.
            write(layout.dirs[0].path(), &layout.recorded(0))?;
        }
        Ok(layout)
    }

    pub fn shards(&self) -> u16 {
        self.shards
    }

    /// The node's id, as its layout files record it.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Every data directory, in the node's order.
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(DataDir::path)
    }

    /// The directory that holds the generated credentials.
    pub fn first_dir(&self) -> &Path {
        self.dirs[0].path()
    }

    /// Which data directory (by position) holds `shard`.
    pub fn device_of(&self, shard: ShardIndex) -> usize {
        shard.as_usize() % self.dirs.len()
    }

    /// The directory of `shard`'s blob log (`blobs/`) and metadata (`meta/`).
    pub fn shard_dir(&self, shard: ShardIndex) -> PathBuf {
        self.dirs[self.device_of(shard)]
            .path()
            .join(format!("shard-{shard:04}"))
    }

    fn create(dirs: Vec<DataDir>, shards: u16) -> Result<Layout, LayoutError> {
        if usize::from(shards) < dirs.len() {
            return Err(LayoutError::TooFewShards {
                shards,
                devices: dirs.len(),
            });
        }
        let layout = Layout {
            shards,
            node: format!("{:032x}", rand::random::<u128>()),
            dirs,
        };
        for (device, dir) in layout.dirs.iter().enumerate() {
            write(dir.path(), &layout.recorded(device))?;
        }
        if layout.dirs.len() > 1 {
            warn_if_devices_shared(&layout);
        }
        Ok(layout)
    }

    fn check(
        dirs: Vec<DataDir>,
        recorded: &[Option<Recorded>],
        requested: u16,
        explicit: bool,
    ) -> Result<Layout, LayoutError> {
        let paths: Vec<PathBuf> = dirs.iter().map(|d| d.path().to_path_buf()).collect();
        let (shards, node) = verify(&paths, recorded, requested, explicit)?;
        Ok(Layout {
            shards,
            node: node.unwrap_or_else(|| format!("{:032x}", rand::random::<u128>())),
            dirs,
        })
    }

    fn recorded(&self, device: usize) -> Recorded {
        Recorded {
            shards: self.shards,
            node: Some(self.node.clone()),
            devices: self.dirs.len(),
            device,
        }
    }
}

/// What the layout files of `paths` say, checked as a start checks them
/// but without creating, locking or writing anything (`shoal preflight`):
/// a description of the node they hold, or why a start would be refused.
pub fn inspect(paths: &[PathBuf]) -> Result<String, LayoutError> {
    let recorded: Vec<Option<Recorded>> =
        paths.iter().map(|p| read(p)).collect::<Result<_, _>>()?;
    if recorded.iter().all(Option::is_none) {
        return Ok(match paths.len() {
            1 => "no node here yet: `shoal serve` makes one in this data directory".into(),
            n => {
                format!("no node here yet: `shoal serve` makes one over these {n} data directories")
            }
        });
    }
    let (shards, node) = verify(paths, &recorded, 0, false)?;
    Ok(format!(
        "node {}: {shards} shards over {} data directories, each in its place",
        node.as_deref().unwrap_or("(unnamed)"),
        paths.len()
    ))
}

/// Checks that the files `recorded` of `paths` (in the order given) are one
/// node's, complete and in place; returns its shard count and id.
fn verify(
    paths: &[PathBuf],
    recorded: &[Option<Recorded>],
    requested: u16,
    explicit: bool,
) -> Result<(u16, Option<String>), LayoutError> {
    let path = |i: usize| paths[i].clone();
    let missing = recorded.iter().position(Option::is_none);
    let first = recorded
        .iter()
        .flatten()
        .next()
        .expect("at least one file")
        .clone();
    let node = first.node.clone().unwrap_or_else(|| "(unnamed)".into());
    if let Some(missing) = missing {
        // A device not mounted (or, at a start, another process changed
        // the directories between the reads).
        return Err(LayoutError::DeviceMissing {
            path: path(missing),
            other: path(0),
            node,
            devices: first.devices,
        });
    }
    let recorded: Vec<&Recorded> = recorded.iter().flatten().collect();
    for (given, found) in recorded.iter().enumerate() {
        if found.node != first.node {
            return Err(LayoutError::OtherNode {
                path: path(given),
                found: found.node.clone().unwrap_or_else(|| "(unnamed)".into()),
                expected: node,
                first: path(0),
            });
        }
    }
    if first.devices != paths.len() {
        return Err(LayoutError::DeviceCountChanged {
            node,
            stored: first.devices,
            given: paths.len(),
        });
    }
    for (given, found) in recorded.iter().enumerate() {
        if found.device != given {
            let mut order: Vec<(usize, PathBuf)> = recorded
                .iter()
                .enumerate()
                .map(|(i, r)| (r.device, path(i)))
                .collect();
            order.sort();
            return Err(LayoutError::DeviceOutOfOrder {
                path: path(given),
                node,
                found: found.device,
                given,
                order: order
                    .iter()
                    .map(|(_, p)| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        if found.shards != first.shards {
            return Err(LayoutError::Malformed {
                path: path(given).join(LAYOUT_FILE),
                reason: format!(
                    "{} shards, where {} says {}",
                    found.shards,
                    path(0).join(LAYOUT_FILE).display(),
                    first.shards
                ),
            });
        }
    }
    if explicit && first.shards != requested {
        return Err(LayoutError::ShardCountChanged {
            path: path(0).join(LAYOUT_FILE),
            stored: first.shards,
            requested,
        });
    }
    Ok((first.shards, first.node))
}

/// `dir`'s layout file, `None` when the directory or the file is missing.
fn read(dir: &Path) -> Result<Option<Recorded>, LayoutError> {
    let path = dir.join(LAYOUT_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(LayoutError::Io { path, source }),
    };
    let malformed = |reason: &str| LayoutError::Malformed {
        path: path.clone(),
        reason: reason.to_string(),
    };
    let values: BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let number = |key: &str| -> Result<Option<usize>, LayoutError> {
        values
            .get(key)
            .map(|v| {
                v.parse::<usize>()
                    .map_err(|_| malformed(&format!("{key}={v} is not a number")))
            })
            .transpose()
    };
    let shards = number("shards")?
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&n| n > 0)
        .ok_or_else(|| malformed("no shard count"))?;
    let devices = number("devices")?.unwrap_or(1);
    let device = number("device")?.unwrap_or(0);
    if devices == 0 || device >= devices {
        return Err(malformed(&format!("device={device} of devices={devices}")));
    }
    Ok(Some(Recorded {
        shards,
        node: values.get("node").map(|v| v.to_string()),
        devices,
        device,
    }))
}

/// Writes `dir`'s layout file atomically and durably.
fn write(dir: &Path, recorded: &Recorded) -> Result<(), LayoutError> {
    let path = dir.join(LAYOUT_FILE);
    let io = |source| LayoutError::Io {
        path: path.clone(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    write!(
        file,
        "shards={}\ndevices={}\ndevice={}\nnode={}\n",
        recorded.shards,
        recorded.devices,
        recorded.device,
        recorded
            .node
            .as_deref()
            .expect("written files name their node")
    )
    .map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)
}

/// Data directories on one filesystem share its device: spreading shards
/// over them gains nothing, which is worth a line at creation.
fn warn_if_devices_shared(layout: &Layout) {
    use std::os::unix::fs::MetadataExt;
    let devices: Vec<Option<u64>> = layout
        .dirs()
        .map(|dir| std::fs::metadata(dir).ok().map(|m| m.dev()))
        .collect();
    for (i, dev) in devices.iter().enumerate() {
        if dev.is_some() && devices[..i].contains(dev) {
            tracing::warn!(
                data_dir = %layout.dirs[i].path().display(),
                "this data directory is on the same filesystem as an earlier one: its shards share that device"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(root: &Path, names: &[&str]) -> Vec<PathBuf> {
        names.iter().map(|n| root.join(n)).collect()
    }

    #[test]
    fn shards_spread_over_directories_and_stay_there() {
        let root = tempfile::tempdir().unwrap();
        let paths = dirs(root.path(), &["a", "b"]);
        let layout = Layout::open(&paths, false, 4, false).unwrap();
        assert_eq!(layout.shards(), 4);
        let placed: Vec<PathBuf> = (0..4).map(|s| layout.shard_dir(ShardIndex(s))).collect();
        assert_eq!(placed[0], paths[0].join("shard-0000"));
        assert_eq!(placed[1], paths[1].join("shard-0001"));
        assert_eq!(placed[2], paths[0].join("shard-0002"));
        assert_eq!(placed[3], paths[1].join("shard-0003"));
        let node = layout.node().to_string();
        drop(layout);

        // The stored count wins over a default one; an explicit other one is refused.
        let layout = Layout::open(&paths, false, 2, false).unwrap();
        assert_eq!((layout.shards(), layout.node()), (4, node.as_str()));
        drop(layout);
        let error = Layout::open(&paths, false, 2, true).unwrap_err();
        assert!(
            matches!(error, LayoutError::ShardCountChanged { stored: 4, .. }),
            "{error}"
        );
    }

    #[test]
    fn a_missing_device_is_refused_before_anything_is_created() {
        let root = tempfile::tempdir().unwrap();
        let paths = dirs(root.path(), &["a", "b"]);
        drop(Layout::open(&paths, false, 2, false).unwrap());

        // An unmounted device leaves an empty mount point behind.
        std::fs::remove_dir_all(&paths[1]).unwrap();
        std::fs::create_dir(&paths[1]).unwrap();
        let error = Layout::open(&paths, false, 2, false).unwrap_err();
        assert!(
            matches!(error, LayoutError::DeviceMissing { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("mounted"), "{error}");
        assert_eq!(std::fs::read_dir(&paths[1]).unwrap().count(), 0);

        // A missing mount point is not created either.
        std::fs::remove_dir(&paths[1]).unwrap();
        let error = Layout::open(&paths, true, 2, false).unwrap_err();
        assert!(
            matches!(error, LayoutError::DeviceMissing { .. }),
            "{error}"
        );
        assert!(!paths[1].exists());
    }

    #[test]
    fn swapped_foreign_or_recounted_directories_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let paths = dirs(root.path(), &["a", "b"]);
        drop(Layout::open(&paths, false, 2, false).unwrap());

        let swapped = vec![paths[1].clone(), paths[0].clone()];
        let error = Layout::open(&swapped, false, 2, false).unwrap_err();
        assert!(
            matches!(
                error,
                LayoutError::DeviceOutOfOrder {
                    found: 1,
                    given: 0,
                    ..
                }
            ),
            "{error}"
        );
        let expected_order = format!("{}, {}", paths[0].display(), paths[1].display());
        assert!(error.to_string().contains(&expected_order), "{error}");

        let error = Layout::open(&paths[..1], false, 2, false).unwrap_err();
        assert!(
            matches!(
                error,
                LayoutError::DeviceCountChanged {
                    stored: 2,
                    given: 1,
                    ..
                }
            ),
            "{error}"
        );

        let other = dirs(root.path(), &["c", "d"]);
        drop(Layout::open(&other, false, 2, false).unwrap());
        let mixed = vec![paths[0].clone(), other[1].clone()];
        let error = Layout::open(&mixed, false, 2, false).unwrap_err();
        assert!(matches!(error, LayoutError::OtherNode { .. }), "{error}");

        // Held by one process at a time, each directory on its own.
        let held = Layout::open(&paths, false, 2, false).unwrap();
        let error = Layout::open(&paths, false, 2, false).unwrap_err();
        assert!(error.to_string().contains("in use"), "{error}");
        drop(held);
    }

    #[test]
    fn inspection_finds_what_a_start_would_refuse_and_changes_nothing() {
        let root = tempfile::tempdir().unwrap();
        let paths = dirs(root.path(), &["a", "b"]);
        let fresh = inspect(&paths).unwrap();
        assert!(fresh.contains("no node here yet"), "{fresh}");
        assert!(!paths[0].exists(), "inspecting creates nothing");
        let node = Layout::open(&paths, false, 2, false)
            .unwrap()
            .node()
            .to_string();
        let held = inspect(&paths).unwrap();
        assert!(held.contains(&node) && held.contains("2 shards"), "{held}");
        let swapped = vec![paths[1].clone(), paths[0].clone()];
        assert!(matches!(
            inspect(&swapped),
            Err(LayoutError::DeviceOutOfOrder { .. })
        ));
        std::fs::remove_dir_all(&paths[1]).unwrap();
        assert!(matches!(
            inspect(&paths),
            Err(LayoutError::DeviceMissing { .. })
        ));
        assert!(!paths[1].exists());
    }

    #[test]
    fn more_directories_than_shards_is_refused_at_creation() {
        let root = tempfile::tempdir().unwrap();
        let paths = dirs(root.path(), &["a", "b", "c"]);
        let error = Layout::open(&paths, false, 2, false).unwrap_err();
        assert!(matches!(error, LayoutError::TooFewShards { .. }), "{error}");
    }

    #[test]
    fn a_file_from_before_devices_gains_its_node() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join(LAYOUT_FILE), "shards=3\n").unwrap();
        let layout = Layout::open(std::slice::from_ref(&dir), false, 2, false).unwrap();
        assert_eq!(layout.shards(), 3);
        assert_eq!(layout.shard_dir(ShardIndex(2)), dir.join("shard-0002"));
        let node = layout.node().to_string();
        drop(layout);
        let text = std::fs::read_to_string(dir.join(LAYOUT_FILE)).unwrap();
        assert!(text.contains(&format!("node={node}")), "{text}");
        assert!(text.contains("devices=1"), "{text}");
        let again = Layout::open(&[dir], false, 2, false).unwrap();
        assert_eq!(again.node(), node, "named once, kept");
    }
}
