//! Shards of several nodes in one group, over loopback peer ports behind
//! relays that can fail ([`super::TestCluster`]).

use std::time::{Duration, Instant};

use super::{LinkState, TestCluster, TestNode};
use futures::channel::oneshot;
use shoal_proto::meta::{ChunkRef, ObjectManifest};

use crate::chunk::ChunkBuf;
use crate::chunk_hash::ChunkHash;
use crate::error::ShardError;
use crate::ops::{ChunkPlacement, ShardRequest};
use crate::raft::{ApplyOutcome, RaftError};
use crate::test_util::run_local;

/// A chunk of `len` bytes seeded by `seed`, and its hash.
pub(super) fn chunk(len: usize, seed: u8) -> (ChunkBuf, ChunkHash, Vec<u8>) {
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect();
    let mut buf = ChunkBuf::new();
    assert_eq!(buf.fill_from(&data), len);
    (buf, ChunkHash::of(&data), data)
}

/// Waits up to `within` until `node` holds the chunk; returns its bytes.
async fn held_within(node: &TestNode, hash: ChunkHash, within: Duration) -> Vec<u8> {
    let deadline = Instant::now() + within;
    loop {
        match node.shard.read_local_chunk(hash).await {
            Ok(bytes) => return bytes.to_vec(),
            Err(ShardError::ChunkMissing { .. }) if Instant::now() < deadline => {
                glommio::timer::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("node {} lacks {hash}: {e}", node.node_id),
        }
    }
}

#[test]
fn a_chunk_a_follower_takes_is_stored_by_the_leader_and_on_every_member() {
    run_local(|| async {
        let cluster = TestCluster::start(3).await;
        let leader = cluster.leader(Duration::from_secs(10)).await.node_id;
        let follower = cluster.other_than(leader);
        let (buf, hash, data) = chunk(100_000, 7);
        let (placement, _) = follower
            .shard
            .append_replicated(buf, hash)
            .await
            .expect("the follower forwards the chunk to the leader");
        // The placement is the leader's: it stored the chunk first.
        let at_leader = cluster
            .node(leader)
            .shard
            .local_location(hash)
            .await
            .unwrap();
        assert_eq!(placement.stored_by, leader);
        assert_eq!(placement.location, at_leader);
        for node in &cluster.nodes {
            assert_eq!(held_within(node, hash, Duration::from_secs(5)).await, data);
        }
        cluster.stop().await;
    });
}

#[test]
fn a_stalled_member_does_not_hold_up_a_write_and_gets_the_chunk_once_it_heals() {
    run_local(|| async {
        let cluster = TestCluster::start(3).await;
        let leader_id = cluster.leader(Duration::from_secs(10)).await.node_id;
        let stalled = cluster.other_than(leader_id);
        stalled.relay.set(LinkState::Stalled);
        let (buf, hash, data) = chunk(300_000, 9);
        let leader = &cluster.node(leader_id).shard;
        let started = Instant::now();
        leader
            .append_replicated(buf, hash)
            .await
            .expect("two of three members make the chunk durable");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the write waited {:?} for the stalled member",
            started.elapsed()
        );
        assert!(matches!(
            stalled.shard.read_local_chunk(hash).await,
            Err(ShardError::ChunkMissing { .. })
        ));
        stalled.relay.set(LinkState::Open);
        assert_eq!(
            held_within(stalled, hash, Duration::from_secs(10)).await,
            data
        );
        cluster.stop().await;
    });
}

#[test]
fn a_follower_cut_off_from_its_leader_refuses_writes_as_retryable() {
    run_local(|| async {
        let cluster = TestCluster::start(3).await;
        let leader_id = cluster.leader(Duration::from_secs(10)).await.node_id;
        cluster.node(leader_id).relay.set(LinkState::Cut);
        let follower = cluster.other_than(leader_id);
        let (buf, hash, _) = chunk(4096, 3);
        let started = Instant::now();
        let refused = follower.shard.append_replicated(buf, hash).await;
        assert!(
            matches!(refused, Err(ShardError::Raft(RaftError::NotLeader { .. }))),
            "{refused:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        cluster.stop().await;
    });
}

#[test]
fn a_forwarded_append_is_stored_only_by_the_leader() {
    run_local(|| async {
        let cluster = TestCluster::start(3).await;
        let leader_id = cluster.leader(Duration::from_secs(10)).await.node_id;
        let follower = cluster.other_than(leader_id);
        let (buf, hash, _) = chunk(4096, 5);
        let refused = follower.shard.append_as_leader(buf, hash).await;
        assert!(
            matches!(refused, Err(ShardError::Raft(RaftError::NotLeader { .. }))),
            "{refused:?}"
        );
        assert!(follower.shard.read_local_chunk(hash).await.is_err());
        cluster.stop().await;
    });
}

#[test]
fn a_member_behind_a_slow_link_still_gets_every_chunk() {
    run_local(|| async {
        let cluster = TestCluster::start(3).await;
        let leader_id = cluster.leader(Duration::from_secs(10)).await.node_id;
        let slow = cluster.other_than(leader_id);
        slow.relay
            .set(LinkState::Delayed(Duration::from_millis(30)));
        let leader = &cluster.node(leader_id).shard;
        let mut written = Vec::new();
        for seed in 0..4 {
            let (buf, hash, data) = chunk(200_000, seed);
            leader.append_replicated(buf, hash).await.expect("durable");
            written.push((hash, data));
        }
        for (hash, data) in written {
            assert_eq!(held_within(slow, hash, Duration::from_secs(10)).await, data);
        }
        cluster.stop().await;
    });
}

/// Commits a one-chunk object through `node`'s shard, as the front end
/// would after appending the chunk.
pub(super) async fn commit_object(node: &TestNode, key: &str, hash: ChunkHash, at: ChunkPlacement) {
    let outcome = try_commit(node, key, hash, at.location.size_bytes, vec![(hash, at)]).await;
    assert_eq!(outcome.unwrap(), ApplyOutcome::Applied);
}

/// Commits an object naming `hash` (`size` bytes; stored wherever
/// `chunks` says, or, with none, wherever it already is, as a copy
/// would), answering what the shard said.
pub(super) async fn try_commit(
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
            iv: Vec::new(),
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
            versioning: shoal_proto::meta::Versioning::Unversioned,
            default_retention: None,
        })
        .await;
    answer.await.unwrap()
}

pub(super) async fn get_object(node: &TestNode, key: &str) -> ObjectManifest {
    let (reply, answer) = oneshot::channel();
    node.shard
        .dispatch(ShardRequest::GetObject {
            bucket: "bucket".into(),
            key: key.into(),
            version_id: None,
            reply,
        })
        .await;
    answer.await.unwrap().unwrap().expect("the object exists")
}

#[test]
fn a_leader_indexes_only_chunks_its_own_blob_log_stored() {
    run_local(|| async {
        let cluster = TestCluster::start(3).await;
        let leader_id = cluster.leader(Duration::from_secs(10)).await.node_id;
        let leader = cluster.node(leader_id);
        let other = cluster.other_than(leader_id);
        // A chunk the other member stored itself (it was leader when the
        // upload appended it; this node leads when the upload commits).
        let (_, hash, data) = chunk(50_000, 11);
        other.shard.store_chunk(hash, &data).await.unwrap();
        let location = other.shard.local_location(hash).await.unwrap();
        let at = ChunkPlacement {
            location,
            stored_by: other.node_id,
        };
        commit_object(leader, "moved", hash, at).await;
        // The leader names the other member as the source and fetches the
        // chunk from it; it never indexes the other log's location.
        let manifest = get_object(leader, "moved").await;
        assert_eq!(manifest.chunks[0].source_node, other.node_id.get());
        assert!(matches!(
            leader.shard.local_location(hash).await,
            Err(ShardError::ChunkMissing { .. })
        ));
        assert_eq!(
            leader.shard.read_chunk(hash, other.node_id).await.unwrap(),
            &data[..]
        );

        // Its own chunks are indexed where it stored them.
        let (buf, own, _) = chunk(60_000, 12);
        let (placement, _) = leader.shard.append_replicated(buf, own).await.unwrap();
        commit_object(leader, "own", own, placement).await;
        assert_eq!(
            get_object(leader, "own").await.chunks[0].source_node,
            leader_id.get()
        );
        assert_eq!(
            leader.shard.local_location(own).await.unwrap(),
            placement.location
        );
        cluster.stop().await;
    });
}

/// `node`'s count of `hash` once it has applied everything up to now.
async fn count_on(node: &TestNode, hash: ChunkHash) -> Option<u64> {
    node.shard
        .meta()
        .blocking("count_of", move |db| crate::raft::refs::count_of(db, &hash))
        .await
        .unwrap()
        .map(|c| c.count)
}

/// Waits up to `within` until every node's count of `hash` is `expected`.
async fn counts_become(cluster: &TestCluster, hash: ChunkHash, expected: Option<u64>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut counts = Vec::new();
        for node in &cluster.nodes {
            counts.push(count_on(node, hash).await);
        }
        if counts.iter().all(|c| *c == expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "counts {counts:?}, expected {expected:?}"
        );
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn every_member_counts_refs_and_forgets_a_collected_chunk() {
    run_local(|| async {
        let cluster = TestCluster::start(3).await;
        let leader_id = cluster.leader(Duration::from_secs(10)).await.node_id;
        let leader = cluster.node(leader_id);
        let (buf, hash, _) = chunk(70_000, 21);
        let (placement, _) = leader.shard.append_replicated(buf, hash).await.unwrap();
        commit_object(leader, "counted", hash, placement).await;
        counts_become(&cluster, hash, Some(1)).await;

        // Nothing is due while the chunk is referred to.
        assert_eq!(
            leader.shard.collect_garbage(Duration::ZERO).await.unwrap(),
            0
        );
        let (reply, answer) = oneshot::channel();
        leader
            .shard
            .dispatch(ShardRequest::Propose {
                op: shoal_proto::meta::meta_command::Op::DeleteObject(
                    shoal_proto::meta::DeleteObject {
                        bucket: "bucket".into(),
                        key: "counted".into(),
                        ..Default::default()
                    },
                ),
                reply,
            })
            .await;
        answer.await.unwrap().unwrap();
        counts_become(&cluster, hash, Some(0)).await;
        // A grace not yet over collects nothing; once over, every member
        // forgets the chunk.
        assert_eq!(
            leader
                .shard
                .collect_garbage(Duration::from_secs(3600))
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            leader.shard.collect_garbage(Duration::ZERO).await.unwrap(),
            1
        );
        counts_become(&cluster, hash, None).await;
        // A follower proposes nothing.
        let follower = cluster.other_than(leader_id);
        assert_eq!(
            follower
                .shard
                .collect_garbage(Duration::ZERO)
                .await
                .unwrap(),
            0
        );
        cluster.stop().await;
    });
}

#[test]
fn a_damaged_chunk_is_repaired_from_another_member_when_read() {
    use std::sync::atomic::Ordering;
    run_local(|| async {
        let cluster = TestCluster::start(3).await;
        let leader_id = cluster.leader(Duration::from_secs(10)).await.node_id;
        let (buf, hash, data) = chunk(200_000, 11);
        cluster
            .node(leader_id)
            .shard
            .append_replicated(buf, hash)
            .await
            .expect("stored");
        let follower = cluster.other_than(leader_id);
        held_within(follower, hash, Duration::from_secs(5)).await;
        let bad = follower.shard.local_location(hash).await.unwrap();

        flip_payload_byte(follower, bad);

        let read = follower.shard.read_chunk(hash, leader_id).await;
        assert_eq!(read.expect("repaired from a member").to_vec(), data);
        let stats = follower.shard.stats();
        assert_eq!(stats.chunk_damaged.load(Ordering::Relaxed), 1);
        assert_eq!(stats.chunk_repaired.load(Ordering::Relaxed), 1);
        // The follower holds a good copy of its own now, somewhere else.
        let moved = follower.shard.local_location(hash).await.unwrap();
        assert_ne!(moved, bad);
        assert_eq!(
            follower
                .shard
                .read_local_chunk(hash)
                .await
                .unwrap()
                .to_vec(),
            data
        );
        assert_eq!(
            stats.chunk_damaged.load(Ordering::Relaxed),
            1,
            "counted once"
        );
        cluster.stop().await;
    });
}

/// Flips one payload byte of the record at `at` in `node`'s blob log,
/// behind the log's back.
fn flip_payload_byte(node: &TestNode, at: crate::blob_log::BlobLocation) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let segment = node
        .blob_dir()
        .join(crate::blob_log::segment_file_name(at.segment));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(segment)
        .unwrap();
    let offset = at.offset_bytes + crate::limits::RECORD_HEADER_BYTES as u64 + 1000;
    let mut byte = [0u8; 1];
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.read_exact(&mut byte).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(&[byte[0] ^ 0x04]).unwrap();
    file.sync_all().unwrap();
}

/// Asks `node`'s scrub for a pass and waits until one has finished.
async fn scrub_pass(node: &TestNode) -> &crate::shard::ScrubStats {
    use std::sync::atomic::Ordering;
    let scrub = &node.shard.stats().scrub;
    let before = scrub.passes.load(Ordering::Relaxed);
    scrub.request_pass();
    let deadline = Instant::now() + Duration::from_secs(20);
    while scrub.passes.load(Ordering::Relaxed) == before {
        assert!(
            Instant::now() < deadline,
            "no scrub pass on node {}",
            node.node_id
        );
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
    scrub
}

#[test]
fn the_scrub_repairs_a_damaged_copy_from_a_member() {
    use std::sync::atomic::Ordering;
    run_local(|| async {
        let settings = super::Settings {
            scrub_bytes_per_s: 1 << 30,
            ..super::Settings::default()
        };
        let cluster = TestCluster::start_with(3, settings).await;
        let leader = cluster.leader(Duration::from_secs(10)).await;
        let follower = cluster.other_than(leader.node_id);
        let mut written = Vec::new();
        for i in 0..4u8 {
            let (buf, hash, data) = chunk(300_000, 40 + i);
            let (at, _) = leader.shard.append_replicated(buf, hash).await.unwrap();
            commit_object(leader, &format!("k{i}"), hash, at).await;
            held_within(follower, hash, Duration::from_secs(5)).await;
            written.push((hash, data));
        }
        let (bad_hash, bad_data) = &written[1];
        let bad = follower.shard.local_location(*bad_hash).await.unwrap();
        flip_payload_byte(follower, bad);

        let scrub = scrub_pass(follower).await;
        assert_eq!(scrub.found.load(Ordering::Relaxed), 1);
        assert_eq!(scrub.repaired.load(Ordering::Relaxed), 1);
        assert_eq!(scrub.unrepaired.load(Ordering::Relaxed), 0);
        assert_eq!(scrub.checked_bytes.load(Ordering::Relaxed), 3 * 300_000);
        let findings = scrub.findings();
        assert_eq!(findings.len(), 1);
        assert!(findings[0].repaired);
        assert_eq!(findings[0].sha256, bad_hash.hex());
        assert_eq!(
            follower
                .shard
                .read_local_chunk(*bad_hash)
                .await
                .unwrap()
                .to_vec(),
            *bad_data
        );
        // The next pass finds nothing new.
        let scrub = scrub_pass(follower).await;
        assert_eq!(scrub.found.load(Ordering::Relaxed), 1);
        assert_eq!(
            scrub.pass_checked_bytes.load(Ordering::Relaxed),
            4 * 300_000
        );
        cluster.stop().await;
    });
}

#[test]
fn the_scrub_names_the_objects_of_a_chunk_nobody_can_replace() {
    use std::sync::atomic::Ordering;
    run_local(|| async {
        let settings = super::Settings {
            scrub_bytes_per_s: 1 << 30,
            ..super::Settings::default()
        };
        let cluster = TestCluster::start_with(1, settings).await;
        let node = cluster.leader(Duration::from_secs(10)).await;
        let (buf, hash, _) = chunk(100_000, 99);
        let (at, _) = node.shard.append_replicated(buf, hash).await.unwrap();
        commit_object(node, "photos/cat.jpg", hash, at).await;
        commit_object(node, "copy-of-cat", hash, at).await;
        flip_payload_byte(node, at.location);

        let scrub = scrub_pass(node).await;
        assert_eq!(scrub.found.load(Ordering::Relaxed), 1);
        assert_eq!(scrub.unrepaired.load(Ordering::Relaxed), 1);
        let findings = scrub.findings();
        assert!(!findings[0].repaired);
        assert_eq!(
            findings[0].objects,
            vec![
                "bucket/copy-of-cat".to_string(),
                "bucket/photos/cat.jpg".to_string()
            ]
        );
        cluster.stop().await;
    });
}

#[test]
fn a_stalled_member_gets_a_bounded_number_of_pushes() {
    use std::sync::atomic::Ordering;
    run_local(|| async {
        let cluster = TestCluster::start(3).await;
        let leader = cluster.leader(Duration::from_secs(10)).await;
        let stalled = cluster.other_than(leader.node_id);
        // A first chunk while every member answers: the leader learns that
        // all of them take offloaded chunks, and opens its connections.
        let (buf, hash, _) = chunk(4096, 200);
        leader.shard.append_replicated(buf, hash).await.unwrap();
        held_within(stalled, hash, Duration::from_secs(5)).await;
        stalled.relay.set(LinkState::Stalled);
        let pushes_max = crate::limits::PUSHES_INFLIGHT_PER_PEER_MAX as u64;
        for i in 0..pushes_max + 8 {
            let (buf, hash, _) = chunk(64 << 10, i as u8);
            leader
                .shard
                .append_replicated(buf, hash)
                .await
                .expect("two of three members make each chunk durable");
        }
        let skipped = leader
            .shard
            .stats()
            .chunk_push_backlog
            .load(Ordering::Relaxed);
        assert_eq!(skipped, 8, "pushes beyond the bound are not sent");
        // Once the stalled member's capabilities are stale, they are asked
        // again in the background: the chunk path does not wait for them.
        glommio::timer::sleep(crate::limits::CAPABILITIES_TTL).await;
        for seed in [210, 211] {
            let (buf, hash, _) = chunk(4096, seed);
            let started = Instant::now();
            leader.shard.append_replicated(buf, hash).await.unwrap();
            assert!(
                started.elapsed() < crate::limits::PEER_QUERY_TIMEOUT / 2,
                "an append waited {:?}",
                started.elapsed()
            );
        }
        stalled.relay.set(LinkState::Open);
        cluster.stop().await;
    });
}

#[test]
fn a_follower_whose_leader_stalls_answers_peer_slow_instead_of_hanging() {
    run_local(|| async {
        let cluster = TestCluster::start(3).await;
        let leader_id = cluster.leader(Duration::from_secs(10)).await.node_id;
        let follower = cluster.other_than(leader_id);
        // A first forward opens the connection the next one reuses.
        let (buf, hash, _) = chunk(4096, 12);
        follower.shard.append_replicated(buf, hash).await.unwrap();
        cluster.node(leader_id).relay.set(LinkState::Stalled);
        let (buf, hash, _) = chunk(4096, 13);
        let started = Instant::now();
        let refused = follower.shard.append_replicated(buf, hash).await;
        assert!(
            matches!(refused, Err(ShardError::PeerSlow { .. })),
            "{refused:?}"
        );
        let waited = started.elapsed();
        assert!(
            waited >= crate::limits::PEER_DATA_CALL_TIMEOUT
                && waited < crate::limits::PEER_DATA_CALL_TIMEOUT + Duration::from_secs(3),
            "gave up after {waited:?}"
        );
        cluster.stop().await;
    });
}

#[test]
fn a_dead_leader_is_replaced_once_its_lease_runs_out() {
    use crate::raft::leadership::stand_after;
    run_local(|| async {
        let cluster = TestCluster::start(3).await;
        let dead = cluster.leader(Duration::from_secs(10)).await;
        // Settled: the followers have heard the leader, their leases hold.
        glommio::timer::sleep(Duration::from_secs(1)).await;
        // Dead as kill -9 leaves it: nothing comes from it, nothing reaches it.
        dead.relay.set(LinkState::Cut);
        dead.shard.raft().shutdown().await;
        let died = Instant::now();
        let survivors: Vec<_> = cluster
            .nodes
            .iter()
            .filter(|n| n.node_id != dead.node_id)
            .collect();
        let new_leader = loop {
            let leaders: Vec<_> = survivors.iter().map(|n| n.shard.raft().leader()).collect();
            if let Some(Some(l)) = leaders.first() {
                if *l != dead.node_id && leaders.iter().all(|x| *x == Some(*l)) {
                    break *l;
                }
            }
            assert!(
                died.elapsed() < Duration::from_secs(15),
                "no new leader: {leaders:?}"
            );
            glommio::timer::sleep(Duration::from_millis(10)).await;
        };
        let took = died.elapsed();
        let stood: u64 = survivors.iter().map(|n| n.shard.raft().stands()).sum();
        assert!(
            stood >= 1,
            "a survivor stood on its own watch, not openraft's timer"
        );
        // The first in rank stands a lease and a margin after it last heard
        // the leader; openraft's own timers would wait an election timeout more.
        assert!(
            took < stand_after(1),
            "node {new_leader} took over after {took:?}"
        );
        let (buf, hash, _) = chunk(4096, 77);
        cluster
            .node(new_leader)
            .shard
            .append_replicated(buf, hash)
            .await
            .expect("the new leader takes writes");
        let dead = dead.node_id;
        cluster.stop_all_but(dead).await;
    });
}

#[test]
fn a_follower_that_cannot_hear_the_leader_does_not_unseat_it() {
    run_local(|| async {
        let cluster = TestCluster::start(3).await;
        let leader = cluster.leader(Duration::from_secs(10)).await.node_id;
        let deaf = cluster.other_than(leader);
        // Nothing reaches it; what it sends still arrives.
        deaf.relay.set(LinkState::Stalled);
        glommio::timer::sleep(crate::raft::leadership::stand_after(0) * 2 + Duration::from_secs(1))
            .await;
        assert!(deaf.shard.raft().stands() >= 1, "it stood, and was refused");
        for node in cluster.nodes.iter().filter(|n| n.node_id != deaf.node_id) {
            assert_eq!(node.shard.raft().leader(), Some(leader));
        }
        assert!(cluster.node(leader).shard.raft().is_leader());
        cluster.stop().await;
    });
}

#[test]
fn a_request_forwarded_to_a_frozen_leader_gives_up_once_the_group_moves_on() {
    use crate::raft::leadership::stand_after;
    run_local(|| async {
        let cluster = TestCluster::start(3).await;
        let frozen = cluster.leader(Duration::from_secs(10)).await;
        let follower = cluster.other_than(frozen.node_id);
        // A first forward opens the connection the next one hangs on.
        let (buf, hash, _) = chunk(4096, 31);
        follower.shard.append_replicated(buf, hash).await.unwrap();
        glommio::timer::sleep(Duration::from_secs(1)).await;
        // Frozen, as SIGSTOP leaves it: connections stay open, nothing moves.
        frozen.relay.set(LinkState::Stalled);
        frozen.shard.raft().shutdown().await;
        let (buf, hash, _) = chunk(4096, 32);
        let started = Instant::now();
        let answer = follower.shard.append_replicated(buf, hash).await;
        assert!(
            matches!(answer, Err(ShardError::Raft(RaftError::NotLeader { .. }))),
            "{answer:?}"
        );
        assert!(
            started.elapsed() < stand_after(1) + Duration::from_secs(1),
            "gave up after {:?}, not at the peer deadline",
            started.elapsed()
        );
        let frozen = frozen.node_id;
        cluster.stop_all_but(frozen).await;
    });
}
