"""Bytes that went bad on disk. A blob-log record whose payload no longer
matches its SHA-256 is never served: a GET that starts in it answers an
error before any body (a 200 with a cut body would pass for a short object
with clients that do not check the length), and the object's other chunks
and other objects still read back. A restart keeps every record after the
damaged one (only the chunk it hit is lost on a single node), and a
cluster member replaces its damaged copy with a member's good one."""

import glob
import hashlib
import os
import struct
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import ctl, metric_sum, wait_until
from test_cluster import Cluster, form

MIB = 1024 * 1024
BLOCK = 4096
RECORD_MAGIC = 0x5348_4C42
HEADER_BYTES = 64


def records(segment):
    """Offsets and payload lengths of the records in a blob-log segment,
    read the way recovery reads them (aligned headers, length at 8..12)."""
    found = []
    with open(segment, "rb") as f:
        data = f.read()
    at = 0
    while at + HEADER_BYTES <= len(data):
        magic, length = struct.unpack_from("<I", data, at)[0], struct.unpack_from("<I", data, at + 8)[0]
        if magic != RECORD_MAGIC:
            break
        found.append((at, length))
        at += (HEADER_BYTES + length + BLOCK - 1) // BLOCK * BLOCK
    return found


def segments_of(data_dir):
    return sorted(glob.glob(os.path.join(data_dir, "shard-*", "blobs", "segment-*.blob")))


def flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))
        f.flush()
        os.fsync(f.fileno())


def test_a_get_starting_in_a_bad_chunk_answers_500_not_a_cut_200(fresh_node):
    node = fresh_node(cores=1)
    s3 = node.client()
    s3.create_bucket(Bucket="rot")
    # The first object written: its first chunk is the first record of
    # the shard's first segment.
    bad = os.urandom(3 * MIB)
    s3.put_object(Bucket="rot", Key="bad", Body=bad)
    good = os.urandom(2 * MIB)
    s3.put_object(Bucket="rot", Key="good", Body=good)
    segments = sorted(glob.glob(os.path.join(node.data_dir, "shard-0000", "blobs", "segment-*.blob")))
    flip_byte(segments[0], 512 * 1024)  # inside the first chunk's payload

    with pytest.raises(ClientError) as failed:
        s3.get_object(Bucket="rot", Key="bad")
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert failed.value.response["Error"]["Code"] == "InternalError"

    # A range past the bad chunk, and another object, read back intact.
    tail = s3.get_object(Bucket="rot", Key="bad", Range=f"bytes={2 * MIB}-")
    assert tail["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert tail["Body"].read() == bad[2 * MIB:]
    body = s3.get_object(Bucket="rot", Key="good")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(good).digest()


def test_a_flipped_byte_loses_only_the_chunk_it_hit_across_a_restart(fresh_node):
    node = fresh_node(cores=1)
    s3 = node.client()
    s3.create_bucket(Bucket="rot")
    bodies = {f"k{i}": os.urandom(3 * MIB) for i in range(8)}
    for key, body in bodies.items():  # written in order: 3 records each
        s3.put_object(Bucket="rot", Key=key, Body=body)
    [segment] = segments_of(node.data_dir)
    laid = records(segment)
    assert len(laid) == 3 * len(bodies)
    # The first record of k2: six records (18 MiB) of acknowledged data
    # follow it, which a recovery that cut at the first bad record lost.
    at, _ = laid[6]
    flip_byte(segment, at + HEADER_BYTES + 1000)

    node.kill9()
    node.start()
    with pytest.raises(ClientError) as failed:
        s3.get_object(Bucket="rot", Key="k2")
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    for key, body in bodies.items():
        if key != "k2":
            got = s3.get_object(Bucket="rot", Key=key)["Body"].read()
            assert got == body, f"{key} changed"
    assert metric_sum(node, "shoal_chunkblob_damaged_total") == 1
    # Writing goes on after the last record, and the same bytes uploaded
    # again make the object whole.
    s3.put_object(Bucket="rot", Key="k2", Body=bodies["k2"])
    assert s3.get_object(Bucket="rot", Key="k2")["Body"].read() == bodies["k2"]
    s3.put_object(Bucket="rot", Key="after", Body=b"x" * 5000)
    node.kill9()
    node.start()
    for key, body in bodies.items():
        assert s3.get_object(Bucket="rot", Key=key)["Body"].read() == body
    assert s3.get_object(Bucket="rot", Key="after")["Body"].read() == b"x" * 5000


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.stop_all()


def test_a_member_replaces_a_damaged_chunk_with_a_good_copy(cluster):
    form(cluster)
    s3 = cluster.nodes[1].client()
    s3.create_bucket(Bucket="rot")
    body = os.urandom(4 * MIB)
    s3.put_object(Bucket="rot", Key="obj", Body=body)
    for node_id in (2, 3):
        wait_until(lambda: len([r for seg in segments_of(cluster.nodes[node_id].data_dir)
                                for r in records(seg)]) >= 4, 20,
                   f"node {node_id} to hold the object's chunks")

    # Node 2, running: a byte flips under it; its GET still answers the
    # right bytes, taken from a member, and its own copy is replaced.
    [segment] = [s for s in segments_of(cluster.nodes[2].data_dir) if records(s)]
    at, _ = records(segment)[1]
    flip_byte(segment, at + HEADER_BYTES + 77)
    got = cluster.nodes[2].client().get_object(Bucket="rot", Key="obj")["Body"].read()
    assert got == body
    assert metric_sum(cluster.nodes[2], "shoal_chunkblob_damaged_total") == 1
    assert metric_sum(cluster.nodes[2], "shoal_chunkblob_repaired_total") == 1

    # Node 3, stopped: recovery finds the damage, and the node fetches the
    # chunk back in the background, before anything reads it.
    [segment] = [s for s in segments_of(cluster.nodes[3].data_dir) if records(s)]
    cluster.nodes[3].stop()
    at, _ = records(segment)[2]
    flip_byte(segment, at + HEADER_BYTES + 5)
    cluster.start(3)
    node3 = cluster.nodes[3]
    assert metric_sum(node3, "shoal_chunkblob_damaged_total") == 1
    wait_until(lambda: metric_sum(node3, "shoal_chunkblob_catchup_fetched_total") >= 1, 30,
               "node 3 to fetch the chunk it lost")
    assert node3.client().get_object(Bucket="rot", Key="obj")["Body"].read() == body
    assert metric_sum(node3, "shoal_chunkblob_damaged_total") == 1


def test_the_scrub_finds_damage_nobody_read_and_names_the_object(fresh_node):
    node = fresh_node(cores=1, extra_args=["--scrub-rate", "256MiB"])
    s3 = node.client()
    s3.create_bucket(Bucket="rot")
    bodies = {key: os.urandom(2 * MIB) for key in ("quiet/a", "quiet/b", "quiet/c")}
    for key, body in bodies.items():
        s3.put_object(Bucket="rot", Key=key, Body=body)
    [segment] = segments_of(node.data_dir)
    at, _ = records(segment)[3]  # quiet/b's second chunk
    flip_byte(segment, at + HEADER_BYTES + 4242)

    ctl(node, "scrub", "--now")
    wait_until(lambda: metric_sum(node, "shoal_scrub_passes_total") >= 1, 30, "a scrub pass")
    assert metric_sum(node, "shoal_scrub_damaged_total") == 1
    assert metric_sum(node, "shoal_scrub_unrepaired_total") == 1
    assert metric_sum(node, "shoal_scrub_checked_bytes_total") == 5 * MIB
    table = ctl(node, "scrub").stdout
    assert "NOT repaired; objects: rot/quiet/b" in table, table
    assert "rot/quiet/b" in node.log_text()
    for key in ("quiet/a", "quiet/c"):
        assert s3.get_object(Bucket="rot", Key=key)["Body"].read() == bodies[key]

    off = fresh_node(cores=1, extra_args=["--scrub-rate", "0"])
    refused = ctl(off, "scrub", "--now", check=False)
    assert refused.returncode != 0 and "scrub is off" in refused.stderr
    assert "off" in ctl(off, "scrub").stdout


def meta_tables(data_dir):
    return sorted(glob.glob(os.path.join(data_dir, "shard-*", "meta", "*.sst")))


def read_everything(s3, bodies):
    """GETs every key and lists the bucket: (keys read intact, keys
    answered 500, whether the listing answered). A wrong body fails."""
    intact, failed = 0, 0
    for key, digest in bodies.items():
        try:
            got = s3.get_object(Bucket="meta", Key=key)["Body"].read()
        except ClientError as e:
            assert e.response["Error"]["Code"] == "InternalError", e
            failed += 1
            continue
        assert hashlib.sha256(got).hexdigest() == digest, f"{key}: wrong bytes served"
        intact += 1
    try:
        listed = {o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket="meta")
                  for o in p.get("Contents", [])}
        assert listed == set(bodies), "a listing that answers names exactly the objects"
        listing = True
    except ClientError as e:
        assert e.response["Error"]["Code"] == "InternalError", e
        listing = False
    return intact, failed, listing


def put_some(s3, count):
    s3.create_bucket(Bucket="meta")
    bodies = {}
    for i in range(count):
        body = os.urandom(1000 + 37 * i)
        s3.put_object(Bucket="meta", Key=f"k{i:04d}", Body=body, Metadata={"n": str(i)})
        bodies[f"k{i:04d}"] = hashlib.sha256(body).hexdigest()
    return bodies


def test_a_flipped_byte_in_any_metadata_file_is_an_error_never_wrong_data(fresh_node, tmp_path):
    """One byte flipped in each of the shard's rocksdb tables in turn (on
    a copy of the same data): the node serves every key it can read
    byte-exact and answers 500 for the others, or refuses to start saying
    its metadata store is damaged, and never serves wrong bytes."""
    node = fresh_node(cores=1)
    bodies = put_some(node.client(), 300)
    node.stop()  # flushes the memtables into tables
    pristine = tmp_path / "pristine"
    subprocess.run(["cp", "-a", node.data_dir, str(pristine)], check=True)
    outcomes = []
    for i in range(len(meta_tables(str(pristine)))):
        subprocess.run(["rm", "-rf", node.data_dir], check=True)
        subprocess.run(["cp", "-a", str(pristine), node.data_dir], check=True)
        table = meta_tables(node.data_dir)[i]
        # The first block of a table holds data: a block a read checks.
        flip_byte(table, min(100, os.path.getsize(table) // 4))
        node.launch()
        try:
            wait_until(lambda: node.proc.poll() is not None or node.healthy(), 30, "start or refusal")
        except Exception:
            pass
        if node.proc.poll() is not None:
            assert "the metadata store is damaged" in node.log_text()
            outcomes.append("refused to start")
            continue
        intact, failed, listing = read_everything(node.client(), bodies)
        node.stop()
        outcomes.append(f"{intact} intact, {failed} answered 500, listing {'ok' if listing else '500'}")
        if failed or not listing:
            assert "the metadata store is damaged" in node.log_text()
    print("[meta flips]", "; ".join(outcomes))
    assert len(outcomes) >= 3


def test_a_member_with_damaged_metadata_rejoins_and_gets_everything_back(cluster):
    """Node 3's metadata tables all take a flipped byte: it refuses to
    start (or cannot serve), the other two serve every object throughout,
    and the procedure in docs/operations.md (remove it, move its data
    aside, join again) gives it every object back."""
    form(cluster)
    bodies = put_some(cluster.nodes[1].client(), 60)
    wait_until(lambda: read_everything(cluster.nodes[3].client(), bodies)[0] == len(bodies), 20,
               "node 3 to serve every object")
    cluster.nodes[3].stop()
    for table in meta_tables(cluster.nodes[3].data_dir):
        flip_byte(table, min(100, os.path.getsize(table) // 4))
    node3 = cluster.launch(3)
    wait_until(lambda: node3.proc.poll() is not None or node3.healthy(), 30, "start or refusal")
    for node_id in (1, 2):
        assert read_everything(cluster.nodes[node_id].client(), bodies)[0] == len(bodies)
    node3.stop()
    assert "the metadata store is damaged" in node3.log_text()

    for node_id in set(cluster.leaders(1)):
        ctl(cluster.nodes[node_id], "member", "remove", "3", check=False)
    wait_until(lambda: all(3 not in [m["node_id"] for m in s["members"]] for s in cluster.overview(1)["shards"]),
               10, "node 3 to leave every group")
    os.rename(cluster.nodes[3].data_dir, cluster.nodes[3].data_dir + ".damaged")
    cluster.start(3, join=1)
    wait_until(lambda: read_everything(cluster.nodes[3].client(), bodies) == (len(bodies), 0, True), 60,
               "node 3 to serve every object again")
