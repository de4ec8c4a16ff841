//! Disk space coming back: collected and orphaned chunks are forgotten,
//! their records released, and nothing a committed ref names is lost.

use std::time::Duration;

use futures::channel::oneshot;
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::{ChunkRef, DeleteObject, ObjectManifest};

use super::tests::{chunk, commit_object, get_object, try_commit};
use super::{Settings, TestCluster, TestNode};
use crate::chunk_hash::ChunkHash;
use crate::error::ShardError;
use crate::limits::CHUNK_BUF_BYTES;
use crate::ops::{ChunkPlacement, ShardRequest};
use crate::raft::ApplyOutcome;
use crate::test_util::run_local;

const GRACE: Duration = Duration::from_millis(200);

/// Segments of four full chunk records, a grace of [`GRACE`].
fn small_segments() -> Settings {
    Settings {
        segment_bytes: 4 * CHUNK_BUF_BYTES as u64,
        gc_grace: GRACE,
        ..Settings::default()
    }
}

async fn delete_object(node: &TestNode, key: &str) {
    let (reply, answer) = oneshot::channel();
    node.shard
        .dispatch(ShardRequest::Propose {
            op: Op::DeleteObject(DeleteObject {
                bucket: "bucket".into(),
                key: key.into(),
                ..Default::default()
            }),
            reply,
        })
        .await;
    answer.await.unwrap().unwrap();
}

/// Bytes the node's segment files take on disk, and how many there are.
fn disk_use(node: &TestNode) -> (u64, usize) {
    use std::os::unix::fs::MetadataExt;
    let mut bytes = 0;
    let mut files = 0;
    for entry in std::fs::read_dir(node.blob_dir()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with("segment-") {
            bytes += entry.metadata().unwrap().blocks() * 512;
            files += 1;
        }
    }
    (bytes, files)
}

/// Collects (as leader) and sweeps until the grace has passed twice.
async fn collect_and_reclaim(node: &TestNode) {
    node.shard.collect_garbage(Duration::ZERO).await.unwrap();
    node.shard.sweep_and_reclaim().await.unwrap();
    glommio::timer::sleep(GRACE + Duration::from_millis(50)).await;
    node.shard.sweep_and_reclaim().await.unwrap();
}

#[test]
fn deleted_and_orphaned_chunks_give_their_space_back_and_live_ones_stay() {
    run_local(|| async {
        let cluster = TestCluster::start_with(1, small_segments()).await;
        let node = cluster.leader(Duration::from_secs(10)).await;
        let mut kept = Vec::new();
        for i in 0..16u8 {
            let (buf, hash, data) = chunk(1 << 20, i);
            let (at, _) = node.shard.append_replicated(buf, hash).await.unwrap();
            commit_object(node, &format!("k{i}"), hash, at).await;
            if i < 4 || i == 9 {
                kept.push((i, hash, data));
            }
        }
        // An upload that never commits leaves an orphan.
        let (buf, orphan, _) = chunk(1 << 20, 100);
        node.shard.append_replicated(buf, orphan).await.unwrap();
        let (before, files_before) = disk_use(node);
        assert!(before >= 17 << 20, "{before} bytes on disk");

        // Some segments keep a live record (holes are punched around it),
        // others keep none (they are removed).
        for i in (0..16u8).filter(|i| !(*i < 4 || *i == 9)) {
            delete_object(node, &format!("k{i}")).await;
        }
        collect_and_reclaim(node).await;

        let (after, files_after) = disk_use(node);
        // 5 live records, plus at most the newest (unsealed) segment.
        let bound = 5 * CHUNK_BUF_BYTES as u64 + 4 * CHUNK_BUF_BYTES as u64;
        assert!(
            after <= bound,
            "{after} bytes on disk after reclaiming (was {before}); at most {bound} expected"
        );
        assert!(files_after < files_before, "no segment was removed");
        assert!(matches!(
            node.shard.local_location(orphan).await,
            Err(ShardError::ChunkMissing { .. })
        ));
        for (i, hash, data) in kept {
            assert_eq!(get_object(node, &format!("k{i}")).await.chunks.len(), 1);
            assert_eq!(node.shard.read_local_chunk(hash).await.unwrap(), &data[..]);
        }
        cluster.stop().await;
    });
}

#[test]
fn where_holes_cannot_be_punched_mostly_dead_segments_are_compacted() {
    run_local(|| async {
        let cluster = TestCluster::start_with(1, small_segments()).await;
        let node = cluster.leader(Duration::from_secs(10)).await;
        node.shard.forbid_punching();
        let mut kept = Vec::new();
        for i in 0..16u8 {
            let (buf, hash, data) = chunk(1 << 20, i);
            let (at, _) = node.shard.append_replicated(buf, hash).await.unwrap();
            commit_object(node, &format!("k{i}"), hash, at).await;
            if i % 4 == 1 {
                kept.push((i, hash, data));
            }
        }
        let (before, files_before) = disk_use(node);
        // Three of every four records die: no segment is wholly dead.
        for i in (0..16u8).filter(|i| i % 4 != 1) {
            delete_object(node, &format!("k{i}")).await;
        }
        // Every segment keeps a live record, so only compaction (by this
        // test's passes or the background's) can remove one.
        collect_and_reclaim(node).await;
        for _ in 0..8 {
            node.shard.sweep_and_reclaim().await.unwrap();
        }
        let (after, files_after) = disk_use(node);
        // The 4 live records, in at most two segments (the newest open).
        let bound = 8 * CHUNK_BUF_BYTES as u64;
        assert!(
            after <= bound,
            "{after} bytes on disk after compacting (was {before}); at most {bound} expected"
        );
        assert!(
            files_after <= 2,
            "{files_after} segments left of {files_before}"
        );
        for (i, hash, data) in kept {
            assert_eq!(get_object(node, &format!("k{i}")).await.chunks.len(), 1);
            assert_eq!(node.shard.read_local_chunk(hash).await.unwrap(), &data[..]);
        }
        cluster.stop().await;
    });
}

#[test]
fn a_chunk_stored_again_after_it_was_collected_is_kept_for_the_new_object() {
    run_local(|| async {
        let cluster = TestCluster::start_with(1, small_segments()).await;
        let node = cluster.leader(Duration::from_secs(10)).await;
        let (buf, hash, data) = chunk(300_000, 7);
        let (at, _) = node.shard.append_replicated(buf, hash).await.unwrap();
        commit_object(node, "old", hash, at).await;
        delete_object(node, "old").await;
        assert_eq!(node.shard.collect_garbage(Duration::ZERO).await.unwrap(), 1);

        // A new upload of the same bytes, not committed yet: it claims the
        // chunk, so no sweep forgets it, however long the upload takes
        // within its grace.
        let (buf, _, _) = chunk(300_000, 7);
        let (again, _) = node.shard.append_replicated(buf, hash).await.unwrap();
        node.shard.sweep_and_reclaim().await.unwrap();
        glommio::timer::sleep(GRACE / 2).await;
        node.shard.sweep_and_reclaim().await.unwrap();
        commit_object(node, "new", hash, again).await;
        // Now a ref keeps it.
        for _ in 0..3 {
            glommio::timer::sleep(GRACE).await;
            node.shard.sweep_and_reclaim().await.unwrap();
        }
        assert_eq!(get_object(node, "new").await.chunks.len(), 1);
        assert_eq!(node.shard.read_local_chunk(hash).await.unwrap(), &data[..]);
        cluster.stop().await;
    });
}

#[test]
fn a_commit_naming_a_forgotten_chunk_is_refused() {
    run_local(|| async {
        let cluster = TestCluster::start_with(1, small_segments()).await;
        let node = cluster.leader(Duration::from_secs(10)).await;
        let (buf, hash, _) = chunk(200_000, 9);
        let (at, _) = node.shard.append_replicated(buf, hash).await.unwrap();
        commit_object(node, "src", hash, at).await;
        delete_object(node, "src").await;
        collect_and_reclaim(node).await;
        glommio::timer::sleep(GRACE).await;
        node.shard.sweep_and_reclaim().await.unwrap();
        assert!(matches!(
            node.shard.local_location(hash).await,
            Err(ShardError::ChunkMissing { .. })
        ));
        // A copy that read the source's manifest before it was deleted, or
        // an upload slower than the grace: the commit fails rather than
        // commit a ref to bytes that are gone.
        let refused = try_commit(node, "copy", hash, 200_000, Vec::new()).await;
        assert!(
            matches!(refused, Err(ShardError::ChunkMissing { .. })),
            "{refused:?}"
        );
        let (reply, answer) = oneshot::channel();
        node.shard
            .dispatch(ShardRequest::GetObject {
                bucket: "bucket".into(),
                key: "copy".into(),
                version_id: None,
                reply,
            })
            .await;
        assert_eq!(answer.await.unwrap().unwrap(), None);
        cluster.stop().await;
    });
}

#[test]
fn every_member_of_a_cluster_gives_the_space_back() {
    run_local(|| async {
        let cluster = TestCluster::start_with(3, small_segments()).await;
        let leader = cluster.leader(Duration::from_secs(10)).await;
        for i in 0..8u8 {
            let (buf, hash, _) = chunk(1 << 20, 40 + i);
            let (at, _) = leader.shard.append_replicated(buf, hash).await.unwrap();
            commit_object(leader, &format!("c{i}"), hash, at).await;
        }
        let full: Vec<u64> = cluster.nodes.iter().map(|n| disk_use(n).0).collect();
        for i in 0..8u8 {
            delete_object(leader, &format!("c{i}")).await;
        }
        leader.shard.collect_garbage(Duration::ZERO).await.unwrap();
        // Every member applies the collect entry, then sweeps for itself.
        glommio::timer::sleep(Duration::from_millis(200)).await;
        for node in &cluster.nodes {
            node.shard.sweep_and_reclaim().await.unwrap();
        }
        glommio::timer::sleep(GRACE + Duration::from_millis(50)).await;
        for (node, full) in cluster.nodes.iter().zip(full) {
            node.shard.sweep_and_reclaim().await.unwrap();
            let (after, _) = disk_use(node);
            assert!(
                after <= 4 * CHUNK_BUF_BYTES as u64,
                "node {}: {after} bytes on disk (was {full})",
                node.node_id
            );
        }
        cluster.stop().await;
    });
}

/// What the seeded run below believes is committed: each key's chunks (by
/// hash) and each chunk's bytes.
#[derive(Default)]
struct Model {
    objects: std::collections::BTreeMap<String, Vec<ChunkHash>>,
    bytes: std::collections::HashMap<ChunkHash, Vec<u8>>,
    /// The open multipart upload, if any: its id and parts' chunks.
    upload: Option<(String, std::collections::BTreeMap<u32, Vec<ChunkHash>>)>,
}

impl Model {
    /// Every chunk a committed object or part names.
    fn referenced(&self) -> impl Iterator<Item = &ChunkHash> {
        let parts = self
            .upload
            .iter()
            .flat_map(|(_, parts)| parts.values().flatten());
        self.objects.values().flatten().chain(parts)
    }
}

fn refs_of(hashes: &[ChunkHash], model: &Model) -> Vec<ChunkRef> {
    hashes
        .iter()
        .map(|h| ChunkRef {
            sha256: h.to_vec(),
            size_bytes: model.bytes[h].len() as u32,
            source_node: 0,
            iv: Vec::new(),
        })
        .collect()
}

/// Stores `data` as a new chunk (an upload appending it), returning its
/// placement.
async fn store(node: &TestNode, data: &[u8]) -> (ChunkHash, ChunkPlacement) {
    let mut buf = crate::chunk::ChunkBuf::new();
    buf.fill_from(data);
    let hash = ChunkHash::of(data);
    let (at, _) = node.shard.append_replicated(buf, hash).await.unwrap();
    (hash, at)
}

async fn commit(
    node: &TestNode,
    key: &str,
    hashes: &[ChunkHash],
    stored: Vec<(ChunkHash, ChunkPlacement)>,
    model: &Model,
) -> Result<ApplyOutcome, ShardError> {
    let manifest = ObjectManifest {
        bucket: "bucket".into(),
        key: key.into(),
        size_bytes: hashes.iter().map(|h| model.bytes[h].len() as u64).sum(),
        chunks: refs_of(hashes, model),
        ..Default::default()
    };
    let (reply, answer) = oneshot::channel();
    node.shard
        .dispatch(ShardRequest::CommitObject {
            manifest,
            chunks: stored,
            condition: None,
            reply,
            versioning: shoal_proto::meta::Versioning::Unversioned,
            default_retention: None,
        })
        .await;
    answer.await.unwrap()
}

async fn propose(node: &TestNode, op: Op) -> ApplyOutcome {
    let (reply, answer) = oneshot::channel();
    node.shard
        .dispatch(ShardRequest::Propose { op, reply })
        .await;
    answer.await.unwrap().unwrap()
}

/// Every chunk the model says is referenced reads back byte-exact.
async fn check_no_ref_dangles(node: &TestNode, model: &Model, step: usize, what: &str) {
    for hash in model.referenced() {
        match node.shard.read_local_chunk(*hash).await {
            Ok(bytes) => assert_eq!(
                bytes,
                &model.bytes[hash][..],
                "step {step} ({what}): {hash} has other bytes"
            ),
            Err(e) => panic!("step {step} ({what}): committed chunk {hash} is gone: {e}"),
        }
    }
}

/// One seeded step on `key`; returns what it did.
async fn churn_step(
    node: &TestNode,
    rng: &mut rand::rngs::StdRng,
    model: &mut Model,
    key: String,
    next_upload: &mut u128,
) -> &'static str {
    use rand::Rng;
    match rng.gen_range(0..100) {
        // An upload of fresh bytes (a new object or an overwrite).
        0..=24 => {
            let mut hashes = Vec::new();
            let mut stored = Vec::new();
            for _ in 0..rng.gen_range(1..=3) {
                let mut data = vec![0u8; rng.gen_range(1..=40_000)];
                rng.fill(&mut data[..]);
                let (hash, at) = store(node, &data).await;
                model.bytes.insert(hash, data);
                hashes.push(hash);
                stored.push((hash, at));
            }
            commit(node, &key, &hashes, stored, model).await.unwrap();
            model.objects.insert(key, hashes);
            "put"
        }
        // An upload of bytes another object (or a collected one)
        // had: the same chunk, stored again.
        25..=39 => {
            let Some(&hash) = model
                .bytes
                .keys()
                .nth(rng.gen_range(0..model.bytes.len().max(1)))
            else {
                return "skip";
            };
            let data = model.bytes[&hash].clone();
            let (_, at) = store(node, &data).await;
            commit(node, &key, &[hash], vec![(hash, at)], model)
                .await
                .unwrap();
            model.objects.insert(key, vec![hash]);
            "put again"
        }
        // A copy within the shard: refs to the source's chunks,
        // nothing stored.
        40..=49 => {
            let Some((_, source)) = model
                .objects
                .iter()
                .nth(rng.gen_range(0..model.objects.len().max(1)))
            else {
                return "skip";
            };
            let hashes = source.clone();
            commit(node, &key, &hashes, Vec::new(), model)
                .await
                .unwrap();
            model.objects.insert(key, hashes);
            "copy"
        }
        50..=64 => {
            propose(
                node,
                Op::DeleteObject(DeleteObject {
                    bucket: "bucket".into(),
                    key: key.clone(),
                    ..Default::default()
                }),
            )
            .await;
            model.objects.remove(&key);
            "delete"
        }
        65..=74 => multipart_step(node, rng, model, next_upload).await,
        // An upload that stores a chunk and never commits.
        75..=79 => {
            let mut data = vec![0u8; rng.gen_range(1..=20_000)];
            rng.fill(&mut data[..]);
            store(node, &data).await;
            "orphan"
        }
        80..=89 => {
            node.shard.collect_garbage(Duration::ZERO).await.unwrap();
            "collect"
        }
        _ => {
            glommio::timer::sleep(Duration::from_millis(2)).await;
            node.shard.sweep_and_reclaim().await.unwrap();
            "sweep"
        }
    }
}

/// One multipart step: start an upload, upload or replace a part, or
/// complete or abort the upload.
async fn multipart_step(
    node: &TestNode,
    rng: &mut rand::rngs::StdRng,
    model: &mut Model,
    next_upload: &mut u128,
) -> &'static str {
    use rand::Rng;
    let ukey = "multipart".to_string();
    match model.upload.take() {
        None => {
            let id = format!("{next_upload:032x}");
            *next_upload += 1;
            propose(
                node,
                Op::CreateUpload(shoal_proto::meta::MultipartUpload {
                    bucket: "bucket".into(),
                    key: ukey,
                    upload_id: id.clone(),
                    ..Default::default()
                }),
            )
            .await;
            model.upload = Some((id, Default::default()));
            "create upload"
        }
        Some((id, mut parts)) if parts.len() < 3 || rng.gen_bool(0.5) => {
            let number = rng.gen_range(1..=4u32);
            let mut data = vec![0u8; rng.gen_range(1..=30_000)];
            rng.fill(&mut data[..]);
            let (hash, at) = store(node, &data).await;
            model.bytes.insert(hash, data);
            let part = shoal_proto::meta::UploadedPart {
                bucket: "bucket".into(),
                key: ukey,
                upload_id: id.clone(),
                part_number: number,
                md5: vec![number as u8; 16],
                chunks: refs_of(&[hash], model),
                ..Default::default()
            };
            let (reply, answer) = oneshot::channel();
            node.shard
                .dispatch(ShardRequest::PutPart {
                    part,
                    chunks: vec![(hash, at)],
                    reply,
                })
                .await;
            assert_eq!(answer.await.unwrap().unwrap(), ApplyOutcome::Applied);
            parts.insert(number, vec![hash]);
            model.upload = Some((id, parts));
            "upload part"
        }
        Some((id, parts)) => {
            let upload = shoal_proto::meta::UploadRef {
                bucket: "bucket".into(),
                key: ukey.clone(),
                upload_id: id,
            };
            if rng.gen_bool(0.5) {
                let chosen: Vec<u32> = parts.keys().copied().collect();
                let manifest = ObjectManifest {
                    bucket: "bucket".into(),
                    key: ukey.clone(),
                    part_count: chosen.len() as u32,
                    ..Default::default()
                };
                let outcome = propose(
                    node,
                    Op::CompleteUpload(shoal_proto::meta::CompleteUpload {
                        upload: Some(upload),
                        manifest: Some(manifest),
                        condition: None,
                        parts: chosen
                            .iter()
                            .map(|&n| shoal_proto::meta::ChosenPart {
                                part_number: n,
                                md5: vec![n as u8; 16],
                            })
                            .collect(),
                        ..Default::default()
                    }),
                )
                .await;
                assert_eq!(outcome, ApplyOutcome::Applied);
                model
                    .objects
                    .insert(ukey, parts.into_values().flatten().collect());
                "complete upload"
            } else {
                propose(node, Op::AbortUpload(upload)).await;
                "abort upload"
            }
        }
    }
}

/// Thousands of seeded steps of uploads (new bytes, and bytes some object
/// already has), copies, overwrites, deletes, multipart parts (replaced,
/// completed, aborted), orphaned appends, collects and sweeps, with a
/// grace short enough that everything unreferenced is forgotten between
/// two sweeps. After every step, every chunk a committed object or part
/// names must read back; at the end, with everything deleted, nothing may
/// stay indexed.
#[test]
fn seeded_churn_never_loses_a_committed_chunk_and_collects_everything_else() {
    use rand::{Rng, SeedableRng};
    run_local(|| async {
        let settings = Settings {
            segment_bytes: 4 * CHUNK_BUF_BYTES as u64,
            gc_grace: Duration::from_millis(1),
            ..Settings::default()
        };
        let cluster = TestCluster::start_with(1, settings).await;
        let node = cluster.leader(Duration::from_secs(10)).await;
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5EED_0014);
        let mut model = Model::default();
        let keys: Vec<String> = (0..12).map(|i| format!("key{i}")).collect();
        let mut next_upload = 1u128;
        for step in 0..2500 {
            let key = keys[rng.gen_range(0..keys.len())].clone();
            let what = churn_step(node, &mut rng, &mut model, key, &mut next_upload).await;
            check_no_ref_dangles(node, &model, step, what).await;
        }

        // Everything goes: then nothing stays indexed, and the disk holds
        // at most the newest segment.
        for key in model.objects.keys().cloned().collect::<Vec<_>>() {
            propose(
                node,
                Op::DeleteObject(DeleteObject {
                    bucket: "bucket".into(),
                    key,
                    ..Default::default()
                }),
            )
            .await;
        }
        if let Some((id, _)) = model.upload.take() {
            propose(
                node,
                Op::AbortUpload(shoal_proto::meta::UploadRef {
                    bucket: "bucket".into(),
                    key: "multipart".into(),
                    upload_id: id,
                }),
            )
            .await;
        }
        model.objects.clear();
        node.shard.collect_garbage(Duration::ZERO).await.unwrap();
        for _ in 0..3 {
            glommio::timer::sleep(Duration::from_millis(5)).await;
            node.shard.sweep_and_reclaim().await.unwrap();
        }
        let page = node.shard.meta().index_page(None, 100_000).await.unwrap();
        assert_eq!(
            page.entries, 0,
            "chunks still indexed after everything was deleted"
        );
        let (after, _) = disk_use(node);
        assert!(
            after <= 4 * CHUNK_BUF_BYTES as u64,
            "{after} bytes left on disk"
        );
        cluster.stop().await;
    });
}

#[test]
fn a_mostly_dead_newest_segment_is_sealed_and_given_back() {
    run_local(|| async {
        // Segments far larger than what is written: the newest one never
        // fills, so only sealing it early gives its dead bytes back.
        let settings = Settings {
            segment_bytes: crate::limits::SEGMENT_BYTES_MAX,
            gc_grace: GRACE,
            ..Settings::default()
        };
        let cluster = TestCluster::start_with(1, settings).await;
        let node = cluster.leader(Duration::from_secs(10)).await;
        let (buf, kept, data) = chunk(1 << 20, 200);
        let (at, _) = node.shard.append_replicated(buf, kept).await.unwrap();
        commit_object(node, "kept", kept, at).await;
        for i in 0..24u8 {
            let (buf, hash, _) = chunk(1 << 20, i);
            let (at, _) = node.shard.append_replicated(buf, hash).await.unwrap();
            commit_object(node, &format!("gone{i}"), hash, at).await;
        }
        let (before, _) = disk_use(node);
        assert!(before >= 25 << 20, "{before}");
        for i in 0..24u8 {
            delete_object(node, &format!("gone{i}")).await;
        }
        collect_and_reclaim(node).await;
        // The sealed segment is punched around the one live record.
        node.shard.sweep_and_reclaim().await.unwrap();
        let (after, files) = disk_use(node);
        assert!(
            after <= 2 * CHUNK_BUF_BYTES as u64,
            "{after} bytes on disk in {files} files (was {before})"
        );
        assert_eq!(node.shard.read_local_chunk(kept).await.unwrap(), &data[..]);
        cluster.stop().await;
    });
}

#[test]
fn an_upload_whose_record_was_released_still_commits_the_chunk_stored_again() {
    run_local(|| async {
        let cluster = TestCluster::start_with(1, small_segments()).await;
        let node = cluster.leader(Duration::from_secs(10)).await;
        // Upload A stores the chunk; later uploads of the same bytes move
        // its index entry to a newer record, so A's record (and its whole
        // segment) is dead and released before A commits.
        let (buf, hash, data) = chunk(1 << 20, 77);
        let (first, _) = node.shard.append_replicated(buf, hash).await.unwrap();
        for _ in 0..4 {
            let (buf, _, _) = chunk(1 << 20, 77);
            node.shard.append_replicated(buf, hash).await.unwrap();
        }
        node.shard.sweep_and_reclaim().await.unwrap();
        assert!(
            !node
                .blob_dir()
                .join("segment-0000000000000000.blob")
                .exists(),
            "the first segment, all dead, was removed"
        );
        commit_object(node, "a", hash, first).await;
        assert_eq!(node.shard.read_local_chunk(hash).await.unwrap(), &data[..]);
        cluster.stop().await;
    });
}
