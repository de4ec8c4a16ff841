//! Metadata store tests: round trips, listing order and bounds, blob index,
//! reopen, corrupt records. Each runs inside a glommio executor (the store's
//! async API needs its blocking pool) on a temporary directory.

use prost::Message;
use rocksdb::WriteBatch;
use shoal_proto::meta::{BlobLocation, BucketRecord, ChunkRef, ObjectListed, ObjectManifest};

use super::keys::{self, Cf};
use super::{cf, MetaError, MetaStore};
use crate::chunk_hash::ChunkHash;

pub(crate) use crate::test_util::run_local;

pub(crate) fn bucket(name: &str) -> BucketRecord {
    BucketRecord {
        name: name.to_owned(),
        created_unix_ms: 1_700_000_000_000,
        region: "us-east-1".to_owned(),
        owner_id: "owner".to_owned(),
        acl: None,
        ..Default::default()
    }
}

pub(crate) fn manifest(bucket: &str, key: &str, chunk_count: u32) -> ObjectManifest {
    let chunks = (0..chunk_count)
        .map(|i| ChunkRef {
            sha256: [i as u8; 32].to_vec(),
            size_bytes: 1 << 20,
            source_node: 1,
            iv: Vec::new(),
        })
        .collect();
    ObjectManifest {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        size_bytes: u64::from(chunk_count) << 20,
        md5: vec![0xAB; 16],
        last_modified_unix_ms: 1_700_000_000_123,
        content_type: "application/octet-stream".to_owned(),
        user_metadata: [("owner".to_owned(), "test".to_owned())].into(),
        chunks,
        checksums: Default::default(),
        headers: Default::default(),
        checksum_type: String::new(),
        part_count: 0,
        owner_id: String::new(),
        acl: None,
        embedded: Vec::new(),
        ..Default::default()
    }
}

/// Writes records straight into the applied-state column families (the
/// real write path is the raft state machine).
pub(crate) async fn write_records(
    store: &MetaStore,
    buckets: Vec<BucketRecord>,
    objects: Vec<ObjectManifest>,
) {
    store
        .blocking("test_write", move |db| {
            let mut batch = WriteBatch::default();
            for b in &buckets {
                batch.put_cf(cf(db, Cf::Buckets), b.name.as_bytes(), b.encode_to_vec());
            }
            for m in &objects {
                let key = keys::object_key(&m.bucket, m.key.as_bytes());
                batch.put_cf(cf(db, Cf::Objects), key, m.encode_to_vec());
            }
            db.write(batch).map_err(MetaError::rocks("test_write"))
        })
        .await
        .unwrap();
}

/// A chunk hash of 32 equal bytes.
fn h(byte: u8) -> ChunkHash {
    ChunkHash::from([byte; 32])
}

fn keys_of(listed: &[ObjectListed]) -> Vec<&str> {
    listed.iter().map(|m| m.key.as_str()).collect()
}

#[test]
fn buckets_round_trip_sorted() {
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path()).unwrap();
        assert_eq!(store.list_buckets().await.unwrap(), vec![]);
        write_records(
            &store,
            vec![bucket("zeta"), bucket("alpha"), bucket("mid")],
            vec![],
        )
        .await;

        assert_eq!(store.get_bucket("mid").await.unwrap(), Some(bucket("mid")));
        assert_eq!(store.get_bucket("missing").await.unwrap(), None);
        let names: Vec<String> = store
            .list_buckets()
            .await
            .unwrap()
            .into_iter()
            .map(|b| b.name)
            .collect();
        assert_eq!(names, ["alpha", "mid", "zeta"]);
    });
}

#[test]
fn object_round_trip_keeps_every_field() {
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path()).unwrap();
        let mut m = manifest("bk", "dir/obj", 3);
        m.checksums
            .insert("crc32".to_owned(), "AAAAAA==".to_owned());
        write_records(&store, vec![], vec![m.clone()]).await;

        assert_eq!(store.get_object("bk", "dir/obj").await.unwrap(), Some(m));
        assert_eq!(store.get_object("bk", "dir/ob").await.unwrap(), None);
        assert_eq!(store.get_object("bk2", "dir/obj").await.unwrap(), None);
    });
}

#[test]
fn list_objects_order_prefix_after_limit() {
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path()).unwrap();
        let in_bucket = ["c", "a/2", "b", "a", "é", "b/1", "a/1"];
        let mut objects: Vec<ObjectManifest> =
            in_bucket.iter().map(|k| manifest("bk", k, 1)).collect();
        // Neighbouring buckets: one sorting before ("b", a prefix of "bk")
        // and one after ("bk-2"); neither may leak into "bk"'s listing.
        objects.push(manifest("b", "a", 1));
        objects.push(manifest("bk-2", "a", 1));
        objects.push(manifest("bk-2", "0", 1));
        write_records(&store, vec![], objects).await;

        let list = |prefix: &'static str, after: Option<&[u8]>, limit: usize| {
            let store = store.clone();
            let after = after.map(<[u8]>::to_vec);
            async move {
                store
                    .list_objects("bk", prefix, after, limit)
                    .await
                    .unwrap()
            }
        };

        // Byte order; "é" (0xC3 0xA9) sorts after ASCII.
        assert_eq!(
            keys_of(&list("", None, 100).await),
            ["a", "a/1", "a/2", "b", "b/1", "c", "é"]
        );
        assert_eq!(keys_of(&list("a/", None, 100).await), ["a/1", "a/2"]);
        assert_eq!(keys_of(&list("a", None, 100).await), ["a", "a/1", "a/2"]);
        assert_eq!(
            keys_of(&list("", Some(b"a/1"), 100).await),
            ["a/2", "b", "b/1", "c", "é"]
        );
        // `after` before the prefix range: the prefix bounds the start.
        assert_eq!(keys_of(&list("b", Some(b"a"), 100).await), ["b", "b/1"]);
        // `after` equal to a key excludes it.
        assert_eq!(keys_of(&list("b", Some(b"b"), 100).await), ["b/1"]);
        // A common prefix followed by 0xFF skips everything under it.
        assert_eq!(
            keys_of(&list("", Some(b"a/\xFF"), 100).await),
            ["b", "b/1", "c", "é"]
        );
        // `after` past every key, and non-UTF-8 `after`.
        assert_eq!(
            keys_of(&list("", Some(b"\xFF"), 100).await),
            Vec::<&str>::new()
        );
        assert_eq!(keys_of(&list("zz", None, 100).await), Vec::<&str>::new());
        assert_eq!(keys_of(&list("", None, 0).await), Vec::<&str>::new());
        assert_eq!(keys_of(&list("", None, 2).await), ["a", "a/1"]);

        // Paging with the last key as `after` walks the whole bucket once.
        let mut paged = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = store
                .list_objects("bk", "", after.clone(), 3)
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 3);
            after = Some(page.last().unwrap().key.as_bytes().to_vec());
            paged.extend(page.into_iter().map(|m| m.key));
        }
        assert_eq!(paged, ["a", "a/1", "a/2", "b", "b/1", "c", "é"]);

        // The neighbours' own listings.
        let b = store.list_objects("b", "", None, 100).await.unwrap();
        assert_eq!(keys_of(&b), ["a"]);
        let bk2 = store.list_objects("bk-2", "", None, 100).await.unwrap();
        assert_eq!(keys_of(&bk2), ["0", "a"]);
    });
}

#[test]
fn bucket_has_objects_respects_bucket_boundaries() {
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path()).unwrap();
        write_records(&store, vec![], vec![manifest("bk", "x", 1)]).await;
        assert!(store.bucket_has_objects("bk").await.unwrap());
        // "b" is a prefix of "bk" and "bk-2" sorts right after it.
        assert!(!store.bucket_has_objects("b").await.unwrap());
        assert!(!store.bucket_has_objects("bk-2").await.unwrap());
        assert!(!store.bucket_has_objects("empty").await.unwrap());
    });
}

#[test]
fn blob_locations_round_trip_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let reopen_path = path.clone();
    let loc = |segment| BlobLocation {
        segment,
        offset_bytes: segment * 4096,
        size_bytes: 1 << 20,
    };
    run_local(move || async move {
        let store = MetaStore::open(&path).unwrap();
        store.put_blob_locations(vec![], false).await.unwrap();
        store
            .put_blob_locations(vec![(h(1), loc(1)), (h(2), loc(2))], false)
            .await
            .unwrap();
        assert_eq!(store.get_blob_location(&h(1)).await.unwrap(), Some(loc(1)));
        assert_eq!(store.get_blob_location(&h(2)).await.unwrap(), Some(loc(2)));
        assert_eq!(store.get_blob_location(&h(3)).await.unwrap(), None);
        // Overwrite: the later location wins.
        store
            .put_blob_locations(vec![(h(1), loc(7))], true)
            .await
            .unwrap();
        assert_eq!(store.get_blob_location(&h(1)).await.unwrap(), Some(loc(7)));
    });
    run_local(move || async move {
        let store = MetaStore::open(&reopen_path).unwrap();
        assert_eq!(store.get_blob_location(&h(1)).await.unwrap(), Some(loc(7)));
        assert_eq!(store.get_blob_location(&h(2)).await.unwrap(), Some(loc(2)));
    });
}

#[test]
fn corrupt_record_is_a_decode_error_naming_cf_and_key() {
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path()).unwrap();
        store
            .blocking("test_corrupt", |db| {
                // Field 1 (string) claiming 100 bytes, with 1 present.
                db.put_cf(cf(db, Cf::Buckets), b"bad", [0x0A, 100, b'x'])
                    .map_err(MetaError::rocks("test_corrupt"))
            })
            .await
            .unwrap();
        match store.get_bucket("bad").await {
            Err(MetaError::Decode { cf, key, .. }) => {
                assert_eq!(cf, "buckets");
                assert_eq!(key, hex::encode("bad"));
            }
            other => panic!("expected a decode error, got {other:?}"),
        }
        assert!(matches!(
            store.list_buckets().await,
            Err(MetaError::Decode { .. })
        ));
    });
}

#[test]
fn panic_in_blocking_call_is_an_error_and_the_pool_survives() {
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path()).unwrap();
        let result: Result<(), MetaError> = store
            .blocking("test_panic", |_db| panic!("deliberate test panic"))
            .await;
        match result {
            Err(MetaError::Blocking { op, reason }) => {
                assert_eq!(op, "test_panic");
                assert!(reason.contains("deliberate"), "{reason}");
            }
            other => panic!("expected a blocking error, got {other:?}"),
        }
        // The pool's thread is still alive.
        assert_eq!(store.get_bucket("x").await.unwrap(), None);
    });
}

#[test]
fn a_chunk_scan_finds_refs_without_a_local_copy_in_objects_and_parts() {
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path()).unwrap();
        // Objects with chunks [0..3) and [0..5); a part with chunk [9].
        let objects = vec![manifest("bk", "a", 3), manifest("bk", "b", 5)];
        write_records(&store, vec![bucket("bk")], objects).await;
        let part = shoal_proto::meta::UploadedPart {
            chunks: vec![ChunkRef {
                sha256: vec![9; 32],
                size_bytes: 10,
                iv: Vec::new(),
                source_node: 2,
            }],
            ..Default::default()
        };
        store
            .blocking("test_write", move |db| {
                db.put_cf(cf(db, Cf::Parts), b"upload-1", part.encode_to_vec())
                    .map_err(MetaError::rocks("test_write"))
            })
            .await
            .unwrap();
        let here = BlobLocation {
            segment: 0,
            offset_bytes: 0,
            size_bytes: 1 << 20,
        };
        store
            .put_blob_locations(vec![(h(1), here), (h(3), here)], false)
            .await
            .unwrap();

        // One record per page, so the scan crosses pages and families.
        let mut missing = Vec::new();
        let mut next = Some(super::ChunkScan::default());
        let mut pages = 0;
        while let Some(from) = next {
            let (found, after) = store.missing_chunks(from, 1).await.unwrap();
            missing.extend(found);
            next = after;
            pages += 1;
        }
        missing.sort_unstable();
        missing.dedup();
        let hashes: Vec<u8> = missing.iter().map(|(hash, _)| hash.as_bytes()[0]).collect();
        assert_eq!(hashes, [0, 2, 4, 9]);
        assert!(
            missing.contains(&(h(9), crate::ids::NodeId(2))),
            "the source hint comes along"
        );
        assert!(pages >= 3, "{pages} pages");
    });
}

#[test]
fn a_listing_that_steps_over_overwritten_entries_compacts_its_bucket_once() {
    use std::sync::atomic::Ordering::Relaxed;
    run_local(|| async {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path()).unwrap();
        let stats = store.read_compaction_stats();
        let objects = |round: u32| {
            (0..500)
                .map(|i| manifest("bk", &format!("k{i:04}"), round))
                .collect::<Vec<_>>()
        };
        write_records(&store, vec![bucket("bk")], objects(1)).await;
        store.flush().await.unwrap();
        assert_eq!(
            store
                .list_objects("bk", "", None, 1000)
                .await
                .unwrap()
                .len(),
            500
        );
        assert_eq!(stats.hidden_entries.load(Relaxed), 0, "keys written once");
        assert_eq!(stats.started.load(Relaxed), 0);

        // Every key rewritten three times, each round in its own file.
        for round in 2..=4 {
            write_records(&store, vec![], objects(round)).await;
            store.flush().await.unwrap();
        }
        let listed = store.list_objects("bk", "", None, 1000).await.unwrap();
        assert_eq!(listed.len(), 500);
        assert!(
            listed.iter().all(|o| o.size_bytes == 4 << 20),
            "newest entries"
        );
        let hidden = stats.hidden_entries.load(Relaxed);
        assert_eq!(hidden, 1500, "three older entries a key");
        assert_eq!(stats.started.load(Relaxed), 1);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while stats.finished.load(Relaxed) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the compaction finishes"
            );
            glommio::timer::sleep(std::time::Duration::from_millis(20)).await;
        }

        // The merged files hold one entry a key, and the next listings
        // (however hidden entries grow again) start no second compaction
        // within the interval.
        let listed = store.list_objects("bk", "", None, 1000).await.unwrap();
        assert!(listed.iter().all(|o| o.size_bytes == 4 << 20));
        assert_eq!(
            stats.hidden_entries.load(Relaxed),
            hidden,
            "nothing hidden now"
        );
        write_records(&store, vec![], objects(5)).await;
        store.flush().await.unwrap();
        store.list_objects("bk", "", None, 1000).await.unwrap();
        assert_eq!(stats.hidden_entries.load(Relaxed), hidden + 500);
        assert_eq!(stats.started.load(Relaxed), 1);
    });
}
