"""Disk space comes back (issue 14): deletes, overwrites, aborted uploads
and cut-off PUTs give their bytes back to the file system within seconds
of `--gc-grace`, and nothing acknowledged is ever lost on the way."""

import hashlib
import os
import random
import socket
import threading
import time

import pytest
from botocore.exceptions import ClientError

import rawhttp
from conftest import ctl, metric_sum, wait_until

MIB = 1 << 20
SEGMENT = 64 * MIB
GC_ARGS = ["--gc-grace", "2s", "--segment-size", "64MiB"]
SHARDS = 2


def disk_bytes(root, part="blobs"):
    """Bytes the files under every `shard-*/<part>` of `root` take on disk
    (allocated blocks, as `du` counts them: punched holes take none)."""
    total = 0
    for shard in os.listdir(root):
        base = os.path.join(root, shard, part)
        if not shard.startswith("shard-") or not os.path.isdir(base):
            continue
        for dirpath, _, files in os.walk(base):
            for name in files:
                try:
                    total += os.stat(os.path.join(dirpath, name)).st_blocks * 512
                except FileNotFoundError:
                    pass  # a segment the reclaimer removed meanwhile
    return total


def back_to(node, baseline, what, shards=SHARDS, within=30):
    """Waits until the blob logs are within one segment per shard written
    (`shards` of them) of `baseline`; returns the bytes on disk then and
    the seconds it took."""
    bound = baseline + shards * SEGMENT
    started = time.monotonic()
    wait_until(lambda: disk_bytes(node.data_dir) <= bound, within,
               f"{what}: blob logs back within one segment per shard of {baseline} bytes "
               f"(now {disk_bytes(node.data_dir)})")
    return disk_bytes(node.data_dir), time.monotonic() - started


def report(what, **numbers):
    print(f"[space] {what}: " + ", ".join(f"{k}={v}" for k, v in numbers.items()))


@pytest.fixture
def gc_node(fresh_node):
    node = fresh_node(cores=SHARDS, extra_args=GC_ARGS)
    s3 = node.client(max_pool_connections=16)
    s3.create_bucket(Bucket="space")
    return node, s3


def test_deleting_two_gib_gives_the_space_back(gc_node):
    node, s3 = gc_node
    baseline = disk_bytes(node.data_dir)
    written = 0.0
    for i in range(32):
        # Distinct content: no two objects share a chunk.
        body = os.urandom(64 * MIB)
        started = time.monotonic()
        s3.put_object(Bucket="space", Key=f"big/{i}", Body=body)
        written += time.monotonic() - started
    full = disk_bytes(node.data_dir)
    assert full >= baseline + 2 * 1024 * MIB
    deleted = time.monotonic()
    for i in range(32):
        s3.delete_object(Bucket="space", Key=f"big/{i}")
    after, took = back_to(node, baseline, "2 GiB deleted")
    report("2 GiB written and deleted", baseline=baseline, full=full, after=after,
           seconds_to_reclaim=round(time.monotonic() - deleted, 1),
           put_gb_per_s=round(2 / written, 2))
    # The metrics say so too, once the pass that released it has ended.
    wait_until(lambda: metric_sum(node, "shoal_blob_released_bytes_total")
               >= 2 * 1024 * MIB - SHARDS * SEGMENT, 10, "released bytes in the metrics")
    assert metric_sum(node, "shoal_gc_chunks_forgotten_total") >= 2048 - 2 * 64
    assert metric_sum(node, "shoal_gc_chunks_collected_total") >= 2048 - 2 * 64
    # Nothing is left waiting for a collect (the gauge counts the zero
    # list itself: an empty one reads 0).
    wait_until(lambda: metric_sum(node, "shoal_gc_chunks_queued") == 0, 10,
               "the collect queue to be empty")
    # The live-bytes gauge is what the last sweep counted; a sweep that
    # began before the last delete was collected still counts it, so give
    # it the next pass.
    wait_until(lambda: metric_sum(node, "shoal_blob_live_bytes") == 0, 10,
               "the live-bytes gauge to read 0")
    table = ctl(node, "gc").stdout
    rows = table.splitlines()
    assert rows[0].split()[:3] == ["shard", "live", "MiB"], table
    assert len(rows) == 1 + SHARDS + 1 and rows[-1].startswith("data dir /"), table
    print(table)


def test_overwrites_keep_only_the_last_version(gc_node):
    node, s3 = gc_node
    baseline = disk_bytes(node.data_dir)
    last = None
    for i in range(32):
        last = os.urandom(16 * MIB)
        s3.put_object(Bucket="space", Key="same", Body=last)
    # Reclaiming starts while the overwrites go on (each is dead 2 s after
    # the next lands), so the disk never holds all 512 MiB.
    full = disk_bytes(node.data_dir)
    after, _ = back_to(node, baseline + 16 * MIB, "32 overwrites", shards=1)
    report("32 overwrites of 16 MiB", baseline=baseline, written=32 * 16 * MIB,
           after_last_write=full, after=after, live=16 * MIB)
    got = s3.get_object(Bucket="space", Key="same")["Body"].read()
    assert got == last


def test_an_aborted_multipart_upload_gives_its_parts_back(gc_node):
    node, s3 = gc_node
    baseline = disk_bytes(node.data_dir)
    upload = s3.create_multipart_upload(Bucket="space", Key="parts")["UploadId"]
    for n in range(1, 11):
        s3.upload_part(Bucket="space", Key="parts", UploadId=upload, PartNumber=n,
                       Body=os.urandom(8 * MIB))
    full = disk_bytes(node.data_dir)
    assert full >= baseline + 80 * MIB
    s3.abort_multipart_upload(Bucket="space", Key="parts", UploadId=upload)
    # Every part is on the shard that owns the key.
    after, _ = back_to(node, baseline, "aborted upload", shards=1)
    report("aborted 10-part upload", baseline=baseline, full=full, after=after)


def cut_off_put(node, key, size, sent):
    """Starts a signed PUT of `size` bytes, sends `sent` of them, and
    closes the connection."""
    path = f"/space/{key}"
    headers = rawhttp.signed_headers(node, "PUT", path, {"content-length": str(size)})
    sock = socket.create_connection(("127.0.0.1", node.s3_port), timeout=30)
    head = f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{node.s3_port}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(head.encode() + b"\r\n")
    for _ in range(sent // MIB):
        sock.sendall(os.urandom(MIB))
    sock.close()


def test_puts_cut_off_mid_body_leave_nothing_behind(gc_node):
    node, s3 = gc_node
    baseline = disk_bytes(node.data_dir)
    full = baseline
    for i in range(6):
        cut_off_put(node, f"cut/{i}", 64 * MIB, 56 * MIB)
        full = max(full, disk_bytes(node.data_dir))
    # The node stored what it received of each (it cannot tell a slow
    # client from one that is gone until the connection closes); the first
    # may be reclaimed already while the last is sent.
    assert full >= baseline + 64 * MIB
    # Every chunk they stored is an orphan, forgotten after the grace.
    wait_until(lambda: metric_sum(node, "shoal_gc_orphans_forgotten_total") >= 6 * 40, 30,
               "the cut-off uploads' chunks to be forgotten as orphans")
    after, _ = back_to(node, baseline, "cut-off PUTs")
    report("6 PUTs cut off after 56 of 64 MiB", baseline=baseline, peak=full, after=after,
           forgotten=int(metric_sum(node, "shoal_gc_chunks_forgotten_total")))
    for i in range(6):
        with pytest.raises(ClientError):
            s3.head_object(Bucket="space", Key=f"cut/{i}")


def test_shared_content_survives_copy_overwrite_delete_under_gc(fresh_node):
    """Many objects share chunks (a few distinct bodies, copies of each
    other) while they are overwritten, copied and deleted for 60 s with a
    1 s grace: every object still there reads back byte-exact, and no GET
    ever returns bytes that are not some acknowledged body."""
    node = fresh_node(cores=SHARDS, extra_args=["--gc-grace", "1s", "--segment-size", "8MiB"])
    s3 = node.client(max_pool_connections=16)
    s3.create_bucket(Bucket="churn")
    sizes = [300_000, MIB + 17, 3 * MIB]
    bodies = [os.urandom(random.choice(sizes)) for _ in range(6)]
    digests = {hashlib.sha256(b).hexdigest() for b in bodies}
    shared = threading.Lock()
    keys = [f"k{i}" for i in range(12)]
    # The model: the digest each key must have when it exists (None: it
    # must not). Guarded by per-key locks so a key's operations and its
    # model change happen together.
    model = {k: None for k in keys}
    locks = {k: threading.Lock() for k in keys}
    errors = []
    counts = {"put": 0, "copy": 0, "delete": 0, "get": 0}
    stop = time.monotonic() + 60

    def worker(seed):
        rng = random.Random(seed)
        while time.monotonic() < stop and not errors:
            key = rng.choice(keys)
            action = rng.choice(["put", "put", "copy", "delete", "get", "get"])
            try:
                with locks[key]:
                    if action == "put":
                        # Mostly shared bodies; sometimes a new one, so
                        # chunks also lose their last ref and are collected.
                        with shared:
                            if rng.random() < 0.3:
                                bodies.append(os.urandom(rng.choice(sizes)))
                                digests.add(hashlib.sha256(bodies[-1]).hexdigest())
                            body = rng.choice(bodies[-8:])
                        s3.put_object(Bucket="churn", Key=key, Body=body)
                        model[key] = hashlib.sha256(body).hexdigest()
                    elif action == "copy":
                        source = rng.choice(keys)
                        if source == key or model.get(source) is None:
                            continue
                        # The source may change meanwhile (its lock is not
                        # held): the copy then holds whichever version it
                        # read, one of the known bodies.
                        s3.copy_object(Bucket="churn", Key=key,
                                       CopySource={"Bucket": "churn", "Key": source})
                        got = s3.get_object(Bucket="churn", Key=key)["Body"].read()
                        model[key] = hashlib.sha256(got).hexdigest()
                        if model[key] not in digests:
                            errors.append(f"copy to {key} holds unknown bytes")
                    elif action == "delete":
                        s3.delete_object(Bucket="churn", Key=key)
                        model[key] = None
                    else:
                        expected = model[key]
                        try:
                            got = s3.get_object(Bucket="churn", Key=key)["Body"].read()
                        except ClientError as e:
                            if expected is not None or e.response["Error"]["Code"] != "NoSuchKey":
                                errors.append(f"GET {key}: {e}")
                            continue
                        if hashlib.sha256(got).hexdigest() != expected:
                            errors.append(f"GET {key}: wrong bytes")
                counts[action] += 1
            except ClientError as e:
                code = e.response["Error"]["Code"]
                if action == "copy" and code == "NoSuchKey":
                    continue  # the source was deleted by another worker
                errors.append(f"{action} {key}: {code}")

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:10]
    assert counts["put"] > 50 and counts["get"] > 50, counts
    assert metric_sum(node, "shoal_gc_chunks_forgotten_total") > 0
    for key, digest in model.items():
        if digest is None:
            continue
        got = s3.get_object(Bucket="churn", Key=key)["Body"].read()
        assert hashlib.sha256(got).hexdigest() == digest, key
    report("60 s of shared-content churn", **counts,
           forgotten=int(metric_sum(node, "shoal_gc_chunks_forgotten_total")))


def test_deletes_free_space_on_every_node_of_a_cluster(tmp_path):
    from test_cluster import Cluster, form
    cluster = Cluster(tmp_path / "cluster", args=GC_ARGS)
    try:
        form(cluster)
        nodes = [cluster.nodes[i] for i in (1, 2, 3)]
        baselines = [disk_bytes(n.data_dir) for n in nodes]
        s3 = nodes[0].client()
        s3.create_bucket(Bucket="space")
        for i in range(12):
            s3.put_object(Bucket="space", Key=f"c/{i}", Body=os.urandom(32 * MIB))
        # Every node holds a copy (chunks are pushed to every member).
        wait_until(lambda: all(disk_bytes(n.data_dir) >= b + 300 * MIB
                               for n, b in zip(nodes, baselines)),
                   30, "every node to hold the objects")
        full = [disk_bytes(n.data_dir) for n in nodes]
        for i in range(12):
            s3.delete_object(Bucket="space", Key=f"c/{i}")
        # Each node forgets its own copies after its group collects them.
        after = []
        for node, baseline in zip(nodes, baselines):
            after.append(back_to(node, baseline, f"node {node.data_dir}", within=45)[0])
        report("3-node cluster, 384 MiB written and deleted", full=full, after=after)
    finally:
        cluster.stop_all()


def test_kill9_while_collecting_loses_no_acknowledged_object(fresh_node):
    """Overwrites and deletes with a 1 s grace keep the sweeper and
    reclaimer busy; a kill -9 lands in the middle. After the restart every
    acknowledged object reads back byte-exact, deleted ones stay deleted,
    and the space of what was deleted still comes back."""
    node = fresh_node(cores=SHARDS, extra_args=["--gc-grace", "1s", "--segment-size", "8MiB"])
    s3 = node.client(max_pool_connections=8)
    s3.create_bucket(Bucket="crash")
    acked = {}
    lock = threading.Lock()
    stop = threading.Event()

    def worker(w):
        rng = random.Random(w)
        while not stop.is_set():
            # Each worker its own keys: what it was told last is what
            # the key holds (two writers of one key race their replies).
            key = f"k{rng.randrange(24) // 4 * 4 + w}"
            try:
                if rng.random() < 0.25:
                    s3.delete_object(Bucket="crash", Key=key)
                    with lock:
                        acked[key] = None
                else:
                    body = os.urandom(rng.choice([200_000, MIB + 5, 2 * MIB]))
                    s3.put_object(Bucket="crash", Key=key, Body=body)
                    with lock:
                        acked[key] = hashlib.sha256(body).hexdigest()
            except Exception:  # noqa: BLE001 - the node dies mid-request
                with lock:
                    acked.pop(key, None)  # outcome unknown: not checked
                return

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: metric_sum(node, "shoal_gc_chunks_forgotten_total") > 20, 30,
               "the sweeper to be forgetting chunks")
    node.kill9()
    stop.set()
    for t in threads:
        t.join()
    node.start()
    s3 = node.client()
    for key, digest in acked.items():
        if digest is None:
            with pytest.raises(ClientError):
                s3.head_object(Bucket="crash", Key=key)
        else:
            body = s3.get_object(Bucket="crash", Key=key)["Body"].read()
            assert hashlib.sha256(body).hexdigest() == digest, key
    baseline = 8192
    for key in [f"k{i}" for i in range(24)]:
        s3.delete_object(Bucket="crash", Key=key)
    back_to(node, baseline, "everything deleted after the crash")
