//! Chunk reference counts as the state machine keeps them: each op's
//! effect, and a seeded run of thousands of random ops after which the
//! counts always equal a recount of the manifests and parts.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use futures::channel::oneshot;
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, EntryPayload};
use prost::Message;
use rand::{Rng, SeedableRng};
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::{
    ChosenPart, ChunkRef, ChunkRefCount, CollectChunk, CollectChunks, CompleteUpload, DeleteObject,
    MetaCommand, MultipartUpload, ObjectManifest, PutObject, PutObjectAcl, PutObjectLegalHold,
    UploadRef, UploadedPart, Versioning,
};

use super::refs::count_of;
use super::state_machine::StateMachine;
use super::types::{Entry, LogId, NodeId, RaftCommand};
use super::{ApplyHooks, ReleaseToken};
use crate::chunk_hash::ChunkHash;
use crate::meta::keys::{self, Cf, SM_STATE_REFS_COUNTED_KEY};
use crate::meta::{cf, MetaStore};
use crate::test_util::run_local;
use crate::version_id::stored_position;

/// `(key, version id)` of one version.
type VersionRef = (String, String);

fn hash(n: u8) -> ChunkHash {
    ChunkHash::from([n; 32])
}

fn refs(chunks: &[u8]) -> Vec<ChunkRef> {
    chunks
        .iter()
        .map(|&n| ChunkRef {
            sha256: hash(n).to_vec(),
            size_bytes: 1 << 20,
            source_node: 1,
            iv: Vec::new(),
        })
        .collect()
}

fn object(key: &str, chunks: &[u8]) -> ObjectManifest {
    ObjectManifest {
        bucket: "bk".into(),
        key: key.into(),
        md5: vec![chunks.len() as u8; 16],
        chunks: refs(chunks),
        ..Default::default()
    }
}

fn upload_ref(key: &str, id: u8) -> UploadRef {
    UploadRef {
        bucket: "bk".into(),
        key: key.into(),
        upload_id: format!("{:032x}", u128::from(id) + 1),
    }
}

fn part(key: &str, id: u8, number: u32, chunks: &[u8]) -> UploadedPart {
    let upload = upload_ref(key, id);
    UploadedPart {
        bucket: upload.bucket,
        key: upload.key,
        upload_id: upload.upload_id,
        part_number: number,
        md5: vec![number as u8; 16],
        chunks: refs(chunks),
        ..Default::default()
    }
}

fn command(op: Op, unix_ms: u64) -> MetaCommand {
    MetaCommand {
        op: Some(op),
        proposed_unix_ms: unix_ms,
    }
}

/// A state machine over a fresh store that applies one op per entry.
struct Harness {
    store: MetaStore,
    sm: StateMachine,
    next_index: u64,
    _dir: tempfile::TempDir,
    _released: oneshot::Receiver<()>,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path()).unwrap();
        let (tx, released) = oneshot::channel();
        let token = ReleaseToken {
            _sender: Rc::new(tx),
        };
        let sm = StateMachine::new(NodeId(1), store.clone(), token, ApplyHooks::default());
        Harness {
            store,
            sm,
            next_index: 1,
            _dir: dir,
            _released: released,
        }
    }

    /// Applies `ops` as one batch, entry `i` stamped `1000 * index`.
    async fn apply(&mut self, ops: Vec<Op>) {
        let entries: Vec<Entry> = ops
            .into_iter()
            .map(|op| {
                let index = self.next_index;
                self.next_index += 1;
                Entry {
                    log_id: LogId::new(CommittedLeaderId::new(1, NodeId(1)), index),
                    payload: EntryPayload::Normal(RaftCommand::encode(&command(op, 1000 * index))),
                }
            })
            .collect();
        self.sm.apply(entries).await.unwrap();
    }

    /// The zero list's chunks that dropped to zero at or before `before`.
    async fn zero_before(&self, before: u64, max: usize) -> Vec<CollectChunk> {
        self.store
            .blocking("zero_before", move |db| {
                super::refs::zero_before(db, before, max)
            })
            .await
            .unwrap()
    }

    async fn count(&self, n: u8) -> Option<ChunkRefCount> {
        let h = hash(n);
        self.store
            .blocking("count_of", move |db| count_of(db, &h))
            .await
            .unwrap()
    }

    /// Moves the holds that took (their version was still there when the
    /// hold applied) from `holds` to `held`, then checks that every held
    /// version is still there.
    async fn keep_holds(&self, holds: &mut Vec<VersionRef>, held: &mut Vec<VersionRef>) {
        for (key, version_id) in holds.drain(..) {
            let found = self.version(&key, &version_id).await;
            if found.is_some_and(|v| v.legal_hold) {
                held.push((key, version_id));
            }
        }
        for (key, version_id) in held.iter() {
            let found = self.version(key, version_id).await;
            assert!(
                found.is_some(),
                "held version {key}@{version_id} was removed"
            );
        }
    }

    async fn version(&self, key: &str, version_id: &str) -> Option<ObjectManifest> {
        self.store
            .get_version("bk", key, Some(version_id.to_string()))
            .await
            .unwrap()
    }

    /// The key's current version.
    async fn current(&self, key: &str) -> Option<ObjectManifest> {
        self.store
            .get_version("bk", key, None)
            .await
            .unwrap()
            .filter(|v| !v.delete_marker)
    }

    /// Checks what `raft/versions.rs` keeps: each key's current version
    /// (in `objects`) is newer than all its others and not a delete
    /// marker; a key without one has a delete marker newest or no
    /// versions; no key has two null versions.
    async fn check_version_layout(&self) {
        self.store
            .blocking("check_versions", |db| {
                let mut by_key: BTreeMap<Vec<u8>, Vec<ObjectManifest>> = BTreeMap::new();
                for item in db.iterator_cf(cf(db, Cf::Versions), rocksdb::IteratorMode::Start) {
                    let (key, value) = item.unwrap();
                    let object_key = keys::versioned_object_key(&key).unwrap().to_vec();
                    let version = ObjectManifest::decode(&value[..]).unwrap();
                    let at = stored_position(&version.version_position);
                    assert_eq!(&key[key.len() - 12..], &at[..], "stored at its position");
                    by_key.entry(object_key).or_default().push(version);
                }
                let mut current: BTreeMap<Vec<u8>, ObjectManifest> = BTreeMap::new();
                for item in db.iterator_cf(cf(db, Cf::Objects), rocksdb::IteratorMode::Start) {
                    let (key, value) = item.unwrap();
                    let manifest = ObjectManifest::decode(&value[..]).unwrap();
                    assert!(!manifest.delete_marker, "a delete marker is never current");
                    current.insert(key.to_vec(), manifest);
                }
                for (key, others) in &by_key {
                    match current.get(key) {
                        Some(c) => assert!(
                            stored_position(&c.version_position)
                                < stored_position(&others[0].version_position),
                            "the current version is the newest"
                        ),
                        None => assert!(others[0].delete_marker, "no current: a marker is newest"),
                    }
                    let nulls = others
                        .iter()
                        .chain(current.get(key))
                        .filter(|v| v.version_id.is_empty())
                        .count();
                    assert!(nulls <= 1, "{nulls} null versions");
                }
                Ok(())
            })
            .await
            .unwrap();
    }

    /// Checks every count against a recount of the manifests and parts,
    /// and the zero list against the counts at zero.
    async fn check_counts(&self) {
        self.store
            .blocking("check", |db| {
                let mut expected: HashMap<[u8; 32], u64> = HashMap::new();
                for (family, decode_chunks) in [
                    (
                        Cf::Objects,
                        decode_manifest_chunks as fn(&[u8]) -> Vec<ChunkRef>,
                    ),
                    (Cf::Versions, decode_manifest_chunks),
                    (Cf::Parts, decode_part_chunks),
                ] {
                    for item in db.iterator_cf(cf(db, family), rocksdb::IteratorMode::Start) {
                        let (_, value) = item.unwrap();
                        for chunk in decode_chunks(&value) {
                            let h: [u8; 32] = chunk.sha256.as_slice().try_into().unwrap();
                            *expected.entry(h).or_default() += 1;
                        }
                    }
                }
                let mut zero: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
                for item in db.iterator_cf(cf(db, Cf::ChunkRefs), rocksdb::IteratorMode::Start) {
                    let (key, value) = item.unwrap();
                    let h: [u8; 32] = key[..].try_into().unwrap();
                    let record = ChunkRefCount::decode(&value[..]).unwrap();
                    assert_eq!(
                        record.count,
                        expected.remove(&h).unwrap_or(0),
                        "count of {:02x}",
                        h[0]
                    );
                    if record.count == 0 {
                        assert!(record.zero_index > 0);
                        zero.insert(
                            keys::zero_ref_key(record.zero_unix_ms, &h).to_vec(),
                            record.zero_index,
                        );
                    }
                }
                assert!(expected.is_empty(), "uncounted refs: {expected:?}");
                let listed: BTreeMap<Vec<u8>, u64> = db
                    .iterator_cf(cf(db, Cf::ZeroRefs), rocksdb::IteratorMode::Start)
                    .map(|item| {
                        let (key, value) = item.unwrap();
                        (
                            key.to_vec(),
                            u64::from_be_bytes(value[..].try_into().unwrap()),
                        )
                    })
                    .collect();
                assert_eq!(listed, zero, "the zero list is the chunks at zero");
                Ok(())
            })
            .await
            .unwrap();
    }
}

fn decode_manifest_chunks(value: &[u8]) -> Vec<ChunkRef> {
    ObjectManifest::decode(value).unwrap().chunks
}

fn decode_part_chunks(value: &[u8]) -> Vec<ChunkRef> {
    UploadedPart::decode(value).unwrap().chunks
}

fn collect(chunks: &[(u8, u64)]) -> Op {
    Op::CollectChunks(CollectChunks {
        chunks: chunks
            .iter()
            .map(|&(n, zero_index)| CollectChunk {
                sha256: hash(n).to_vec(),
                zero_index,
            })
            .collect(),
    })
}

fn put(key: &str, chunks: &[u8]) -> Op {
    Op::PutObject(object(key, chunks))
}

fn delete(key: &str) -> Op {
    Op::DeleteObject(DeleteObject {
        bucket: "bk".into(),
        key: key.into(),
        ..Default::default()
    })
}

/// A write under `versioning` (its enum value).
fn put_versioned(key: &str, chunks: &[u8], versioning: Versioning) -> Op {
    Op::PutObjectIf(PutObject {
        manifest: Some(object(key, chunks)),
        condition: None,
        versioning: versioning.into(),
        default_retention: None,
    })
}

/// A DELETE under `versioning`, or of one version.
fn delete_versioned(key: &str, versioning: Versioning, version_id: Option<String>) -> Op {
    Op::DeleteObject(DeleteObject {
        bucket: "bk".into(),
        key: key.into(),
        versioning: versioning.into(),
        version_id,
        bypass_governance: false,
        condition: None,
    })
}

fn create_upload(key: &str, id: u8) -> Op {
    let upload = upload_ref(key, id);
    Op::CreateUpload(MultipartUpload {
        bucket: upload.bucket,
        key: upload.key,
        upload_id: upload.upload_id,
        ..Default::default()
    })
}

fn complete(key: &str, id: u8, parts: &[u32]) -> Op {
    let mut manifest = object(key, &[]);
    manifest.part_count = parts.len() as u32;
    Op::CompleteUpload(CompleteUpload {
        upload: Some(upload_ref(key, id)),
        manifest: Some(manifest),
        condition: None,
        parts: parts
            .iter()
            .map(|&n| ChosenPart {
                part_number: n,
                md5: vec![n as u8; 16],
            })
            .collect(),
        ..Default::default()
    })
}

#[test]
fn puts_overwrites_and_deletes_move_counts_and_the_zero_list() {
    run_local(|| async {
        let mut h = Harness::new();
        // Chunk 1 twice in one object, and in a second object.
        h.apply(vec![put("a", &[1, 1, 2]), put("b", &[1])]).await;
        assert_eq!(h.count(1).await.unwrap().count, 3);
        assert_eq!(h.count(2).await.unwrap().count, 1);
        // Overwrite: the old manifest's refs go, the new one's come.
        h.apply(vec![put("a", &[3])]).await;
        assert_eq!(h.count(1).await.unwrap().count, 1);
        let two = h.count(2).await.unwrap();
        assert_eq!((two.count, two.zero_index, two.zero_unix_ms), (0, 3, 3000));
        // An ACL change rewrites the manifest: no trip through zero.
        h.apply(vec![Op::PutObjectAcl(PutObjectAcl {
            bucket: "bk".into(),
            key: "b".into(),
            acl: None,
            ..Default::default()
        })])
        .await;
        assert_eq!(h.count(1).await.unwrap().count, 1);
        // A delete drops the last ref; a later put of the same chunk takes
        // it off the zero list.
        h.apply(vec![delete("b"), delete("missing")]).await;
        assert_eq!(h.count(1).await.unwrap().zero_index, 5);
        h.apply(vec![put("c", &[2])]).await;
        let two = h.count(2).await.unwrap();
        assert_eq!((two.count, two.zero_index), (1, 0));
        h.check_counts().await;
    });
}

#[test]
fn multipart_parts_count_until_the_upload_ends() {
    run_local(|| async {
        let mut h = Harness::new();
        h.apply(vec![
            create_upload("m", 1),
            Op::PutPart(part("m", 1, 1, &[10, 11])),
            Op::PutPart(part("m", 1, 2, &[12])),
            Op::PutPart(part("m", 1, 3, &[13])),
        ])
        .await;
        // A part uploaded again replaces the first one's refs.
        h.apply(vec![Op::PutPart(part("m", 1, 2, &[14]))]).await;
        assert_eq!(h.count(12).await.unwrap().count, 0);
        assert_eq!(h.count(14).await.unwrap().count, 1);
        // Completing with parts 1 and 2: their chunks now count once, for
        // the object; part 3 was not chosen and drops to zero.
        h.apply(vec![complete("m", 1, &[1, 2])]).await;
        for chosen in [10, 11, 14] {
            assert_eq!(h.count(chosen).await.unwrap().count, 1, "chunk {chosen}");
        }
        assert_eq!(h.count(13).await.unwrap().count, 0);
        // An aborted upload drops every part's refs.
        h.apply(vec![
            create_upload("n", 2),
            Op::PutPart(part("n", 2, 1, &[20])),
            Op::AbortUpload(upload_ref("n", 2)),
        ])
        .await;
        assert_eq!(h.count(20).await.unwrap().count, 0);
        h.check_counts().await;
    });
}

#[test]
fn a_collect_forgets_only_chunks_still_at_zero_from_the_same_entry() {
    run_local(|| async {
        let mut h = Harness::new();
        h.apply(vec![put("a", &[1]), put("b", &[2]), put("c", &[3])])
            .await;
        h.apply(vec![delete("a"), delete("b"), delete("c")]).await; // 4, 5, 6
                                                                    // Oldest first, up to the cutoff (entry i is stamped 1000 * i).
        let due = h.zero_before(5000, 10).await;
        let named: Vec<_> = due.iter().map(|c| (c.sha256[0], c.zero_index)).collect();
        assert_eq!(named, [(1, 4), (2, 5)]);
        assert_eq!(h.zero_before(u64::MAX, 1).await.len(), 1);

        // Chunk 2 is referred to again before the collect applies; chunk 3
        // dropped to zero again from a later entry. Only chunk 1 goes.
        h.apply(vec![put("d", &[2]), put("e", &[3]), delete("e")])
            .await; // 7, 8, 9
        h.apply(vec![collect(&[(1, 4), (2, 5), (3, 6)])]).await;
        assert_eq!(h.count(1).await, None);
        assert_eq!(h.count(2).await.unwrap().count, 1);
        assert_eq!(h.count(3).await.unwrap().zero_index, 9);
        // A ref in the same batch, before the collect, wins too.
        h.apply(vec![delete("d"), put("f", &[2]), collect(&[(2, 11)])])
            .await;
        assert_eq!(h.count(2).await.unwrap().count, 1);
        // A collected chunk referred to again is counted from one.
        h.apply(vec![put("g", &[1])]).await;
        assert_eq!(h.count(1).await.unwrap().count, 1);
        h.check_counts().await;
    });
}

#[test]
fn a_store_written_before_counts_existed_is_counted_at_start() {
    run_local(|| async {
        let mut h = Harness::new();
        h.apply(vec![put("a", &[1, 2]), put("b", &[2])]).await;
        // Forget the counts, as a store from before this version has none.
        h.store
            .blocking("forget", |db| {
                let mut batch = rocksdb::WriteBatch::default();
                batch.delete_range_cf(cf(db, Cf::ChunkRefs), &[][..], &[0xffu8; 41][..]);
                batch.delete_cf(cf(db, Cf::SmState), SM_STATE_REFS_COUNTED_KEY);
                db.write(batch)
                    .map_err(crate::meta::MetaError::rocks("forget"))
            })
            .await
            .unwrap();
        assert_eq!(h.count(2).await, None);
        let counted = h
            .store
            .blocking("count", super::refs::ensure_counted)
            .await
            .unwrap();
        assert!(counted);
        assert_eq!(h.count(2).await.unwrap().count, 2);
        let again = h
            .store
            .blocking("count", super::refs::ensure_counted)
            .await
            .unwrap();
        assert!(!again, "counted once");
        h.check_counts().await;
    });
}

/// One random op on versions of `key`: a versioned write or delete, a
/// delete of one of its versions, or a legal hold on its current version
/// (noted in `holds`); `None` when there is nothing to hold.
async fn random_version_op(
    h: &Harness,
    rng: &mut rand::rngs::StdRng,
    key: &str,
    holds: &mut Vec<VersionRef>,
) -> Option<Op> {
    let versioning = if rng.gen_bool(0.5) {
        Versioning::Enabled
    } else {
        Versioning::Suspended
    };
    let shown = |id: &str| match id {
        "" => "null".to_string(),
        id => id.to_string(),
    };
    Some(match rng.gen_range(0..5) {
        0 | 1 => {
            let chunks: Vec<u8> = (0..rng.gen_range(0..4))
                .map(|_| rng.gen_range(0..24))
                .collect();
            put_versioned(key, &chunks, versioning)
        }
        2 => delete_versioned(key, versioning, None),
        3 => {
            let versions = h.store.list_versions("bk", key, None, 64).await.unwrap();
            let ids: Vec<String> = versions
                .iter()
                .filter(|v| v.listed.key == key)
                .map(|v| shown(&v.listed.version_id))
                .chain(["null".to_string()])
                .collect();
            let id = ids[rng.gen_range(0..ids.len())].clone();
            delete_versioned(key, versioning, Some(id))
        }
        _ => {
            // A legal hold on the current version: from now on no op may
            // remove it.
            let version_id = shown(&h.current(key).await?.version_id);
            holds.push((key.to_string(), version_id.clone()));
            Op::PutObjectLegalHold(PutObjectLegalHold {
                bucket: "bk".into(),
                key: key.into(),
                version_id: Some(version_id),
                on: true,
            })
        }
    })
}

/// Thousands of random puts, overwrites, copies (puts of chunks another
/// object has), deletes, multipart steps and collects (some naming an
/// index that is no longer current) over a few keys and a small pool of
/// chunks, in random batches: after every batch each count equals a
/// recount, so no committed ref names a collected chunk, and the zero list
/// holds exactly the chunks at zero.
#[test]
fn counts_always_equal_a_recount_under_random_ops() {
    run_local(|| async {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x005e_ed13);
        let mut h = Harness::new();
        let keys = ["k0", "k1", "k2", "k3", "k4"];
        let chunks = |rng: &mut rand::rngs::StdRng| -> Vec<u8> {
            (0..rng.gen_range(0..4))
                .map(|_| rng.gen_range(0..24))
                .collect()
        };
        let mut next_upload = 0u8;
        let mut open: Vec<(String, u8)> = Vec::new();
        let mut holds: Vec<VersionRef> = Vec::new();
        let mut held: Vec<VersionRef> = Vec::new();
        for _ in 0..300 {
            let mut batch = Vec::new();
            for _ in 0..rng.gen_range(1..8) {
                let key = keys[rng.gen_range(0..keys.len())];
                let op = match rng.gen_range(0..17) {
                    0..=3 => put(key, &chunks(&mut rng)),
                    4 | 5 => delete(key),
                    6 => {
                        next_upload = next_upload.wrapping_add(1);
                        open.push((key.to_string(), next_upload));
                        create_upload(key, next_upload)
                    }
                    7 if !open.is_empty() => {
                        let (key, id) = &open[rng.gen_range(0..open.len())];
                        Op::PutPart(part(key, *id, rng.gen_range(1..4), &chunks(&mut rng)))
                    }
                    8 if !open.is_empty() => {
                        let (key, id) = open.swap_remove(rng.gen_range(0..open.len()));
                        let chosen: Vec<u32> = (1..4).filter(|_| rng.gen_bool(0.5)).collect();
                        complete(&key, id, &chosen)
                    }
                    9 if !open.is_empty() => {
                        let (key, id) = open.swap_remove(rng.gen_range(0..open.len()));
                        Op::AbortUpload(upload_ref(&key, id))
                    }
                    10 | 11 => {
                        // What the collector would name, sometimes with
                        // an index that is no longer current.
                        let due = h.zero_before(u64::MAX, 8).await;
                        if due.is_empty() {
                            continue;
                        }
                        let chunks = due
                            .into_iter()
                            .map(|mut c| {
                                if rng.gen_bool(0.2) {
                                    c.zero_index += 1;
                                }
                                c
                            })
                            .collect();
                        Op::CollectChunks(CollectChunks { chunks })
                    }
                    12..=16 => {
                        let Some(op) = random_version_op(&h, &mut rng, key, &mut holds).await
                        else {
                            continue;
                        };
                        op
                    }
                    _ => put(key, &chunks(&mut rng)),
                };
                batch.push(op);
            }
            h.apply(batch).await;
            h.check_counts().await;
            h.check_version_layout().await;
            h.keep_holds(&mut holds, &mut held).await;
        }
        assert!(held.len() > 5, "the run held versions: {}", held.len());
    });
}
