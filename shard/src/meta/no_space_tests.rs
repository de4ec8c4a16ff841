//! A metadata store on a file system that runs full: a raft write waits
//! for space instead of failing, and goes through once space is back,
//! with no reopen (rocksdb resumes by itself). Needs root for a loop
//! mount; says so and passes where it cannot mount.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::keys::Cf;
use super::{cf, MetaError, MetaStore};
use crate::test_util::run_local;

/// A small ext4 file system on a loop device, unmounted on drop.
struct SmallFs {
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(mib: u64) -> Option<SmallFs> {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fs.img");
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).unwrap();
        let run = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .output()
                .is_ok_and(|out| out.status.success())
        };
        let size = format!("{mib}M");
        let (image_s, mount_s) = (image.to_str().unwrap(), mount.to_str().unwrap());
        let mounted = run("truncate", &["-s", &size, image_s])
            && run("mkfs.ext4", &["-q", "-F", "-m", "0", image_s])
            && run("mount", &["-o", "loop", image_s, mount_s]);
        mounted.then_some(SmallFs { mount, _dir: dir })
    }

    /// Fills the file system to its last byte with `name`.
    fn fill(&self, name: &str) -> PathBuf {
        use std::io::Write;
        let path = self.mount.join(name);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let block = vec![0u8; 64 << 10];
        for size in [block.len(), 4096, 1] {
            while file.write_all(&block[..size]).is_ok() {}
        }
        let _ = file.sync_all();
        path
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).output();
    }
}

async fn put_big(store: &MetaStore, i: u32, attempts: &Arc<AtomicUsize>) -> Result<(), MetaError> {
    let attempts = Arc::clone(attempts);
    store
        .write_when_space("test_put", move |db| {
            attempts.fetch_add(1, Ordering::Relaxed);
            let mut opts = rocksdb::WriteOptions::default();
            opts.set_sync(true);
            db.put_cf_opt(
                cf(db, Cf::RaftState),
                i.to_be_bytes(),
                vec![7u8; 1 << 20],
                &opts,
            )
            .map_err(MetaError::rocks("test_put"))
        })
        .await
}

/// 1 MiB writes: more than the small file system holds.
const WRITES: u32 = 100;

fn store_on(path: &Path) -> MetaStore {
    MetaStore::open(&path.join("meta")).unwrap()
}

#[test]
fn a_raft_write_that_finds_the_disk_full_waits_and_goes_through_once_space_is_back() {
    let Some(fs) = SmallFs::mount(384) else {
        eprintln!("skipped: cannot loop-mount a small file system (needs root)");
        return;
    };
    let mount = fs.mount.clone();
    run_local(move || async move {
        let store = store_on(&mount);
        let filler = fs.fill("filler");
        let attempts = Arc::new(AtomicUsize::new(0));
        // Space comes back a while after the writes start failing.
        let freer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(4));
            std::fs::remove_file(filler).unwrap();
        });
        // More than rocksdb set aside for its log at open.
        for i in 0..WRITES {
            put_big(&store, i, &attempts).await.unwrap();
        }
        freer.join().unwrap();
        assert!(
            attempts.load(Ordering::Relaxed) > WRITES as usize,
            "no write found the disk full: the test proves nothing"
        );
        // Writable as ever, and everything written is there.
        put_big(&store, WRITES, &attempts).await.unwrap();
        let db = &store.db;
        for i in (0..WRITES).chain([WRITES]) {
            let value = db.get_cf(cf(db, Cf::RaftState), i.to_be_bytes()).unwrap();
            assert_eq!(value.map(|v| v.len()), Some(1 << 20));
        }
        drop(store);
        drop(fs);
    });
}
