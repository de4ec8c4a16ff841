"""Replication beyond the first steps (issue 6): inline and offload modes
side by side, capability negotiation between them, follower reads that
prove they are current, and chunks a node missed (while down, or behind a
snapshot) fetched in the background."""

import os
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from conftest import ctl, metric_sum, wait_until
from test_cluster import SHARDS, Cluster, form

MIB = 1 << 20


def modes(cluster, node_id):
    return [s["mode"] for s in cluster.overview(node_id)["shards"]]


@pytest.fixture
def clusters(tmp_path):
    made = []

    def make(name, args=()):
        c = Cluster(tmp_path / name, args=args)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop_all()


def test_inline_and_offload_clusters_side_by_side(clusters):
    offload = clusters("offload")
    inline = clusters("inline", args=["--blob-offload", "false"])
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(form, [offload, inline]))
    data = os.urandom(8 * MIB + 123)
    raft_bytes = {}
    for name, cluster in (("offload", offload), ("inline", inline)):
        # Write through a follower; node 1 leads every group.
        writer = cluster.nodes[2].client()
        writer.create_bucket(Bucket="modes")
        before = metric_sum(cluster.nodes[1], "shoal_raft_log_appended_bytes_total")
        writer.put_object(Bucket="modes", Key="obj", Body=data)
        raft_bytes[name] = metric_sum(cluster.nodes[1], "shoal_raft_log_appended_bytes_total") - before
        for node_id in (1, 2, 3):
            got = cluster.nodes[node_id].client().get_object(Bucket="modes", Key="obj")
            assert got["Body"].read() == data, f"{name} cluster, node {node_id}"
    assert modes(offload, 1) == ["offload"] * SHARDS
    assert modes(inline, 1) == ["inline"] * SHARDS
    # Offload: nine chunk refs and a manifest. Inline: the bytes themselves.
    assert raft_bytes["offload"] < 64 << 10, raft_bytes
    assert raft_bytes["inline"] >= len(data), raft_bytes
    assert metric_sum(inline.nodes[1], "shoal_chunkblob_inline_writes_total") == 9
    assert metric_sum(offload.nodes[1], "shoal_chunkblob_inline_writes_total") == 0


def test_one_member_without_offload_turns_the_group_inline(clusters):
    cluster = clusters("mixed")
    form(cluster)
    s3 = cluster.nodes[1].client()
    s3.create_bucket(Bucket="mixed")
    offloaded = os.urandom(3 * MIB)
    s3.put_object(Bucket="mixed", Key="offloaded", Body=offloaded)
    assert metric_sum(cluster.nodes[1], "shoal_chunkblob_inline_writes_total") == 0

    # Node 3 comes back without the capability: the leader notices (its
    # view is at most a few seconds old) and writes chunk bytes into raft.
    cluster.nodes[3].stop()
    cluster.start(3, extra=["--blob-offload", "false"])
    inlined = os.urandom(2 * MIB + 7)

    def written_inline():
        s3.put_object(Bucket="mixed", Key="inlined", Body=inlined)
        return metric_sum(cluster.nodes[1], "shoal_chunkblob_inline_writes_total") >= 3

    wait_until(written_inline, 30, "the leader to write inline")
    wait_until(lambda: modes(cluster, 1) == ["inline"] * SHARDS, 15, "every group to show inline")
    cluster.nodes[1].log.flush()
    assert "does not advertise blob-offload" in open(cluster.nodes[1].log_path).read()
    # Every node reads both forms.
    for node_id in (1, 2, 3):
        c = cluster.nodes[node_id].client()
        assert c.get_object(Bucket="mixed", Key="offloaded")["Body"].read() == offloaded
        assert c.get_object(Bucket="mixed", Key="inlined")["Body"].read() == inlined


def test_followers_answer_reads_only_when_current(clusters):
    cluster = clusters("reads")
    form(cluster)
    leader = cluster.nodes[1].client()
    leader.create_bucket(Bucket="fresh")
    followers = [cluster.nodes[n].client() for n in (2, 3)]
    # Each read through a follower, right after the leader acknowledged a
    # write, sees that write.
    for i in range(30):
        value = f"version {i}".encode()
        leader.put_object(Bucket="fresh", Key="k", Body=value)
        for follower in followers:
            assert follower.get_object(Bucket="fresh", Key="k")["Body"].read() == value
        listed = followers[i % 2].list_objects_v2(Bucket="fresh")["Contents"]
        assert [o["Size"] for o in listed] == [len(value)]

    # A node cut off from the rest cannot prove it is current: it refuses
    # to answer rather than serve what may be stale.
    cluster.nodes[1].kill9()
    cluster.nodes[2].kill9()
    alone = cluster.nodes[3].client()
    with pytest.raises(ClientError) as refused:
        alone.get_object(Bucket="fresh", Key="k")
    assert refused.value.response["Error"]["Code"] == "ServiceUnavailable"


def test_a_returning_node_fetches_missed_chunks_in_the_background(clusters):
    # Snapshots every 20 entries, keeping 5: a node away for more than that
    # comes back through a snapshot and its blob catalog.
    cluster = clusters("catchup", args=["--snapshot-every", "20", "--snapshot-logs-kept", "5"])
    form(cluster)
    s3 = cluster.nodes[1].client()
    s3.create_bucket(Bucket="missed")
    cluster.nodes[3].kill9()
    count = 30
    bodies = {f"obj-{i}": os.urandom(MIB + 1000) for i in range(count)}  # two chunks each
    for key, data in bodies.items():
        s3.put_object(Bucket="missed", Key=key, Body=data)
    snap = ctl(cluster.nodes[1], "snapshot").stdout
    assert '"snapshot_bytes"' in snap, snap

    cluster.nodes[3].stop()
    returned = cluster.start(3)
    wait_until(lambda: metric_sum(returned, "shoal_chunkblob_catchup_fetched_total") >= 2 * count,
               60, "the returning node to fetch every chunk it missed")
    log = open(returned.log_path).read()
    assert "installed raft snapshot" in log
    assert metric_sum(returned, "shoal_raft_snapshot_bytes") > 0
    assert metric_sum(returned, "shoal_chunkblob_unrecoverable_total") == 0
    # The chunks are now local: reading them stores nothing new.
    appends = metric_sum(returned, "shoal_blob_log_appends_total")
    c = returned.client()
    for key, data in bodies.items():
        assert c.get_object(Bucket="missed", Key=key)["Body"].read() == data
    assert metric_sum(returned, "shoal_blob_log_appends_total") == appends


def audit_queued(node):
    """How many missing chunks the node's start-up audits queued, once all
    of its shards' audits are done; None before."""
    node.log.flush()
    text = re.sub(r"\x1b\[[0-9;]*m", "", open(node.log_path).read())
    done = re.findall(r"chunk audit done.*queued=(\d+)", text.split("starting shard raft group")[-1])
    return sum(map(int, done)) if len(done) == SHARDS else None


def test_chunks_still_queued_when_a_node_stops_are_found_again(clusters):
    cluster = clusters("audit")
    form(cluster)
    s3 = cluster.nodes[1].client()
    s3.create_bucket(Bucket="queued")
    cluster.nodes[3].kill9()
    bodies = {f"obj-{i}": os.urandom(MIB + 1000) for i in range(20)}  # two chunks each
    for key, data in bodies.items():
        s3.put_object(Bucket="queued", Key=key, Body=data)

    # Node 3 returns fetching slowly (1 MiB/s from each peer) and is killed
    # with most of its background fetches still queued in memory.
    cluster.nodes[3].stop()
    slow = cluster.start(3, extra=["--catchup-rate", "1MiB"])
    wait_until(lambda: metric_sum(slow, "shoal_chunkblob_catchup_fetched_total") >= 1, 30, "a first fetch")
    slow.kill9()

    # Back at full pace, its start-up audit finds what is still missing.
    back = cluster.start(3)
    wait_until(lambda: audit_queued(back) is not None, 30, "the audit of every shard")
    queued = audit_queued(back)
    assert 0 < queued < 2 * len(bodies)
    wait_until(lambda: metric_sum(back, "shoal_chunkblob_catchup_fetched_total") >= queued, 60,
               "the audited chunks to be fetched")
    appends = metric_sum(back, "shoal_blob_log_appends_total")
    c = back.client()
    for key, data in bodies.items():
        assert c.get_object(Bucket="queued", Key=key)["Body"].read() == data
    assert metric_sum(back, "shoal_blob_log_appends_total") == appends, "a read had to fetch"

    # Every chunk is here now: a stop in order says so, and the next start
    # skips the scan of every manifest.
    back.stop()
    again = cluster.start(3)
    wait_until(lambda: skipped_audits(again) == SHARDS, 30, "every shard to skip its audit")
    assert audit_queued(again) is None
    # The start took the mark away: after a crash the node scans again.
    again.kill9()
    crashed = cluster.start(3)
    wait_until(lambda: audit_queued(crashed) is not None, 30, "the audit of every shard")
    assert audit_queued(crashed) == 0


def skipped_audits(node):
    """How many times the node's shards skipped their audit, in its whole log."""
    node.log.flush()
    return open(node.log_path).read().count("no chunk audit")
