//! Disk space coming back: collected and orphaned chunks are forgotten,
//! their records released, and nothing a committed ref names is lost.

use std::time::Duration;

use futures::channel::oneshot;
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::{ChunkRef, DeleteObject, ObjectManifest};

use super::tests::{chunk, commit_object, get_object};
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
    }
}

async fn delete_object(node: &TestNode, key: &str) {
    let (reply, answer) = oneshot::channel();
    node.shard
        .dispatch(ShardRequest::Propose {
            op: Op::DeleteObject(DeleteObject {
                bucket: "bucket".into(),
                key: key.into(),
            }),
            reply,
        })
        .await;
    answer.await.unwrap().unwrap();
}

/// Commits an object naming `hash` (stored wherever it is), answering
/// what the shard said.
async fn try_commit(
    node: &TestNode,
    key: &str,
    hash: ChunkHash,
    size: u32,
    chunks: Vec<(ChunkHash, ChunkPlacement)>,
) -> Result<ApplyOutcome, ShardError> {
    let manifest = ObjectManifest {
        bucket: "bucket".into(),
        key: key.into(),
        size_bytes: u64::from(size),
        chunks: vec![ChunkRef {
            sha256: hash.to_vec(),
            size_bytes: size,
            source_node: 0,
        }],
        ..Default::default()
    };
    let (reply, answer) = oneshot::channel();
    node.shard
        .dispatch(ShardRequest::CommitObject {
            manifest,
            chunks,
            condition: None,
            reply,
        })
        .await;
    answer.await.unwrap()
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
